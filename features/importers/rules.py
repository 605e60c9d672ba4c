"""The checks every reader applies to its items, so each format is held to the same rules.

A record's frames are ``float32[T, D]`` with T >= 1, D >= 1 and every value finite
(`finish_frames`); a label is an int-like or a non-empty string (`label_str`); within one
file every record has the same D (`dim_check`). Each check raises `InputError` naming
the item (``"<path>#<index>"``), the rule and the value; the reader turns it into that
item's `ItemError` and goes on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from seqsweep.errors import InputError

__all__ = ["check_file", "dim_check", "finish_frames", "label_str"]


def check_file(path: Path) -> None:
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        raise InputError(str(path), "must be an existing file", what)


def label_str(label: object, where: str) -> str:
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


def finish_frames(arr: np.ndarray, where: str) -> np.ndarray:
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


def dim_check(frames: np.ndarray, dim: int | None, where: str) -> int:
    d = int(frames.shape[1])
    if dim is not None and d != dim:
        raise InputError(where, f"every sequence in a file must have the same frame dimension ({dim})",
                         f"dimension {d}")
    return d
