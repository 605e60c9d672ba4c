"""`read_pickle`: pickled ``(sequence, label)`` pairs, padding stripped at both ends.

The chord-sequence layout: each sequence carries a padding marker (``-1``) at either
end, which is not data. The pickle is loaded with `features.safe_pickle`, so a file
that would run code when unpickled is refused before anything in it runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from features.importers.groups import GroupFile, split_from_name
from features.importers.records import ImportResult, Record
from features.importers.rules import check_file, dim_check, finish_frames, label_str
from features.rows import ItemError
from features.safe_pickle import load_plain_pickle
from seqsweep.errors import InputError

__all__ = ["read_pickle"]


_PAIR_KEYS = (("x", "y"), ("sequences", "labels"), ("data", "labels"), ("data", "target"))
"""The keys (case-blind) under which a pickled dict holds parallel sequences and labels."""


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
    check_file(path)
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
            dim = dim_check(rec.frames, dim, where)
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
    label_s = label_str(label, where)
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
    frames = finish_frames(stripped, where)
    return Record(clip_id=clip_id, group=group, label=label_s, split=split, frames=frames)


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
