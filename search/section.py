"""The spec's sections as pydantic models of known keys.

`Section` is a frozen model whose fields declare its rules with the value types of
`seqsweep.validation` (``PlainInt``, ``one_of``, ...); a key it does not know is a broken rule
naming the allowed keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from seqsweep.validation import broken

__all__ = ["Section"]


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
