"""Fitted weights as bytes, and back, with nothing unpickled.

A trial keeps every CV fit's weights (its bag of fold models) and an ensemble keeps its
members' weights; both go through these two functions, so a saved model from elsewhere
runs no code when it is loaded:

* a torch model is its ``state_dict`` (input standardisation included), written with
  `torch.save` and read back with ``torch.load(weights_only=True)``: suffix ``.pt``;
* a scikit-learn baseline (`trainables.classic.pooled.PooledClassifier`) is its pooled training
  features and labels as plain arrays (``np.savez``, read with ``allow_pickle=False``):
  suffix ``.npz``. Loading refits the estimator on them with the same seed, which for
  kNN is storing them and for the random forest grows the same trees;
* a ROCKET family (`trainables.classic.rocket.RocketClassifier`) is its fitted state as plain
  arrays (`RocketClassifier.to_arrays`, with ``input_dim`` and ``n_classes``): suffix
  ``.npz``, restored without refitting (`RocketClassifier.load_arrays`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from seqsweep.errors import StoreError
from trainables.registry import build_model, split_flat_config

__all__ = ["weights_to_bytes", "weights_from_bytes", "WEIGHT_SUFFIXES"]

#: The file suffixes `weights_to_bytes` gives: torch state_dict, scikit-learn arrays.
WEIGHT_SUFFIXES = (".pt", ".npz")


def weights_to_bytes(weights: Any) -> tuple[str, bytes]:
    """``FitResult.weights`` -> (suffix, bytes): ``.pt`` for a torch ``state_dict``, ``.npz``
    for a fitted `PooledClassifier` or `RocketClassifier`."""
    buffer = io.BytesIO()
    if isinstance(weights, Mapping):
        import torch

        torch.save({k: v.detach().cpu() for k, v in weights.items()}, buffer)
        return ".pt", buffer.getvalue()
    if hasattr(weights, "to_arrays"):  # a ROCKET family's fitted state
        np.savez(buffer, **weights.to_arrays())
        return ".npz", buffer.getvalue()
    if not hasattr(weights, "features_"):
        raise StoreError("weights", "must be a torch state_dict, a fitted PooledClassifier or RocketClassifier",
                         type(weights).__name__)
    np.savez(buffer, features=weights.features_, targets=weights.targets_, n_classes=weights.n_classes)
    return ".npz", buffer.getvalue()


def weights_from_bytes(
    suffix: str, data: bytes, *, model: str, flat_config: Mapping[str, Any], seed: int, where: str
) -> Any:
    """The inverse of `weights_to_bytes`: a ``state_dict`` for ``.pt``, a refit
    `PooledClassifier` or a restored `RocketClassifier` for ``.npz``. ``flat_config`` is the trial's flat model + training
    config (without ``model``); ``where`` names the file in errors."""
    if suffix == ".pt":
        import torch

        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated file or one that is not a plain state_dict
            raise StoreError(where, "must be a torch state_dict of plain tensors", str(exc).splitlines()[0]) from None
    if suffix != ".npz":
        raise StoreError(where, f"a saved model must end in one of {list(WEIGHT_SUFFIXES)}", suffix)
    name, model_config, train_config = split_flat_config({"model": model, **flat_config})
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
        n_classes = int(arrays["n_classes"])
        input_dim = int(arrays["input_dim"]) if "input_dim" in arrays else arrays["features"].shape[1] // 2
    except Exception as exc:
        raise StoreError(where, "must be an .npz of plain arrays (features, targets, n_classes, or a ROCKET "
                         "model's state)", str(exc)) from None
    estimator = build_model(name, model_config, input_dim=input_dim, n_classes=n_classes, seed=seed,
                            n_jobs=train_config.num_threads, class_weighted=train_config.class_weighted,
                            standardize=train_config.standardize)
    if hasattr(estimator, "load_arrays"):
        return estimator.load_arrays(arrays)
    return estimator.fit_features(arrays["features"], arrays["targets"])
