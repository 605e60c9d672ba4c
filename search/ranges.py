"""A model family's search space, as the sweep spec's ``models`` section writes it.

A hyperparameter under ``models.<family>`` is written one of three ways::

    dropout: 0.2                             # fixed
    batch_size: [16, 32, 64]                 # a choice among values
    lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a range (int if both ends are ints)

For the per-layer fields (the LSTM's ``units``, the CNNs' ``filters``) the range is
sampled once per layer, each layer its own parameter (``units_0``, ``units_1``, ...),
with the layer count (``num_layers`` / ``num_blocks``) a parameter of its own.
`Param` is one hyperparameter, `ModelSpace` one family's, `Models` the whole section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)

from search.section import Section
from seqsweep.errors import ConfigError
from seqsweep.validation import PlainBool, PlainNumber, as_number, broken, config_error
from trainables.configs import MODEL_CONFIGS, TrainConfig

__all__ = ["Range", "Param", "ModelSpace", "Models"]


class Range(Section):
    """``{low, high, log, step}``: an int range if both ends are ints, else a float range."""

    low: PlainNumber
    high: PlainNumber
    log: PlainBool = False
    step: Any = None  # >= 0, of the range's kind: checked with the ends

    @property
    def kind(self) -> type:
        return int if all(isinstance(v, int) for v in (self.low, self.high)) else float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        low, high = self.kind(self.low), self.kind(self.high)
        if not low < high:
            raise broken("a range needs low < high", f"low={low}, high={high}")
        if self.log and low <= 0:
            raise broken("must be > 0 on a log scale", low, at="low")
        if self.step is not None:
            try:
                step = as_number(self.step, self.kind)
            except ConfigError as exc:
                raise broken(exc.rule, exc.value, at="step") from None
            if step < 0:
                raise broken("must be >= 0", step, at="step")
            if self.log:
                raise broken("cannot be combined with log: true", step, at="step")
        return self


@dataclass(frozen=True)
class Param:
    """One hyperparameter: ``fixed`` (``value``), ``choice`` (``choices``), or a
    ``int``/``float`` range from ``low`` to ``high`` (``log`` scale, optional ``step``)."""

    kind: str
    value: Any = None
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @classmethod
    def parse(cls, where: str, raw: Any) -> Param:
        if isinstance(raw, list):
            if not raw:
                raise ConfigError(where, "a list of choices needs at least one value", raw)
            if any(isinstance(v, (dict, list)) for v in raw):
                raise ConfigError(where, "choices must be plain values (numbers, strings, booleans)", raw)
            return cls("choice", choices=tuple(raw))
        if isinstance(raw, dict):
            try:
                r = Range.model_validate(raw)
            except ValidationError as exc:
                raise config_error(exc, model=Range, prefix=where) from None
            kind = r.kind
            return cls(kind.__name__, low=kind(r.low), high=kind(r.high), log=r.log,
                       step=None if r.step is None else kind(r.step))
        return cls("fixed", value=raw)

    def raw(self) -> Any:
        """The YAML form `parse` reads."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "choice":
            return list(self.choices)
        return {"low": self.low, "high": self.high, "log": self.log,
                **({} if self.step is None else {"step": self.step})}

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask an Optuna trial for this parameter under ``name``."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def grid_values(self, where: str) -> list:
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int" and not self.log:
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        raise ConfigError(where, "the grid sampler needs fixed values, lists of choices or integer ranges",
                          f"a {'log-scale ' if self.log else ''}{self.kind} range")


@dataclass(frozen=True)
class ModelSpace:
    """One model family's search space: its parameters, and per-layer ranges. The keys a
    family takes are its config's (`trainables.configs.MODEL_CONFIGS`) and `TrainConfig`'s."""

    name: str
    params: dict  # flat key -> Param
    per_layer: dict  # sequence field (units, filters) -> (count key, Param)

    @classmethod
    def parse(cls, where: str, name: str, raw: Any) -> ModelSpace:
        if name not in MODEL_CONFIGS:
            raise ConfigError(where, f"model family must be one of {list(MODEL_CONFIGS)}", name)
        config_cls = MODEL_CONFIGS[name]
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(where, "must map hyperparameter names to values, lists or ranges", raw)
        sequence_fields = dict(config_cls.sequence_fields)
        allowed = sorted(set(config_cls.flat_key_names()) | set(TrainConfig.flat_key_names())
                         | set(sequence_fields))
        params, per_layer = {}, {}
        for key, value in raw.items():
            at = f"{where}.{key}"
            if key in sequence_fields:
                per_layer[key] = (sequence_fields[key], Param.parse(at, value))
            elif config_cls.is_flat_key(key) or TrainConfig.is_flat_key(key):
                params[key] = Param.parse(at, value)
            else:
                raise ConfigError(at, f"is not a hyperparameter of {name!r}; allowed: {allowed}", key)
        for seq, count_key in sequence_fields.items():
            if count_key in params and seq not in per_layer:
                raise ConfigError(f"{where}.{seq}", f"is needed when {count_key!r} is searched", None)
        return cls(name, params, per_layer)

    def raw(self) -> dict[str, Any]:
        """The YAML form `parse` reads."""
        return {**{k: p.raw() for k, p in self.params.items()},
                **{seq: p.raw() for seq, (_, p) in self.per_layer.items()}}

    def all_params(self) -> list[tuple[str, Param]]:
        """Every (key, Param): the flat ones, then the per-layer ones."""
        return [*self.params.items(), *((seq, p) for seq, (_, p) in self.per_layer.items())]


def _model_spaces(raw: Any) -> tuple[ModelSpace, ...]:
    """The ``models`` section; its errors are named below ``models`` (``lstm.lr.low``)."""
    if isinstance(raw, tuple) and all(isinstance(m, ModelSpace) for m in raw):
        return raw
    if not isinstance(raw, dict) or not raw:
        raise broken(f"must map one or more model families ({list(MODEL_CONFIGS)}) to their search ranges", raw)
    return tuple(ModelSpace.parse(str(n), n, r) for n, r in raw.items())


Models = Annotated[tuple[ModelSpace, ...], PlainValidator(_model_spaces),
                   PlainSerializer(lambda models: {m.name: m.raw() for m in models})]
