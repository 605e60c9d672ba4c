"""`read_ts`: a UCR/UEA ``.ts`` time-series classification file, parsed here.

The header is read first (`_ts_header`, into a `_TsHeader`); each data line is then
checked against it (`_ts_case`) and its missing values filled per channel
(`_fill_missing`). The tests compare the result with aeon's loader on aeon's bundled
files when aeon is installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features.importers.groups import GroupFile, split_from_name
from features.importers.records import ImportResult, Record
from features.importers.rules import check_file, finish_frames
from features.rows import ItemError
from seqsweep.errors import InputError

__all__ = ["read_ts"]


_TS_BOOL_KEYS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")


@dataclass
class _TsHeader:
    """What a ``.ts`` header declared: the rules every data line is checked against."""

    problem: str | None = None
    timestamps: bool = False
    missing: bool = False
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    class_label: bool | None = None
    classes: list[str] = field(default_factory=list)
    target_label: bool = False


def _ts_bool(token: str, where: str, key: str) -> bool:
    low = token.lower()
    if low in ("true", "false"):
        return low == "true"
    raise InputError(where, f"@{key} takes true or false", token)


def _ts_int(token: str, where: str, key: str) -> int:
    try:
        value = int(token)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(where, f"@{key} takes a positive integer", token)
    return value


def _ts_header(lines: Iterable[tuple[int, str]], path: Path) -> _TsHeader:
    """Parse the header from ``(line number, stripped line)`` pairs, up to ``@data``."""
    head = _TsHeader()
    for lineno, line in lines:
        where = f"{path}:{lineno}"
        tokens = line.split()
        key = tokens[0][1:].lower() if tokens[0].startswith("@") else None
        if key is None:
            raise InputError(where, "a .ts header line must start with @ (or # for a comment)",
                             line[:60])
        args = tokens[1:]
        if key == "data":
            if args:
                raise InputError(where, "@data takes no value", line[:60])
            if head.timestamps:
                raise InputError(str(path), "time-stamped .ts files are not supported "
                                 "(convert to plain values first)", "@timeStamps true")
            if head.target_label:
                raise InputError(str(path), "regression .ts files are not supported, "
                                 "seqsweep classifies", "@targetLabel true")
            if not head.class_label:
                raise InputError(str(path), "a .ts file needs class labels "
                                 "(@classLabel true <class> ...)",
                                 "@classLabel false" if head.class_label is False else "no @classLabel")
            return head
        if key in _TS_BOOL_KEYS:
            if len(args) != 1:
                raise InputError(where, f"@{key} takes one value, true or false", line[:60])
            value = _ts_bool(args[0], where, key)
            attr = {"equallength": "equal_length", "targetlabel": "target_label"}.get(key, key)
            setattr(head, attr, value)
        elif key in ("dimensions", "dimension"):
            if len(args) != 1:
                raise InputError(where, f"@{key} takes one positive integer", line[:60])
            head.dimensions = _ts_int(args[0], where, key)
        elif key == "serieslength":
            if len(args) != 1:
                raise InputError(where, "@seriesLength takes one positive integer", line[:60])
            head.series_length = _ts_int(args[0], where, key)
        elif key == "classlabel":
            if not args:
                raise InputError(where, "@classLabel takes true <classes...> or false", line[:60])
            head.class_label = _ts_bool(args[0], where, key)
            head.classes = args[1:]
            if head.class_label and not head.classes:
                raise InputError(where, "@classLabel true must list the class values", line[:60])
            if len(set(head.classes)) != len(head.classes):
                raise InputError(where, "@classLabel class values must be distinct", line[:60])
        elif key == "problemname":
            head.problem = " ".join(args) or None
        # other keys (future or tool-specific) are ignored, as aeon's loader does.
    raise InputError(str(path), "a .ts file needs an @data line before its data", "no @data")


def _fill_missing(values: np.ndarray) -> np.ndarray:
    """Fill NaNs in ``float64[D, T]`` per channel: linear in time, edges held, all-NaN -> 0."""
    nan = np.isnan(values)
    if not nan.any():
        return values
    out = values.copy()
    t = np.arange(values.shape[1])
    for c in np.flatnonzero(nan.any(axis=1)):
        ok = ~nan[c]
        out[c] = np.interp(t, t[ok], values[c, ok]) if ok.any() else 0.0
    return out


def _ts_case(line: str, where: str, head: _TsHeader, n_channels: int | None) -> tuple[np.ndarray, str]:
    """One data line -> (``float64[D, T]`` with NaN for ``?``, label)."""
    parts = line.split(":")
    if len(parts) < 2:
        raise InputError(where, "a .ts data line must be <channel>:...:<channel>:<label>",
                         f"no ':' in {line[:60]!r}")
    label = parts[-1].strip()
    if label not in head.classes:
        raise InputError(where, f"the label must be one of the declared classes {head.classes}",
                         repr(label))
    channels = parts[:-1]
    if n_channels is not None and len(channels) != n_channels:
        raise InputError(where, f"every case must have {n_channels} channel(s)",
                         f"{len(channels)} channels")
    rows = []
    for c, text in enumerate(channels):
        tokens = [tok.strip() for tok in text.split(",")]
        tokens = ["nan" if tok == "?" else tok for tok in tokens]
        try:
            row = np.array(tokens, dtype=np.float64)
        except ValueError:
            bad = next(tok for tok in tokens if not _is_float(tok))
            raise InputError(where, "values must be numbers or ? for missing",
                             f"{bad!r} in channel {c}") from None
        if len(rows) and len(row) != len(rows[0]):
            raise InputError(where, "all channels of one case must have the same length",
                             f"channel 0 has {len(rows[0])} values, channel {c} has {len(row)}")
        rows.append(row)
    values = np.stack(rows)
    if np.isinf(values).any():
        raise InputError(where, "values must be finite (or ? for missing)", "inf")
    if head.equal_length and head.series_length is not None and values.shape[1] != head.series_length:
        raise InputError(where, f"@equalLength true @seriesLength {head.series_length}: "
                         "every case must have that length", f"length {values.shape[1]}")
    return values, label


def _is_float(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def read_ts(path: str | os.PathLike[str], *, groups: GroupFile | None = None) -> ImportResult:
    """Read a UCR/UEA ``.ts`` classification file (univariate or multivariate).

    A small hand-written parser, so seqsweep does not need aeon or sktime (both have
    loaders, ``aeon.datasets.load_from_ts_file``, but they are heavy optional
    dependencies). Header lines, case-blind: ``@problemName``, ``@timeStamps``,
    ``@missing``, ``@univariate``, ``@dimensions N`` (or ``@dimension``),
    ``@equalLength``, ``@seriesLength N``, ``@classLabel true c1 c2 ...``, then
    ``@data``; lines starting with ``#`` (or ``%``) are comments; unknown header keys are
    ignored. Each data line is ``v,v,...:v,v,...:label``: channels separated by ``:``,
    values by ``,``, the class label last.

    Missing values (``?`` or ``NaN``) are filled per channel: linear interpolation along
    time between the nearest known values, the first / last known value held at the
    edges, and a channel with no known value at all becomes 0. The file's
    ``@missing`` flag is not required for this.

    Not supported (file-level `InputError`): ``@timeStamps true``, regression files
    (``@targetLabel true``) and files without class labels.

    Parameters
    ----------
    path : the ``.ts`` file.
    groups : one group per data line, in the file's order; None makes each case its own
        group.

    Returns
    -------
    `ImportResult`: one `Record` per good data line, ``frames`` ``float32[T, D]`` with
    D the number of channels and T that case's length (cases may differ in length).
    ``clip_id == "<file name>#<i>"`` (i counts data lines from 0), ``group`` from
    ``groups`` or the clip id; split from a ``_TRAIN`` / ``_TEST`` suffix of the file
    name, else None.

    Per-item errors name ``"<path>#<i> (line N)"``: a label outside ``@classLabel``,
    a value that is not a number, channels of different lengths in one case, a channel
    count different from ``@dimensions`` / ``@univariate`` / the first case, a length
    different from ``@seriesLength`` when ``@equalLength true``.

    Raises
    ------
    InputError : the file is missing or unreadable, or its header is malformed; ``groups``
        has not one line per data line.
    """
    path = Path(path)
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(str(path), "must be a readable file", f"{type(exc).__name__}: {exc}") from exc
    numbered = (
        (n, s)
        for n, raw in enumerate(text.splitlines(), start=1)
        if (s := raw.strip()) and not s.startswith(("#", "%"))
    )
    head = _ts_header(numbered, path)
    n_channels = head.dimensions
    if head.univariate:
        if n_channels not in (None, 1):
            raise InputError(str(path), "@univariate true needs @dimensions 1",
                             f"@dimensions {n_channels}")
        n_channels = 1
    split = split_from_name(path.stem)
    cases = list(numbered)  # the generator resumes after @data
    case_groups = groups.for_items(len(cases), source=path) if groups is not None else None
    records: list[Record] = []
    errors: list[ItemError] = []
    for i, (lineno, line) in enumerate(cases):
        where = f"{path}#{i} (line {lineno})"
        try:
            values, label = _ts_case(line, where, head, n_channels)
            frames = finish_frames(_fill_missing(values).T, where)
        except InputError as exc:
            errors.append(ItemError.from_exception(exc, path=where, stage="ts"))
            continue
        if n_channels is None:
            n_channels = frames.shape[1]
        clip_id = f"{path.name}#{i}"
        group = case_groups[i] if case_groups is not None else clip_id
        records.append(Record(clip_id=clip_id, group=group, label=label, split=split,
                              frames=frames))
    return ImportResult(records=records, errors=errors)
