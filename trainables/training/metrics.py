"""Classification metrics from class probabilities, computed with scikit-learn.

`METRICS` (named in `seqsweep.layout` with the other keys a trial reports) are the scores
of a prediction that every room reports: a fit, a trial's mean / std / min, the sweep's
objective, an ensemble's out-of-fold and test figures. Importing this module does not
import scikit-learn (the sweep spec reads `METRICS` and should load fast)."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqsweep.errors import ConfigError, InputError
from seqsweep.layout import METRICS

__all__ = ["classification_metrics", "metric_score", "METRICS", "SCALAR_METRICS"]

SCALAR_METRICS = (*METRICS, "log_loss")
"""The keys of `classification_metrics` whose values are single floats."""


def metric_score(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """One of `METRICS` of predicted class indices against true ones, with scikit-learn (in
    the F1 scores a class absent from ``y_true`` and never predicted does not count as 0)."""
    from sklearn import metrics as skm

    if name == "accuracy":
        return float(skm.accuracy_score(y_true, y_pred))
    if name == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y_true, y_pred))
    if name in ("f1_macro", "f1_weighted"):
        return float(skm.f1_score(y_true, y_pred, average=name[3:], zero_division=0))
    raise ConfigError("metric", f"must be one of {list(METRICS)}", name)


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, *, n_classes: int) -> dict[str, Any]:
    """Metrics of the arg-max predictions of ``proba`` against ``y_true``.

    Parameters
    ----------
    y_true : int [shape=(N,)] class indices in ``[0, n_classes)``.
    proba : float [shape=(N, n_classes)] class probabilities (rows sum to 1).
    n_classes : C; per-class lists and the confusion matrix have one entry per class
        index ``0..C-1`` (``labels=range(C)``), so a class absent from a fold shifts nothing.

    Returns
    -------
    dict with ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present in
    ``y_true``), ``f1_macro`` and ``f1_weighted`` (over the classes present in ``y_true`` or
    predicted: a class absent from a fold and never predicted does not count as 0),
    ``log_loss`` (mean cross-entropy, probabilities clipped), plain floats; and
    ``precision_per_class``, ``recall_per_class`` (lists of C floats, 0 where undefined) and
    ``confusion_matrix`` (C lists of C ints, rows = true class).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(y_true), n_classes):
        raise InputError("proba", f"must have shape ({len(y_true)}, {n_classes})", proba.shape)
    if len(y_true) == 0:
        raise InputError("y_true", "metrics need at least one sequence", 0)
    if not np.isfinite(proba).all():  # a diverged model (NaN weights): scikit-learn refused these too
        raise InputError("proba", "class probabilities must be finite (the model diverged: lower lr, or clip "
                         "gradients)", f"{int((~np.isfinite(proba)).any(axis=1).sum())} of {len(proba)} rows non-finite")
    if y_true.min() < 0 or y_true.max() >= n_classes:
        raise InputError("y_true", f"class indices must be in [0, {n_classes})",
                         int(y_true.min() if y_true.min() < 0 else y_true.max()))
    y_pred = proba.argmax(axis=1)
    rows = proba.sum(axis=1, keepdims=True)
    normalised = proba / np.where(rows > 0, rows, 1.0)
    # The figures below are scikit-learn's (tests/trainables/test_metrics.py compares them
    # on random and degenerate folds), read off one confusion matrix: its seven metric calls
    # re-validate the same labels at ~6.7 ms per call here, and a fit calls this once per
    # epoch on its inner split (about half of a small LSTM fit's time).
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    support, predicted, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm).astype(np.float64)
    recall = np.divide(hits, support, out=np.zeros(n_classes), where=support > 0)
    precision = np.divide(hits, predicted, out=np.zeros(n_classes), where=predicted > 0)
    f1 = np.divide(2 * hits, support + predicted, out=np.zeros(n_classes), where=(support + predicted) > 0)
    seen = (support > 0) | (predicted > 0)  # scikit-learn's labels: present in y_true or predicted
    eps = np.finfo(np.float64).eps  # scikit-learn's clipping of probabilities for log_loss
    return {
        "accuracy": float(hits.sum() / len(y_true)),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "f1_macro": float(f1[seen].mean()),
        "f1_weighted": float((f1 * support).sum() / support.sum()),
        "log_loss": float(-np.log(np.clip(normalised[np.arange(len(y_true)), y_true], eps, 1 - eps)).mean()),
        "precision_per_class": [float(v) for v in precision],
        "recall_per_class": [float(v) for v in recall],
        "confusion_matrix": cm.tolist(),
    }
