"""`classification_metrics` reads its figures off one confusion matrix; they must be
scikit-learn's, on ordinary folds and on the degenerate ones small CV produces."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from seqsweep.errors import InputError
from trainables.training.metrics import classification_metrics


def _sklearn(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict:
    pred = proba.argmax(axis=1)
    labels = np.arange(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, _, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, average=None,
                                                                      zero_division=0)
        return {"accuracy": skm.accuracy_score(y, pred), "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
                "f1_macro": skm.f1_score(y, pred, average="macro", zero_division=0),
                "f1_weighted": skm.f1_score(y, pred, average="weighted", zero_division=0),
                "log_loss": skm.log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=labels),
                "precision_per_class": precision, "recall_per_class": recall,
                "confusion_matrix": skm.confusion_matrix(y, pred, labels=labels)}


CASES = {
    "balanced": (np.repeat(np.arange(4), 5), None),
    "a class absent from the fold": (np.array([0, 0, 1, 1, 3, 3, 3]), None),
    "one class only": (np.zeros(6, dtype=int), None),
    "a predicted class never true": (np.array([0, 1, 1, 2]), np.eye(4)[[3, 1, 1, 2]] * 0.7 + 0.075),
    "certain and wrong (log loss clipped)": (np.array([0, 1, 2]), np.eye(3)[[1, 2, 0]]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_figures_are_scikit_learns(case):
    y, proba = CASES[case]
    n_classes = max(4, int(y.max()) + 1) if proba is None else proba.shape[1]
    if proba is None:
        proba = np.random.default_rng(len(y)).dirichlet(np.ones(n_classes), size=len(y))
    ours = classification_metrics(y, proba, n_classes=n_classes)
    theirs = _sklearn(y, proba, n_classes)
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_many_random_folds_agree():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_classes, n = int(rng.integers(2, 7)), int(rng.integers(1, 30))
        y = rng.integers(0, n_classes, n)
        proba = rng.dirichlet(np.full(n_classes, 0.3), size=n)
        ours, theirs = classification_metrics(y, proba, n_classes=n_classes), _sklearn(y, proba, n_classes)
        for key, value in theirs.items():
            np.testing.assert_allclose(ours[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_a_class_index_out_of_range_is_named():
    with pytest.raises(InputError, match=r"y_true.*\[0, 3\).*5"):
        classification_metrics(np.array([0, 5]), np.full((2, 3), 1 / 3), n_classes=3)


def test_non_finite_probabilities_are_refused():
    proba = np.full((3, 2), 0.5)
    proba[1] = np.nan
    with pytest.raises(InputError, match=r"proba.*finite.*1 of 3 rows"):
        classification_metrics(np.array([0, 1, 0]), proba, n_classes=2)
