"""Selectors: which of the sweep's trials join an ensemble, with what weights (deephyper's
``ensemble/selector/``).

A selector is handed the pool (every finished trial, best CV rank first) as out-of-fold
probabilities [shape=(M, N, C)] and the true classes [shape=(N,)] of those rows, and
returns weights over the M trials [shape=(M,)] (zero = not a member). It does so twice:

* ``choose``: on some rows only (a part of a cross-fit), from what those rows show;
* ``deploy``: on every train row, for the ensemble that is deployed; where the choice is a
  ranking, the ranking by the CV objective (the pool's order).

The selectors: `TopK` (the k best, weighed equally; with k = 1 the rank-1 member),
`Greedy` (Caruana et al. 2004 ensemble selection with replacement over the whole library,
`greedy_selection`) and `LoglossTopK` (the k best, weights fitted to their out-of-fold
log-loss, `fit_logloss_weights`); `SELECTORS` names them. `score` and `batch_scores` are
the figures they choose by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from results.ensemble.aggregator import stack
from seqsweep.errors import ConfigError, InputError
from trainables.training.metrics import METRICS

__all__ = ["SELECTORS", "Greedy", "LoglossTopK", "Selector", "TopK", "batch_scores", "fit_logloss_weights",
           "greedy_selection", "score", "top_k_weights"]


def score(y: np.ndarray, proba: np.ndarray, metric: str) -> float:
    """``metric`` (one of `trainables.training.metrics.METRICS`) of the arg-max of ``proba``
    [shape=(N, C)] against ``y`` [shape=(N,)]: scikit-learn's value (`batch_scores`)."""
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        raise InputError("y", "a score needs at least one clip", 0)
    return float(batch_scores(y, np.asarray(proba).argmax(axis=1)[None], metric)[0])


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
    arr = stack(oof_probas, "oof_probas")
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

    arr = stack(oof_probas, "oof_probas")
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


def top_k_weights(probas: np.ndarray, y: np.ndarray, *, k: int, metric: str) -> np.ndarray:
    """Equal weights on the ``k`` members whose probabilities score best on these rows (ties
    to the lower index), zero elsewhere [shape=(M, N, C)] -> [shape=(M,)]."""
    arr = stack(probas)
    scores = batch_scores(y, arr.argmax(axis=2), metric)
    chosen = np.argsort(-scores, kind="stable")[: max(1, min(k, arr.shape[0]))]
    weights = np.zeros(arr.shape[0])
    weights[chosen] = 1.0 / len(chosen)
    return weights


class Selector(Protocol):
    """Weights over the pool's M trials [shape=(M,)] from their probabilities [shape=(M, n, C)]
    on some rows and those rows' classes [shape=(n,)] (see the module)."""

    def choose(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray: ...

    def deploy(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray: ...


def _first(k: int, m: int) -> np.ndarray:
    """Equal weights on the first ``k`` of ``m`` trials (the top k by CV rank) [shape=(m,)]."""
    weights = np.zeros(m)
    weights[:k] = 1.0 / k
    return weights


@dataclass(frozen=True)
class TopK:
    """The ``k`` best, weighed equally: on some rows the k that score best there on ``metric``
    (`top_k_weights`); deployed, the top k by CV rank."""

    k: int
    metric: str

    def choose(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray:
        return top_k_weights(probas, y, k=self.k, metric=self.metric)

    def deploy(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _first(self.k, len(probas))


@dataclass(frozen=True)
class Greedy:
    """`greedy_selection` on ``metric``, at most ``max_size`` picks, on whatever rows it is given."""

    metric: str
    max_size: int

    def choose(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray:
        return greedy_selection(probas, y, self.metric, max_size=self.max_size)

    def deploy(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.choose(probas, y)


@dataclass(frozen=True)
class LoglossTopK:
    """The ``k`` best as `TopK` chooses them, weighed by `fit_logloss_weights` on the same rows."""

    k: int
    metric: str

    def choose(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray:
        chosen = top_k_weights(probas, y, k=self.k, metric=self.metric)
        inside = chosen > 0
        chosen[inside] = fit_logloss_weights(probas[inside], y)
        return chosen

    def deploy(self, probas: np.ndarray, y: np.ndarray) -> np.ndarray:
        weights = _first(self.k, len(probas))
        weights[: self.k] = fit_logloss_weights(probas[: self.k], y)
        return weights


def _rank_one(*, k: int, metric: str, max_size: int) -> Selector:
    return TopK(1, metric)


def _top_k(*, k: int, metric: str, max_size: int) -> Selector:
    return TopK(k, metric)


def _greedy(*, k: int, metric: str, max_size: int) -> Selector:
    return Greedy(metric, max_size)


def _logloss_top_k(*, k: int, metric: str, max_size: int) -> Selector:
    return LoglossTopK(k, metric)


#: selector name -> its maker from the ensemble's settings: ``k`` (``top_k``, at most the
#: pool's size), the sweep's ``metric`` and greedy's ``max_size``
SELECTORS = {"rank_one": _rank_one, "top_k": _top_k, "greedy": _greedy, "logloss_top_k": _logloss_top_k}
