"""Typed, frozen configs: one per model, one for the training loop, checked once at the door.

Every hyperparameter is an explicit keyword with a default, so the leaderboard can write
them out mechanically (`ConfigBase.to_flat`). A Ray Tune / Optuna trial receives one *flat*
dict such as::

    {"model": "lstm", "lr": 1e-3, "num_layers": 2, "units_0": 32, "units_1": 16, "dropout": 0.2}

and turns it into typed objects with `ConfigBase.from_flat` (or, for all three at once,
`trainables.split_flat_config`). A tuple-valued field (the LSTM's per-layer ``units``, the
CNNs' per-block ``filters``) is flattened as a count key plus one key per element
(``num_layers`` + ``units_0``, ``units_1``, ...); element keys past the count are ignored,
so a static search space may sample ``units_0..units_3`` and let ``num_layers`` pick.

This module imports no torch: a sweep driver can check configs without loading it.
"""

from __future__ import annotations

import math
import numbers
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Literal

import numpy as np

from seqsweep.errors import ConfigError

__all__ = [
    "ConfigBase",
    "TrainConfig",
    "LSTMConfig",
    "CNNConfig",
    "CNN1DConfig",
    "WaveNetConfig",
    "KNNConfig",
    "RandomForestConfig",
    "MODEL_KEY",
    "DEFAULT_EMBEDDING_DIM",
    "DEFAULT_EMBEDDING_RANGE",
]

MODEL_KEY = "model"
"""The flat-config key that names the model (``{"model": "lstm", ...}``)."""

DEFAULT_EMBEDDING_DIM = 16
"""``embedding_dim`` of every torch model's config unless given (used on token data only)."""

DEFAULT_EMBEDDING_RANGE: dict[str, Any] = {"low": 8, "high": 64, "log": True}
"""The search range of ``embedding_dim`` for a sweep over a token feature set that does not
give one, in the sweep YAML's range form (`search.spec.Param.parse`); copy it, never edit it."""

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


