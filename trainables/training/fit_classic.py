"""The classic baselines' fit: one scikit-learn fit on pooled features, as a `FitResult`."""

from __future__ import annotations

import time
from typing import Any

from features.sequences import SequenceSet
from trainables.config_base import ConfigBase
from trainables.configs import TrainConfig
from trainables.environment import seed_everything
from trainables.registry import ModelSpec, build_model
from trainables.training.metrics import classification_metrics
from trainables.training.result import EpochCallback, FitResult, metric_record

__all__ = ["fit_classic"]


def fit_classic(
    spec: ModelSpec,
    config: ConfigBase,
    tc: TrainConfig,
    train: SequenceSet,
    valid: SequenceSet | None,
    *,
    seed: int,
    on_epoch: EpochCallback | None,
    return_weights: bool,
    started: float,
) -> FitResult:
    """Fit a scikit-learn baseline once (one "epoch"); `trainables.training.loop.fit` checked the inputs."""
    seed_everything(seed)
    estimator = build_model(
        spec.name, config, input_dim=train.dim, n_classes=train.n_classes, vocab_size=train.vocab_size, seed=seed,
        n_jobs=tc.num_threads, class_weighted=tc.class_weighted, standardize=tc.standardize,
    )
    estimator.fit(train)
    proba, metrics, predict_seconds = None, {}, 0.0
    record: dict[str, Any] = {"epoch": 1, "train_loss": None}
    if valid is not None:
        predicting = time.perf_counter()
        proba = estimator.predict_proba(valid)
        predict_seconds = time.perf_counter() - predicting
        metrics = classification_metrics(valid.y, proba, n_classes=train.n_classes)
        record.update(metric_record(metrics, prefix="valid"))
    record["seconds"] = time.perf_counter() - started
    if on_epoch is not None:
        on_epoch(dict(record))
    return FitResult(
        model=spec.name, config=config, train_config=tc, seed=seed, proba=proba, metrics=metrics,
        history=[record], n_params=estimator.n_params, seconds=time.perf_counter() - started,
        best_epoch=1, epochs_run=1, device="cpu", input_dim=train.dim, n_classes=train.n_classes,
        weights=estimator if return_weights else None, predict_seconds=predict_seconds,
    )
