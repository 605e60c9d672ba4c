"""Readers of non-audio sources into plain records, the way audio clips become frames.

Three sources land in the same store as audio (see DESIGN.md, "Feature sets"):

* `read_pickle`: a pickled list of ``(sequence, label)`` pairs whose sequences carry
  padding markers at either end (chord-sequence data);
* `read_ts`: a UCR/UEA ``.ts`` time-series classification file;
* `read_table`: a tabular feature CSV, one row per clip (GTZAN's
  ``features_30_sec.csv``), each row one frame.

Each returns an `ImportResult`: the good `Record` s plus one `ItemError` per bad item.
A bad item (one sequence, one line, one row) is reported and skipped, never fatal to the
others; a file that cannot be read at all raises `InputError`. `read_source` picks the
reader from ``format`` or the file extension.

Ids: a record's ``clip_id`` is ``"<file name>#<index>"`` where the index counts the
file's items (pairs, data lines, rows) from 0, bad ones included, so an id never moves
when a neighbour is fixed or dropped. An item's error names ``"<path>#<index>"``.

Groups: what must never straddle two folds or the train/test split. By default each
record is its own group. A pickle or ``.ts`` source takes a `GroupFile` (one group per
line, one line per item in the file's order: the work that chord windows were cut
from); a CSV takes a ``group_column``, and without one a GTZAN-style ``filename`` column
(``blues.00000.3.wav``, segment 3 of track ``blues.00000``) gives the track as group
(`track_of`).

Split: a file whose name (stem, lower-cased) is ``train`` / ``test`` or ends with
``<sep>train`` / ``<sep>test`` (``sep`` one of ``_ - . space``: ``chords_test.pkl``,
``JapaneseVowels_TRAIN.ts``) gives its records that split; otherwise split is None
(``contest.pkl`` is not a test file).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from features.safe_pickle import load_plain_pickle
from seqsweep.errors import ConfigError, InputError

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


# ---- result types ---------------------------------------------------------------------


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
class ItemError:
    """One item that could not be imported: a row for the store's ``_errors.parquet``.

    Attributes
    ----------
    path : the item, ``"<path>#<index>"`` (a ``.ts`` item adds ``" (line N)"``).
    stage : the reader that refused it: ``"pickle"``, ``"ts"`` or ``"table"``.
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


@dataclass(frozen=True)
class GroupFile:
    """The groups of one pickle or ``.ts`` source's items, read from a text file.

    One group per line, one line per item of the source, in the source's order (bad items
    included, as item indices count them); surrounding spaces are dropped and a final
    newline is optional. Chord windows cut from one work share that work's line.

    Attributes
    ----------
    path : the groups file, as named in errors.
    groups : its groups, one per line.
    """

    path: str
    groups: tuple[str, ...]

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> GroupFile:
        """Read ``path``; `InputError` for a missing file or an empty line (naming the line)."""
        path = Path(path)
        _check_file(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(str(path), "a groups file must be readable UTF-8 text",
                             f"{type(exc).__name__}: {exc}") from exc
        lines = text.splitlines()
        groups = tuple(line.strip() for line in lines)
        for n, group in enumerate(groups, start=1):
            if not group:
                raise InputError(f"{path}:{n}", "every line of a groups file must name a group "
                                 "(one group per item, in the source's order)", "an empty line")
        return cls(str(path), groups)

    def for_items(self, n_items: int, *, source: str | os.PathLike[str]) -> tuple[str, ...]:
        """The groups, checked to be one per item of ``source`` (``n_items`` of them)."""
        if len(self.groups) != n_items:
            raise InputError(self.path, f"a groups file needs one line per item of {source} "
                             f"({n_items} items, in the file's order)", f"{len(self.groups)} lines")
        return self.groups


# ---- helpers --------------------------------------------------------------------------

_SPLIT_RE = re.compile(r"(?:^|[_\-. ])(train|test)$")


def split_from_name(name: str) -> str | None:
    """``"train"`` / ``"test"`` when a file stem is or ends with it after a separator.

    >>> split_from_name("chords_test"), split_from_name("JapaneseVowels_TRAIN")
    ('test', 'train')
    >>> split_from_name("contest") is None
    True
    """
    m = _SPLIT_RE.search(name.lower())
    return m.group(1) if m else None


_TRACK_RE = re.compile(r"^(.+\.\d+)\.\d+\.[A-Za-z0-9]+$")


def track_of(filename: str) -> str | None:
    """The track a GTZAN-style segment file name belongs to, or None if it names no segment.

    >>> track_of("blues.00000.3.wav"), track_of("blues.00000.wav")
    ('blues.00000', None)
    """
    m = _TRACK_RE.match(filename.strip())
    return m.group(1) if m else None


def _check_file(path: Path) -> None:
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        raise InputError(str(path), "must be an existing file", what)


def _label_str(label: object, where: str) -> str:
    """An int-like or string label as its string; anything else is an `InputError`."""
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, bytes):
        try:
            label = label.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(where, "a label must be an int or a string", repr(label)) from exc
    if isinstance(label, bool):
        raise InputError(where, "a label must be an int or a string, not a bool", repr(label))
    if isinstance(label, int):
        return str(label)
    if isinstance(label, float) and math.isfinite(label) and label.is_integer():
        return str(int(label))
    if isinstance(label, str):
        text = label.strip()
        if not text:
            raise InputError(where, "a label must be a non-empty string", repr(label))
        return text
    raise InputError(where, "a label must be an int or a string", f"{type(label).__name__} {label!r}")