# ---------------------------------------------------------------------------------------
# coercion of loosely typed values (numpy scalars from Optuna, 32.0 from a quniform, ...)
# ---------------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _coerce(where: str, hint: Any, value: Any) -> Any:
    """Return ``value`` as type ``hint`` or raise `ConfigError` naming ``where``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(where, inner[0], value)
        raise TypeError(f"unsupported union {hint!r} for {where}")  # pragma: no cover
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise ConfigError(where, f"must be one of {list(args)}", value)
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Iterable, numbers.Number)):
            raise ConfigError(where, "must be a sequence of values", value)
        items = list(value) if isinstance(value, Iterable) else [value]
        if not items:
            raise ConfigError(where, "must hold at least one value", value)
        return tuple(_coerce(f"{where}[{i}]", args[0], v) for i, v in enumerate(items))
    if hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ConfigError(where, "must be true or false", value)
    if hint is int:
        if _is_int(value):
            return int(value)
        if (
            isinstance(value, numbers.Real)
            and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value))
            and float(value).is_integer()
        ):
            return int(value)
        raise ConfigError(where, "must be an integer", value)
    if hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            out = float(value)
            if math.isfinite(out):
                return out
        raise ConfigError(where, "must be a finite number", value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(where, "must be a string", value)
    raise TypeError(f"unsupported type {hint!r} for {where}")  # pragma: no cover


# ---------------------------------------------------------------------------------------
# the base class
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigBase:
    """A frozen, validated config with a flat-dict form.

    Subclasses declare their fields as dataclass fields with defaults, set ``label`` (the
    prefix of every error's ``where``), list tuple fields and their count keys in
    ``sequence_fields`` and check ranges in `_check`.
    """

    label: ClassVar[str] = "config"
    sequence_fields: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = _coerce(self._where(f.name), hints[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        self._check()

    # ---- checks (subclasses) -------------------------------------------------------
    def _check(self) -> None:
        """Range checks; raise `ConfigError` through the helpers below."""

    def _where(self, name: str) -> str:
        return f"{self.label}.{name}"

    def _at_least(self, name: str, low: float) -> None:
        values = getattr(self, name)
        for i, v in enumerate(values if isinstance(values, tuple) else (values,)):
            if v is not None and v < low:
                where = self._where(name) + (f"[{i}]" if isinstance(values, tuple) else "")
                raise ConfigError(where, f"must be >= {low}", v)

    def _fraction(self, name: str) -> None:
        v = getattr(self, name)
        if not 0.0 <= v < 1.0:
            raise ConfigError(self._where(name), "must be in [0, 1)", v)

    # ---- the flat form ---------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The dataclass field names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def is_flat_key(cls, key: str) -> bool:
        """Whether ``key`` belongs to this config's flat form (a field, count or element key)."""
        if key in cls.field_names() or key in cls.sequence_fields.values():
            return True
        for name in cls.sequence_fields:
            prefix = f"{name}_"
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                return True
        return False

    @classmethod
    def flat_key_names(cls) -> list[str]:
        """Human-readable list of this config's flat keys (for error messages)."""
        out = []
        for name in cls.field_names():
            if name in cls.sequence_fields:
                out += [cls.sequence_fields[name], f"{name}_<i>"]
            else:
                out.append(name)
        return out

    @classmethod
    def _foreign_keys(cls, flat: Mapping[str, Any]) -> set[str]:
        """Keys of a flat dict that belong to another config and are silently ignored."""
        return {MODEL_KEY} | {k for k in flat if TrainConfig.is_flat_key(k)}

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any], *, ignore: Iterable[str] = ()):
        """Build this config from a flat dict (Tune's ``config``).

        Keys of the other configs that share the flat dict (the training config's keys, the
        ``model`` key) and the names in ``ignore`` are skipped; any other key that is not
        this config's raises `ConfigError` listing the valid keys. Missing keys keep their
        defaults.
        """
        if not isinstance(flat, Mapping):
            raise ConfigError(cls.label, "a flat config must be a mapping of key -> value", type(flat).__name__)
        skip = cls._foreign_keys(flat) | set(ignore)
        unknown = sorted(k for k in flat if k not in skip and not cls.is_flat_key(str(k)))
        if unknown:
            raise ConfigError(
                f"{cls.label} config key {unknown[0]!r}",
                f"must be one of {cls.flat_key_names()}",
                unknown[0],
            )
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in cls.sequence_fields:
                value = cls._sequence_from_flat(f.name, flat, default=f.default)
                if value is not MISSING:
                    kwargs[f.name] = value
            elif f.name in flat:
                kwargs[f.name] = flat[f.name]
        return cls(**kwargs)

    @classmethod
    def _sequence_from_flat(cls, name: str, flat: Mapping[str, Any], *, default: Any) -> Any:
        count_key = cls.sequence_fields[name]
        element_keys = sorted(
            (k for k in flat if k.startswith(f"{name}_") and k[len(name) + 1 :].isdigit()),
            key=lambda k: int(k[len(name) + 1 :]),
        )
        where = f"{cls.label}.{name}"
        if name in flat and element_keys:
            raise ConfigError(where, f"give either {name!r} or {name}_<i> keys, not both", element_keys[0])
        if count_key not in flat:
            if name in flat:
                return flat[name]
            if element_keys:
                # no count: the element keys 0..k-1 must be contiguous
                n = len(element_keys)
                if element_keys != [f"{name}_{i}" for i in range(n)]:
                    raise ConfigError(where, f"{name}_<i> keys must be 0..n-1 when {count_key!r} is absent", element_keys)
                return tuple(flat[k] for k in element_keys)
            return MISSING
        count = _coerce(f"{cls.label}.{count_key}", int, flat[count_key])
        if count < 1:
            raise ConfigError(f"{cls.label}.{count_key}", "must be >= 1", count)
        if name in flat:
            value = flat[name]
            if isinstance(value, (list, tuple, np.ndarray)):
                if len(value) < count:
                    raise ConfigError(where, f"must hold {count_key}={count} values", list(value))
                return tuple(value[:count])
            return (value,) * count
        if element_keys:
            out = []
            for i in range(count):
                key = f"{name}_{i}"
                if key not in flat:
                    raise ConfigError(f"{cls.label} config key {key!r}", f"is needed when {count_key}={count}", None)
                out.append(flat[key])
            return tuple(out)
        # only a count: repeat the default's elements (its last one past its end)
        base = tuple(default)
        return tuple(base[min(i, len(base) - 1)] for i in range(count))

    def to_flat(self) -> dict[str, Any]:
        """The flat form: one scalar per key (tuples become a count key plus element keys)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if name in self.sequence_fields:
                out[self.sequence_fields[name]] = len(value)
                for i, v in enumerate(value):
                    out[f"{name}_{i}"] = v
            else:
                out[name] = value
        return out


# ---------------------------------------------------------------------------------------
# the training loop's config
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """How one fit runs: optimiser, schedule, loss weighting, device and reproducibility.

    Parameters
    ----------
    optimizer : ``"adam"`` or ``"adamw"``.
    lr : learning rate (> 0).
    epochs : passes over the training set (>= 1).
    batch_size : sequences per batch (>= 1).
    weight_decay : L2 penalty (Adam) or decoupled decay (AdamW), >= 0.
    grad_clip : max global gradient norm; ``None`` turns clipping off.
    class_weighted : cross-entropy weighted by inverse class frequency (scikit-learn's
        "balanced" weights) so that imbalanced classes do not collapse onto the majority;
        random_forest uses ``class_weight="balanced"``; knn has no weighting.
    standardize : z-score every input feature with the training set's mean and std (over
        valid frames); the statistics travel with the weights. Token inputs (an LSTM with
        an embedding) are never standardized; knn z-scores its pooled features.
    early_stopping_patience : stop after this many epochs without improvement of
        ``monitor`` on the *inner split* (see ``inner_fraction``) and keep the best epoch's
        weights; ``None`` = off (train for ``epochs`` on the whole training fold).
    inner_fraction : with early stopping, the share of the training fold's groups held out
        (stratified, group-aware, drawn from the fit's seed) for early stopping to watch;
        the validation fold is never looked at before the fit ends. In (0, 0.5].
    monitor : the inner-split metric for early stopping and ``best_epoch`` (``"loss"`` is
        minimised, the others maximised).
    deterministic : ``torch.use_deterministic_algorithms(True)`` for the fit; on CPU the same
        seed then gives the same probabilities bit for bit.
    device : ``"auto"`` (CUDA when there is one, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    amp : autocast precision: ``"auto"`` (on CUDA the model's choice: fp16 for the LSTM,
        whose cuDNN kernels need it, bf16 where the GPU supports it for the others, else
        fp16; off on CPU), ``"bf16"``, ``"fp16"`` (CUDA only, with a gradient scaler) or
        ``"off"``.
    num_threads : ``torch.set_num_threads`` during the fit (the trial's CPU share), restored
        after; ``None`` keeps the process setting (Ray sets ``OMP_NUM_THREADS`` to a
        worker's CPU share, and torch follows it).
    """

    label: ClassVar[str] = "train"

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-3
    epochs: int = 30
    batch_size: int = 32
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    class_weighted: bool = True
    standardize: bool = True
    early_stopping_patience: int | None = None
    inner_fraction: float = 0.2
    monitor: Literal["balanced_accuracy", "accuracy", "f1_macro", "f1_weighted", "loss"] = "balanced_accuracy"
    deterministic: bool = False
    device: str = "auto"
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    num_threads: int | None = None

    def _check(self) -> None:
        if self.lr <= 0:
            raise ConfigError(self._where("lr"), "must be > 0", self.lr)
        self._at_least("epochs", 1)
        self._at_least("batch_size", 1)
        self._at_least("weight_decay", 0.0)
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(self._where("grad_clip"), "must be > 0 (or None to turn clipping off)", self.grad_clip)
        self._at_least("early_stopping_patience", 1)
        if not 0.0 < self.inner_fraction <= 0.5:
            raise ConfigError(self._where("inner_fraction"), "must be in (0, 0.5]", self.inner_fraction)
        self._at_least("num_threads", 1)
        if not _DEVICE_RE.match(self.device):
            raise ConfigError(self._where("device"), "must be 'auto', 'cpu', 'cuda' or 'cuda:N'", self.device)

    @classmethod
    def _foreign_keys(cls, flat: Mapping[str, Any]) -> set[str]:
        out = {MODEL_KEY}
        name = flat.get(MODEL_KEY)
        if isinstance(name, str):
            from trainables.registry import MODEL_CONFIGS  # registry imports this module

            config_cls = MODEL_CONFIGS.get(name)
            if config_cls is not None:
                out |= {k for k in flat if config_cls.is_flat_key(k)}
        return out


# ---------------------------------------------------------------------------------------
# model configs
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LSTMConfig(ConfigBase):
    """Stacked LSTM over packed sequences.

    Parameters
    ----------
    units : hidden units per layer, first to last (flat: ``num_layers`` + ``units_<i>``);
        decreasing widths such as ``(32, 16)`` did best in the seed experiments.
    dropout : dropout between layers and before the output layer, in [0, 1).
    bidirectional : run each layer both ways (the output width doubles).
    pooling : ``"last"`` (the final valid state; both directions' finals when
        bidirectional) or ``"mean"`` (mean of the top layer's states over valid steps).
    embedding_dim : on token data only (`SequenceSet.vocab_size` set, e.g. chord ids), each
        id is embedded in this many dimensions (0 = feed the ids as numbers, which is
        rarely what you want); ignored on real-valued frames. The vocabulary size comes
        from the data, never from the config.
    """

    label: ClassVar[str] = "lstm"
    sequence_fields: ClassVar[dict[str, str]] = {"units": "num_layers"}

    units: tuple[int, ...] = (32, 16)
    dropout: float = 0.0
    bidirectional: bool = False
    pooling: Literal["last", "mean"] = "last"
    embedding_dim: int = DEFAULT_EMBEDDING_DIM

    def _check(self) -> None:
        self._at_least("units", 1)
        self._fraction("dropout")
        self._at_least("embedding_dim", 0)


@dataclass(frozen=True)
class _ConvConfig(ConfigBase):
    sequence_fields: ClassVar[dict[str, str]] = {"filters": "num_blocks"}

    filters: tuple[int, ...] = (16, 32)
    kernel_size: int = 3
    pool_size: int = 2
    batch_norm: bool = True
    dropout: float = 0.1
    pooling: Literal["mean", "max"] = "mean"
    dense_units: int = 0
    embedding_dim: int = DEFAULT_EMBEDDING_DIM

    def _check(self) -> None:
        self._at_least("filters", 1)
        self._at_least("kernel_size", 1)
        self._at_least("pool_size", 1)
        self._fraction("dropout")
        self._at_least("dense_units", 0)
        self._at_least("embedding_dim", 0)


@dataclass(frozen=True)
class CNNConfig(_ConvConfig):
    """2-D CNN over the (time x feature) map, e.g. a mel spectrogram or MFCCs as an image.

    Parameters
    ----------
    filters : output channels per conv block (flat: ``num_blocks`` + ``filters_<i>``).
    kernel_size : square kernel of every conv ("same" padding).
    pool_size : max-pooling window and stride on both axes after each block (1 = none;
        ceil mode, and never below one step, so a length-1 sequence survives).
    batch_norm : batch normalisation after each conv, with statistics over valid frames only.
    dropout : after each block and before the output layer, in [0, 1).
    pooling : global pooling over the valid (time x feature) map: ``"mean"`` or ``"max"``.
    dense_units : a hidden dense layer before the output (0 = none).
    embedding_dim : on token data only, each id is embedded in this many dimensions, which
        become the feature axis of the map (0 = ids as numbers); ignored on real frames.
    """

    label: ClassVar[str] = "cnn"


@dataclass(frozen=True)
class CNN1DConfig(_ConvConfig):
    """1-D CNN over time with the D features as channels (any sequence, ``wave`` included).

    Same fields as `CNNConfig`; kernels and pooling act along time only. On token data
    the ``embedding_dim`` embedded dimensions are the input channels.
    """

    label: ClassVar[str] = "cnn1d"

    kernel_size: int = 5


@dataclass(frozen=True)
class WaveNetConfig(ConfigBase):
    """WaveNet classifier: dilated causal convolutions with gated units.

    Parameters
    ----------
    stacks : repeats of the dilation cycle.
    layers_per_stack : layers per stack, dilations 1, 2, 4, ..., 2**(layers_per_stack-1).
    residual_channels : width of the residual stream.
    skip_channels : width of the skip connections and of the head.
    kernel_size : causal kernel (>= 2); the receptive field is
        ``1 + stacks * (kernel_size - 1) * (2**layers_per_stack - 1)`` steps.
    batch_norm : batch normalisation in the head (after the 1x1 conv on the skip sum),
        with statistics over valid steps only.
    dropout : before the output layer, in [0, 1).
    pooling : ``"mean"`` or ``"max"`` over valid steps.
    embedding_dim : on token data only, each id is embedded in this many dimensions (the
        input channels; 0 = ids as numbers); ignored on real-valued frames.
    """

    label: ClassVar[str] = "wavenet"

    stacks: int = 1
    layers_per_stack: int = 4
    residual_channels: int = 16
    skip_channels: int = 32
    kernel_size: int = 2
    batch_norm: bool = True
    dropout: float = 0.0
    pooling: Literal["mean", "max"] = "mean"
    embedding_dim: int = DEFAULT_EMBEDDING_DIM

    def _check(self) -> None:
        for name in ("stacks", "layers_per_stack", "residual_channels", "skip_channels"):
            self._at_least(name, 1)
        self._at_least("kernel_size", 2)
        self._fraction("dropout")
        self._at_least("embedding_dim", 0)


@dataclass(frozen=True)
class KNNConfig(ConfigBase):
    """k-nearest neighbours on per-clip pooled features.

    Parameters
    ----------
    n_neighbors : k (capped at the number of training clips).
    weights : ``"uniform"`` or ``"distance"``.
    metric : ``"euclidean"``, ``"manhattan"`` or ``"cosine"``.
    pooling : how a clip becomes one vector (`trainables.classic`): ``"auto"`` (``"bag"`` on token
        data, ``"meanstd"`` otherwise), ``"meanstd"`` (mean and std of each feature over
        time), ``"bag"`` (token frequencies: counts / length), ``"bag2"`` (``bag`` plus
        bigram frequencies). ``bag`` / ``bag2`` need token data.

    The pooled features are z-scored first when the training config's ``standardize`` is on.
    """

    label: ClassVar[str] = "knn"

    n_neighbors: int = 5
    weights: Literal["uniform", "distance"] = "uniform"
    metric: Literal["euclidean", "manhattan", "cosine"] = "euclidean"
    pooling: Literal["auto", "meanstd", "bag", "bag2"] = "auto"

    def _check(self) -> None:
        self._at_least("n_neighbors", 1)


@dataclass(frozen=True)
class RandomForestConfig(ConfigBase):
    """Random forest on per-clip pooled features.

    Parameters
    ----------
    n_estimators : trees.
    max_depth : ``None`` = grow until pure.
    min_samples_leaf : minimum clips per leaf.
    max_features : features tried per split: ``"sqrt"``, ``"log2"`` or ``"all"``.
    pooling : ``"auto"``, ``"meanstd"``, ``"bag"`` or ``"bag2"``, as `KNNConfig.pooling`.
    """

    label: ClassVar[str] = "random_forest"

    n_estimators: int = 100
    max_depth: int | None = None
    min_samples_leaf: int = 1
    max_features: Literal["sqrt", "log2", "all"] = "sqrt"
    pooling: Literal["auto", "meanstd", "bag", "bag2"] = "auto"

    def _check(self) -> None:
        self._at_least("n_estimators", 1)
        self._at_least("max_depth", 1)
        self._at_least("min_samples_leaf", 1)
