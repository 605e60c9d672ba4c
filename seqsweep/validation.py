"""Pydantic's validation as the project's `ConfigError`: value types, broken rules, one formatter.

Typed configs (`trainables.configs`) and the sweep spec's sections (`search.spec`) declare
their rules as pydantic fields (a rule pydantic's message does not say well is the field's
``description``); a failed check becomes one `ConfigError` through `config_error`, which
names each broken setting (``cv.folds``, ``lstm.units[1]``), its rule and its value. A rule
no field can declare is raised as `broken` inside a validator.

Two families of value types, which differ in what they take:

- `Int`, `Float`, `Bool`, `Str`, `Ints`: the values a trial is handed by Tune and Optuna, so
  numpy scalars and ``32.0`` (a ``quniform`` sample) pass; NaN and inf do not.
- `PlainInt`, `PlainFloat`, `PlainNumber`, `PlainBool`, `one_of`: the values a YAML or JSON
  file holds, Python's ``int``, ``float`` and ``bool`` (numpy ints and bools are refused;
  ``2.0`` is an integer; NaN and inf are numbers).

Both refuse a bool for a number and a string for anything but `Str`.
"""

from __future__ import annotations

import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import annotated_types
import numpy as np
from pydantic import BeforeValidator, PlainValidator, ValidationError
from pydantic.fields import FieldInfo

from seqsweep.errors import ConfigError

__all__ = ["broken", "config_error",
           "Int", "Float", "Bool", "Str", "Ints", "as_int",
           "PlainInt", "PlainFloat", "PlainNumber", "PlainBool", "one_of", "as_number"]


def broken(rule: str, value: Any, *, at: str = "") -> ConfigError:
    """A rule broken inside a validator, to raise there: `config_error` names it where it is
    validated (then ``.at``, a key below), with its rule and value."""
    return ConfigError(at, rule, value)


# ---------------------------------------------------------------------------------------
# values a trial is handed (Tune, Optuna): numpy scalars pass
# ---------------------------------------------------------------------------------------
def as_int(value: Any) -> int | None:
    """``value`` as an int (numpy ints, integral floats such as 32.0 included), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if math.isfinite(float(value)) and float(value).is_integer():
        return int(value)
    return None


def _integer(value: Any) -> int:
    out = as_int(value)
    if out is None:
        raise broken("must be an integer", value)
    return out


def _finite(value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value)):
        return float(value)
    raise broken("must be a finite number", value)


def _boolean(kinds: type | tuple[type, ...]) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if isinstance(value, kinds):
            return bool(value)
        raise broken("must be true or false", value)

    return check


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise broken("must be a string", value)


def _sequence(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Iterable, numbers.Number)):
        raise broken("must be a sequence of values", value)
    items = tuple(value) if isinstance(value, Iterable) else (value,)
    if not items:
        raise broken("must hold at least one value", value)
    return items


Int = Annotated[int, BeforeValidator(_integer)]
"""An integer: numpy ints and integral floats (``32.0``) pass; bools, ``2.5`` and strings do not."""
Float = Annotated[float, BeforeValidator(_finite)]
"""A finite real number (ints and numpy scalars pass; bools, strings, NaN and inf do not)."""
Bool = Annotated[bool, BeforeValidator(_boolean((bool, np.bool_)))]
"""``True`` or ``False`` (numpy bools pass; ``1`` and ``"yes"`` do not)."""
Str = Annotated[str, BeforeValidator(_string)]
"""A string."""
Ints = Annotated[tuple[Annotated[Int, annotated_types.Ge(1)], ...], BeforeValidator(_sequence)]
"""One or more integers >= 1, e.g. widths per layer (a scalar becomes a 1-tuple)."""


# ---------------------------------------------------------------------------------------
# values a YAML or JSON file holds: Python scalars
# ---------------------------------------------------------------------------------------
def as_number(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (``int``: a whole number, even if written ``2.0``); never a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            kind is int and not float(value).is_integer()):
        raise broken(f"must be {'an integer' if kind is int else 'a number'}", value)
    return kind(value)


def _number(value: Any) -> int | float:
    """An int or a float as written (a range's ends; their kind is decided together)."""
    as_number(value, float)
    return value


def one_of(values: tuple, rule: str | None = None) -> Any:
    """A `Literal` of ``values`` whose error reads ``must be one of [...]`` (or ``rule``)."""
    rule = rule or f"must be one of {list(values)}"

    def check(value: Any) -> Any:
        if value not in values:
            raise broken(rule, value)
        return value

    return Annotated[Literal[values], PlainValidator(check)]


PlainInt = Annotated[int, BeforeValidator(lambda v: as_number(v, int))]
"""An int, or a float that is a whole number (``2.0``); bools, ``2.5`` and numpy ints are refused."""
PlainFloat = Annotated[float, BeforeValidator(lambda v: as_number(v, float))]
"""An int or a float, as a float (NaN and inf included); bools and strings are refused."""
PlainNumber = Annotated[float | int, PlainValidator(_number)]
"""An int or a float, kept as written."""
PlainBool = Annotated[bool, PlainValidator(_boolean(bool))]
"""``True`` or ``False`` (numpy bools, ``1`` and ``"yes"`` are refused)."""


# ---------------------------------------------------------------------------------------
# pydantic's ValidationError -> the project's ConfigError
# ---------------------------------------------------------------------------------------
def _unwrap(annotation: Any) -> Any:
    """``annotation`` without ``Annotated[...]`` and without an ``Optional``'s ``None``."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif _is_union(annotation) and type(None) in typing.get_args(annotation):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _field_path(model: Any, loc: tuple) -> tuple[tuple, FieldInfo | None]:
    """pydantic's ``loc`` as the user wrote the setting, and the field it names (None below
    an element): a positional argument by its field's name, a union member's tag left out
    (a union's errors are then one field's)."""
    path: list[Any] = []
    kind, field = model, None
    for key in loc:
        kind = _unwrap(kind)
        fields = getattr(kind, "__pydantic_fields__", None)
        if fields is not None and not path and isinstance(key, int) and key < len(fields):
            key = list(fields)[key]  # a dataclass's positional argument
        if fields is not None and key in fields:
            field = fields[key]
            kind = field.annotation
        elif _is_union(kind):
            break  # the rest names a member of the union
        else:  # an element of a tuple or list, a mapping's key
            args = typing.get_args(kind)
            kind, field = (args[0] if isinstance(key, int) else args[-1]) if args else None, None
        path.append(key)
    return tuple(path), field


def _dotted(*parts: Any) -> str:
    """``("models", "lstm", "units", 1)`` -> ``models.lstm.units[1]`` (empty parts left out)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out else str(part)
    return out


