"""Typed, frozen configs: one per model, one for the training loop, checked once at the door.

Every hyperparameter is an explicit keyword with a default and its range declared beside
it, so the rules read off the class and the leaderboard can write the values out
mechanically (`ConfigBase.to_flat`). A trial turns Tune's flat dict into these with
`ConfigBase.from_flat` (or, for the model and training configs at once,
`trainables.split_flat_config`); `trainables.config_base` holds the machinery
and `seqsweep.validation` the value types (``Int``, ``Float``, ...).

This module imports no torch: a sweep driver can check configs without loading it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from seqsweep.validation import Bool, Float, Int, Ints, Str
from trainables.config_base import MODEL_KEY, ConfigBase, frozen_config

__all__ = [
    "TrainConfig",
    "LSTMConfig",
    "CNNConfig",
    "CNN1DConfig",
    "WaveNetConfig",
    "InceptionTimeConfig",
    "KNNConfig",
    "RandomForestConfig",
    "MiniRocketConfig",
    "MultiRocketHydraConfig",
    "MODEL_CONFIGS",
    "DEFAULT_EMBEDDING_DIM",
    "DEFAULT_EMBEDDING_RANGE",
]

DEFAULT_EMBEDDING_DIM = 16
"""``embedding_dim`` of every torch model's config unless given (used on token data only)."""

DEFAULT_EMBEDDING_RANGE: dict[str, Any] = {"low": 8, "high": 64, "log": True}
"""The search range of ``embedding_dim`` for a sweep over a token feature set that does not
give one, in the sweep YAML's range form (`search.ranges.Param.parse`); copy it, never edit it."""


# ---------------------------------------------------------------------------------------
# the training loop's config
# ---------------------------------------------------------------------------------------
@frozen_config
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
    run_fields: ClassVar[tuple[str, ...]] = ("device", "num_threads")
    """How a fit runs rather than what it learns: never one of a trial's settings
    (`trainables.settings`)."""
    applies_when: ClassVar[dict[str, str]] = {"inner_fraction": "early_stopping", "monitor": "early_stopping",
                                               "standardize": "frames"}
    """Fields read only under a condition (`trainables.settings.CONDITIONS`): the inner split
    and its monitor with early stopping; standardisation on real values, not embedded ids."""

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: Float = Field(1e-3, gt=0)
    epochs: Int = Field(30, ge=1)
    batch_size: Int = Field(32, ge=1)
    weight_decay: Float = Field(0.0, ge=0.0)
    grad_clip: Float | None = Field(1.0, gt=0, description="must be > 0 (or None to turn clipping off)")
    class_weighted: Bool = True
    standardize: Bool = True
    early_stopping_patience: Int | None = Field(None, ge=1)
    inner_fraction: Float = Field(0.2, gt=0, le=0.5)
    monitor: Literal["balanced_accuracy", "accuracy", "f1_macro", "f1_weighted", "loss"] = "balanced_accuracy"
    deterministic: Bool = False
    device: Str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                        description="must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    num_threads: Int | None = Field(None, ge=1)

    @classmethod
    def _foreign_keys(cls, flat: Mapping[str, Any]) -> set[str]:
        out = {MODEL_KEY}
        name = flat.get(MODEL_KEY)
        if isinstance(name, str):
            config_cls = MODEL_CONFIGS.get(name)
            if config_cls is not None:
                out |= {k for k in flat if config_cls.is_flat_key(k)}
        return out


# ---------------------------------------------------------------------------------------
# model configs
# ---------------------------------------------------------------------------------------
class _ModelConfig(ConfigBase):
    """A model's config: in a flat dict it shares, the training config's keys are skipped.

    ``train_fields`` names the `TrainConfig` fields the family's fit reads (``None``: those its
    registry kind's fit reads, `trainables.settings.KIND_TRAIN_FIELDS`); ``applies_when``
    the fields read only under a condition (``embedding_dim`` on token data only). The
    leaderboard shows a trial exactly these settings (`trainables.settings.used_settings`).
    """

    train_fields: ClassVar[tuple[str, ...] | None] = None
    applies_when: ClassVar[dict[str, str]] = {"embedding_dim": "tokens"}

    @classmethod
    def _foreign_keys(cls, flat: Mapping[str, Any]) -> set[str]:
        return {MODEL_KEY} | {k for k in flat if TrainConfig.is_flat_key(k)}


