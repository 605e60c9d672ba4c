"""Which settings a fit used, read off the typed configs: what a leaderboard row shows.

A trial's settings are its model config's flat keys (`ConfigBase.to_flat`) plus the
`TrainConfig` fields its family's fit reads, less those whose condition does not hold:

* the training fields a family reads: its config's ``train_fields`` if it declares them
  (knn: ``standardize``; random_forest: ``class_weighted``), else its registry kind's
  (`KIND_TRAIN_FIELDS`: a torch family reads every training field but the run fields
  ``device`` and ``num_threads``; a scikit-learn-kind fit is handed ``class_weighted``
  and ``standardize`` by `trainables.training.fit_classic`);
* ``applies_when`` on the config classes names a condition (`CONDITIONS`) for a field:
  ``embedding_dim`` on token data only; ``inner_fraction`` and ``monitor`` with early
  stopping only; ``standardize`` unless the model embeds token ids.

A family registered later is covered by what its config declares, with no list of
column names to update. `setting_keys` gives every flat key the registry can produce,
in a stable order, with its declared type (integer or not).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainables.config_base import ConfigBase
from trainables.configs import TrainConfig
from trainables.registry import get_model_spec, model_names

__all__ = ["KIND_TRAIN_FIELDS", "CONDITIONS", "Applies", "train_fields", "used_settings", "setting_keys",
           "integer_keys"]

KIND_TRAIN_FIELDS: dict[str, tuple[str, ...]] = {
    "torch": tuple(f for f in TrainConfig.field_names() if f not in TrainConfig.run_fields),
    "sklearn": ("class_weighted", "standardize"),  # what trainables.training.fit_classic hands the builder
}
"""Registry kind -> the `TrainConfig` fields its fit reads, for a family that declares none."""


@dataclass(frozen=True)
class Applies:
    """What the conditions of ``applies_when`` are judged on: one trial on one data set."""

    tokens: bool  # the data are token ids (`SequenceSet.vocab_size` set)
    model_config: ConfigBase
    train_config: TrainConfig


def _embeds(a: Applies) -> bool:
    return a.tokens and int(getattr(a.model_config, "embedding_dim", 0) or 0) > 0


CONDITIONS: dict[str, Callable[[Applies], bool]] = {
    "tokens": lambda a: a.tokens,
    "frames": lambda a: not _embeds(a),  # the model reads real values, not embedded ids
    "early_stopping": lambda a: a.train_config.early_stopping_patience is not None,
}
"""Condition name (as ``applies_when`` writes it) -> whether it holds."""


def train_fields(name: str) -> tuple[str, ...]:
    """The `TrainConfig` fields family ``name``'s fit reads (its declaration, else its kind's)."""
    spec = get_model_spec(name)
    declared = getattr(spec.config_cls, "train_fields", None)
    return tuple(declared) if declared is not None else KIND_TRAIN_FIELDS.get(spec.kind, ())


def _field_of(cls: type[ConfigBase], key: str) -> str:
    """The field a flat key belongs to (``num_layers`` and ``units_1`` -> ``units``)."""
    for name, count in cls.sequence_fields.items():
        suffix = key[len(name) + 1:]
        if key == count or (key.startswith(f"{name}_") and suffix.isdigit()):
            return name
    return key


def _holds(cls: type[ConfigBase], key: str, applies: Applies) -> bool:
    condition = getattr(cls, "applies_when", {}).get(_field_of(cls, key))
    return condition is None or CONDITIONS[condition](applies)


def used_settings(name: str, model_config: ConfigBase, train_config: TrainConfig, *,
                  tokens: bool) -> dict[str, Any]:
    """The flat settings a fit of family ``name`` read: model keys first, then training keys.

    ``model_config`` / ``train_config`` are the trial's typed configs; ``tokens`` whether
    the data are token ids. A key its family does not read, or whose condition fails, is
    left out, never filled with a default.
    """
    applies = Applies(bool(tokens), model_config, train_config)
    out = {k: v for k, v in model_config.to_flat().items() if _holds(type(model_config), k, applies)}
    train = train_config.to_flat()
    out.update({k: train[k] for k in train_fields(name) if _holds(TrainConfig, k, applies)})
    return out


def _is_int(annotation: Any) -> bool:
    """Whether a declared type holds integers only (``Int``, ``Int | None``, ``Ints``' elements)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_int(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(kinds) and all(_is_int(a) for a in kinds)
    if origin is tuple:
        return _is_int(typing.get_args(annotation)[0])
    return annotation is int


def _keys_of(cls: type[ConfigBase]) -> list[tuple[str, bool]]:
    """(flat key, integer?) of ``cls`` in declaration order; a tuple field as ``<count key>``
    and ``<name>_`` (the prefix of its element keys)."""
    out = []
    for name, field in cls.__pydantic_fields__.items():
        if name in cls.sequence_fields:
            out += [(cls.sequence_fields[name], True), (f"{name}_", _is_int(field.annotation))]
        else:
            out.append((name, _is_int(field.annotation)))
    return out


def setting_keys() -> list[tuple[str, str, bool]]:
    """Every (family, flat key, integer?) the registry's configs declare: the model keys of
    each family in registry order, then the training keys each family reads. A tuple
    field's element keys appear once, as their prefix (``units_``)."""
    out = []
    for name in model_names():
        out += [(name, key, is_int) for key, is_int in _keys_of(get_model_spec(name).config_cls)]
    for name in model_names():
        reads = set(train_fields(name))
        out += [(name, key, is_int) for key, is_int in _keys_of(TrainConfig) if key in reads]
    return out


def integer_keys() -> tuple[set[str], set[str]]:
    """(flat keys, element-key prefixes) that every family declaring them declares as integers."""
    verdict: dict[str, bool] = {}
    for _, key, is_int in setting_keys():
        verdict[key] = verdict.get(key, True) and is_int
    keys = {k for k, v in verdict.items() if v and not k.endswith("_")}
    return keys, {k for k, v in verdict.items() if v and k.endswith("_")}
