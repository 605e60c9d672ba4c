"""The base of every typed config: declared pydantic fields, project errors, a flat-dict form.

A config is a frozen pydantic dataclass (`frozen_config`): its fields, defaults and ranges
are declared on the class (``lr: Float = Field(1e-3, gt=0)``) and checked once, when it
is built. A failed check raises the project's `ConfigError` (`seqsweep.validation.config_error`)
naming each broken field (``train.lr``), pydantic's rule (``Input should be greater than
0``) and the value, never pydantic's ``ValidationError``. Its value types
(`seqsweep.validation`: ``Int``, ``Float``, ...) take what Optuna and Tune hand over (numpy
scalars, ``32.0`` from a ``quniform``) and refuse what would be a silent surprise (a string
for a number, ``1`` for a bool, NaN).

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
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
import pydantic.dataclasses
from pydantic import ConfigDict, ValidationError
from pydantic_core import PydanticUndefined

from seqsweep.errors import ConfigError
from seqsweep.validation import as_int, config_error

__all__ = ["ConfigBase", "frozen_config", "MODEL_KEY"]

MODEL_KEY = "model"
"""The flat-config key that names the model (``{"model": "lstm", ...}``)."""


_SIGNATURE_ERRORS = frozenset({"unexpected_keyword_argument", "unexpected_positional_argument"})


def _signature_error(cls: type, exc: ValidationError) -> TypeError | None:
    """A wrong argument, as Python says it for any function (`TypeError`); None if none."""
    for error in exc.errors(include_url=False):
        if error["type"] in _SIGNATURE_ERRORS:
            name = error["loc"][0]
            what = f"keyword argument {name!r}" if isinstance(name, str) else "positional argument"
            return TypeError(f"{cls.__name__}.__init__() got an unexpected {what}")
    return None


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
            kind = type(self)
            raise _signature_error(kind, exc) or config_error(exc, model=kind, prefix=kind.label) from None

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
        count = as_int(flat[count_key])
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
