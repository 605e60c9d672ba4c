"""The held-out test split: made once per dataset, by group, stratified by label.

The split is a property of a group, never of a row: `named_splits` reads what the sources
say about their groups (refusing a group they put on both sides), `assign_test_split`
splits the groups they leave open, and the store records the answer once per group
(``_splits.parquet``) for every row of the group to carry (`features.incremental`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

from sklearn.model_selection import train_test_split

from seqsweep.errors import InputError

__all__ = ["assign_test_split", "named_splits"]


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
    stratified by the group's label with scikit-learn's `train_test_split` over the
    groups. When there are too few groups to stratify (a class with one group, or a
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
        _, test = train_test_split(groups, test_size=test_size, stratify=labels, random_state=seed)
        test_set = set(test)
        return {g: ("test" if g in test_set else "train") for g in groups}
    return {g: ("test" if _unit_hash(g, seed) < test_size else "train") for g in groups}


def _unit_hash(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
