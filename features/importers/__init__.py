"""Readers of non-audio sources into plain records, the way audio clips become frames.

Three sources land in the same store as audio, each as a feature set (`features.store`):

* `read_pickle` (`.pickled`): a pickled list of ``(sequence, label)`` pairs whose
  sequences carry padding markers at either end (chord-sequence data);
* `read_ts` (`.ts`): a UCR/UEA ``.ts`` time-series classification file;
* `read_table` (`.tabular`): a tabular feature CSV, one row per clip (GTZAN's
  ``features_30_sec.csv``), each row one frame.

Each returns an `ImportResult` (`.records`): the good `Record` s plus one `ItemError`
per bad item. A bad item (one sequence, one line, one row) is reported and skipped,
never fatal to the others; a file that cannot be read at all raises `InputError`. The
checks every item passes live in `.rules`; `features.testing.SourceContract` states
them as tests each reader must pass. `read_source` (here) picks the reader from
``format`` or the file extension.

Ids: a record's ``clip_id`` is ``"<file name>#<index>"`` where the index counts the
file's items (pairs, data lines, rows) from 0, bad ones included, so an id never moves
when a neighbour is fixed or dropped. An item's error names ``"<path>#<index>"``.

Groups and splits (`.groups`): by default each record is its own group; a `GroupFile`
or a CSV's group column says more, and a ``_train`` / ``_test`` file name fixes the
split (`split_from_name`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from features.importers.groups import GroupFile, split_from_name, track_of
from features.importers.pickled import read_pickle
from features.importers.records import ImportResult, Record
from features.importers.tabular import read_table
from features.importers.ts import read_ts
from features.rows import ItemError
from seqsweep.errors import ConfigError

__all__ = [
    "FORMATS",
    "GroupFile",
    "ImportResult",
    "ItemError",
    "Record",
    "format_of",
    "read_pickle",
    "read_source",
    "read_table",
    "read_ts",
    "split_from_name",
    "track_of",
]

FORMATS: dict[str, tuple[str, ...]] = {
    "pickle": (".pkl", ".pickle"),
    "ts": (".ts",),
    "csv": (".csv",),
}
"""Format name -> the file extensions `read_source` maps to it."""

_READERS: dict[str, Callable[..., ImportResult]] = {
    "pickle": read_pickle,
    "ts": read_ts,
    "csv": read_table,
}


def format_of(path: str | os.PathLike[str], *, format: str | None = None) -> str:
    """The reader's format name for ``path``: ``format`` checked, or from the extension.

    Raises `ConfigError` for an unknown ``format`` or extension (listing the formats).
    """
    known = ", ".join(f"{name} ({' '.join(exts)})" for name, exts in FORMATS.items())
    if format is None:
        ext = Path(path).suffix.lower()
        format = next((name for name, exts in FORMATS.items() if ext in exts), None)
        if format is None:
            raise ConfigError(f"{path}", f"the file extension must name a format: {known}; "
                              "or pass format=", ext or "no extension")
    if format not in _READERS:
        raise ConfigError("format", f"must be one of {known}", repr(format))
    return format


def read_source(path: str | os.PathLike[str], *, format: str | None = None,
                **kw: Any) -> ImportResult:
    """Read any non-audio source with the reader its ``format`` or extension names.

    Parameters
    ----------
    path : the file.
    format : ``"pickle"``, ``"ts"`` or ``"csv"``; None picks it from the extension
        (``.pkl`` / ``.pickle``, ``.ts``, ``.csv``, case-blind).
    **kw : keyword options of the chosen reader (`read_pickle`, `read_ts`, `read_table`).

    Raises
    ------
    ConfigError : an unknown ``format`` or extension (the message lists the formats),
        or an option the chosen reader does not take.
    InputError : as the chosen reader.
    """
    path = Path(path)
    format = format_of(path, format=format)
    reader = _READERS[format]
    try:
        return reader(path, **kw)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise ConfigError(f"read_source(format={format!r})",
                              f"options must be those of {reader.__name__}", str(exc)) from exc
        raise
