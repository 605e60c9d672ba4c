"""Classification metrics from class probabilities, computed with scikit-learn.

`METRICS` names the scores once for every room; importing this module does not import
scikit-learn (the sweep spec reads `METRICS` and should load fast)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from seqsweep.errors import ConfigError, InputError

__all__ = ["classification_metrics", "metric_score", "METRICS", "SCALAR_METRICS"]

#: The scores of a prediction that every room reports: a fit, a trial's mean / std / min,
#: the sweep's objective, an ensemble's out-of-fold and test figures.
METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted")

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
    from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(y_true), n_classes):
        raise InputError("proba", f"must have shape ({len(y_true)}, {n_classes})", proba.shape)
    if len(y_true) == 0:
        raise InputError("y_true", "metrics need at least one sequence", 0)
    labels = np.arange(n_classes)
    y_pred = proba.argmax(axis=1)
    rows = proba.sum(axis=1, keepdims=True)
    normalised = proba / np.where(rows > 0, rows, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true" on small folds
        precision, recall, _, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=0
        )
        return {
            **{name: metric_score(name, y_true, y_pred) for name in METRICS},
            "log_loss": float(log_loss(y_true, normalised, labels=labels)),
            "precision_per_class": [float(v) for v in precision],
            "recall_per_class": [float(v) for v in recall],
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        }