@frozen_config
class LSTMConfig(_ModelConfig):
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

    units: Ints = (32, 16)
    dropout: Float = Field(0.0, ge=0, lt=1)
    bidirectional: Bool = False
    pooling: Literal["last", "mean"] = "last"
    embedding_dim: Int = Field(DEFAULT_EMBEDDING_DIM, ge=0)


@frozen_config
class _ConvConfig(_ModelConfig):
    sequence_fields: ClassVar[dict[str, str]] = {"filters": "num_blocks"}

    filters: Ints = (16, 32)
    kernel_size: Int = Field(3, ge=1)
    pool_size: Int = Field(2, ge=1)
    batch_norm: Bool = True
    dropout: Float = Field(0.1, ge=0, lt=1)
    pooling: Literal["mean", "max"] = "mean"
    dense_units: Int = Field(0, ge=0)
    embedding_dim: Int = Field(DEFAULT_EMBEDDING_DIM, ge=0)


@frozen_config
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


@frozen_config
class CNN1DConfig(_ConvConfig):
    """1-D CNN over time with the D features as channels (any sequence, ``wave`` included).

    Same fields as `CNNConfig`; kernels and pooling act along time only. On token data
    the ``embedding_dim`` embedded dimensions are the input channels.
    """

    label: ClassVar[str] = "cnn1d"

    kernel_size: Int = Field(5, ge=1)


@frozen_config
class WaveNetConfig(_ModelConfig):
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

    stacks: Int = Field(1, ge=1)
    layers_per_stack: Int = Field(4, ge=1)
    residual_channels: Int = Field(16, ge=1)
    skip_channels: Int = Field(32, ge=1)
    kernel_size: Int = Field(2, ge=2)
    batch_norm: Bool = True
    dropout: Float = Field(0.0, ge=0, lt=1)
    pooling: Literal["mean", "max"] = "mean"
    embedding_dim: Int = Field(DEFAULT_EMBEDDING_DIM, ge=0)


@frozen_config
class InceptionTimeConfig(_ModelConfig):
    """InceptionTime (Ismail Fawaz et al. 2020): a stack of inception modules.

    Parameters
    ----------
    depth : inception modules (the paper: 6); a residual connection spans every three.
    filters : output channels of each of a module's four branches (the paper's
        ``nb_filters``, 32); a module outputs ``4 * filters`` channels.
    kernel_size : the longest branch's kernel; the other two are ``kernel_size // 2`` and
        ``kernel_size // 4`` (the paper: 40, 20, 10). At least 4, so every branch has a
        kernel of at least 1.
    bottleneck : channels of the 1x1 convolution that a module's input goes through before
        the three long kernels (the paper: 32); 0 = none. A module whose input has one
        channel has none either, as in the paper.
    residual : the shortcut (1x1 conv + batch norm) added every three modules.
    embedding_dim : on token data only, each id is embedded in this many dimensions (the
        input channels; 0 = ids as numbers); ignored on real-valued frames.
    """

    label: ClassVar[str] = "inception_time"

    depth: Int = Field(6, ge=1)
    filters: Int = Field(32, ge=1)
    kernel_size: Int = Field(40, ge=4)
    bottleneck: Int = Field(32, ge=0)
    residual: Bool = True
    embedding_dim: Int = Field(DEFAULT_EMBEDDING_DIM, ge=0)


