"""The one registry of models: name -> (typed config, builder), lazy and loud.

A builder's module is imported only when a model of that name is built, so checking a
sweep's configs needs neither torch nor scikit-learn's estimators; an unknown name raises
`ConfigError` listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from seqsweep.errors import ConfigError
from trainables.config_base import MODEL_KEY, ConfigBase
from trainables.configs import MODEL_CONFIGS, TrainConfig

__all__ = [
    "ModelSpec",
    "model_names",
    "get_model_spec",
    "make_model_config",
    "build_model",
    "split_flat_config",
]

Builder = Callable[..., Any]
"""``(config, *, input_dim, n_classes, vocab_size, **options) -> model``."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes
    ----------
    name : the registry name (``"lstm"``, ...).
    config_cls : its frozen config class (`trainables.configs.MODEL_CONFIGS`).
    kind : ``"torch"`` (trained by the loop) or ``"sklearn"`` (fitted once, as a scikit-learn
        estimator: the pooled baselines and the ROCKET families).
    load : imports the builder's module and returns the builder (called on first use).
    summary : one line for listings.
    """

    name: str
    config_cls: type[ConfigBase]
    kind: Literal["torch", "sklearn"]
    load: Callable[[], Builder]
    summary: str

    @property
    def builder(self) -> Builder:
        """The builder function ``(config, *, input_dim, n_classes, vocab_size, ...) -> model``."""
        return self.load()


# each builder's module is imported only when a model of that name is built
def _import_lstm() -> Builder:
    from trainables.networks.lstm import build_lstm

    return build_lstm


def _import_cnn() -> Builder:
    from trainables.networks.cnn import build_cnn

    return build_cnn


def _import_cnn1d() -> Builder:
    from trainables.networks.cnn import build_cnn1d

    return build_cnn1d


def _import_wavenet() -> Builder:
    from trainables.networks.wavenet import build_wavenet

    return build_wavenet


def _import_inception_time() -> Builder:
    from trainables.networks.inception import build_inception_time

    return build_inception_time


def _import_knn() -> Builder:
    from trainables.classic.pooled import build_knn

    return build_knn


def _import_random_forest() -> Builder:
    from trainables.classic.pooled import build_random_forest

    return build_random_forest


def _import_minirocket() -> Builder:
    from trainables.classic.rocket import build_minirocket

    return build_minirocket


def _import_multirocket_hydra() -> Builder:
    from trainables.classic.rocket import build_multirocket_hydra

    return build_multirocket_hydra


_BUILDERS: dict[str, tuple[Literal["torch", "sklearn"], Callable[[], Builder], str]] = {
    "lstm": ("torch", _import_lstm, "stacked LSTM on packed sequences"),
    "cnn": ("torch", _import_cnn, "2-D CNN over the time x feature map"),
    "cnn1d": ("torch", _import_cnn1d, "1-D CNN over time"),
    "wavenet": ("torch", _import_wavenet, "gated dilated causal convs"),
    "inception_time": ("torch", _import_inception_time,
                       "InceptionTime: inception modules (3 kernel sizes + max-pool), residual every 3"),
    "knn": ("sklearn", _import_knn, "k-NN on pooled mean/std (bags of tokens on token data)"),
    "random_forest": ("sklearn", _import_random_forest,
                      "random forest on pooled mean/std (bags of tokens on token data)"),
    "minirocket": ("sklearn", _import_minirocket, "MiniRocket features + linear head (aeon; no token data)"),
    "multirocket_hydra": ("sklearn", _import_multirocket_hydra,
                          "MultiRocket + Hydra features + linear head (aeon; no token data)"),
}
"""Model name -> (kind, import function of its builder, summary); its config is
``MODEL_CONFIGS[name]``."""

_SPECS: dict[str, ModelSpec] = {
    name: ModelSpec(name, config_cls, *_BUILDERS[name]) for name, config_cls in MODEL_CONFIGS.items()
}


def model_names() -> tuple[str, ...]:
    """Every registered model name, in registration order."""
    return tuple(_SPECS)


def get_model_spec(name: str) -> ModelSpec:
    """The `ModelSpec` of ``name``; `ConfigError` listing the valid names if there is none."""
    spec = _SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(MODEL_KEY, f"must be one of {list(_SPECS)}", name)
    return spec


def make_model_config(name: str, config: ConfigBase | Mapping[str, Any] | None = None) -> ConfigBase:
    """``config`` as ``name``'s typed config: a typed config is checked, a mapping goes
    through ``from_flat`` (training keys and ``model`` ignored), ``None`` gives the defaults."""
    spec = get_model_spec(name)
    if config is None:
        return spec.config_cls()
    if isinstance(config, ConfigBase):
        if type(config) is not spec.config_cls:
            raise ConfigError(
                f"{name} config", f"must be a {spec.config_cls.__name__}", type(config).__name__
            )
        return config
    return spec.config_cls.from_flat(config)


def build_model(
    name: str,
    config: ConfigBase | Mapping[str, Any] | None = None,
    *,
    input_dim: int,
    n_classes: int,
    vocab_size: int | None = None,
    **options: Any,
) -> Any:
    """Build model ``name`` for frames of ``input_dim`` values and ``n_classes`` classes.

    ``vocab_size`` is the data's (`features.sequences.SequenceSet.vocab_size`): for token
    data (one id per step, ``input_dim`` 1) the torch models embed the ids in their
    config's ``embedding_dim`` dimensions, an id outside ``[0, vocab_size)`` reading as
    the unknown id 0; None means real-valued frames. The classic baselines read the
    vocabulary from the data they are fitted on.

    Returns an untrained `trainables.networks.layers.SequenceClassifier` (torch models) or an unfitted
    `trainables.classic.pooled.PooledClassifier` (``options``: ``seed``, ``n_jobs``,
    ``class_weighted``, ``standardize``). The caller seeds torch before building: model
    code never picks a seed.
    """
    if int(input_dim) < 1:
        raise ConfigError("input_dim", "must be >= 1", input_dim)
    if int(n_classes) < 2:
        raise ConfigError("n_classes", "must be >= 2", n_classes)
    if vocab_size is not None:
        if isinstance(vocab_size, bool) or int(vocab_size) != vocab_size or int(vocab_size) < 1:
            raise ConfigError("vocab_size", "must be a positive integer (or None for real-valued frames)", vocab_size)
        if int(input_dim) != 1:
            raise ConfigError("vocab_size", "token data have one id per step (input_dim = 1)",
                              f"input_dim={input_dim}")
        vocab_size = int(vocab_size)
    spec = get_model_spec(name)
    typed = make_model_config(name, config)
    return spec.builder(typed, input_dim=int(input_dim), n_classes=int(n_classes), vocab_size=vocab_size,
                        **options)


def split_flat_config(
    flat: Mapping[str, Any], *, ignore: Iterable[str] = ()
) -> tuple[str, ConfigBase, TrainConfig]:
    """Turn one flat Tune/Optuna config into ``(model name, model config, train config)``.

    ``flat`` holds ``"model"`` plus any keys of that model's config and of `TrainConfig`;
    keys in ``ignore`` (e.g. the sweep's own ``seeds``, ``folds``) are skipped; any other
    key raises `ConfigError` listing the valid ones. Missing keys keep their defaults::

        split_flat_config({"model": "lstm", "lr": 3e-3, "num_layers": 2, "units_0": 32, "units_1": 16})
        -> ("lstm", LSTMConfig(units=(32, 16), ...), TrainConfig(lr=0.003, ...))
    """
    if not isinstance(flat, Mapping) or MODEL_KEY not in flat:
        raise ConfigError(MODEL_KEY, f"a flat config needs a {MODEL_KEY!r} key naming one of {list(_SPECS)}", None)
    name = flat[MODEL_KEY]
    spec = get_model_spec(name)
    ignore = set(ignore)
    unknown = sorted(
        str(k)
        for k in flat
        if k != MODEL_KEY and k not in ignore and not spec.config_cls.is_flat_key(k) and not TrainConfig.is_flat_key(k)
    )
    if unknown:
        valid = spec.config_cls.flat_key_names() + TrainConfig.flat_key_names()
        raise ConfigError(f"config key {unknown[0]!r}", f"must be one of {valid} for model {name!r}", unknown[0])
    return name, spec.config_cls.from_flat(flat, ignore=ignore), TrainConfig.from_flat(flat, ignore=ignore)
