"""Models, one training loop, and the fit that a Ray Tune trial runs once per (seed, fold).

The public face::

    from trainables import split_flat_config, fit

    name, model_config, train_config = split_flat_config(tune_config, ignore=("seeds", "folds"))
    result = fit(name, model_config, train, valid, seed=seed, train_config=train_config,
                 on_epoch=lambda record: ...)          # FitResult; raises TrainingError on NaN/OOM
    result.metrics["balanced_accuracy"], result.proba  # validation metrics and probabilities

Configs and the registry import no torch; `fit`, `predict_proba` and the model modules load
torch / scikit-learn on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.lazy import lazy_exports
from trainables.configs import (
    CNN1DConfig,
    CNNConfig,
    ConfigBase,
    KNNConfig,
    LSTMConfig,
    RandomForestConfig,
    TrainConfig,
    WaveNetConfig,
)
from trainables.registry import (
    MODEL_CONFIGS,
    ModelSpec,
    build_model,
    get_model_spec,
    make_model_config,
    model_names,
    split_flat_config,
)

if TYPE_CHECKING:
    from trainables.batching import bucket_batches
    from trainables.classic import PooledClassifier, pooled_features
    from trainables.fused import fit_many, use_fused
    from trainables.loop import EpochCallback, FitResult, fit, predict_proba, seed_everything
    from trainables.metrics import SCALAR_METRICS, classification_metrics

__all__ = [
    # registry
    "ModelSpec",
    "MODEL_CONFIGS",
    "model_names",
    "get_model_spec",
    "make_model_config",
    "build_model",
    "split_flat_config",
    # configs
    "ConfigBase",
    "TrainConfig",
    "LSTMConfig",
    "CNNConfig",
    "CNN1DConfig",
    "WaveNetConfig",
    "KNNConfig",
    "RandomForestConfig",
    # training and prediction
    "fit",
    "fit_many",
    "use_fused",
    "predict_proba",
    "FitResult",
    "EpochCallback",
    "seed_everything",
    # helpers
    "classification_metrics",
    "SCALAR_METRICS",
    "bucket_batches",
    "pooled_features",
    "PooledClassifier",
]

_LAZY = {
    "fit": "trainables.loop",
    "fit_many": "trainables.fused",
    "use_fused": "trainables.fused",
    "predict_proba": "trainables.loop",
    "FitResult": "trainables.loop",
    "EpochCallback": "trainables.loop",
    "seed_everything": "trainables.loop",
    "classification_metrics": "trainables.metrics",
    "SCALAR_METRICS": "trainables.metrics",
    "bucket_batches": "trainables.batching",
    "pooled_features": "trainables.classic",
    "PooledClassifier": "trainables.classic",
}


__getattr__, __dir__ = lazy_exports("trainables", _LAZY, globals())
