"""The base of every typed config: declared pydantic fields, project errors, a flat-dict form.

A config is a frozen pydantic dataclass (`frozen_config`): its fields, defaults and ranges
are declared on the class (``lr: Float = Field(1e-3, gt=0)``) and checked once, when it
is built. A failed check raises the project's `ConfigError` naming the field
(``train.lr``), the rule (``must be > 0``) and the value, never pydantic's
``ValidationError``. The value types below take what Optuna and Tune hand over (numpy
scalars, ``32.0`` from a ``quniform``) and refuse what would be a silent surprise (a
string for a number, ``1`` for a bool, NaN).

A Ray Tune / Optuna trial receives one *flat* dict such as::

    {"model": "lstm", "lr": 1e-3, "num_layers": 2, "units_0": 32, "units_1": 16, "dropout": 0.2}

and turns it into typed objects with `ConfigBase.from_flat`. A tuple-valued field (the
LSTM's per-layer ``units``, the CNNs' per-block ``filters``) is flattened as a count key
plus one key per element (``num_layers`` + ``units_0``, ``units_1``, ...); element keys
past the count are ignored, so a static search space may sample ``units_0..units_3`` and
let ``num_layers`` pick.
"""

from __future__ import annotations

import functools
import math
import numbers
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import annotated_types
import numpy as np
import pydantic.dataclasses
from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, PydanticUndefined

from seqsweep.errors import ConfigError

__all__ = ["ConfigBase", "frozen_config", "MODEL_KEY", "Int", "Float", "Bool", "Str", "Ints"]

MODEL_KEY = "model"
"""The flat-config key that names the model (``{"model": "lstm", ...}``)."""


# ---------------------------------------------------------------------------------------
# value types: what a field accepts before its range is checked
# ---------------------------------------------------------------------------------------
def _rule(text: str) -> PydanticCustomError:
    return PydanticCustomError("config_type", text)


def _as_int(value: Any) -> int | None:
    """``value`` as an int (numpy ints, integral floats such as 32.0 included), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if math.isfinite(float(value)) and float(value).is_integer():
        return int(value)
    return None


def _integer(value: Any) -> int:
    out = _as_int(value)
    if out is None:
        raise _rule("must be an integer")
    return out


def _finite(value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value)):
        return float(value)
    raise _rule("must be a finite number")


def _boolean(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise _rule("must be true or false")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _rule("must be a string")


def _sequence(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Iterable, numbers.Number)):
        raise _rule("must be a sequence of values")
    items = tuple(value) if isinstance(value, Iterable) else (value,)
    if not items:
        raise _rule("must hold at least one value")
    return items


Int = Annotated[int, BeforeValidator(_integer)]
"""An integer: numpy ints and integral floats (``32.0``) pass; bools, ``2.5`` and strings do not."""
Float = Annotated[float, BeforeValidator(_finite)]
"""A finite real number (ints and numpy scalars pass; bools, strings, NaN and inf do not)."""
Bool = Annotated[bool, BeforeValidator(_boolean)]
"""``True`` or ``False`` (numpy bools pass; ``1`` and ``"yes"`` do not)."""
Str = Annotated[str, BeforeValidator(_string)]
"""A string."""
Ints = Annotated[tuple[Annotated[Int, annotated_types.Ge(1)], ...], BeforeValidator(_sequence)]
"""One or more integers >= 1, e.g. widths per layer (a scalar becomes a 1-tuple)."""


# ---------------------------------------------------------------------------------------
# pydantic's ValidationError -> the project's ConfigError
# ---------------------------------------------------------------------------------------
_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                           "string_pattern_mismatch"})
_SIGNATURE_ERRORS = frozenset({"unexpected_keyword_argument", "unexpected_positional_argument"})


def _bounds_rule(bounds: Iterable[Any]) -> str | None:
    """``"must be >= 1"``, ``"must be in [0, 1)"``, ... from annotated_types bounds."""
    low = high = None
    for b in bounds:
        if isinstance(b, annotated_types.Ge):
            low = ("[", ">=", b.ge)
        elif isinstance(b, annotated_types.Gt):
            low = ("(", ">", b.gt)
        elif isinstance(b, annotated_types.Le):
            high = ("]", "<=", b.le)
        elif isinstance(b, annotated_types.Lt):
            high = (")", "<", b.lt)
    if low and high:
        return f"must be in {low[0]}{low[2]}, {high[2]}{high[0]}"
    if low or high:
        _, op, bound = low or high
        return f"must be {op} {bound}"
    return None


def _literal_values(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return [v for arg in typing.get_args(annotation) for v in _literal_values(arg)]


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, *metadata]`` -> ``(T, metadata)``."""
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        return base, metadata
    return annotation, []


