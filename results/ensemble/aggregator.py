"""Aggregators: how an ensemble joins its members' class probabilities (deephyper's
``ensemble/aggregator/``), and the other means of probabilities the room takes.

Shapes: one member's probabilities are ``(N, C)`` (N clips, C classes, rows sum to 1);
M members stacked are ``(M, N, C)``. Every aggregator returns ``(N, C)`` rows that sum to
1, so the ensemble's class is ``argmax`` of its row, like a single model's.

* `soft_vote` (``mean``): the (weighted) mean probability.
* `max_blend` (``max``): per class the largest probability any member gives ("maximum"
  blending), rows renormalised to sum to 1.
* `hard_vote` (``vote``): the fraction of members whose arg-max is each class; ties between
  classes with as many votes are broken by the mean probability (see its docstring).
* `average_seeds`: one member's out-of-fold probabilities averaged over its CV seeds: every
  train clip is validated once per seed, so the mean is one out-of-fold estimate per clip,
  as a refit member's seed-averaged test probabilities are.
* `per_group`: rows -> one row per group (the mean probability of its clips), for the
  per-file figures of segmented feature sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from seqsweep.errors import ConfigError, InputError

__all__ = ["AGGREGATORS", "TIE_EPSILON", "average_seeds", "hard_vote", "max_blend", "per_group", "soft_vote",
           "stack"]

#: `hard_vote` adds this times the mean probability to the vote fractions: less than the
#: smallest gap between two vote counts (1/M for M < 10**6 members), so it only orders ties.
TIE_EPSILON = 1e-6


def stack(probas: np.ndarray | Sequence[np.ndarray], where: str = "probas") -> np.ndarray:
    """Member probabilities as float64 [shape=(M, N, C)]; raises `InputError` (naming
    ``where``) for another shape or a value that is not finite."""
    arr = np.asarray(probas, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] < 1:
        raise InputError(where, "must be member probabilities of shape (M members, N clips, C classes)",
                         arr.shape)
    if not np.isfinite(arr).all():
        raise InputError(where, "probabilities must be finite", "NaN or inf")
    return arr


def _normalise(rows: np.ndarray) -> np.ndarray:
    total = rows.sum(axis=1, keepdims=True)
    return rows / np.where(total > 0, total, 1.0)


def _check_weights(weights: np.ndarray | Sequence[float] | None, m: int) -> np.ndarray:
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ConfigError("weights", f"must be {m} finite non-negative numbers with a positive sum",
                          w.tolist())
    return w / w.sum()


def average_seeds(oof: np.ndarray) -> np.ndarray:
    """One member's out-of-fold probabilities averaged over its CV seeds.

    ``oof`` float [shape=(n_seeds, N, C)] (a trial's ``oof.npz`` ``proba``) -> float64
    [shape=(N, C)]. Raises `InputError` if a clip was never validated (NaN).
    """
    arr = np.asarray(oof, dtype=np.float64)
    if arr.ndim != 3:
        raise InputError("oof.proba", "must have shape (n_seeds, N, C)", arr.shape)
    if not np.isfinite(arr).all():
        raise InputError("oof.proba", "every train clip must be validated once per seed", "NaN rows")
    return _normalise(arr.mean(axis=0))


def soft_vote(probas: np.ndarray, *, weights: np.ndarray | Sequence[float] | None = None) -> np.ndarray:
    """The weighted mean probability [shape=(M, N, C)] -> [shape=(N, C)]; equal weights by default."""
    arr = stack(probas)
    w = _check_weights(weights, arr.shape[0])
    return _normalise(np.tensordot(w, arr, axes=1))


def max_blend(probas: np.ndarray) -> np.ndarray:
    """Per clip and class, the largest probability any member gives, each row renormalised
    to sum to 1 [shape=(M, N, C)] -> [shape=(N, C)]."""
    return _normalise(stack(probas).max(axis=0))


def hard_vote(probas: np.ndarray) -> np.ndarray:
    """Majority vote of the members' arg-max classes [shape=(M, N, C)] -> [shape=(N, C)].

    Each row holds the fraction of members voting for each class, plus `TIE_EPSILON` times
    the members' mean probability, renormalised to sum to 1. The epsilon is smaller than
    one vote, so the arg-max is the class with the most votes and, among classes with as
    many votes, the one with the highest mean probability (then the lowest index).
    """
    arr = stack(probas)
    m, _, c = arr.shape
    votes = np.zeros(arr.shape[1:], dtype=np.float64)
    labels = arr.argmax(axis=2)  # (M, N)
    for k in range(m):
        votes[np.arange(arr.shape[1]), labels[k]] += 1.0
    return _normalise(votes / m + TIE_EPSILON * arr.mean(axis=0))


#: aggregator name -> its function [shape=(M, N, C)] -> [shape=(N, C)]; only ``mean``
#: takes ``weights`` (a weighted method's), the others count every member once
AGGREGATORS: dict[str, Callable[..., np.ndarray]] = {"mean": soft_vote, "max": max_blend, "vote": hard_vote}


def per_group(y: np.ndarray, proba: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per group, in sorted group order: its label (the most common among its clips)
    and the mean of its clips' probabilities. [shape=(N,), (N, C), (N,)] -> [(G,), (G, C)]."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    names, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    sums = np.zeros((len(names), proba.shape[1]))
    np.add.at(sums, index, proba)
    votes = np.zeros((len(names), max(int(y.max()) + 1, proba.shape[1]) if len(y) else proba.shape[1]))
    np.add.at(votes, (index, y), 1)
    return votes.argmax(axis=1), _normalise(sums)
