"""The pieces of `trainables.classic.rocket` that are plain numpy and scikit-learn: lengths, Hydra's
sparse scaling, the linear head and its temperature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["to_length", "sparse_scale_stats", "sparse_scale", "Head", "fit_head", "fit_temperature", "RIDGE_ALPHAS"]

#: The ridge penalties tried by leave-one-out when ``alpha`` is None (aeon's choice).
RIDGE_ALPHAS = np.logspace(-3, 3, 10)


def to_length(seq: np.ndarray, length: int, *, mode: str) -> np.ndarray:
    """One sequence [shape=(T, D)] at ``length`` steps [shape=(length, D)].

    ``mode`` ``"pad"``: a shorter sequence repeats its last frame, a longer one is resampled;
    ``"stretch"``: linear resampling over the whole sequence (a length-1 one is repeated).
    """
    t = len(seq)
    if t == length:
        return seq
    if mode == "pad" and t < length:
        return np.concatenate([seq, np.repeat(seq[-1:], length - t, axis=0)])
    where = np.linspace(0.0, t - 1.0, length)
    left = np.minimum(np.floor(where).astype(np.int64), t - 1)
    right = np.minimum(left + 1, t - 1)
    frac = (where - left)[:, None].astype(np.float32)
    return seq[left] * (1 - frac) + seq[right] * frac


def sparse_scale_stats(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hydra's sparse scaling, fitted on counts [shape=(N, F)]: the mean and the scale of
    their square roots, the scale widened where most are zero (as Dempster et al.'s code and
    aeon's ``_SparseScaler``; std with N - 1, as torch)."""
    root = np.sqrt(np.clip(counts, 0, None))
    epsilon = (root == 0).mean(axis=0) ** 4 + 1e-8
    return root.mean(axis=0), root.std(axis=0, ddof=1 if len(root) > 1 else 0) + epsilon


def sparse_scale(counts: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Counts [shape=(N, F)] scaled by `sparse_scale_stats`; a zero count stays zero."""
    root = np.sqrt(np.clip(counts, 0, None))
    return (root - mu) * (root != 0) / sigma


@dataclass(frozen=True)
class Head:
    """A fitted linear head as arrays: ``coef`` [shape=(K, F)], ``intercept`` [shape=(K,)]
    over the ``classes`` [shape=(K,)] the fold held (K = 1 only for a fold of one class),
    and, for ridge, the leave-one-out decision values of the training rows ``loo``
    [shape=(N, K)]."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    loo: np.ndarray | None


def fit_head(features: np.ndarray, y: np.ndarray, *, head: str, alpha: float | None, class_weighted: bool,
             n_jobs: int) -> Head:
    """Fit a ridge or logistic head on features [shape=(N, F)] and labels [shape=(N,)].

    A binary ridge's one decision column ``d`` becomes ``(-d, d)`` and a binary logistic's
    ``z`` becomes ``(0, z)``, so that a softmax over the columns is the class probability.
    """
    from sklearn.linear_model import LogisticRegression, RidgeClassifierCV

    classes = np.unique(y).astype(np.int64)
    if len(classes) == 1:  # a fold of one class: that class, certainly
        return Head(np.zeros((1, features.shape[1])), np.zeros(1), classes, None)
    weight = "balanced" if class_weighted else None
    if head == "ridge":
        model = RidgeClassifierCV(alphas=RIDGE_ALPHAS if alpha is None else [alpha], class_weight=weight,
                                  store_cv_results=True)
        model.fit(features, y)
        results = model.cv_results_.reshape(len(y), -1, len(model.alphas))
        loo = results[:, :, list(np.atleast_1d(model.alphas)).index(model.alpha_)]
        coef, intercept = model.coef_, np.atleast_1d(model.intercept_)
        if coef.shape[0] == 1:
            coef, intercept, loo = np.vstack([-coef, coef]), np.hstack([-intercept, intercept]), np.hstack([-loo, loo])
        return Head(coef, intercept, model.classes_.astype(np.int64), loo)
    model = LogisticRegression(C=1.0 / (alpha or 1.0), class_weight=weight, max_iter=1000)
    model.fit(features, y)
    coef, intercept = model.coef_, np.atleast_1d(model.intercept_)
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.hstack([[0.0], intercept])
    return Head(coef, intercept, model.classes_.astype(np.int64), None)


def fit_temperature(scores: np.ndarray, y: np.ndarray, classes: np.ndarray) -> float:
    """The temperature ``T`` whose softmax(``scores`` / T) has the least log loss on ``y``.

    ``scores`` [shape=(N, K)] are decision values the rows' own fit did not see (ridge's
    leave-one-out values); ``classes`` [shape=(K,)] are the labels of their columns.
    Searched on a log scale between 1e-3 and 1e2.
    """
    from scipy.optimize import minimize_scalar

    column = np.searchsorted(classes, y)

    def loss(log_t: float) -> float:
        z = scores / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), column]))

    return float(np.exp(minimize_scalar(loss, bounds=(np.log(1e-3), np.log(1e2)), method="bounded").x))
