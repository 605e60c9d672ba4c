"""Ensemble maths: pure numpy functions on class-probability arrays.

Shapes: one member's probabilities are ``(N, C)`` (N clips, C classes, rows sum to 1);
M members stacked are ``(M, N, C)``. Every combiner returns ``(N, C)`` rows that sum to 1,
so the ensemble's class is ``argmax`` of its row, like a single model's.

* `soft_vote`: the (weighted) mean probability.
* `max_blend`: per class the largest probability any member gives ("maximum" blending),
  rows renormalised to sum to 1.
* `hard_vote`: the fraction of members whose arg-max is each class; ties between classes
  with as many votes are broken by the mean probability (see its docstring).
* `greedy_selection`: Caruana et al. (2004) ensemble selection with replacement on the
  members' out-of-fold probabilities (the whole library of finished trials); its weights
  go to `soft_vote`. `batch_scores` scores many candidate predictions at once for it.
* `fit_logloss_weights`: non-negative weights summing to 1 that minimise the out-of-fold
  log-loss of the weighted mean (softmax-parameterised, L-BFGS).
* `cross_fit`: an ensemble's honest out-of-fold probabilities: its choices (which of the
  sweep's trials are members, and the weighted methods' weights) made on k-1 parts of the
  rows and applied to the held-out part, for every part in turn.
* `top_k_weights`: the choice of members: equal weights on the k best candidates.
* `per_group`: rows -> one row per group (the mean probability of its clips), for the
  per-file figures of segmented feature sets.

The out-of-fold probabilities of a member scored with several CV seeds are its
probabilities averaged over those seeds (`average_seeds`): every train clip is validated
once per seed, so the mean is one out-of-fold estimate per clip, as a refit member's
seed-averaged test probabilities are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from search.spec import ENSEMBLE_METHODS
from seqsweep.errors import ConfigError, InputError
from trainables.metrics import METRICS

__all__ = [
    "METHODS",
    "TIE_EPSILON",
    "average_seeds",
    "batch_scores",
    "combine",
    "cross_fit",
    "per_group",
    "top_k_weights",
    "fit_logloss_weights",
    "greedy_selection",
    "hard_vote",
    "max_blend",
    "score",
    "soft_vote",
]

#: Every ensemble method; ``weighted_logloss`` is built only when the spec's
#: ``ensemble.fit_weights`` is true.
METHODS = (*ENSEMBLE_METHODS, "weighted_logloss")

#: `hard_vote` adds this times the mean probability to the vote fractions: less than the
#: smallest gap between two vote counts (1/M for M < 10**6 members), so it only orders ties.
TIE_EPSILON = 1e-6

def _stack(probas: np.ndarray | Sequence[np.ndarray], where: str = "probas") -> np.ndarray:
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
    arr = _stack(probas)
    w = _check_weights(weights, arr.shape[0])
    return _normalise(np.tensordot(w, arr, axes=1))


def max_blend(probas: np.ndarray) -> np.ndarray:
    """Per clip and class, the largest probability any member gives, each row renormalised
    to sum to 1 [shape=(M, N, C)] -> [shape=(N, C)]."""
    return _normalise(_stack(probas).max(axis=0))


def hard_vote(probas: np.ndarray) -> np.ndarray:
    """Majority vote of the members' arg-max classes [shape=(M, N, C)] -> [shape=(N, C)].

    Each row holds the fraction of members voting for each class, plus `TIE_EPSILON` times
    the members' mean probability, renormalised to sum to 1. The epsilon is smaller than
    one vote, so the arg-max is the class with the most votes and, among classes with as
    many votes, the one with the highest mean probability (then the lowest index).
    """
    arr = _stack(probas)
    m, _, c = arr.shape
    votes = np.zeros(arr.shape[1:], dtype=np.float64)
    labels = arr.argmax(axis=2)  # (M, N)
    for k in range(m):
        votes[np.arange(arr.shape[1]), labels[k]] += 1.0
    return _normalise(votes / m + TIE_EPSILON * arr.mean(axis=0))


def score(y: np.ndarray, proba: np.ndarray, metric: str) -> float:
    """``metric`` (one of `trainables.metrics.METRICS`) of the arg-max of ``proba``
    [shape=(N, C)] against ``y`` [shape=(N,)]: scikit-learn's value (`batch_scores`)."""
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        raise InputError("y", "a score needs at least one clip", 0)
    return float(batch_scores(y, np.asarray(proba).argmax(axis=1)[None], metric)[0])


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)).mean())


