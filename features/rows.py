"""What one source produced, as it travels to the writer: its `SourceRows`, or an `ItemError`.

Both kinds of source (audio clips, imported sequence files) yield these two, and the store
writes them: rows into part files, errors into ``_errors.parquet``. Kept apart from
`features.store` and `features.importers` so that extraction workers import numpy and
librosa, not pyarrow, pandas, scikit-learn or the readers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ItemError", "SourceRows"]


@dataclass(frozen=True)
class SourceRows:
    """Every row one source file produced (its clips or segments), and its fingerprint.

    The lists run in parallel, one entry per row; ``frames[i]`` is float32 ``(T_i, D)``.
    """

    source: str
    size: int
    mtime_ns: int
    sha256: str
    clip_ids: list[str]
    groups: list[str]
    labels: list[str]
    splits: list[str]
    frames: list[np.ndarray]

    @classmethod
    def segments(cls, *, source: str, label: str, group: str, split: str, frames: list[np.ndarray],
                 size: int, mtime_ns: int, sha256: str) -> SourceRows:
        """Rows for one audio clip: ``source`` itself, or ``source#k`` for segment k."""
        ids = [source] if len(frames) == 1 else [f"{source}#{k}" for k in range(len(frames))]
        n = len(frames)
        return cls(source, size, mtime_ns, sha256, ids, [group] * n, [label] * n, [split] * n, frames)


@dataclass(frozen=True)
class ItemError:
    """One item that could not be imported or extracted: a row for the store's ``_errors.parquet``.

    A failure is a row, not an abort: the run goes on with the other items.

    Attributes
    ----------
    path : the item: a file, or ``"<path>#<index>"`` (a ``.ts`` item adds ``" (line N)"``).
    stage : where it failed: ``"discover"``, ``"read"``, ``"decode"``, ``"check"`` or
        ``"worker"`` for audio; for imports ``"read"``, ``"check"`` or the reader that
        refused the item: ``"pickle"``, ``"ts"`` or ``"table"``.
    error_type : the exception class name (``"InputError"``).
    message : the full message: where, rule and value.
    """

    path: str
    stage: str
    error_type: str
    message: str

    @classmethod
    def from_exception(cls, exc: Exception, *, path: str, stage: str) -> ItemError:
        return cls(path=path, stage=stage, error_type=type(exc).__name__, message=str(exc))
