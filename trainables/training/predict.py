"""Prediction: a network's probabilities over padded arrays, and `predict_proba` with the
weights of a fit (refit members scored on the test split)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from features.sequences import SequenceSet
from seqsweep.errors import InputError
from trainables.config_base import ConfigBase
from trainables.environment import autocast, eval_batch, resolve_amp, resolve_device
from trainables.networks.fitted import Fitted
from trainables.registry import build_model, get_model_spec, make_model_config
from trainables.training.batching import bucket_batches
from trainables.training.inputs import check_set
from trainables.training.padded import Batches, padded_arrays

__all__ = ["predict_proba", "predict_arrays"]


@torch.no_grad()
def predict_arrays(
    net: nn.Module, x: np.ndarray, lengths: np.ndarray, *, device: torch.device, amp: torch.dtype | None, batch_size: int
) -> np.ndarray:
    """Softmax probabilities float64 [shape=(N, C)] in the rows' order, length-sorted batches."""
    net.eval()
    batches = Batches(x, lengths, None, device)
    out: np.ndarray | None = None
    for idx in bucket_batches(lengths, batch_size):
        xb, lb, _ = batches.get(idx)
        with autocast(device, amp):
            logits = net(xb, lb)
        proba = torch.softmax(logits.float(), dim=1).double().cpu().numpy()
        if out is None:
            out = np.empty((len(lengths), proba.shape[1]))
        out[idx] = proba
    assert out is not None
    return out / out.sum(axis=1, keepdims=True)


def predict_proba(
    model_name: str,
    model_config: ConfigBase | Mapping[str, Any] | None,
    weights: Any,
    data: SequenceSet,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    amp: str = "off",
) -> np.ndarray:
    """Class probabilities float64 [shape=(N, n_classes)] of ``data`` under fitted ``weights``.

    ``weights`` is ``FitResult.weights`` of a fit with ``return_weights=True``: a torch
    ``state_dict`` or a fitted `trainables.classic.pooled.PooledClassifier`. ``data`` must have the
    training set's D and classes. ``batch_size`` ``None``: 32 on CPU, 256 on CUDA.
    """
    spec = get_model_spec(model_name)
    config = make_model_config(model_name, model_config)
    check_set(data, "data")
    if spec.kind == "sklearn":
        if not hasattr(weights, "predict_proba"):
            raise InputError("weights", f"must be the fitted {model_name} estimator from FitResult.weights", type(weights).__name__)
        if weights.n_classes != data.n_classes:
            raise InputError("data.classes", f"must hold the {weights.n_classes} training classes", data.n_classes)
        return weights.predict_proba(data)
    if not isinstance(weights, Mapping):
        raise InputError("weights", "must be the state_dict from FitResult.weights", type(weights).__name__)
    dev = resolve_device(device)
    net = Fitted(build_model(model_name, config, input_dim=data.dim, n_classes=data.n_classes,
                              vocab_size=data.vocab_size))
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise InputError(
            "weights", f"must fit a {model_name} for D={data.dim} and {data.n_classes} classes with this config",
            str(error).splitlines()[0],
        ) from None
    net.to(dev)
    x, lengths = padded_arrays(data)
    net.net.check_data(x, lengths, where="data")
    return predict_arrays(net, x, lengths, device=dev, amp=resolve_amp(amp, dev, net.net.auto_amp), batch_size=batch_size or eval_batch(dev))