def batch_scores(y: np.ndarray, preds: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` of each row of predicted classes ``preds`` [shape=(B, N)] against ``y``
    [shape=(N,)] -> float64 [shape=(B,)], in numpy: the values of `score` (scikit-learn's
    rules: balanced accuracy over the classes in ``y``; F1 over the classes in ``y`` or
    predicted, 0 where undefined) at a fraction of its cost, for the greedy loop."""
    y = np.asarray(y, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    if metric == "accuracy":
        return (preds == y).mean(axis=1)
    c = int(max(y.max(initial=0), preds.max(initial=0))) + 1
    b = preds.shape[0]
    flat = (np.arange(b)[:, None] * c * c + y[None, :] * c + preds).ravel()
    cm = np.bincount(flat, minlength=b * c * c).reshape(b, c, c)  # (B, true, predicted)
    support = cm.sum(axis=2)  # (B, C) true counts, the same on every row
    hits = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
    present = support[0] > 0
    if metric == "balanced_accuracy":
        return (hits[:, present] / support[:, present]).mean(axis=1)
    if metric not in ("f1_macro", "f1_weighted"):
        raise ConfigError("metric", f"must be one of {list(METRICS)}", metric)
    predicted = cm.sum(axis=1)
    denominator = support + predicted
    f1 = np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
    if metric == "f1_weighted":
        return (f1 * support).sum(axis=1) / support[0].sum()
    counted = (support > 0) | (predicted > 0)
    return (f1 * counted).sum(axis=1) / counted.sum(axis=1)


def greedy_selection(
    oof_probas: np.ndarray,
    y: np.ndarray,
    metric: str = "balanced_accuracy",
    *,
    max_size: int = 25,
) -> np.ndarray:
    """Caruana et al. (2004) ensemble selection with replacement.

    Starting from an empty ensemble, each step adds the member (again, if it is already
    in) whose addition gives the best ``metric`` of the ensemble's mean out-of-fold
    probability; ties go to the lower log-loss, then to the lower member index. After
    ``max_size`` steps the ensemble is cut back to the size with the best score seen (the
    smallest such size). ``oof_probas`` may be the whole library of a sweep's trials
    (Caruana's setting), not only its best few.

    Parameters
    ----------
    oof_probas : float [shape=(M, N, C)] each member's out-of-fold probabilities.
    y : int [shape=(N,)] true classes.
    metric : see `score`.
    max_size : how many additions to try (members may repeat), >= 1.

    Returns
    -------
    float64 [shape=(M,)] weights: how many times each member was picked / the ensemble size.
    """
    arr = _stack(oof_probas, "oof_probas")
    y = np.asarray(y, dtype=np.int64)
    if y.shape != (arr.shape[1],):
        raise InputError("y", f"must hold one class per clip ({arr.shape[1]})", y.shape)
    if max_size < 1:
        raise ConfigError("max_size", "must be >= 1", max_size)
    m, n = arr.shape[:2]
    truth = arr[:, np.arange(n), y]  # (M, N): each member's probability of the true class
    counts = np.zeros(m, dtype=np.int64)
    total = np.zeros(arr.shape[1:], dtype=np.float64)
    total_truth = np.zeros(n, dtype=np.float64)
    best_score, best_counts = -np.inf, counts.copy()
    for size in range(1, max_size + 1):
        values = batch_scores(y, (total[None] + arr).argmax(axis=2), metric)  # (M,) with each member added
        losses = -np.log(np.clip((total_truth + truth) / size, 1e-15, 1.0)).mean(axis=1)
        pick = int(np.lexsort((np.arange(m), losses, -values))[0])
        counts[pick] += 1
        total += arr[pick]
        total_truth += truth[pick]
        if values[pick] > best_score:
            best_score, best_counts = values[pick], counts.copy()
    return best_counts / best_counts.sum()


def fit_logloss_weights(oof_probas: np.ndarray, y: np.ndarray, *, max_iter: int = 200) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise the out-of-fold log-loss of the
    weighted mean probability [shape=(M, N, C)] -> [shape=(M,)].

    The weights are ``softmax(z)``, ``z`` found by L-BFGS (scipy) from equal weights.
    """
    from scipy.optimize import minimize

    arr = _stack(oof_probas, "oof_probas")
    y = np.asarray(y, dtype=np.int64)
    picked = arr[:, np.arange(arr.shape[1]), y]  # (M, N): each member's probability of the truth

    def loss(z: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.exp(z - z.max())
        w /= w.sum()
        p = np.clip(w @ picked, 1e-15, None)
        value = -np.log(p).mean()
        grad_w = -(picked / p).mean(axis=1)  # d loss / d w
        return float(value), w * (grad_w - w @ grad_w)  # chain rule through the softmax

    result = minimize(loss, np.zeros(arr.shape[0]), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter})
    w = np.exp(result.x - result.x.max())
    return w / w.sum()


def combine(method: str, probas: np.ndarray, *, weights: np.ndarray | Sequence[float] | None = None
            ) -> np.ndarray:
    """Apply ensemble ``method`` to member probabilities [shape=(M, N, C)] -> [shape=(N, C)].

    ``soft``, ``max`` and ``vote`` use every member equally; ``weighted`` and
    ``weighted_logloss`` are a `soft_vote` with the given ``weights``.
    """
    if method == "soft":
        return soft_vote(probas)
    if method == "max":
        return max_blend(probas)
    if method == "vote":
        return hard_vote(probas)
    if method in ("weighted", "weighted_logloss"):
        if weights is None:
            raise ConfigError(f"method {method!r}", "needs the weights it was fitted with", None)
        return soft_vote(probas, weights=weights)
    raise ConfigError("method", f"must be one of {list(METHODS)}", method)


def top_k_weights(probas: np.ndarray, y: np.ndarray, *, k: int, metric: str) -> np.ndarray:
    """Equal weights on the ``k`` members whose probabilities score best on these rows (ties
    to the lower index), zero elsewhere [shape=(M, N, C)] -> [shape=(M,)]."""
    arr = _stack(probas)
    scores = batch_scores(y, arr.argmax(axis=2), metric)
    chosen = np.argsort(-scores, kind="stable")[: max(1, min(k, arr.shape[0]))]
    weights = np.zeros(arr.shape[0])
    weights[chosen] = 1.0 / len(chosen)
    return weights


def cross_fit(
    choose: Callable[[np.ndarray, np.ndarray], np.ndarray],
    method: str,
    oof_probas: np.ndarray,
    y: np.ndarray,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold probabilities of an ensemble whose choices never saw the rows they score
    [shape=(M, N, C)] -> [shape=(N, C)].

    For each ``(fit_rows, held_rows)`` in ``parts`` (a partition of the N rows),
    ``choose(oof_probas[:, fit_rows], y[fit_rows])`` returns weights over the M candidates
    (zero = not a member: the members' choice and, for the weighted methods, their
    weights), and ``method`` combines the chosen candidates on the ``held_rows``. The
    deployed ensemble makes the same choices on every row; this estimate is of that
    procedure, as a CV estimate is of a refit.
    """
    arr = _stack(oof_probas, "oof_probas")
    y = np.asarray(y, dtype=np.int64)
    out = np.full(arr.shape[1:], np.nan)
    for fit_rows, held_rows in parts:
        weights = np.asarray(choose(arr[:, fit_rows], y[fit_rows]), dtype=np.float64)
        keep = weights > 0
        out[held_rows] = combine(method, arr[keep][:, held_rows], weights=weights[keep])
    if np.isnan(out).any():
        raise InputError("parts", "must hold every row out exactly once", f"{int(np.isnan(out[:, 0]).sum())} rows never held out")
    return out


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
