"""One training loop for every model, and prediction with fitted weights.

`fit` trains one model on one (train, validation) split with one seed and returns a
`FitResult`. Torch models go through a single loop (class-weighted cross-entropy, Adam or
AdamW, length-bucketed batches sliced from an in-memory padded array, optional early
stopping on an inner slice of the training set, autocast on CUDA); the scikit-learn baselines are fitted once on pooled features
and return the same `FitResult`, so search and results treat every model alike.

Failure policy: `fit` *raises*; it never returns a half result. A NaN or infinite training
loss raises `TrainingError` naming the epoch; a CUDA out-of-memory raises `TrainingError`
naming the device and the batch; bad data raises `InputError`, bad options `ConfigError`.
The caller (one trial's (seed, fold) in search) records the error as a failed row and goes
on; nothing here exits the process.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from features.sequences import SequenceSet
from seqsweep.errors import ConfigError, InputError, TrainingError
from trainables.batching import bucket_batches
from trainables.configs import ConfigBase, TrainConfig
from trainables.inner import inner_split
from trainables.layers import SequenceClassifier, time_mask
from trainables.metrics import SCALAR_METRICS, classification_metrics
from trainables.registry import ModelSpec, build_model, get_model_spec, make_model_config

__all__ = ["FitResult", "fit", "predict_proba", "seed_everything", "EpochCallback"]

EpochCallback = Callable[[dict[str, Any]], None]
"""``on_epoch(record)``: called after every epoch with that epoch's history record."""

def _eval_batch(device: torch.device, train_batch: int = 32) -> int:
    """Prediction batch size: the training one on CPU (larger batches fall out of cache and
    run slower per sequence there), at least 256 on CUDA."""
    return max(train_batch, 256) if device.type == "cuda" else train_batch


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
    metrics : `trainables.metrics.classification_metrics` of ``proba`` (empty without
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
        standardisation included) or the fitted `trainables.classic.PooledClassifier`;
        pass it to `predict_proba`.
    inner_size : rows of the training set held out for early stopping (0 without it; the
        model was trained on the other rows).
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

    def scalars(self) -> dict[str, float | int]:
        """Flat numbers for a report or a leaderboard row: the scalar metrics, ``n_params``,
        ``seconds``, ``best_epoch``, ``epochs_run``."""
        out: dict[str, float | int] = {k: self.metrics[k] for k in SCALAR_METRICS if k in self.metrics}
        out.update(n_params=self.n_params, seconds=self.seconds, best_epoch=self.best_epoch, epochs_run=self.epochs_run)
        return out

    def predict_proba(self, data: SequenceSet, *, device: str = "auto", batch_size: int | None = None) -> np.ndarray:
        """`predict_proba` with this result's model and weights (needs ``return_weights=True``)."""
        if self.weights is None:
            raise ConfigError("return_weights", "must be true in fit() to predict with its result", False)
        return predict_proba(self.model, self.config, self.weights, data, device=device, batch_size=batch_size)


