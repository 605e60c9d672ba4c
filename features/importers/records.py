"""What every reader returns: `Record` s (the good items) and an `ImportResult`.

A bad item is not an exception that stops the file: it is an `ItemError` (the same
error row that audio extraction writes, defined in `features.rows`) kept in
`ImportResult.errors`, so one broken sequence never loses the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.rows import ItemError

__all__ = ["ImportResult", "Record"]


@dataclass(frozen=True)
class Record:
    """One labelled sequence from a non-audio source.

    Attributes
    ----------
    clip_id : stable id, ``"<file name>#<index>"`` (or a table's id column).
    group : what must never straddle two folds; the clip id unless a source says more.
    label : class name (ints are stored as their decimal string).
    split : ``"train"``, ``"test"`` or None (not fixed by the source).
    frames : ``float32[T, D]``, T >= 1, every value finite.
    """

    clip_id: str
    group: str
    label: str
    split: str | None
    frames: np.ndarray

    @property
    def n_frames(self) -> int:
        """T, the sequence length."""
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class ImportResult:
    """What a reader returns: the good records and one error per bad item.

    Attributes
    ----------
    records : the imported records, in file order; all share one frame dimension D.
    errors : one `ItemError` per skipped item, in file order.
    columns : for tables, the feature column names (length D, in frame order);
        None for other sources.
    """

    records: list[Record]
    errors: list[ItemError] = field(default_factory=list)
    columns: list[str] | None = None

    @property
    def dim(self) -> int | None:
        """D, the frame dimension of the records (None when there are none)."""
        return int(self.records[0].frames.shape[1]) if self.records else None
