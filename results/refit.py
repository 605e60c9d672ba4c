"""Refit the ensemble members on the whole train split, save and load them, and score on
the held-out test split.

A member is refit once per refit seed (``ensemble.refit_seeds``) with the exact model and
training config its trial ran (its torch thread count, the trial's CPU share, included:
more threads than cores oversubscribe a busy machine), without validation; its test
probabilities are the mean over those seeds. When its trial used early stopping, the refit runs for the median
``best_epoch`` of the trial's CV fits (there is no validation set left to stop on).

Every test metric is computed by `score_test`, and `score_on_test` is the one place where
the test split meets a model: each member and each ensemble is scored there exactly once.

Saved files (``<experiment>/ensemble/``), none of them a pickle, so a saved ensemble from
elsewhere runs no code when loaded: ``<trial_id>_seed<s>.pt`` (a torch ``state_dict``, read
back with ``torch.load(weights_only=True)``) or ``<trial_id>_seed<s>.npz`` for the
scikit-learn baselines (their pooled training features and labels, plain arrays read with
``allow_pickle=False``; the estimator is refit from them with the same seed on load, which
for kNN is storing them and for the random forest rebuilds the same trees).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from features.errors import StoreError
from features.sequences import SequenceSet
from features.store import FeatureStore
from results.ensemble import combine
from results.experiment import Member

__all__ = ["RefitMember", "TestScores", "refit_member", "save_refits", "load_refits", "load_split",
           "score_test", "score_on_test", "TEST_METRICS"]

#: The test-split columns of ``ensembles.csv``.
TEST_METRICS = ("accuracy", "balanced_accuracy", "f1_macro")


@dataclass
class RefitMember:
    """One member refit on the whole train split, once per seed.

    ``weights[i]`` is the torch ``state_dict`` or `PooledClassifier` of seed ``seeds[i]``.
    """

    trial_id: str
    model: str
    config: dict[str, Any]  # flat model + train config, without "model"
    seeds: list[int]
    weights: list[Any] = field(repr=False)
    epochs: int | None = None
    seconds: float = 0.0

    def predict_proba(self, data: SequenceSet) -> np.ndarray:
        """Mean probability over the refit seeds, float64 [shape=(N, C)]."""
        from trainables import predict_proba, split_flat_config

        name, model_config, _ = split_flat_config({"model": self.model, **self.config})
        probas = [predict_proba(name, model_config, w, data) for w in self.weights]
        return np.mean(probas, axis=0)


def _refit_config(member: Member) -> tuple[str, Any, Any, int | None]:
    from trainables import split_flat_config

    name, model_config, train_config = split_flat_config(member.flat_config)
    epochs = None
    if train_config.early_stopping_patience is not None and member.fits:
        best = [int(f["best_epoch"]) for f in member.fits if f.get("best_epoch")]
        if best:
            epochs = max(1, int(round(float(np.median(best)))))
            train_config = replace(train_config, epochs=epochs, early_stopping_patience=None)
    return name, model_config, train_config, epochs


def refit_member(member: Member, train: SequenceSet, *, seeds: Sequence[int]) -> RefitMember:
    """Fit ``member``'s config on all of ``train`` once per seed (no validation)."""
    from trainables import fit

    name, model_config, train_config, epochs = _refit_config(member)
    weights, seconds = [], 0.0
    for seed in seeds:
        result = fit(name, model_config, train, None, seed=int(seed), train_config=train_config,
                     return_weights=True)
        weights.append(result.weights)
        seconds += result.seconds
    return RefitMember(member.trial_id, name, dict(member.config), [int(s) for s in seeds], weights,
                       epochs=epochs, seconds=seconds)


def _is_torch(weights: Any) -> bool:
    return isinstance(weights, Mapping)


def save_refits(refits: Sequence[RefitMember], folder: str) -> list[dict[str, Any]]:
    """Write each refit's weights into ``folder`` (atomically, file by file); returns the
    entries `load_refits` needs (for ``ensemble.json``)."""
    import torch

    os.makedirs(folder, exist_ok=True)
    entries = []
    for r in refits:
        files = []
        for seed, w in zip(r.seeds, r.weights):
            name = f"{r.trial_id}_seed{seed}." + ("pt" if _is_torch(w) else "npz")
            path = os.path.join(folder, name)
            tmp = f"{path}.tmp"
            if _is_torch(w):
                torch.save(dict(w), tmp)
            else:
                buffer = io.BytesIO()
                np.savez(buffer, features=w.features_, targets=w.targets_, n_classes=w.n_classes)
                with open(tmp, "wb") as fh:
                    fh.write(buffer.getvalue())
            os.replace(tmp, path)
            files.append(name)
        entries.append({"trial_id": r.trial_id, "model": r.model, "config": r.config, "seeds": r.seeds,
                        "files": files, "epochs": r.epochs})
    return entries