# ---------------------------------------------------------------------------------------
# the torch network as fitted: input standardisation + the model
# ---------------------------------------------------------------------------------------
class _Fitted(nn.Module):
    """The model behind a z-scoring of its inputs (statistics in buffers, saved with it)."""

    def __init__(self, net: SequenceClassifier) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("feature_mean", torch.zeros(net.input_dim))
        self.register_buffer("feature_std", torch.ones(net.input_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.net.takes_tokens:
            mask = time_mask(lengths.to(x.device), x.shape[1])[..., None]
            x = ((x - self.feature_mean) / self.feature_std) * mask
        return self.net(x, lengths)


def _feature_stats(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (1 where constant) over valid frames of ``x`` [shape=(N, T, D)]."""
    total = np.zeros(x.shape[2])
    square = np.zeros(x.shape[2])
    for i, t in enumerate(lengths):  # one slice per sequence, float64 sums
        seq = x[i, : int(t)]
        total += seq.sum(axis=0, dtype=np.float64)
        square += np.square(seq, dtype=np.float64).sum(axis=0)
    n = max(int(lengths.sum()), 1)
    mean = total / n
    std = np.sqrt(np.maximum(square / n - mean**2, 0.0))
    std[std < 1e-8 * np.maximum(np.abs(mean), 1.0)] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


# ---------------------------------------------------------------------------------------
# environment: seeds, threads, determinism, device, precision
# ---------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (legacy global RNG: other code may draw from it)
    torch.manual_seed(seed)  # seeds CUDA too
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("train.device", "CUDA was asked for but torch sees no GPU", name)
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError("train.device", f"must name one of {torch.cuda.device_count()} GPUs", name)
    return device


def _resolve_amp(amp: str, device: torch.device, preferred: torch.dtype | None = None) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.amp", "fp16 autocast needs CUDA (use 'bf16' or 'off' on CPU)", amp)
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if preferred is not None:  # auto on CUDA: the model's choice (LSTM: fp16 for cuDNN)
        return preferred
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def _fit_environment(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Threads and determinism for one fit; the process settings come back afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        if config.deterministic:
            if device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # warn_only: a CUDA op without a deterministic kernel warns instead of failing the fit
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


# ---------------------------------------------------------------------------------------
# data checks
# ---------------------------------------------------------------------------------------
def _check_set(data: SequenceSet, where: str) -> None:
    if not isinstance(data, SequenceSet):
        raise InputError(where, "must be a features.sequences.SequenceSet", type(data).__name__)
    if len(data) == 0:
        raise InputError(where, "needs at least one sequence", 0)
    if data.n_classes < 2:
        raise InputError(f"{where}.classes", "a classifier needs at least 2 classes", list(data.classes))
    short = np.flatnonzero(data.lengths < 1)
    if short.size:
        raise InputError(f"{where} clip {data.clip_ids[short[0]]!r}", "every sequence needs at least one frame", 0)
    bad_y = np.flatnonzero((data.y < 0) | (data.y >= data.n_classes))
    if bad_y.size:
        raise InputError(
            f"{where} clip {data.clip_ids[bad_y[0]]!r}", f"labels must be in [0, {data.n_classes})", int(data.y[bad_y[0]])
        )
    if data.padded:
        finite = bool(np.isfinite(data.x).all())
        bad = None if finite else int(np.flatnonzero(~np.isfinite(data.x).all(axis=(1, 2)))[0])
    else:
        bad = next((i for i, s in enumerate(data.x) if not np.isfinite(s).all()), None)
    if bad is not None:
        raise InputError(f"{where} clip {data.clip_ids[bad]!r}", "feature values must be finite", "NaN or inf")


def _check_pair(train: SequenceSet, valid: SequenceSet | None) -> None:
    _check_set(train, "train")
    if valid is None:
        return
    _check_set(valid, "valid")
    if valid.dim != train.dim:
        raise InputError("valid", f"frames must have the training set's D = {train.dim}", f"D={valid.dim}")
    if list(valid.classes) != list(train.classes):
        raise InputError("valid.classes", f"must equal the training classes {list(train.classes)}", list(valid.classes))


def _padded_arrays(data: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
    padded = data.to_padded()
    x = np.require(padded.x, dtype=np.float32, requirements=["C", "W"])
    return x, np.asarray(padded.lengths, dtype=np.int64)


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" weights, ``N / (present classes * count)``; 0 for absent ones."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


# ---------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------
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
    ``train`` (``inner_fraction`` of its groups, `trainables.inner.inner_split`) is held
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
    _check_pair(train, valid)
    if spec.kind == "sklearn":
        return _fit_classic(spec, config, tc, train, valid, seed=seed, on_epoch=on_epoch,
                            return_weights=return_weights, started=started)
    device = _resolve_device(tc.device)
    _resolve_amp(tc.amp, device)  # a bad combination fails before any work
    with _fit_environment(tc, device):
        oom = None
        try:
            return _fit_torch(spec, config, tc, train, valid, seed=seed, device=device,
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


def _fit_classic(
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
    seed_everything(seed)
    estimator = build_model(
        spec.name, config, input_dim=train.dim, n_classes=train.n_classes, vocab_size=train.vocab_size, seed=seed,
        n_jobs=tc.num_threads, class_weighted=tc.class_weighted, standardize=tc.standardize,
    )
    estimator.fit(train)
    proba, metrics = None, {}
    record: dict[str, Any] = {"epoch": 1, "train_loss": None}
    if valid is not None:
        proba = estimator.predict_proba(valid)
        metrics = classification_metrics(valid.y, proba, n_classes=train.n_classes)
        record.update(_metric_record(metrics, prefix="valid"))
    record["seconds"] = time.perf_counter() - started
    if on_epoch is not None:
        on_epoch(dict(record))
    return FitResult(
        model=spec.name, config=config, train_config=tc, seed=seed, proba=proba, metrics=metrics,
        history=[record], n_params=estimator.n_params, seconds=time.perf_counter() - started,
        best_epoch=1, epochs_run=1, device="cpu", input_dim=train.dim, n_classes=train.n_classes,
        weights=estimator if return_weights else None,
    )


def _metric_record(metrics: dict[str, Any], *, prefix: str) -> dict[str, float]:
    out = {f"{prefix}_loss": metrics["log_loss"]}
    out.update({f"{prefix}_{k}": metrics[k] for k in ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted")})
    return out


_STEP_MULTIPLE = 8


class _Batches:
    """Batches sliced from one in-memory padded array, each cut to its own longest sequence
    (rounded up to a multiple of 8 steps).

    On CUDA the whole array moves to the GPU once when it takes under a quarter of the free
    memory (then batches are gathered there); otherwise each batch is gathered on the CPU
    and copied. Lengths stay on the CPU (packing reads them there).
    """

    def __init__(self, x: np.ndarray, lengths: np.ndarray, y: np.ndarray | None, device: torch.device) -> None:
        self.device = device
        self.lengths = lengths
        self.x = torch.from_numpy(x)
        self.y = None if y is None else torch.from_numpy(np.array(y, dtype=np.int64))  # a copy: y may be read-only (object store)
        if device.type == "cuda" and x.nbytes < 0.25 * torch.cuda.mem_get_info(device)[0]:
            self.x = self.x.to(device)
            self.y = None if self.y is None else self.y.to(device)

    def get(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x [shape=(len(idx), T_batch, D)] on the device, lengths on the CPU, y on the device)."""
        lengths = torch.from_numpy(self.lengths[idx])
        index = torch.from_numpy(idx).to(self.x.device)
        # T rounded up to a multiple of 8: few distinct shapes, so oneDNN / cuDNN reuse their
        # kernels instead of planning one per batch (the extra steps are padding, masked)
        steps = min(-(-int(lengths.max()) // _STEP_MULTIPLE) * _STEP_MULTIPLE, self.x.shape[1])
        xb = self.x[:, :steps][index].to(self.device, non_blocking=True)
        yb = None if self.y is None else self.y[index].to(self.device, non_blocking=True)
        return xb, lengths, yb


def _autocast(device: torch.device, amp: torch.dtype | None) -> contextlib.AbstractContextManager:
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp)


def _fit_torch(
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
    net = _Fitted(build_model(spec.name, config, input_dim=train.dim, n_classes=n_classes, vocab_size=train.vocab_size))
    amp = _resolve_amp(tc.amp, device, net.net.auto_amp)
    x_train, len_train = _padded_arrays(train)
    net.net.check_data(x_train, len_train, where="train")
    held_out = {}
    for where, part in (("inner", inner), ("valid", valid)):
        if part is not None:
            held_out[where] = _padded_arrays(part)
            net.net.check_data(*held_out[where], where=where)
    if tc.standardize and not net.net.takes_tokens:
        mean, std = _feature_stats(x_train, len_train)
        net.feature_mean.copy_(torch.from_numpy(mean))
        net.feature_std.copy_(torch.from_numpy(std))
    net.to(device)
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)

    optimizer_cls = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if amp is torch.float16 else None
    weight = None
    if tc.class_weighted:
        weight = torch.as_tensor(_class_weights(train.y, n_classes), dtype=torch.float32, device=device)
    batches = _Batches(x_train, len_train, train.y, device)
    rng = np.random.default_rng(seed)
    eval_batch = _eval_batch(device, tc.batch_size)

    history: list[dict[str, Any]] = []
    maximise = tc.monitor != "loss"
    best_value, best_epoch, best_state, stale = None, 0, None, 0
    epoch = 0
    for epoch in range(1, tc.epochs + 1):
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for idx in bucket_batches(len_train, tc.batch_size, rng=rng):
            xb, lb, yb = batches.get(idx)
            with _autocast(device, amp):
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
            inner_proba = _predict(net, *held_out["inner"], device=device, amp=amp, batch_size=eval_batch)
            inner_metrics = classification_metrics(inner.y, inner_proba, n_classes=n_classes)
            record.update(_metric_record(inner_metrics, prefix="inner"))
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
    proba, metrics = None, {}
    if valid is not None:  # the validation fold, scored once, on the weights chosen above
        proba = _predict(net, *held_out["valid"], device=device, amp=amp, batch_size=eval_batch)
        metrics = classification_metrics(valid.y, proba, n_classes=n_classes)
    weights = None
    if return_weights:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
    return FitResult(
        model=spec.name, config=config, train_config=tc, seed=seed, proba=proba, metrics=metrics,
        history=history, n_params=n_params, seconds=time.perf_counter() - started, best_epoch=best_epoch,
        epochs_run=epochs_run, device=str(device), input_dim=train.dim, n_classes=n_classes, weights=weights,
        inner_size=0 if inner is None else len(inner),
    )


@torch.no_grad()
def _predict(
    net: nn.Module, x: np.ndarray, lengths: np.ndarray, *, device: torch.device, amp: torch.dtype | None, batch_size: int
) -> np.ndarray:
    """Softmax probabilities float64 [shape=(N, C)] in the rows' order, length-sorted batches."""
    net.eval()
    batches = _Batches(x, lengths, None, device)
    out: np.ndarray | None = None
    for idx in bucket_batches(lengths, batch_size):
        xb, lb, _ = batches.get(idx)
        with _autocast(device, amp):
            logits = net(xb, lb)
        proba = torch.softmax(logits.float(), dim=1).double().cpu().numpy()
        if out is None:
            out = np.empty((len(lengths), proba.shape[1]))
        out[idx] = proba
    assert out is not None
    return out / out.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------
# predict with stored weights (refit members scored on the test split)
# ---------------------------------------------------------------------------------------
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
    ``state_dict`` or a fitted `trainables.classic.PooledClassifier`. ``data`` must have the
    training set's D and classes. ``batch_size`` ``None``: 32 on CPU, 256 on CUDA.
    """
    spec = get_model_spec(model_name)
    config = make_model_config(model_name, model_config)
    _check_set(data, "data")
    if spec.kind == "sklearn":
        if not hasattr(weights, "predict_proba"):
            raise InputError("weights", f"must be the fitted {model_name} estimator from FitResult.weights", type(weights).__name__)
        if weights.n_classes != data.n_classes:
            raise InputError("data.classes", f"must hold the {weights.n_classes} training classes", data.n_classes)
        return weights.predict_proba(data)
    if not isinstance(weights, Mapping):
        raise InputError("weights", "must be the state_dict from FitResult.weights", type(weights).__name__)
    dev = _resolve_device(device)
    net = _Fitted(build_model(model_name, config, input_dim=data.dim, n_classes=data.n_classes,
                              vocab_size=data.vocab_size))
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise InputError(
            "weights", f"must fit a {model_name} for D={data.dim} and {data.n_classes} classes with this config",
            str(error).splitlines()[0],
        ) from None
    net.to(dev)
    x, lengths = _padded_arrays(data)
    net.net.check_data(x, lengths, where="data")
    return _predict(net, x, lengths, device=dev, amp=_resolve_amp(amp, dev, net.net.auto_amp), batch_size=batch_size or _eval_batch(dev))
