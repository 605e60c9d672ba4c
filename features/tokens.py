"""Token feature sets: sequences of symbols (chord ids, words) rather than measurements.

A chord id is a word, not a number: chord 144 is not "twice" chord 72. An imported source
whose values are all whole numbers, one value per step (D = 1) once the padding is
stripped, is stored as a *token* feature set (`looks_like_tokens`; ``features import
--tokens / --no-tokens`` overrides the guess). Its frames hold dense ids instead of the
original values, and its manifest holds the vocabulary (`TokenVocab`)::

    "tokens": {"vocab_size": 25, "unknown_id": 0, "id_to_value": [null, -1, 0, 3, 7, ...]}

* Id `UNKNOWN_ID` (0) is reserved for "unknown": a value never seen in the train split
  (a chord that occurs only in the test split, or at prediction time). Models map any id
  outside ``[0, vocab_size)`` to it too.
* Ids ``1 .. vocab_size - 1`` are the values seen in the train split, in ascending order
  of value when the vocabulary is first made; ``id_to_value[i]`` is id i's original value
  (``null`` for the unknown id).
* A later import into the same feature set appends the train values it brings that are
  new (in ascending order) after the existing ids, so no stored id ever changes meaning.
  Rows already stored keep their ids: a value they hold as unknown stays unknown even if
  a later import adds it to the vocabulary (import a set's train and test files in one
  command to avoid that).

`SequenceSet.vocab_size` carries ``vocab_size`` to the models (None for real-valued sets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqsweep.errors import InputError, StoreError

__all__ = ["UNKNOWN_ID", "TokenVocab", "check_tokens", "looks_like_tokens", "token_problem"]

UNKNOWN_ID = 0
"""The id of every value the train split never showed (and of out-of-range ids)."""


def token_problem(frames: np.ndarray) -> str | None:
    """Why ``frames`` [shape=(T, D)] cannot be token ids, or None when they can.

    Tokens are one whole number per step: D = 1 and every value integral.
    """
    if frames.shape[1] != 1:
        return f"{frames.shape[1]} values per step (tokens need D = 1)"
    whole = frames == np.round(frames)
    if not whole.all():
        return f"value {float(frames[~whole][0])!r} is not a whole number"
    return None


def looks_like_tokens(frames: Iterable[np.ndarray]) -> bool:
    """The import's guess: every sequence has one value per step and all are whole numbers.

    ``frames`` are ``float32[T_i, D]`` arrays with padding already stripped; an empty
    iterable is not tokens.
    """
    seen = False
    for f in frames:
        seen = True
        if token_problem(f) is not None:
            return False
    return seen


@dataclass(frozen=True)
class TokenVocab:
    """The id map of one token feature set.

    Attributes
    ----------
    values : the original value of ids ``1 .. len(values)``, in id order (id 0, the
        unknown id, has none).
    """

    values: tuple[int, ...] = ()

    @property
    def vocab_size(self) -> int:
        """Number of ids, the unknown id included: ids are ``[0, vocab_size)``."""
        return len(self.values) + 1

    def extended(self, values: Iterable[float]) -> TokenVocab:
        """This vocabulary plus the values it lacks, appended in ascending order.

        ``values`` are whole numbers (float or int); existing ids never move.
        """
        known = set(self.values)
        fresh = sorted({int(v) for v in values} - known)
        return TokenVocab(self.values + tuple(fresh))

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Original values [shape=(T, 1)] -> ids float32 [shape=(T, 1)]; unseen values -> 0."""
        if not self.values:
            return np.full(frames.shape, UNKNOWN_ID, dtype=np.float32)
        ordered = np.asarray(self.values, dtype=np.float64)
        order = np.argsort(ordered, kind="stable")
        sorted_values = ordered[order]
        flat = frames.reshape(-1).astype(np.float64)
        pos = np.clip(np.searchsorted(sorted_values, flat), 0, len(sorted_values) - 1)
        hit = sorted_values[pos] == flat
        ids = np.where(hit, order[pos] + 1, UNKNOWN_ID)
        return ids.astype(np.float32).reshape(frames.shape)

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[int | None]:
        """Ids -> original values (None for the unknown id and ids out of range)."""
        out: list[int | None] = []
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            out.append(self.values[i - 1] if 1 <= i <= len(self.values) else None)
        return out

    # ---- the manifest form --------------------------------------------------------------
    def to_manifest(self) -> dict[str, Any]:
        """``{"vocab_size", "unknown_id", "id_to_value"}`` for ``_manifest.json``."""
        return {"vocab_size": self.vocab_size, "unknown_id": UNKNOWN_ID,
                "id_to_value": [None, *self.values]}

    @classmethod
    def from_manifest(cls, entry: Mapping[str, Any], *, where: str = "_manifest.json tokens") -> TokenVocab:
        """The inverse of `to_manifest`; `StoreError` naming ``where`` if it is inconsistent."""
        table = entry.get("id_to_value")
        if not isinstance(table, list) or not table or table[0] is not None:
            raise StoreError(f"{where}.id_to_value", "must be a list starting with null (the unknown id)", table)
        if entry.get("unknown_id", UNKNOWN_ID) != UNKNOWN_ID or entry.get("vocab_size") != len(table):
            raise StoreError(where, f"vocab_size must equal len(id_to_value) and unknown_id be {UNKNOWN_ID}",
                             {k: entry.get(k) for k in ("vocab_size", "unknown_id")})
        return cls(tuple(int(v) for v in table[1:]))


def check_tokens(frames: np.ndarray, *, where: str) -> None:
    """Raise `InputError` naming ``where`` when ``frames`` cannot be token values."""
    problem = token_problem(frames)
    if problem is not None:
        raise InputError(where, "a token feature set needs one whole number per step (--no-tokens to import "
                         "the values as numbers)", problem)