def _found(path: tuple, field: FieldInfo | None, errors: list[Any], prefix: str) -> list[tuple[str, str, Any]]:
    """The where, rule and value of one setting's errors (several: a union's members)."""
    inner = (errors[0].get("ctx") or {}).get("error")
    if isinstance(inner, ConfigError):  # a validator's own rules, each ``where`` below the location
        return [(_dotted(prefix, *path, e.where), e.rule, e.value) for e in (inner, *inner.more)]
    value = None if errors[0]["type"] == "missing" else errors[0]["input"]
    rule = field.description if field is not None and field.description else " or ".join(
        dict.fromkeys(e["msg"] for e in errors))
    return [(_dotted(prefix, *path), rule, value)]


def config_error(exc: ValidationError, *, model: Any = None, prefix: str = "", source: str = "") -> ConfigError:
    """Every error of ``exc`` as one `ConfigError`: the first as its ``where``, ``rule`` and
    ``value``, the others in ``more``.

    ``where`` is the setting as the user wrote it: ``source`` (a file, then ``": "``), the
    dotted ``prefix`` (``"train"``) and pydantic's location (``cv.folds``,
    ``lstm.units[1]``). The rule is pydantic's message, or the field's ``description`` where
    the field declares its rule there; a validator's own `ConfigError` (see `broken`) gives
    its rule and value, its ``where`` read below the location. ``model``, the class that was
    validated, names a positional argument and reads the fields' descriptions and unions.
    """
    groups: dict[tuple, tuple[FieldInfo | None, list[Any]]] = {}
    for error in exc.errors(include_url=False):
        path, field = _field_path(model, tuple(error["loc"]))
        groups.setdefault(path, (field, []))[1].append(error)
    found = [one for path, (field, errors) in groups.items() for one in _found(path, field, errors, prefix)]
    shown = [(f"{source}: {where}" if where else source) if source else where for where, _, _ in found]
    more = [ConfigError(w, rule, value) for w, (_, rule, value) in zip(shown[1:], found[1:])]
    return ConfigError(shown[0], found[0][1], found[0][2], more=more)