@frozen_config
class KNNConfig(_ModelConfig):
    """k-nearest neighbours on per-clip pooled features.

    Parameters
    ----------
    n_neighbors : k (capped at the number of training clips).
    weights : ``"uniform"`` or ``"distance"``.
    metric : ``"euclidean"``, ``"manhattan"`` or ``"cosine"``.
    pooling : how a clip becomes one vector (`trainables.classic.pooled`): ``"auto"`` (``"bag"`` on token
        data, ``"meanstd"`` otherwise), ``"meanstd"`` (mean and std of each feature over
        time), ``"bag"`` (token frequencies: counts / length), ``"bag2"`` (``bag`` plus
        bigram frequencies). ``bag`` / ``bag2`` need token data.

    The pooled features are z-scored first when the training config's ``standardize`` is on.
    """

    label: ClassVar[str] = "knn"
    train_fields: ClassVar[tuple[str, ...] | None] = ("standardize",)  # no class weighting

    n_neighbors: Int = Field(5, ge=1)
    weights: Literal["uniform", "distance"] = "uniform"
    metric: Literal["euclidean", "manhattan", "cosine"] = "euclidean"
    pooling: Literal["auto", "meanstd", "bag", "bag2"] = "auto"


@frozen_config
class RandomForestConfig(_ModelConfig):
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
    train_fields: ClassVar[tuple[str, ...] | None] = ("class_weighted",)  # trees need no z-scores

    n_estimators: Int = Field(100, ge=1)
    max_depth: Int | None = Field(None, ge=1)
    min_samples_leaf: Int = Field(1, ge=1)
    max_features: Literal["sqrt", "log2", "all"] = "sqrt"
    pooling: Literal["auto", "meanstd", "bag", "bag2"] = "auto"


@frozen_config
class _RocketConfig(_ModelConfig):
    """What both ROCKET families share (`trainables.classic.rocket`): the head and the length rule."""

    tokens: ClassVar[bool] = False  # a convolution over token ids means nothing: refused

    max_dilations: Int = Field(32, ge=1)
    head: Literal["ridge", "logistic"] = "ridge"
    alpha: Float | None = Field(None, gt=0, description="must be > 0 (or None to choose it)")
    lengths: Literal["pad", "stretch"] = "pad"


@frozen_config
class MiniRocketConfig(_RocketConfig):
    """MiniRocket (Dempster et al. 2021) features and a linear head, through aeon.

    Parameters
    ----------
    n_features : MiniRocket's features (aeon's ``n_kernels``; rounded down to a multiple of 84).
    max_dilations : maximum dilations per kernel.
    head : ``"ridge"`` (decision values, softmax with a temperature fitted on the training
        fold's leave-one-out values) or ``"logistic"`` (multinomial logistic regression).
    alpha : the head's L2 penalty (logistic: ``C = 1 / alpha``); ``None``: ridge picks it by
        leave-one-out among 10 values from 1e-3 to 1e3 (as aeon), logistic uses 1.0.
    lengths : how sequences reach the fitted length (the training fold's longest, at least
        9): ``"pad"`` repeats a shorter one's last frame (a longer one is resampled),
        ``"stretch"`` resamples every sequence linearly.
    """

    label: ClassVar[str] = "minirocket"

    n_features: Int = Field(10_000, ge=84)


@frozen_config
class MultiRocketHydraConfig(_RocketConfig):
    """MultiRocket (Tan et al. 2022) and Hydra (Dempster et al. 2023) features side by side,
    as aeon's ``MultiRocketHydraClassifier``, with `MiniRocketConfig`'s head and lengths.

    Parameters
    ----------
    n_kernels : MultiRocket's kernels (4 pooled features each, on the series and its
        first difference).
    hydra_kernels : Hydra's kernels per group.
    hydra_groups : Hydra's groups per dilation.
    max_dilations, head, alpha, lengths : as `MiniRocketConfig`.
    """

    label: ClassVar[str] = "multirocket_hydra"

    n_kernels: Int = Field(6_250, ge=84)
    hydra_kernels: Int = Field(8, ge=1)
    hydra_groups: Int = Field(64, ge=2)


MODEL_CONFIGS: dict[str, type[ConfigBase]] = {
    cls.label: cls for cls in (LSTMConfig, CNNConfig, CNN1DConfig, WaveNetConfig, InceptionTimeConfig, KNNConfig,
                RandomForestConfig, MiniRocketConfig, MultiRocketHydraConfig)
}
"""Model name -> config class: the configs of `trainables.registry`'s models (read by
`TrainConfig.from_flat` to skip the named model's keys)."""
