"""The spec's sections as pydantic models, and pydantic's errors as the project's `ConfigError`.

`Section` is a frozen model of known keys; `Int`, `Float`, `Number`, `Flag` and `one_of`
are the field types its rules are declared with, each failing with the rule the message
shows (``must be an integer``, ``must be one of [...]``); `config_error` turns the
`ValidationError` into ``ConfigError(where, rule, value)``, ``where`` the dotted key. A rule
no field can declare raises `broken` in a validator (or a whole `ConfigError`, kept as it is).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from seqsweep.errors import ConfigError

__all__ = ["Section", "Int", "Float", "Number", "Flag", "one_of", "broken", "config_error", "prefix_of",
           "as_number"]


def broken(rule: str, value: Any, *, at: str = "") -> PydanticCustomError:
    """A broken rule inside a validator: where it is validated (then ``.at``), the rule, the value."""
    return PydanticCustomError("seqsweep", "{rule}", {"rule": rule, "value": value, "at": at})


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) and value.is_integer() else str(value)


def config_error(exc: ValidationError, *, pre: str = "", base: str = "", order: tuple[str, ...] = ()
                 ) -> ConfigError:
    """One of pydantic's errors as a `ConfigError` (the first, or of several broken fields the
    first in ``order``): ``where`` is ``pre`` followed by the dotted location (``base``, then
    the keys; list positions left out: ``ensemble.methods``)."""
    err = min(exc.errors(), key=lambda e: order.index(e["loc"][0]) if e["loc"] and e["loc"][0] in order else -1)
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), ConfigError):  # a validator that knew the whole location
        return ctx["error"]
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    value = err.get("input")
    if err["type"] == "seqsweep":
        rule, value = ctx["rule"], ctx["value"]
        loc += [ctx["at"]] if ctx["at"] else []
    elif err["type"] == "missing":
        rule, value = "is required", None
    elif err["type"] == "greater_than_equal":
        rule = f"must be >= {_bound(ctx['ge'])}"
    elif err["type"] == "less_than_equal":
        rule = f"must be <= {_bound(ctx['le'])}"
    else:
        rule = err["msg"]
    parts = [p for p in (base, *loc) if p]
    return ConfigError(pre + ".".join(parts) if parts else pre.rstrip(": "), rule, value)


def prefix_of(info: ValidationInfo) -> str:
    source = (info.context or {}).get("source", "")
    return f"{source}: " if source else ""


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


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise broken("must be true or false", value)
    return value


def one_of(values: tuple, rule: str | None = None) -> Any:
    """A `Literal` of ``values`` whose error reads ``must be one of [...]`` (or ``rule``)."""
    rule = rule or f"must be one of {list(values)}"

    def check(value: Any) -> Any:
        if value not in values:
            raise broken(rule, value)
        return value

    return Annotated[Literal[values], PlainValidator(check)]


Int = Annotated[int, BeforeValidator(lambda v: as_number(v, int))]
Float = Annotated[float, BeforeValidator(lambda v: as_number(v, float))]
Number = Annotated[float | int, PlainValidator(_number)]
Flag = Annotated[bool, PlainValidator(_flag)]


class Section(BaseModel):
    """A mapping of known keys (an absent or empty section takes every default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def known_keys(cls) -> list[str]:
        return list(cls.model_fields)

    @model_validator(mode="before")
    @classmethod
    def _a_mapping_of_known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, BaseModel):
            return data
        if not isinstance(data, dict):
            raise broken("must be a mapping of keys to values", data)
        unknown = sorted(set(data) - set(cls.known_keys()))
        if unknown:
            raise broken(f"is not a known key; allowed: {cls.known_keys()}", unknown[0], at=str(unknown[0]))
        return data
