"""The torch models' fit: one loop for every network (class-weighted cross-entropy, Adam or
AdamW, length-bucketed batches, optional early stopping on an inner slice of the training
set, autocast on CUDA)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from features.sequences import SequenceSet
from seqsweep.errors import TrainingError
from trainables.config_base import ConfigBase
from trainables.configs import TrainConfig
from trainables.environment import autocast, eval_batch, resolve_amp, seed_everything
from trainables.networks.fitted import Fitted, feature_stats
from trainables.registry import ModelSpec, build_model
from trainables.training.batching import bucket_batches
from trainables.training.inner import inner_split
from trainables.training.metrics import classification_metrics
from trainables.training.padded import Batches, padded_arrays
from trainables.training.predict import predict_arrays
from trainables.training.result import EpochCallback, FitResult, metric_record

__all__ = ["fit_torch", "balanced_class_weights"]


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" weights, ``N / (present classes * count)``; 0 for absent ones."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def fit_torch(
    spec: ModelSpec,
    config: ConfigBase,
    tc: TrainConfig,
    train: SequenceSet,
    valid: SequenceSet | None,
    *,
    seed: int,
    device: torch.device,
    on_epoch: EpochCallback | None,
    return_weights: bool,
    started: float,
) -> FitResult:
    n_classes = train.n_classes
    # early stopping watches an inner slice of the training fold, never the validation fold
    inner: SequenceSet | None = None
    if tc.early_stopping_patience is not None:
        fit_rows, stop_rows = inner_split(train.y, train.groups, fraction=tc.inner_fraction, seed=seed)
        train, inner = train.subset(fit_rows), train.subset(stop_rows)
    seed_everything(seed)  # before building: the initialisation comes from the seed
    net = Fitted(build_model(spec.name, config, input_dim=train.dim, n_classes=n_classes, vocab_size=train.vocab_size))
    amp = resolve_amp(tc.amp, device, net.net.auto_amp)
    x_train, len_train = padded_arrays(train)
    net.net.check_data(x_train, len_train, where="train")
    held_out = {}
    for where, part in (("inner", inner), ("valid", valid)):
        if part is not None:
            held_out[where] = padded_arrays(part)
            net.net.check_data(*held_out[where], where=where)
    if tc.standardize and not net.net.takes_tokens:
        mean, std = feature_stats(x_train, len_train)
        net.feature_mean.copy_(torch.from_numpy(mean))
        net.feature_std.copy_(torch.from_numpy(std))
    net.to(device)
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)

    optimizer_cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if amp is torch.float16 else None
    weight = None
    if tc.class_weighted:
        weight = torch.as_tensor(balanced_class_weights(train.y, n_classes), dtype=torch.float32, device=device)
    batches = Batches(x_train, len_train, train.y, device)
    rng = np.random.default_rng(seed)
    eval_size = eval_batch(device, tc.batch_size)

    history: list[dict[str, Any]] = []
    maximise = tc.monitor != "loss"
    best_value, best_epoch, best_state, stale = None, 0, None, 0
    epoch = 0
    for epoch in range(1, tc.epochs + 1):
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for idx in bucket_batches(len_train, tc.batch_size, rng=rng):
            xb, lb, yb = batches.get(idx)
            with autocast(device, amp):
                logits = net(xb, lb)
            loss = F.cross_entropy(logits.float(), yb, weight=weight)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if tc.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if tc.grad_clip is not None:
                    nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
                optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
        train_loss = float(loss_sum) / len(train)  # one device sync per epoch
        if not math.isfinite(train_loss):
            raise TrainingError(f"epoch {epoch}", "the training loss must stay finite (lower lr, or clip gradients)", train_loss)
        record: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
        stop = False
        if inner is not None:
            inner_proba = predict_arrays(net, *held_out["inner"], device=device, amp=amp, batch_size=eval_size)
            inner_metrics = classification_metrics(inner.y, inner_proba, n_classes=n_classes)
            record.update(metric_record(inner_metrics, prefix="inner"))
            value = inner_metrics["log_loss" if tc.monitor == "loss" else tc.monitor]
            if best_value is None or (value > best_value if maximise else value < best_value):
                best_value, best_epoch, stale = value, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                stop = stale >= tc.early_stopping_patience
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        if on_epoch is not None:
            on_epoch(dict(record))
        if stop:
            break

    epochs_run = epoch
    if best_state is not None:
        net.load_state_dict(best_state)
    else:
        best_epoch = epochs_run
    proba, metrics, predict_seconds = None, {}, 0.0
    if valid is not None:  # the validation fold, scored once, on the weights chosen above
        predicting = time.perf_counter()
        proba = predict_arrays(net, *held_out["valid"], device=device, amp=amp, batch_size=eval_size)
        predict_seconds = time.perf_counter() - predicting
        metrics = classification_metrics(valid.y, proba, n_classes=n_classes)
    weights = None
    if return_weights:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
    return FitResult(
        model=spec.name, config=config, train_config=tc, seed=seed, proba=proba, metrics=metrics,
        history=history, n_params=n_params, seconds=time.perf_counter() - started, best_epoch=best_epoch,
        epochs_run=epochs_run, device=str(device), input_dim=train.dim, n_classes=n_classes, weights=weights,
        inner_size=0 if inner is None else len(inner), predict_seconds=predict_seconds,
    )
