"""Fused CV fits: a trial's seeds x folds fits of one configuration, trained as one model.

Every trial trains ``seeds x folds`` copies of the same architecture with the same
hyperparameters. `fit_many` trains them at once: R *replicas* stacked in one fused model
(`trainables.fused._layers`: each weighted layer runs all replicas in one op), one
optimizer over all of them (`trainables.fused._optim`), and returns for each replica the
`FitResult` that `trainables.training.loop.fit` would have returned for it. Per replica, exactly as
the sequential fit does:

- the initial weights are the ones its seed gives (``seed_everything(seed)`` then
  ``build_model``);
- with early stopping, the inner split is carved from its own training fold with its own
  seed, and it trains on the rest;
- its input standardisation and class weights come from the rows it trains on;
- its batches are drawn by `bucket_batches` from its own rows with
  ``np.random.default_rng(seed)``, so they are the sequential fit's batches, in order;
- gradient clipping, Adam's state and step count, early stopping, NaN detection and the
  best-epoch weights are its own; a replica that stops early is dropped from the stack;
- its validation fold is scored once, with the weights it ended on.

A step trains every replica that still has a batch in the current epoch; a replica whose
batch is shorter than the others' is padded with copies of its own rows, which carry no
loss weight and which batch norm leaves out, so the padding changes nothing. What does
differ from the sequential fit: the dropout masks (drawn from one stream for the whole
stack), and float rounding. Without dropout a fused replica follows its sequential twin to
float tolerance; with it, the two are statistically the same (tests/trainables/test_fused.py).

`use_fused` says where fusing pays on the device at hand, from benchmarks/fused_fits.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from features.sequences import SequenceSet
from seqsweep.errors import ConfigError, InputError, TrainingError
from trainables.config_base import ConfigBase
from trainables.configs import TrainConfig
from trainables.environment import fit_environment, resolve_amp, resolve_device
from trainables.fused._layers import ReplicaRows, unfusable_layers
from trainables.fused._train import FusedFitted, Run, fit_chunk
from trainables.networks.fitted import Fitted
from trainables.registry import build_model, get_model_spec, make_model_config
from trainables.training.inputs import check_set
from trainables.training.loop import fit
from trainables.training.result import FitResult

__all__ = [
    "fit_many", "use_fused", "unfusable_reason", "step_flops", "CPU_MAX_STEP_FLOPS", "CPU_MAX_LSTM_STEPS", "FitTriple",
]

FitTriple = tuple[int, np.ndarray, np.ndarray]
"""One fit: (seed, training row positions, validation row positions) into the data."""


# ---------------------------------------------------------------------------------------
# the public face
# ---------------------------------------------------------------------------------------
def fit_many(
    model_name: str,
    model_config: ConfigBase | Mapping[str, Any] | None,
    data: SequenceSet,
    fits: Sequence[FitTriple],
    *,
    train_config: TrainConfig | Mapping[str, Any] | None = None,
    return_weights: bool = False,
    chunk_size: int | None = None,
) -> list[FitResult]:
    """Fit ``model_name`` once per (seed, train rows, valid rows) of ``fits``, all at once.

    Result k is what ``fit(model_name, model_config, data.subset(train_k),
    data.subset(valid_k), seed=seed_k, train_config=train_config,
    return_weights=return_weights)`` returns (see the module docstring for the two
    differences: dropout masks and rounding), except ``seconds``, which is the fit's share
    of the fused run (its wall time over the replicas trained together), as is each history
    record's ``seconds``. ``weights`` (with ``return_weights``) is each replica's own
    ``state_dict``, for `trainables.training.predict.predict_proba`.

    Parameters
    ----------
    model_name, model_config, train_config : as for `trainables.training.loop.fit`.
    data : every row any fit uses [x: shape=(N, T, D)], ragged or padded.
    fits : R triples ``(seed, train, valid)``; ``train`` and ``valid`` are int row positions
        into ``data`` [shape=(N_train,)], [shape=(N_valid,)].
    return_weights : put each fit's weights in its ``FitResult.weights``.
    chunk_size : at most this many replicas in one fused model (``None``: all of them). On
        CUDA a chunk that runs out of memory is halved and retried.

    Models that cannot be fused (``knn``, ``random_forest``, a torch model with a layer that
    `trainables.fused._layers` has no twin for) are fitted one after another with `fit`.

    Raises
    ------
    TrainingError : a replica's training loss is not finite (naming the fit, its seed and
        the epoch), or CUDA runs out of memory with one replica per chunk.
    InputError : bad data or row positions; ConfigError : bad options.
    """
    spec = get_model_spec(model_name)
    config = make_model_config(model_name, model_config)
    tc = train_config if isinstance(train_config, TrainConfig) else TrainConfig.from_flat(train_config or {})
    triples = _check_fits(fits, len(data))
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ConfigError("chunk_size", "must be an integer >= 1 or None", chunk_size)
    if spec.kind != "torch" or unfusable_reason(model_name, config, input_dim=data.dim, n_classes=data.n_classes,
                                                vocab_size=data.vocab_size):
        return [fit(model_name, config, data.subset(tr), data.subset(va), seed=seed, train_config=tc,
                    return_weights=return_weights) for seed, tr, va in triples]
    check_set(data, "data")
    device = resolve_device(tc.device)
    resolve_amp(tc.amp, device)  # a bad combination fails before any work
    with fit_environment(tc, device):
        run = Run.create(model_name, config, tc, data, device, return_weights=return_weights)
        results: list[FitResult] = []
        size = chunk_size or len(triples)
        while len(results) < len(triples):
            chunk = list(enumerate(triples))[len(results) : len(results) + size]
            try:
                results += fit_chunk(run, chunk)
                continue
            except torch.cuda.OutOfMemoryError as error:
                oom = str(error).splitlines()[0] if str(error) else "out of memory"
            # out of the except block: the failed chunk's tensors are unreferenced now
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if size == 1:
                raise TrainingError(f"device {device}", "one replica's batch must fit in GPU memory "
                                    "(lower batch_size or the model's width)", oom)
            size = max(1, size // 2)  # fewer replicas at once, then this chunk again
    return results


def unfusable_reason(
    model_name: str, model_config: ConfigBase | Mapping[str, Any] | None, *, input_dim: int, n_classes: int,
    vocab_size: int | None = None,
) -> str | None:
    """Why ``model_name`` with this config cannot be trained fused, or ``None`` if it can.

    The classic models are fitted in one step by scikit-learn; a torch model fuses when
    each of its weighted layers has a fused twin (`trainables.fused._layers.FUSABLE`).
    """
    spec = get_model_spec(model_name)
    if spec.kind != "torch":
        return f"{model_name} is fitted by scikit-learn, one fit at a time"
    model = build_model(model_name, model_config, input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size)
    problems = unfusable_layers(model)
    return f"layers without a fused twin: {problems}" if problems else None


# ---------------------------------------------------------------------------------------
# `auto`: where fusing is faster, from benchmarks/fused_fits.py
# ---------------------------------------------------------------------------------------
#: ``auto`` on CPU fuses a family when one replica's training step (forward FLOPs of a
#: batch of mean-length sequences, `step_flops`) is at most this. Fusing removes the per-op
#: overhead of R fits, not their arithmetic, so it pays while a step is small. From
#: one run of benchmarks/fused_fits.py --calibrate on the 2-core CPU, one torch thread, 10
#: fits, 5 epochs (the README's table; ratio = sequential time / fused time):
#:
#: - cnn1d, wavenet, 1.4 to 71 MFLOP: 3.40x (wavenet, 4.2 MFLOP), 2.92x (cnn1d, 1.4), 1.84x
#:   (cnn1d, 7.2), 1.78x (wavenet, 8.2), 1.52x (wavenet, 32.9), 1.23x (cnn1d, 28.6), 1.17x
#:   (wavenet, 69.6), 1.14x (cnn1d, 70.9); one case at 0.95x (cnn1d, 16 filters on GTZAN's
#:   130 steps, 18.0 MFLOP; 1.07x and 1.13x in two earlier runs: this machine is shared).
#:   Fused up to 75 MFLOP, the largest size measured.
#: - cnn (2-D): 2.04x at 2.2 MFLOP and 1.43x at 8.0, then 0.98x at 24.9, 0.88x at 60.2 and
#:   0.39x at 300.7 (GTZAN's size): its grouped 2-D convolutions run slower than R plain
#:   ones once they are large. Fused up to 10 MFLOP.
#: - lstm: the fused recurrence runs a few small ops per time step where oneDNN runs one
#:   kernel per layer, so only short, narrow LSTMs gain: at JapaneseVowels' length (15 steps
#:   on average) 0.9, 2.8 and 5.5 MFLOP ran 2.08x, 2.31x and 1.28x; 9.5 MFLOP 1.08x (0.95x
#:   in two earlier runs), 68 MFLOP 0.60x, 302 MFLOP 0.70x; at GTZAN's 130 steps even 16
#:   units (22.8 MFLOP) ran 0.52x. Fused up to 6 MFLOP, on sequences of at most
#:   `CPU_MAX_LSTM_STEPS` steps.
#: - inception_time, in its own run of benchmarks/fused_fits.py --families inception_time
#:   --calibrate (same settings, load average 2.5): at JapaneseVowels' length 3.08x (4.3
#:   MFLOP), 1.97x (16.5), 1.82x (63.0), 1.40x (64.7), 1.34x (140.7), then 1.04x at the
#:   paper's network (250.8); on GTZAN's 130 steps 1.37x (75.2) and 0.86x (279.3), a size
#:   between them not measured. Fused up to 150 MFLOP.
#:
#: A family not listed here (a model added later) is not fused by ``auto`` until measured.
CPU_MAX_STEP_FLOPS: dict[str, float] = {"cnn1d": 75e6, "wavenet": 75e6, "cnn": 10e6, "lstm": 6e6,
                                         "inception_time": 150e6}

#: ``auto`` on CPU fuses an LSTM only on sequences at most this long on average (above).
CPU_MAX_LSTM_STEPS = 32


def step_flops(
    model_name: str, model_config: ConfigBase | Mapping[str, Any] | None, *, input_dim: int, n_classes: int,
    steps: int, batch_size: int, vocab_size: int | None = None,
) -> float:
    """Forward FLOPs of one replica's training step: ``batch_size`` sequences of ``steps``.

    Counted by ``torch.utils.flop_counter`` on a one-replica fused model (so the LSTM's
    recurrence counts too), for one sequence, times ``batch_size``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    template = Fitted(build_model(model_name, model_config, input_dim=input_dim, n_classes=n_classes,
                                   vocab_size=vocab_size))
    model = FusedFitted(template, 1, ReplicaRows()).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, steps, input_dim), torch.tensor([steps]))
    return float(counter.get_total_flops()) * batch_size


