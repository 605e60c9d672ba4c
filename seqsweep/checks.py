"""Pydantic's validation as the project's `ConfigError`: value types, broken rules, one conversion.

Typed configs (`trainables.configs`) and the sweep spec's sections (`search.spec`) declare
their rules as pydantic fields; a failed check becomes ``ConfigError(where, rule, value)``
through `config_error`, never pydantic's ``ValidationError``. A rule no field can declare is
raised as `broken` inside a validator.

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
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

import annotated_types
import numpy as np
from pydantic import BeforeValidator, PlainValidator, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from seqsweep.errors import ConfigError

__all__ = ["broken", "config_error", "dotted", "RANGE_ERRORS",
           "Int", "Float", "Bool", "Str", "Ints", "as_int",
           "PlainInt", "PlainFloat", "PlainNumber", "PlainBool", "one_of", "as_number"]


def broken(rule: str, value: Any, *, at: str = "") -> PydanticCustomError:
    """A broken rule inside a validator: where it is validated (then ``.at``), the rule, the value."""
    return PydanticCustomError("seqsweep", "{rule}", {"rule": rule, "value": value, "at": at})


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
RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                          "string_pattern_mismatch"})
_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
           "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) and value.is_integer() else str(value)


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


def _declared_rule(field: FieldInfo, index: tuple, error: Any) -> tuple[str, Any] | None:
    """The rule and value as ``field`` declares them: its literal values, its range as one
    interval (or its ``json_schema_extra`` ``rule``); None for any other error."""
    if error["type"] == "literal_error":
        return f"must be one of {_literal_values(field.annotation)}", error["input"]
    if error["type"] not in RANGE_ERRORS:
        return None
    annotation, metadata = field.annotation, list(field.metadata)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) and not index else {}
    for _ in index:  # an element of a tuple field: the element's own type
        annotation, metadata = _split(typing.get_args(annotation)[0])
    rule = extra.get("rule") or _bounds_rule(metadata) or error["msg"]
    return str(rule), _typed_input(annotation, metadata, error["input"])


def _rule(error: Any) -> tuple[str, Any]:
    """The rule and value of one of pydantic's own errors (a bound: the one broken)."""
    if error["type"] == "missing":
        return "is required", None
    if error["type"] in _BOUNDS:
        op, key = _BOUNDS[error["type"]]
        return f"must be {op} {_bound(error['ctx'][key])}", error.get("input")
    return error["msg"], error.get("input")


def dotted(*, pre: str = "", base: str = "") -> Callable[[tuple], str]:
    """A ``where`` for `config_error`: ``pre`` followed by the dotted location (``base``, then
    the keys; list positions left out: ``ensemble.methods``)."""

    def where(loc: tuple) -> str:
        parts = [p for p in (base, *(str(k) for k in loc if not isinstance(k, int))) if p]
        return pre + ".".join(parts) if parts else pre.rstrip(": ")

    return where


def config_error(exc: ValidationError, *, where: Callable[[tuple], str] | None = None,
                 first: Callable[[Any], Any] | None = None,
                 fields: Mapping[str, FieldInfo] | None = None) -> ConfigError:
    """One of pydantic's errors as ``ConfigError(where(location), rule, value)``: the first,
    or the least by ``first``; ``where`` defaults to `dotted` ``()``.

    A validator's own `ConfigError` is returned as it is; a `broken` rule gives its rule,
    value and ``at`` (a key below the location); a bound reads ``must be >= 1``. With
    ``fields`` (a pydantic dataclass's), a positional argument is named and a literal or a
    range reads as its field declares it (``must be in [0, 1)``, or its own ``rule``).
    """
    errors = exc.errors(include_url=False)
    error = min(errors, key=first) if first else errors[0]
    ctx = error.get("ctx") or {}
    if isinstance(ctx.get("error"), ConfigError):  # a validator that knew the whole location
        return ctx["error"]
    loc = tuple(error["loc"])
    if fields is not None and loc and isinstance(loc[0], int):  # a positional argument
        loc = (list(fields)[loc[0]], *loc[1:])
    if error["type"] == "seqsweep":
        rule, value = ctx["rule"], ctx["value"]
        loc += (ctx["at"],) if ctx["at"] else ()
    else:
        declared = _declared_rule(fields[loc[0]], loc[1:], error) if fields is not None else None
        rule, value = declared or _rule(error)
    return ConfigError((where or dotted())(loc), rule, value)
