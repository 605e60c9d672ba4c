"""What one fit gives back: `FitResult`, and the per-epoch callback's type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.sequences import SequenceSet
from seqsweep.errors import ConfigError
from trainables.config_base import ConfigBase
from trainables.configs import TrainConfig
from trainables.training.metrics import SCALAR_METRICS
from trainables.training.predict import predict_proba

__all__ = ["FitResult", "EpochCallback", "metric_record"]

EpochCallback = Callable[[dict[str, Any]], None]
"""``on_epoch(record)``: called after every epoch with that epoch's history record."""


@dataclass
class FitResult:
    """What one fit gives back.

    Attributes
    ----------
    model : the registry name.
    config : the typed model config that was trained.
    train_config : the typed `TrainConfig`.
    seed : the seed everything was drawn from.
    proba : float64 [shape=(N_valid, n_classes)] validation probabilities of the returned
        epoch, rows in the validation set's order; ``None`` when fitted without validation.
    metrics : `trainables.training.metrics.classification_metrics` of ``proba`` (empty without
        validation).
    history : one dict per epoch: ``epoch`` (1-based), ``train_loss`` (``None`` for the
        classic models), ``seconds`` (since the fit began), and with early stopping the
        inner split's ``inner_loss``, ``inner_accuracy``, ``inner_balanced_accuracy``,
        ``inner_f1_macro``, ``inner_f1_weighted``. The validation set is scored once, after
        the last epoch, so it never appears per epoch (the classic models, fitted in one
        step, record ``valid_*`` in their single record).
    n_params : trainable parameters (torch); for knn the stored training values (clips x 2D),
        for random_forest the total tree nodes.
    seconds : wall-clock seconds of the whole fit.
    best_epoch : the epoch whose weights and probabilities this result holds: the best
        ``monitor`` epoch on the inner split with early stopping, else the last one run.
    epochs_run : epochs actually run (fewer than ``epochs`` after an early stop).
    device : ``"cpu"`` or ``"cuda:N"``.
    input_dim, n_classes : the shapes the model was built for.
    weights : with ``return_weights=True``: the torch ``state_dict`` (CPU tensors, input
        standardisation included) or the fitted `trainables.classic.pooled.PooledClassifier`;
        pass it to `predict_proba`.
    inner_size : rows of the training set held out for early stopping (0 without it; the
        model was trained on the other rows).
    predict_seconds : wall-clock seconds of the prediction that gave ``proba`` (the
        validation rows; a fused fit's share of its stack's prediction); 0 without validation.
    """

    model: str
    config: ConfigBase
    train_config: TrainConfig
    seed: int
    proba: np.ndarray | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    n_params: int
    seconds: float
    best_epoch: int
    epochs_run: int
    device: str
    input_dim: int
    n_classes: int
    weights: Any = field(default=None, repr=False)
    inner_size: int = 0
    predict_seconds: float = 0.0

    def scalars(self) -> dict[str, float | int]:
        """Flat numbers for a report or a leaderboard row: the scalar metrics, ``n_params``,
        ``seconds``, ``predict_seconds``, ``best_epoch``, ``epochs_run``."""
        out: dict[str, float | int] = {k: self.metrics[k] for k in SCALAR_METRICS if k in self.metrics}
        out.update(n_params=self.n_params, seconds=self.seconds, predict_seconds=self.predict_seconds,
                   best_epoch=self.best_epoch, epochs_run=self.epochs_run)
        return out

    def predict_proba(self, data: SequenceSet, *, device: str = "auto", batch_size: int | None = None) -> np.ndarray:
        """`predict_proba` with this result's model and weights (needs ``return_weights=True``)."""
        if self.weights is None:
            raise ConfigError("return_weights", "must be true in fit() to predict with its result", False)
        return predict_proba(self.model, self.config, self.weights, data, device=device, batch_size=batch_size)


def metric_record(metrics: dict[str, Any], *, prefix: str) -> dict[str, float]:
    out = {f"{prefix}_loss": metrics["log_loss"]}
    out.update({f"{prefix}_{k}": metrics[k] for k in ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted")})
    return out