def use_fused(
    model_name: str,
    model_config: ConfigBase | Mapping[str, Any] | None,
    train_config: TrainConfig | Mapping[str, Any] | None,
    device: str | torch.device,
    n_fits: int,
    *,
    data: SequenceSet,
) -> bool:
    """``train.fused: auto``: whether `fit_many` beats `fit` in a loop for these fits here.

    Parameters
    ----------
    model_name, model_config : the trial's model.
    train_config : its training config (its batch size sets the work per step).
    device : where the fits run: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    n_fits : fits in the trial (seeds x folds).
    data : the trial's data (its D, classes, vocabulary and mean length).

    Rules, each from a measurement (see `CPU_MAX_STEP_FLOPS`; README, "Fused CV fits"):

    - fewer than 2 fits, knn / random_forest, or a layer with no fused twin: sequential;
    - CUDA: sequential, until benchmarks/fused_fits.py has been run on a GPU (none was lent
      when this was written; ``train.fused: true`` fuses anyway);
    - CPU: fused when a replica's training step is at most ``CPU_MAX_STEP_FLOPS[family]``
      (and, for an LSTM, the mean length at most `CPU_MAX_LSTM_STEPS`).
    """
    if n_fits < 2 or get_model_spec(model_name).kind != "torch":
        return False
    if unfusable_reason(model_name, model_config, input_dim=data.dim, n_classes=data.n_classes,
                        vocab_size=data.vocab_size):
        return False
    tc = train_config if isinstance(train_config, TrainConfig) else TrainConfig.from_flat(train_config or {})
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(name).type != "cpu" or model_name not in CPU_MAX_STEP_FLOPS:
        return False  # no GPU measurement yet, or a family never measured: the sequential path
    steps = max(1, round(float(np.mean(data.lengths))))
    if model_name == "lstm" and steps > CPU_MAX_LSTM_STEPS:
        return False
    work = step_flops(model_name, model_config, input_dim=data.dim, n_classes=data.n_classes, steps=steps,
                      batch_size=tc.batch_size, vocab_size=data.vocab_size)
    return work <= CPU_MAX_STEP_FLOPS[model_name]


def _check_fits(fits: Sequence[FitTriple], n_rows: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The fits as (int seed, int64 train rows, int64 valid rows); `InputError` / `ConfigError`
    naming ``fits[k]`` and the field for a bad one."""
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence) or len(fits) == 0:
        raise ConfigError("fits", "must be a non-empty sequence of (seed, train rows, valid rows)", type(fits).__name__)
    out = []
    for k, item in enumerate(fits):
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise ConfigError(f"fits[{k}]", "must be a (seed, train rows, valid rows) triple", item)
        seed, train, valid = item
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"fits[{k}].seed", "must be an integer >= 0", seed)
        rows = []
        for name, part in (("train", train), ("valid", valid)):
            arr = np.asarray(part)
            if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
                raise InputError(f"fits[{k}].{name}", "must be a non-empty 1-D array of row positions", arr.shape)
            if arr.min() < 0 or arr.max() >= n_rows:
                raise InputError(f"fits[{k}].{name}", f"row positions must be in [0, {n_rows})",
                                 int(arr.min() if arr.min() < 0 else arr.max()))
            rows.append(arr.astype(np.int64))
        out.append((int(seed), rows[0], rows[1]))
    return out
