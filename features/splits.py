"""Group-aware stratified splitting, written once, and the held-out test split made with it.

`group_split` is the one place rows are split by group and stratified by label: the test
split (`assign_test_split`), the cross-validation folds (`trainables.trial.folds`), the inner
early-stopping split (`trainables.training.inner`) and the ensemble's cross-fit (`results.build`,
`results.choice`) all call it.

The test split is a property of a group, never of a row: `named_splits` reads what the
sources say about their groups (refusing a group they put on both sides), `assign_test_split`
splits the groups they leave open, and the store records the answer once per group
(``_splits.parquet``) for every row of the group to carry (`features.incremental`).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from seqsweep.errors import ConfigError, InputError

__all__ = ["assign_test_split", "group_split", "named_splits"]


def group_split(
    y: ArrayLike, groups: ArrayLike, *, seed: int, folds: int | None = None, test_size: float | None = None,
    kfold_when_ungrouped: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, group-aware (kept rows, held rows) pairs of row positions ``0..N-1``.

    The rows of a group are always on one side; the held rows are stratified by ``y``; the
    shuffle is scikit-learn's ``random_state=seed``, so the same inputs and seed give the
    same rows. Give exactly one of ``folds`` and ``test_size``.

    Parameters
    ----------
    y : [shape=(N,)] class of each row (ints or strings).
    groups : [shape=(N,)] group of each row.
    seed : the shuffle's seed.
    folds : k-fold: ``max(2, min(folds, n_groups))`` pairs whose held rows hold every row
        once, from `StratifiedGroupKFold` (``shuffle=True``).
    test_size : hold-out: one pair holding that share of the groups, from `train_test_split`
        over the groups (in order of first appearance), stratified by each group's label
        (its first row's).
    kfold_when_ungrouped : with ``folds``, when every group is one row, cut with the plain
        `StratifiedKFold` instead: the same rule without the group search's cost, but other
        folds (the ensemble's cross-fit has always used it; the CV plan and inner split not).

    Returns
    -------
    list of (kept, held) : sorted int64 positions [shape=(n_kept,), (n_held,)], together
    every row once. scikit-learn's `ValueError` when there are fewer than 2 groups (or, with
    ``test_size``, too few groups of a class to stratify): callers check what their users
    can get wrong first (`SequenceIndex.check_min_per_class`, `assign_test_split`).
    """
    if (folds is None) == (test_size is None):
        raise ConfigError("group_split", "takes exactly one of folds and test_size",
                          f"folds={folds!r}, test_size={test_size!r}")
    y, groups = np.asarray(y), np.asarray(groups)
    if test_size is not None:
        names, first, codes = np.unique(groups, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # groups in order of first appearance
        _, held = train_test_split(order, test_size=test_size, stratify=y[first[order]], random_state=seed)
        held_rows = np.isin(codes, held)
        return [(np.flatnonzero(~held_rows), np.flatnonzero(held_rows))]
    n_groups = len(set(groups.tolist()))
    n_splits = max(2, min(int(folds), n_groups))
    splitter = (StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                if kfold_when_ungrouped and n_groups == len(y) else
                StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class": the callers' rule to check
        return [(kept.astype(np.int64), held.astype(np.int64))
                for kept, held in splitter.split(np.zeros(len(y)), y, groups)]


def named_splits(entries: Iterable[tuple[str, str, str | None]], *, where: str = "split"
                 ) -> dict[str, tuple[str, str]]:
    """group -> (label, split) for every group a source names the split of.

    ``entries`` are (group, label, split or None) per source row. Raises `InputError`
    (naming ``where`` and the group) when the rows of one group name both ``train`` and
    ``test``: whole groups go to one side.
    """
    named: dict[str, tuple[str, str]] = {}
    for group, label, split in entries:
        if split is None:
            continue
        seen = named.setdefault(group, (label, split))
        if seen[1] != split:
            raise InputError(f"{where} of group {group!r}", "every source of a group must name the same split "
                             "(a group is never on both sides of the test split)", f"{seen[1]} and {split}")
    return named


def assign_test_split(
    group_labels: dict[str, str], *, test_size: float, seed: int
) -> dict[str, str]:
    """Map each group to ``"train"`` or ``"test"``.

    Whole groups go to one side (the segments of one track never straddle the split),
    stratified by the group's label: `group_split` with ``test_size`` over the groups in
    name order. When there are too few groups to stratify (a class with one group, or a
    small batch of new files added to an existing dataset), each group falls back to a
    stable draw from its name's hash, so the answer never depends on the order files
    were found in.
    """
    groups = sorted(group_labels)
    if not groups:
        return {}
    labels = [group_labels[g] for g in groups]
    counts = Counter(labels)
    n_test = max(1, round(test_size * len(groups)))
    can_stratify = min(counts.values()) >= 2 and n_test >= len(counts) and len(groups) - n_test >= len(counts)
    if can_stratify:
        ((_, test),) = group_split(labels, groups, test_size=test_size, seed=seed)
        test_set = {groups[i] for i in test}
        return {g: ("test" if g in test_set else "train") for g in groups}
    return {g: ("test" if _unit_hash(g, seed) < test_size else "train") for g in groups}


def _unit_hash(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