def _numeric(values: object, where: str) -> np.ndarray:
    """``values`` as float64, or an `InputError` saying what was not numeric."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InputError(where, "a sequence must be a rectangular numeric array", str(exc)) from exc
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64, copy=False)
    if arr.dtype.kind == "O":
        try:
            return arr.astype(np.float64)
        except (ValueError, TypeError) as exc:
            bad = next((v for v in arr.ravel() if not isinstance(v, (int, float, np.number))), None)
            raise InputError(where, "a sequence must hold only numbers", repr(bad)) from exc
    raise InputError(where, "a sequence must hold only numbers", f"dtype {arr.dtype}")


def _strip_padding(arr: np.ndarray, pad_value: float | None) -> np.ndarray:
    """Drop padding frames at both ends (only the ends) of ``arr[T, D]``.

    A frame is padding when every value in it equals ``pad_value`` (NaN matches NaN).
    """
    if pad_value is None or len(arr) == 0:
        return arr
    is_pad = np.isnan(arr) if math.isnan(pad_value) else arr == pad_value
    keep = np.flatnonzero(~is_pad.all(axis=1))
    if keep.size == 0:
        return arr[:0]
    return arr[keep[0] : keep[-1] + 1]


def _finish_frames(arr: np.ndarray, where: str) -> np.ndarray:
    """Checks every record's frames pass: ``float32[T, D]``, T >= 1, D >= 1, finite."""
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(where, "a sequence needs at least one frame of at least one value",
                         f"shape {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        t, d = np.argwhere(~np.isfinite(out))[0]
        raise InputError(where, "frame values must be finite (and fit in float32)",
                         f"{float(arr[t, d])!r} at frame {t}, value {d}")
    return out


def _dim_check(frames: np.ndarray, dim: int | None, where: str) -> int:
    d = int(frames.shape[1])
    if dim is not None and d != dim:
        raise InputError(where, f"every sequence in a file must have the same frame dimension ({dim})",
                         f"dimension {d}")
    return d


# ---- pickle ---------------------------------------------------------------------------

_PAIR_KEYS = (("x", "y"), ("sequences", "labels"), ("data", "labels"), ("data", "target"))


def _is_label_like(v: object) -> bool:
    return isinstance(v, (str, bytes, int, float, np.integer, np.floating, np.str_))


def _pairs(obj: object, where: str) -> list[object]:
    """The pickled object as a list of items, each meant to be a ``(sequence, label)`` pair."""
    if isinstance(obj, dict):
        keys = {str(k).lower(): k for k in obj}
        for xk, yk in _PAIR_KEYS:
            if xk in keys and yk in keys:
                return _parallel(obj[keys[xk]], obj[keys[yk]], where)
        raise InputError(
            where,
            "a pickled dict must hold parallel sequences and labels under "
            + " / ".join(f"{x!r}+{y!r}" for x, y in _PAIR_KEYS),
            f"keys {sorted(map(str, obj))}",
        )
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 1:
        obj = list(obj)
    if isinstance(obj, (list, tuple)):
        if (
            isinstance(obj, tuple)
            and len(obj) == 2
            and _is_parallel_form(obj[0], obj[1])
        ):
            return _parallel(obj[0], obj[1], where)
        return list(obj)
    raise InputError(
        where,
        "a sequence pickle must hold a list of (sequence, label) pairs, a (sequences, "
        "labels) tuple or a {'X': ..., 'y': ...} dict",
        type(obj).__name__,
    )


def _is_parallel_form(xs: object, ys: object) -> bool:
    """Whether ``(xs, ys)`` reads as (sequences, labels) rather than two pairs."""
    if isinstance(ys, np.ndarray):
        return ys.ndim == 1 and ys.dtype.kind in "biufUSO" and _len(xs) == len(ys)
    if isinstance(ys, (list, tuple)):
        return _len(xs) == len(ys) and all(_is_label_like(v) for v in ys)
    return False


def _len(xs: object) -> int:
    try:
        return len(xs)  # type: ignore[arg-type]
    except TypeError:
        return -1


def _parallel(xs: object, ys: object, where: str) -> list[object]:
    n_x, n_y = _len(xs), _len(ys)
    if n_x < 0 or n_y < 0 or n_x != n_y:
        raise InputError(where, "sequences and labels must be two lists of the same length",
                         f"{n_x} sequences, {n_y} labels")
    return list(zip(xs, ys, strict=True))  # type: ignore[call-overload]


def read_pickle(path: str | os.PathLike[str], *, pad_value: float | None = -1,
                groups: GroupFile | None = None) -> ImportResult:
    """Read pickled ``(sequence, label)`` pairs, stripping the padding at both ends.

    Accepted layouts: a list of ``(sequence, label)`` pairs (the usual one, e.g.
    ``(array([-1., -1., 144., ..., 32., -1., -1.]), 0)``); a tuple ``(sequences,
    labels)`` of two parallel lists; a dict ``{"X": sequences, "y": labels}`` (also
    ``sequences``/``labels``, ``data``/``labels``, ``data``/``target``; keys case-blind).
    The pickle is read with `features.safe_pickle.load_plain_pickle`: only numpy
    arrays and builtin containers, strings and numbers are allowed.

    Parameters
    ----------
    path : the pickle file.
    pad_value : the padding marker. Leading and trailing frames made only of it are
        dropped (padding inside a sequence is kept). None keeps everything.
    groups : one group per pair, in the file's order; None makes each pair its own group.

    Returns
    -------
    `ImportResult`: one `Record` per good pair, ``frames`` ``float32[T, D]``: a 1-D
    sequence of length T becomes ``(T, 1)``, a 2-D one ``(T, D)`` is kept as is.
    ``clip_id == "<file name>#<i>"``, ``group`` from ``groups`` or the clip id; labels
    (int or str) are stored as str; split from the file name (see the module doc).

    Per-item errors (the item is skipped, the others kept): an item that is not a
    pair, a sequence that is not numeric or not 1-D/2-D, one that is all padding,
    non-finite values, a label that is not an int or a string, a frame dimension
    different from the first good item's.

    Raises
    ------
    InputError : the file is missing, not a plain-data pickle, not one of the layouts
        above, or holds no pairs; ``groups`` has not one line per pair.
    """
    path = Path(path)
    _check_file(path)
    obj = load_plain_pickle(path)
    items = _pairs(obj, str(path))
    if not items:
        raise InputError(str(path), "a sequence pickle must hold at least one (sequence, label) pair",
                         "an empty container")
    item_groups = groups.for_items(len(items), source=path) if groups is not None else None
    split = split_from_name(path.stem)
    records: list[Record] = []
    errors: list[ItemError] = []
    dim: int | None = None
    for i, item in enumerate(items):
        where = f"{path}#{i}"
        try:
            clip_id = f"{path.name}#{i}"
            rec = _pickle_record(item, where, clip_id=clip_id, split=split, pad_value=pad_value,
                                 group=item_groups[i] if item_groups is not None else clip_id)
            dim = _dim_check(rec.frames, dim, where)
        except InputError as exc:
            errors.append(ItemError.from_exception(exc, path=where, stage="pickle"))
            continue
        records.append(rec)
    return ImportResult(records=records, errors=errors)


def _pickle_record(item: object, where: str, *, clip_id: str, group: str, split: str | None,
                   pad_value: float | None) -> Record:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        shown = f"{type(item).__name__} of length {len(item)}" if isinstance(item, (tuple, list)) \
            else type(item).__name__
        raise InputError(where, "each item must be a (sequence, label) pair", shown)
    seq, label = item
    label_s = _label_str(label, where)
    arr = _numeric(seq, where)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise InputError(where, "a sequence must be 1-D (T,) or 2-D (T, D)", f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError(where, "a sequence must not be empty", f"shape {arr.shape}")
    stripped = _strip_padding(arr, pad_value)
    if stripped.shape[0] == 0:
        raise InputError(where, "a sequence must hold something besides padding",
                         f"{arr.shape[0]} frames, all {pad_value}")
    frames = _finish_frames(stripped, where)
    return Record(clip_id=clip_id, group=group, label=label_s, split=split, frames=frames)


# ---- UCR/UEA .ts ----------------------------------------------------------------------

_TS_BOOL_KEYS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")


@dataclass
class _TsHeader:
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
    _check_file(path)
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
            frames = _finish_frames(_fill_missing(values).T, where)
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


# ---- tabular CSV ----------------------------------------------------------------------


def read_table(
    path: str | os.PathLike[str],
    *,
    label_column: str = "label",
    id_column: str | None = None,
    group_column: str | None = None,
    split_column: str | None = "split",
    drop_columns: Sequence[str] = ("filename", "length"),
) -> ImportResult:
    """Read a tabular feature CSV (one row per clip) into records of one frame each.

    Made for files like GTZAN's ``features_30_sec.csv`` (``filename, length,
    chroma_stft_mean, ..., mfcc20_var, label``): every column that is not the label,
    id, group, split or a ``drop_columns`` column is a feature column, and must be
    numeric (bools count as 0/1).

    Parameters
    ----------
    path : the CSV file (comma-separated, one header line).
    label_column : the class column (values read as strings).
    id_column : the clip-id column; None uses ``filename`` when present, else
        ``"<file name>#<row>"`` (row counted from 0, header excluded).
    group_column : the column of groups that must not straddle folds; None: when a
        ``filename`` column names GTZAN-style segments (``blues.00000.3.wav``), a row's
        group is its track (``blues.00000``, `track_of`), and any other row (or every
        row, without such a column) is its own group.
    split_column : the column holding ``train`` / ``test`` (case-blind; empty = None),
        used when present; without it the split comes from the file name.
    drop_columns : columns that are neither features nor the above (ignored when absent).

    Returns
    -------
    `ImportResult` whose records have ``frames`` ``float32[1, D]`` (T = 1, D = number
    of feature columns, in file order) and whose ``columns`` lists those D names.

    Per-item errors (row skipped, others kept), naming ``"<path>#<row>"``: a NaN /
    empty / infinite feature (the columns are named), an empty label, a split value
    other than train/test, an empty or repeated clip id.

    Raises
    ------
    InputError : the file is missing or not a CSV, has no rows, lacks ``label_column``
        (or a named id / group column; the message lists the columns found), has a
        non-numeric feature column (named, with an example value), or no feature column.
    """
    import pandas as pd  # pandas is a core dependency; imported here to keep import light

    path = Path(path)
    _check_file(path)
    where_file = str(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(where_file, "must be a readable CSV file with a header line",
                         f"{type(exc).__name__}: {exc}") from exc
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise InputError(where_file, "column names must be distinct", f"repeated {dup}")

    def need(col: str | None, role: str) -> None:
        if col is not None and col not in columns:
            raise InputError(f"{where_file}: column {col!r}",
                             f"the table needs its {role} column {col!r}",
                             f"columns found: {', '.join(columns)}")

    need(label_column, "label")
    need(id_column, "id")
    need(group_column, "group")
    if df.empty:
        raise InputError(where_file, "a feature table must have at least one row", "0 rows")

    if id_column is None and "filename" in columns:
        id_column = "filename"
    use_split = split_column is not None and split_column in columns
    special = {label_column, id_column, group_column, split_column if use_split else None}
    dropped = set(drop_columns)
    feature_cols = [c for c in columns if c not in special and c not in dropped]
    if not feature_cols:
        raise InputError(where_file, "a feature table needs at least one numeric feature column",
                         f"columns found: {', '.join(columns)}")

    values = _table_features(df, feature_cols, where_file)  # float64[N, D], NaN for empty
    file_split = split_from_name(path.stem)
    records: list[Record] = []
    errors: list[ItemError] = []
    seen: set[str] = set()
    bad_rows = ~np.isfinite(values).all(axis=1)
    labels = df[label_column].tolist()
    ids = df[id_column].tolist() if id_column is not None else None
    groups = df[group_column].tolist() if group_column is not None else None
    tracks = ([track_of(v) for v in df["filename"].tolist()]
              if group_column is None and "filename" in columns else None)
    splits = df[split_column].tolist() if use_split else None
    for row in range(len(df)):
        where = f"{where_file}#{row}"
        try:
            clip_id = ids[row].strip() if ids is not None else f"{path.name}#{row}"
            if not clip_id:
                raise InputError(where, f"the id column {id_column!r} must not be empty", "''")
            if clip_id in seen:
                raise InputError(where, "clip ids must be unique", repr(clip_id))
            label = _label_str(labels[row], f"{where} [{label_column}]")
            group = clip_id
            if tracks is not None and tracks[row] is not None:
                group = tracks[row]
            if groups is not None:
                group = groups[row].strip()
                if not group:
                    raise InputError(f"{where} [{group_column}]", "a group must not be empty", "''")
            split = file_split
            if splits is not None:
                split = _split_value(splits[row], f"{where} [{split_column}]")
            if bad_rows[row]:
                bad = [feature_cols[j] for j in np.flatnonzero(~np.isfinite(values[row]))]
                shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                raise InputError(where, "feature values must be present and finite",
                                 f"NaN/empty/inf in {shown}")
            frames = _finish_frames(values[row : row + 1], where)
        except InputError as exc:
            errors.append(ItemError.from_exception(exc, path=where, stage="table"))
            continue
        seen.add(clip_id)
        records.append(Record(clip_id=clip_id, group=group, label=label, split=split,
                              frames=frames))
    return ImportResult(records=records, errors=errors, columns=feature_cols)


_NA_TOKENS = {"", "nan", "na", "n/a", "null", "none", "-nan"}
_TRUE_FALSE = {"true": 1.0, "false": 0.0}


def _table_features(df: Any, feature_cols: list[str], where: str) -> np.ndarray:
    """The feature columns (read as strings) as ``float64[N, D]``, NaN for empty cells."""
    import pandas as pd

    out = np.empty((len(df), len(feature_cols)), dtype=np.float64)
    for j, name in enumerate(feature_cols):
        text = df[name].astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
        low = text.map(lambda v: v.lower() if isinstance(v, str) else v)
        is_na = low.isin(_NA_TOKENS) | text.isna()
        is_bool = low.isin(_TRUE_FALSE.keys())
        nums = pd.to_numeric(text.where(~(is_na | is_bool)), errors="coerce")
        bad = nums.isna() & ~is_na & ~is_bool
        if bad.any():
            r = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{where}: column {name!r}",
                "feature columns must be numeric (name other columns in drop_columns, "
                "id_column, group_column or label_column)",
                f"{text.iloc[r]!r} in row {r}",
            )
        col = np.array(nums.to_numpy(dtype=np.float64, na_value=np.nan))
        col[is_bool.to_numpy()] = low[is_bool].map(_TRUE_FALSE).to_numpy(dtype=np.float64)
        out[:, j] = col
    return out


def _split_value(value: object, where: str) -> str | None:
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in ("", "nan", "none"):
        return None
    if text in ("train", "test"):
        return text
    raise InputError(where, "a split must be train, test or empty", repr(value))


# ---- dispatch -------------------------------------------------------------------------

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
