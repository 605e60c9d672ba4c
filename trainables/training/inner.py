"""The inner split: the slice of a training fold that early stopping watches.

A validation fold must be scored once and choose nothing, so the epoch that early
stopping keeps (and the epoch count a full refit later trains for) is chosen on rows
carved from the *training* fold: stratified by label and group-aware (the segments of
one track stay on one side), drawn from the fit's own seed.

`features.splits.group_split` makes the cut (the first of its ``round(1 / fraction)``
folds, scikit-learn's `StratifiedGroupKFold`, is the inner validation slice). One rule is added on top: a class
whose training-fold rows would all land in the inner slice keeps them for training, so
the model always sees every class it is scored on.
"""

from __future__ import annotations

import numpy as np

from features.splits import group_split
from seqsweep.errors import InputError

__all__ = ["inner_split"]


def inner_split(
    y: np.ndarray, groups: np.ndarray, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions ``0..N-1`` into (fit rows, early-stopping rows).

    Parameters
    ----------
    y : int [shape=(N,)] class indices of the training fold.
    groups : [shape=(N,)] group of each row; a group never straddles the two sides.
    fraction : the share of groups to hold out, in (0, 0.5].
    seed : drives the shuffle (the fit's own seed).

    Returns
    -------
    (fit_rows, stop_rows) : sorted int64 positions; together every row exactly once.

    Raises
    ------
    InputError : fewer than 2 groups, so no row could be held out.
    """
    y = np.asarray(y)
    groups = np.asarray(groups, dtype=object)
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        raise InputError("train (early stopping)", "the inner early-stopping split needs at least 2 groups "
                         "in the training fold", n_groups)
    # a class too small for every fold ("least populated class") is handled below
    fit_rows, stop_rows = group_split(y, groups, folds=round(1.0 / fraction), seed=seed)[0]
    # a class with no rows left to train on keeps all of its rows for training
    missing = np.setdiff1d(np.unique(y), np.unique(y[fit_rows]))
    if missing.size:
        back = np.isin(y[stop_rows], missing)
        back_groups = set(groups[stop_rows][back].tolist())
        back = np.isin(groups[stop_rows], list(back_groups))
        fit_rows = np.concatenate([fit_rows, stop_rows[back]])
        stop_rows = stop_rows[~back]
    if stop_rows.size == 0:  # every class too small to spare a group: hold out one group anyway
        first = groups[fit_rows[0]]
        stop_rows = fit_rows[groups[fit_rows] == first]
        fit_rows = fit_rows[groups[fit_rows] != first]
    return np.sort(fit_rows).astype(np.int64), np.sort(stop_rows).astype(np.int64)