def load_refits(folder: str, entries: Sequence[Mapping[str, Any]]) -> list[RefitMember]:
    """The refit members `save_refits` wrote into ``folder`` (see the module's note on
    trusting the folder)."""
    import torch

    out = []
    for e in entries:
        weights = []
        for name in e["files"]:
            path = os.path.join(folder, os.path.basename(name))  # never outside the folder
            if not os.path.exists(path):
                raise StoreError(path, "a saved ensemble member's weights must exist "
                                 "(re-run `seqsweep results ensemble DIR`)", "missing")
            if name.endswith(".pt"):
                weights.append(torch.load(path, map_location="cpu", weights_only=True))
            elif name.endswith(".npz"):
                weights.append(_refit_classic(e, path, seed=int(e["seeds"][len(weights)])))
            else:
                raise StoreError(path, "a saved member must be a .pt state_dict or a .npz of arrays",
                                 os.path.splitext(name)[1])
        out.append(RefitMember(str(e["trial_id"]), e["model"], dict(e["config"]), list(e["seeds"]), weights,
                               epochs=e.get("epochs")))
    return out


def _refit_classic(entry: Mapping[str, Any], path: str, *, seed: int) -> Any:
    """A scikit-learn member rebuilt from its saved pooled features (no pickle involved)."""
    from trainables import build_model, split_flat_config

    name, model_config, train_config = split_flat_config({"model": entry["model"], **entry["config"]})
    with np.load(path, allow_pickle=False) as saved:
        features, targets, n_classes = saved["features"], saved["targets"], int(saved["n_classes"])
    model = build_model(name, model_config, input_dim=features.shape[1] // 2, n_classes=n_classes, seed=seed,
                        n_jobs=train_config.num_threads, class_weighted=train_config.class_weighted,
                        standardize=train_config.standardize)
    return model.fit_features(features, targets)


def load_split(spec: Mapping[str, Any], split: str) -> SequenceSet:
    """The sweep's ``train`` or ``test`` split from its store (``sweep.json``), padded."""
    store = FeatureStore(spec["store"])
    return store.load(spec["dataset"], spec["feature_set"], split=split, padded=True)


def score_test(y: np.ndarray, proba: np.ndarray, *, n_classes: int) -> dict[str, float]:
    """``test_accuracy``, ``test_balanced_accuracy``, ``test_f1_macro`` of one set of test
    probabilities [shape=(N_test, C)]; NaN when the test split is empty."""
    from trainables import classification_metrics

    if len(y) == 0:
        return {f"test_{m}": float("nan") for m in TEST_METRICS}
    metrics = classification_metrics(y, proba, n_classes=n_classes)
    return {f"test_{m}": float(metrics[m]) for m in TEST_METRICS}


@dataclass
class TestScores:
    """What `score_on_test` gives back: probabilities [shape=(N_test, C)] and metrics per
    member (by trial id) and per ensemble (by method)."""

    __test__ = False  # not a pytest class

    y: np.ndarray
    clip_ids: np.ndarray
    member_proba: dict[str, np.ndarray]
    ensemble_proba: dict[str, np.ndarray]
    member_metrics: dict[str, dict[str, float]]
    ensemble_metrics: dict[str, dict[str, float]]


def score_on_test(
    refits: Sequence[RefitMember],
    ensembles: Mapping[str, tuple[Sequence[str], Sequence[float]]],
    test: SequenceSet,
) -> TestScores:
    """Score every refit member and every ensemble once on the held-out ``test`` split.

    ``ensembles`` maps a method to ``(member trial ids, weights)``; each member predicts the
    test split once and the ensembles combine those probabilities.
    """
    n = len(test)
    member_proba = {r.trial_id: (r.predict_proba(test) if n else np.zeros((0, test.n_classes)))
                    for r in refits}
    member_metrics = {tid: score_test(test.y, p, n_classes=test.n_classes) for tid, p in member_proba.items()}
    ensemble_proba, ensemble_metrics = {}, {}
    for method, (ids, weights) in ensembles.items():
        stack = np.stack([member_proba[t] for t in ids])
        proba = combine(method, stack, weights=weights)
        ensemble_proba[method] = proba
        ensemble_metrics[method] = score_test(test.y, proba, n_classes=test.n_classes)
    return TestScores(test.y, np.asarray(test.clip_ids, dtype=str), member_proba, ensemble_proba,
                      member_metrics, ensemble_metrics)
