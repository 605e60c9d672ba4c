"""One training entry point for every model: `fit`.

`fit` trains one model on one (train, validation) split with one seed and returns a
`FitResult`. Torch models go through a single loop (`trainables.training.fit_torch`: class-weighted
cross-entropy, Adam or AdamW, length-bucketed batches sliced from an in-memory padded
array, optional early stopping on an inner slice of the training set, autocast on CUDA);
the scikit-learn baselines are fitted once on pooled features (`trainables.training.fit_classic`)
and return the same `FitResult`, so search and results treat every model alike.
Prediction with fitted weights is `trainables.training.predict`.

Failure policy: `fit` *raises*; it never returns a half result. A NaN or infinite training
loss raises `TrainingError` naming the epoch; a CUDA out-of-memory raises `TrainingError`
naming the device and the batch; bad data raises `InputError`, bad options `ConfigError`.
The caller (one trial's (seed, fold) in search) records the error as a failed row and goes
on; nothing here exits the process.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from features.sequences import SequenceSet
from seqsweep.errors import ConfigError, TrainingError
from trainables.config_base import ConfigBase
from trainables.configs import TrainConfig
from trainables.environment import fit_environment, resolve_amp, resolve_device
from trainables.registry import get_model_spec, make_model_config
from trainables.training.fit_classic import fit_classic
from trainables.training.fit_torch import fit_torch
from trainables.training.inputs import check_pair
from trainables.training.result import EpochCallback, FitResult

__all__ = ["fit"]


def fit(
    model_name: str,
    model_config: ConfigBase | Mapping[str, Any] | None,
    train: SequenceSet,
    valid: SequenceSet | None = None,
    *,
    seed: int,
    train_config: TrainConfig | Mapping[str, Any] | None = None,
    on_epoch: EpochCallback | None = None,
    return_weights: bool = False,
) -> FitResult:
    """Fit ``model_name`` on ``train`` with ``seed``; score it once on ``valid`` at the end.

    With ``train_config.early_stopping_patience`` set, a stratified, group-aware slice of
    ``train`` (``inner_fraction`` of its groups, `trainables.training.inner.inner_split`) is held
    out, the model trains on the rest, and the best epoch on that slice is kept. ``valid``
    chooses nothing: it is predicted once, with the weights the fit ends on.

    Parameters
    ----------
    model_name : a registry name (`trainables.model_names`).
    model_config : its typed config, a flat dict (``from_flat``), or ``None`` for defaults.
    train : the training sequences (ragged or padded) [x: shape=(N, T, D)].
    valid : the validation sequences (same D and classes), or ``None`` for a refit: then
        no metrics, and you will want ``return_weights=True``.
    seed : drives python, numpy and torch (CUDA included): the weight initialisation, the
        batch order and dropout. Model code never picks its own.
    train_config : a `TrainConfig`, a flat dict, or ``None`` for the defaults.
    on_epoch : called with each epoch's history record (e.g. to ``tune.report`` progress;
        this module never imports Ray).
    return_weights : put the fitted weights (or estimator) in ``FitResult.weights``.

    Raises
    ------
    TrainingError : a non-finite loss (naming the epoch) or CUDA out of memory.
    InputError : empty sets, zero-length sequences, non-finite values, mismatched sets.
    ConfigError : an unknown model, a bad config value, CUDA asked for without a GPU.
    """
    started = time.perf_counter()
    spec = get_model_spec(model_name)
    config = make_model_config(model_name, model_config)
    if train_config is None:
        tc = TrainConfig()
    elif isinstance(train_config, TrainConfig):
        tc = train_config
    else:
        tc = TrainConfig.from_flat(train_config)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed", "must be an integer >= 0", seed)
    seed = int(seed)
    check_pair(train, valid)
    if spec.kind == "sklearn":
        return fit_classic(spec, config, tc, train, valid, seed=seed, on_epoch=on_epoch,
                            return_weights=return_weights, started=started)
    device = resolve_device(tc.device)
    resolve_amp(tc.amp, device)  # a bad combination fails before any work
    with fit_environment(tc, device):
        oom = None
        try:
            return fit_torch(spec, config, tc, train, valid, seed=seed, device=device,
                              on_epoch=on_epoch, return_weights=return_weights, started=started)
        except torch.cuda.OutOfMemoryError as error:
            oom = str(error).splitlines()[0] if str(error) else "out of memory"
        # out of the except block: the failed fit's tensors are unreferenced now
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise TrainingError(
            f"device {device}",
            "the batch must fit in GPU memory (lower batch_size or the model's width)",
            f"batch_size={tc.batch_size}, longest sequence {int(train.lengths.max())}: {oom}",
        )
