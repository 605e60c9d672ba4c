"""Audio sources: find the clips of a dataset, load one, cut it into segments.

Two layouts are understood:

* a folder with one subfolder per class (GTZAN's ``genres/blues/blues.00000.wav``);
* a manifest CSV with columns ``path,label`` and optionally ``split`` and ``group``
  (paths relative to the CSV's folder, or absolute).

Discovery never raises for one bad file: a file with an unknown extension or a CSV
row with a bad field becomes an `ItemError` and the rest go on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from features.rows import ItemError
from seqsweep.errors import InputError

__all__ = ["AUDIO_EXTENSIONS", "AudioItem", "discover_audio", "load_segments"]

#: Extensions soundfile (libsndfile >= 1.1) decodes from memory.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus"}
)
_SPLITS = ("train", "test")


@dataclass(frozen=True)
class AudioItem:
    """One source clip: where it is and what it is.

    ``source`` is the stable id (the path relative to the dataset root, POSIX style);
    segments get ``source#k``. ``split`` is ``None`` unless the source said it.
    """

    path: str
    source: str
    label: str
    group: str
    split: str | None = None


def discover_audio(source: str | Path) -> tuple[list[AudioItem], list[ItemError]]:
    """List the clips of an audio folder (one subfolder per class) or a manifest CSV.

    Paths come back absolute: Ray workers do not share the driver's working directory.
    """
    source = Path(source).absolute()  # workers (other processes, other nodes) need whole paths
    if not source.exists():
        raise InputError(str(source), "the audio source must exist (a folder or a .csv)", "no such path")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise InputError(str(source), "a file source must be a manifest .csv", source.suffix or "no extension")
        return _from_manifest(source)
    return _from_folder(source)


def _from_folder(root: Path) -> tuple[list[AudioItem], list[ItemError]]:
    items: list[AudioItem] = []
    errors: list[ItemError] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir():
            continue  # hidden files (.DS_Store) and folders are not data
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            errors.append(_err(path, "discover", "InputError",
                               f"extension must be one of {sorted(AUDIO_EXTENSIONS)} (got {path.suffix!r})"))
            continue
        if len(rel.parts) < 2:
            errors.append(_err(path, "discover", "InputError",
                               "audio files must sit in a subfolder named after their class"))
            continue
        items.append(AudioItem(str(path), rel.as_posix(), rel.parts[0], rel.as_posix()))
    if not items and not errors:
        raise InputError(str(root), "an audio folder needs one subfolder per class holding audio files",
                         "no audio files found")
    return items, errors


def _from_manifest(csv_path: Path) -> tuple[list[AudioItem], list[ItemError]]:
    base = csv_path.parent
    items: list[AudioItem] = []
    errors: list[ItemError] = []
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        for need in ("path", "label"):
            if need not in columns:
                raise InputError(f"{csv_path}: column {need!r}",
                                 "a manifest CSV needs the columns path,label[,split][,group]",
                                 f"columns {columns}")
        for line, row in enumerate(reader, start=2):
            where = f"{csv_path.name}:{line}"
            rel, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            split = (row.get("split") or "").strip().lower() or None
            if not rel or not label:
                errors.append(_err(where, "discover", "InputError", "path and label must be non-empty"))
                continue
            if split is not None and split not in _SPLITS:
                errors.append(_err(where, "discover", "InputError",
                                   f"split must be one of {list(_SPLITS)} (got {split!r})"))
                continue
            path = Path(rel) if Path(rel).is_absolute() else base / rel
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                errors.append(_err(path, "discover", "InputError",
                                   f"extension must be one of {sorted(AUDIO_EXTENSIONS)} (got {path.suffix!r})"))
                continue
            source = Path(rel).as_posix()
            group = (row.get("group") or "").strip() or source
            items.append(AudioItem(str(path), source, label, group, split))
    if not items and not errors:
        raise InputError(str(csv_path), "a manifest CSV needs at least one row", "0 rows")
    return items, errors


def _err(where: object, stage: str, error_type: str, message: str) -> ItemError:
    return ItemError(path=str(where), stage=stage, error_type=error_type, message=f"{where}: {message}")


def load_segments(
    src: str | BinaryIO, *, where: str, sr: int, segment_seconds: float | None, min_samples: int
) -> list[np.ndarray]:
    """Load a clip (a path or an open binary file) as mono float32 at ``sr``; cut it into segments.

    Returns the whole clip as one segment when ``segment_seconds`` is None, else
    ``floor(duration / segment_seconds)`` segments of exactly that length (the tail is
    dropped) [shape=(n_samples,) each].

    Raises `InputError` naming the file for an empty, silent or too-short clip; a
    decoder error (corrupt file, unreadable path) propagates with the decoder's type.
    """
    import librosa

    y, _ = librosa.load(src, sr=sr, mono=True)
    path = where
    if y.size == 0:
        raise InputError(path, "audio must hold at least one sample", "0 samples")
    if not np.isfinite(y).all():
        raise InputError(path, "audio samples must be finite", "NaN or inf samples")
    peak = float(np.abs(y).max())
    if peak < 1e-4:
        raise InputError(path, "audio must not be silent (peak amplitude >= 1e-4)", f"peak {peak:.2g}")
    if segment_seconds is None:
        segments = [y]
    else:
        n = int(round(segment_seconds * sr))
        count = len(y) // n
        if count == 0:
            raise InputError(path, f"clip must be at least --segment-seconds {segment_seconds:g} s long",
                             f"{len(y) / sr:.2f} s")
        segments = [y[k * n:(k + 1) * n] for k in range(count)]
    if len(segments[0]) < min_samples:
        raise InputError(path, f"audio must be at least {min_samples} samples ({min_samples / sr:.3f} s)",
                         f"{len(segments[0])} samples")
    return segments
