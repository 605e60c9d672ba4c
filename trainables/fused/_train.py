"""The training loop of a fused stack: R replicas of one model trained as one.

`trainables.fused.many.fit_many` is the public face and says what each replica gets; this
module holds the loop: `Run` (what every chunk of a call shares: the padded data on the
device, the model's settings), `Replica` (one replica's rows, seed and progress), `Stack`
(the fused model of the running replicas, `FusedFitted`), `fit_chunk` (epochs, early
stopping, dropping stopped replicas) and `_train_epoch` (one fused step per batch index).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from trainables.fused._layers import ReplicaRows, fuse_model
from trainables.fused._optim import FlatParameters, FusedAdam, ReplicaGradScaler
from trainables.networks.fitted import Fitted, feature_stats
from trainables.networks.layers import time_mask
from trainables.registry import build_model
from trainables.training.batching import bucket_batches
from trainables.training.fit_torch import balanced_class_weights
from trainables.training.inner import inner_split
from trainables.training.metrics import classification_metrics
from trainables.training.padded import Batches, padded_arrays
from trainables.training.result import FitResult, metric_record

__all__ = ["Run", "Replica", "new_replica", "FusedFitted", "Stack", "fit_chunk"]  # for trainables.fused.many and its tests


# ---------------------------------------------------------------------------------------
# one fused run: what every chunk shares
# ---------------------------------------------------------------------------------------
@dataclass
class Run:
    """The data and settings that every chunk of one `fit_many` call shares."""

    model_name: str
    config: ConfigBase
    tc: TrainConfig
    device: torch.device
    amp: torch.dtype | None
    x: np.ndarray  # float32 [shape=(N, T_max, D)]
    lengths: np.ndarray  # int64 [shape=(N,)]
    y: np.ndarray  # int64 [shape=(N,)]
    groups: np.ndarray
    n_classes: int
    vocab_size: int | None  # token data: the ids' vocabulary (`SequenceSet.vocab_size`)
    batches: Batches
    n_params: int
    return_weights: bool

    @classmethod
    def create(cls, model_name: str, config: ConfigBase, tc: TrainConfig, data: SequenceSet,
               device: torch.device, *, return_weights: bool) -> Run:
        x, lengths = padded_arrays(data)
        run = cls(
            model_name=model_name, config=config, tc=tc, device=device, amp=None, x=x, lengths=lengths, y=data.y,
            groups=data.groups, n_classes=data.n_classes, vocab_size=data.vocab_size,
            batches=Batches(x, lengths, data.y, device), n_params=0, return_weights=return_weights,
        )
        probe = run.new_model()
        probe.net.check_data(x, lengths, where="data")
        run.amp = resolve_amp(tc.amp, device, probe.net.auto_amp)
        run.n_params = sum(p.numel() for p in probe.parameters() if p.requires_grad)
        return run

    def new_model(self) -> Fitted:
        """An untrained `Fitted` model of this run (weights from torch's current RNG state)."""
        return Fitted(build_model(self.model_name, self.config, input_dim=self.x.shape[2],
                                   n_classes=self.n_classes, vocab_size=self.vocab_size))

    def build(self, seed: int, fit_rows: np.ndarray) -> tuple[Fitted, np.ndarray]:
        """The sequential fit's starting model for ``seed`` (standardised on ``fit_rows``),
        and its class weights float32 [shape=(C,)]."""
        seed_everything(seed)  # the initialisation comes from the seed, as in `fit`
        net = self.new_model()
        if self.tc.standardize and not net.net.takes_tokens:
            mean, std = feature_stats(self.x[fit_rows], self.lengths[fit_rows])
            net.feature_mean.copy_(torch.from_numpy(mean))
            net.feature_std.copy_(torch.from_numpy(std))
        weights = np.ones(self.n_classes)
        if self.tc.class_weighted:
            weights = balanced_class_weights(self.y[fit_rows], self.n_classes)
        return net, weights.astype(np.float32)


@dataclass
class Replica:
    """One replica: its fit, its rows, its starting state and its progress."""

    index: int  # position in `fits`
    seed: int
    fit_rows: np.ndarray
    inner_rows: np.ndarray | None
    valid_rows: np.ndarray
    class_weights: np.ndarray
    rng: np.random.Generator
    history: list[dict[str, Any]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = 0
    stale: int = 0
    epochs_run: int = 0
    final_state: dict[str, torch.Tensor] | None = None


def new_replica(run: Run, index: int, seed: int, train: np.ndarray, valid: np.ndarray) -> tuple[Replica, Fitted]:
    """Replica ``index``: with early stopping its inner split, carved from ``train`` with its
    own seed; its starting model and class weights, exactly as `fit` makes them."""
    fit_rows, inner_rows = train, None
    if run.tc.early_stopping_patience is not None:  # carved from this fit's own training fold
        keep, stop = inner_split(run.y[train], run.groups[train], fraction=run.tc.inner_fraction, seed=seed)
        fit_rows, inner_rows = train[keep], train[stop]
    net, weights = run.build(seed, fit_rows)
    replica = Replica(index, seed, fit_rows, inner_rows, valid, weights, np.random.default_rng(seed))
    return replica, net


# ---------------------------------------------------------------------------------------
# the stack: R replicas as one fused model
# ---------------------------------------------------------------------------------------
class FusedFitted(nn.Module):
    """`trainables.networks.fitted.Fitted` for R replicas: each replica's input standardisation, then
    the fused model. ``forward(x, lengths)``: ``x`` [shape=(R * B, T, D)], replica r's rows
    at ``[r*B, (r+1)*B)``; returns logits [shape=(R * B, C)]."""

    def __init__(self, template: Fitted, replicas: int, rows: ReplicaRows) -> None:
        super().__init__()
        self.net = fuse_model(template.net, replicas, rows)
        if hasattr(self.net, "pack"):
            self.net.pack = False  # the LSTM model: FusedLSTM runs padded batches (exact at valid steps)
        self.register_buffer("feature_mean", template.feature_mean.detach().repeat(replicas, 1))
        self.register_buffer("feature_std", template.feature_std.detach().repeat(replicas, 1))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.net.takes_tokens:
            r = self.feature_mean.shape[0]
            mask = time_mask(lengths.to(x.device), x.shape[1])[..., None]
            by_replica = x.reshape(r, -1, *x.shape[1:])
            z = (by_replica - self.feature_mean[:, None, None]) / self.feature_std[:, None, None]
            x = z.reshape(x.shape) * mask
        return self.net(x, lengths)


class Stack:
    """A fused model of the replicas whose ``states`` (`Fitted` state dicts) it starts from."""

    def __init__(self, run: Run, template: Fitted, states: list[dict[str, torch.Tensor]]) -> None:
        self.rows = ReplicaRows()
        self.model = FusedFitted(template, len(states), self.rows)
        with torch.no_grad():
            for key, tensor in self.model.state_dict().items():
                tensor.copy_(torch.stack([state[key] for state in states]))
        self.model.to(run.device)

    def state(self, position: int) -> dict[str, torch.Tensor]:
        """Replica ``position``'s own state dict (keys of `Fitted`), cloned."""
        return {k: v[position].detach().clone() for k, v in self.model.state_dict().items()}

    def keep(self, positions: list[int], flat: FlatParameters, extras: Sequence[Any]) -> None:
        """Keep replicas ``positions`` only: parameters, buffers and the optimiser state."""
        rows = torch.tensor(positions, device=flat.data.device)
        flat.keep(rows)
        for module in self.model.modules():
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[name] = buffer[rows].clone()
        for extra in extras:
            if extra is not None:
                extra.keep(rows)


def _step_rows(row_sets: list[np.ndarray], plans: list[list[np.ndarray]], step: int,
               width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions [shape=(R, width)] for one fused step, and which are real [same shape].

    Replica r's batch ``plans[r][step]`` (positions into ``row_sets[r]``) fills row r; a
    short batch is padded with its own rows again, a replica with no batch left this epoch
    borrows another's (neither counts: no loss weight, left out of batch norm).
    """
    idx = np.empty((len(row_sets), width), dtype=np.int64)
    real = np.zeros((len(row_sets), width), dtype=bool)
    filler = None
    for r, (rows, plan) in enumerate(zip(row_sets, plans, strict=True)):
        if step < len(plan):
            chosen = rows[plan[step]]
            idx[r] = np.resize(chosen, width)
            real[r, : len(chosen)] = True
            filler = idx[r] if filler is None else filler
    for r in np.flatnonzero(~real.any(axis=1)):
        idx[r] = filler
    return idx, real


@torch.no_grad()
def _predict(run: Run, stack: Stack, row_sets: list[np.ndarray]) -> list[np.ndarray]:
    """Softmax probabilities float64 [shape=(len(rows), C)] of each replica on its rows."""
    stack.model.eval()
    width = eval_batch(run.device, run.tc.batch_size)
    plans = [bucket_batches(run.lengths[rows], width) for rows in row_sets]
    out = [np.empty((len(rows), run.n_classes)) for rows in row_sets]
    for step in range(max(len(p) for p in plans)):
        idx, _ = _step_rows(row_sets, plans, step, width)
        xb, lb, _ = run.batches.get(idx.reshape(-1))
        with autocast(run.device, run.amp):
            logits = stack.model(xb, lb)
        proba = torch.softmax(logits.float(), dim=1).double().cpu().numpy().reshape(len(row_sets), width, -1)
        for r, plan in enumerate(plans):
            if step < len(plan):
                out[r][plan[step]] = proba[r, : len(plan[step])]
    return [p / p.sum(axis=1, keepdims=True) for p in out]


# ---------------------------------------------------------------------------------------
# training one chunk
# ---------------------------------------------------------------------------------------
def fit_chunk(run: Run, chunk: list[tuple[int, tuple[int, np.ndarray, np.ndarray]]]) -> list[FitResult]:
    """Train the fits of ``chunk`` ((index, (seed, train, valid)) pairs) as one stack."""
    started = time.perf_counter()
    tc, device = run.tc, run.device
    built = [new_replica(run, index, seed, tr, va) for index, (seed, tr, va) in chunk]
    replicas = [m for m, _ in built]
    stack = Stack(run, built[0][1], [net.state_dict() for _, net in built])
    del built
    # dropout masks: one stream for the stack, drawn from all the seeds (reproducible)
    seed_everything(int(np.random.SeedSequence([m.seed for m in replicas]).generate_state(1)[0]))
    flat = FlatParameters(stack.model)
    adam = FusedAdam(flat, lr=tc.lr, weight_decay=tc.weight_decay, decoupled=tc.optimizer == "adamw")
    scaler = ReplicaGradScaler(len(replicas), device) if run.amp is torch.float16 else None
    class_weights = torch.as_tensor(np.stack([m.class_weights for m in replicas]), device=device)
    share = len(replicas)
    running = list(replicas)
    maximise = tc.monitor != "loss"
    for epoch in range(1, tc.epochs + 1):
        losses = _train_epoch(run, stack, running, flat, adam, scaler, class_weights)
        bad = [m for m, loss in zip(running, losses, strict=True) if not np.isfinite(loss)]
        if bad:
            m = min(bad, key=lambda b: b.index)
            raise TrainingError(f"fit {m.index} (seed {m.seed}), epoch {epoch}",
                                "the training loss must stay finite (lower lr, or clip gradients)",
                                float(losses[running.index(m)]))
        records = [{"epoch": epoch, "train_loss": float(loss)} for loss in losses]
        improved = np.zeros(len(running), dtype=bool)
        if tc.early_stopping_patience is not None:
            probas = _predict(run, stack, [m.inner_rows for m in running])
            for k, (m, proba) in enumerate(zip(running, probas, strict=True)):
                metrics = classification_metrics(run.y[m.inner_rows], proba, n_classes=run.n_classes)
                records[k].update(metric_record(metrics, prefix="inner"))
                value = metrics["log_loss" if tc.monitor == "loss" else tc.monitor]
                if m.best_value is None or (value > m.best_value if maximise else value < m.best_value):
                    m.best_value, m.best_epoch, m.stale, improved[k] = value, epoch, 0, True
                else:
                    m.stale += 1
        seconds = (time.perf_counter() - started) / share
        finished = []
        for k, (m, record) in enumerate(zip(running, records, strict=True)):
            record["seconds"] = seconds
            m.history.append(record)
            m.epochs_run = epoch
            if improved[k]:
                m.final_state = stack.state(k)  # the best inner epoch's weights so far
            stopped = tc.early_stopping_patience is not None and m.stale >= tc.early_stopping_patience
            if stopped or epoch == tc.epochs:
                finished.append(k)
        for k in finished:
            m = running[k]
            if m.final_state is None:  # no early stopping: the last epoch's weights
                m.final_state = stack.state(k)
                m.best_epoch = m.epochs_run
        if len(finished) == len(running):
            break
        if finished:
            keep = [k for k in range(len(running)) if k not in finished]
            stack.keep(keep, flat, (adam, scaler))
            class_weights = class_weights[torch.tensor(keep, device=device)]
            running = [running[k] for k in keep]
    return _results(run, replicas, started, share)


def _train_epoch(run: Run, stack: Stack, running: list[Replica], flat: FlatParameters, adam: FusedAdam,
                 scaler: ReplicaGradScaler | None, class_weights: torch.Tensor) -> np.ndarray:
    """One epoch for every running replica; their mean training losses float64 [shape=(R,)]."""
    tc, device = run.tc, run.device
    stack.model.train()
    width, n = tc.batch_size, len(running)
    row_sets = [m.fit_rows for m in running]
    plans = [bucket_batches(run.lengths[m.fit_rows], width, rng=m.rng) for m in running]
    loss_sum = torch.zeros(n, dtype=torch.float64, device=device)
    for step in range(max(len(p) for p in plans)):
        idx, real = _step_rows(row_sets, plans, step, width)
        xb, lb, yb = run.batches.get(idx.reshape(-1))
        active_np = real.any(axis=1)
        real_t = torch.from_numpy(real).to(device)
        active = None if active_np.all() else torch.from_numpy(active_np).to(device)
        stack.rows.valid = None if real.all() else real_t.reshape(-1)
        stack.rows.active = active
        with autocast(device, run.amp):
            logits = stack.model(xb, lb)
        ce = F.cross_entropy(logits.float(), yb, reduction="none").view(n, width)
        weight = class_weights.gather(1, yb.view(n, width)) * real_t
        losses = (weight * ce).sum(dim=1) / weight.sum(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
        flat.zero_grad()
        (losses.sum() if scaler is None else scaler.scale_(losses).sum()).backward()
        finite = None if scaler is None else scaler.unscale_(flat)
        if tc.grad_clip is not None:
            flat.clip_(tc.grad_clip)
        stepping = active if finite is None else (finite if active is None else active & finite)
        adam.step(stepping)
        if scaler is not None:
            scaler.update(finite, active)
        loss_sum += losses.detach().double() * real_t.sum(dim=1)
    stack.rows.valid = stack.rows.active = None
    return loss_sum.cpu().numpy() / np.array([len(rows) for rows in row_sets])


def _results(run: Run, replicas: list[Replica], started: float, share: int) -> list[FitResult]:
    """Score every replica's validation fold once, with the weights it ended on."""
    final = Stack(run, run.new_model(), [m.final_state for m in replicas])
    predicting = time.perf_counter()
    probas = _predict(run, final, [m.valid_rows for m in replicas])
    predict_seconds = (time.perf_counter() - predicting) / share  # each replica's share of the stack's
    seconds = (time.perf_counter() - started) / share
    out = []
    for k, (m, proba) in enumerate(zip(replicas, probas, strict=True)):
        weights = None
        if run.return_weights:
            weights = {key: v.to("cpu", copy=True) for key, v in final.state(k).items()}
        out.append(FitResult(
            model=run.model_name, config=run.config, train_config=run.tc, seed=m.seed, proba=proba,
            metrics=classification_metrics(run.y[m.valid_rows], proba, n_classes=run.n_classes),
            history=m.history, n_params=run.n_params, seconds=seconds, best_epoch=m.best_epoch,
            epochs_run=m.epochs_run, device=str(run.device), input_dim=run.x.shape[2], n_classes=run.n_classes,
            weights=weights, inner_size=0 if m.inner_rows is None else len(m.inner_rows),
            predict_seconds=predict_seconds,
        ))
    return out