def _typed_input(annotation: Any, metadata: list[Any], value: Any) -> Any:
    """``value`` as the type turns it (``-1`` -> ``-1.0``), as the range check saw it."""
    kept = tuple(m for m in metadata if not isinstance(m, annotated_types.BaseMetadata))
    try:
        return TypeAdapter(Annotated[(annotation, *kept)] if kept else annotation).validate_python(value)
    except ValidationError:
        return value


def _error_order(error: Any) -> int:
    """Wrong arguments first, then wrong types, bounds, patterns (the order in which a
    dataclass and its hand-written checks used to fail)."""
    kind = error["type"]
    return 0 if kind in _SIGNATURE_ERRORS else 3 if kind == "string_pattern_mismatch" else 2 if kind in _RANGE_ERRORS else 1


def _config_error(cls: type[ConfigBase], exc: ValidationError) -> Exception:
    """The first broken rule of ``exc`` as `ConfigError` (a wrong argument as `TypeError`)."""
    error = min(exc.errors(include_url=False), key=_error_order)  # the first of the earliest kind
    name, *index = error["loc"]
    if error["type"] in _SIGNATURE_ERRORS:
        what = f"keyword argument {name!r}" if isinstance(name, str) else "positional argument"
        return TypeError(f"{cls.__name__}.__init__() got an unexpected {what}")
    if isinstance(name, int):  # a positional argument
        name = cls.field_names()[name]
    where = f"{cls.label}.{name}" + "".join(f"[{i}]" for i in index)
    field = cls.__pydantic_fields__[name]
    rule, value = error["msg"], error["input"]
    if error["type"] == "literal_error":
        rule = f"must be one of {_literal_values(field.annotation)}"
    elif error["type"] in _RANGE_ERRORS:
        annotation, metadata = field.annotation, list(field.metadata)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) and not index else {}
        for _ in index:  # an element of a tuple field: the element's own type
            annotation, metadata = _split(typing.get_args(annotation)[0])
        rule = str(extra.get("rule") or _bounds_rule(metadata) or rule)
        value = _typed_input(annotation, metadata, value)
    return ConfigError(where, rule, value)


_PYDANTIC = ConfigDict(extra="forbid", regex_engine="python-re")
"""Unknown keywords are refused; ``pattern`` keeps Python's ``re`` semantics."""

_C = TypeVar("_C", bound=type)


def frozen_config(cls: _C) -> _C:
    """Make ``cls`` (a `ConfigBase` subclass) a frozen pydantic dataclass whose failed
    checks raise `ConfigError`. Frozen dataclasses compare and hash by value, and
    ``dataclasses.replace`` checks the new values again."""
    cls = pydantic.dataclasses.dataclass(frozen=True, config=_PYDANTIC)(cls)
    validate = cls.__init__

    @functools.wraps(validate)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as exc:
            raise _config_error(type(self), exc) from None

    cls.__init__ = __init__
    return cls


# ---------------------------------------------------------------------------------------
# the base class and the flat form
# ---------------------------------------------------------------------------------------
class ConfigBase:
    """A frozen, validated config with a flat-dict form.

    Subclasses are decorated with `frozen_config`, declare their fields with defaults and
    ranges, set ``label`` (the prefix of every error's ``where``) and list tuple fields
    and their count keys in ``sequence_fields``.
    """

    label: ClassVar[str] = "config"
    sequence_fields: ClassVar[dict[str, str]] = {}
    __pydantic_fields__: ClassVar[dict[str, Any]]

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The field names, in declaration order."""
        return tuple(cls.__pydantic_fields__)

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
        return {MODEL_KEY}

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
        for name, field in cls.__pydantic_fields__.items():
            if name in cls.sequence_fields:
                value = cls._sequence_from_flat(name, flat, default=field.default)
                if value is not PydanticUndefined:
                    kwargs[name] = value
            elif name in flat:
                kwargs[name] = flat[name]
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
            return PydanticUndefined
        count = _as_int(flat[count_key])
        if count is None:
            raise ConfigError(f"{cls.label}.{count_key}", "must be an integer", flat[count_key])
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
