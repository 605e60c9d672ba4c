"""What an extraction worker runs: read one clip, check it, compute its frames.

This module and what it imports (numpy, librosa, soundfile) are all a Ray worker loads to
extract audio: the store's pyarrow and pandas and the split's scikit-learn stay on the
driver, so a new worker is ready sooner.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

from features.audio import AudioItem, load_segments
from features.extract import FeatureSpec, compute_features, warm_up
from features.rows import ItemError, SourceRows
from seqsweep.errors import InputError

__all__ = ["extract_clip"]


def extract_clip(path: str, spec: FeatureSpec, *, data: bytes | None = None) -> list:
    """Frames of every segment of one audio file [each shape=(T, spec.dim)]; raises on bad input."""
    data = Path(path).read_bytes() if data is None else data
    segments = load_segments(io.BytesIO(data), where=path, sr=spec.sr,
                             segment_seconds=spec.segment_seconds, min_samples=spec.min_samples)
    return [compute_features(y, spec) for y in segments]


def _extract_one(item: AudioItem, split: str, spec: FeatureSpec) -> SourceRows | ItemError:
    """One clip's rows, or the error that names its file and the stage it failed at."""
    try:
        st = os.stat(item.path)
        data = Path(item.path).read_bytes()
    except OSError as exc:
        return ItemError.from_exception(exc, path=item.path, stage="read")
    try:
        frames = extract_clip(item.path, spec, data=data)
    except InputError as exc:  # empty, silent, too short
        return ItemError.from_exception(exc, path=item.path, stage="check")
    except Exception as exc:  # the decoder's or librosa's own error: this file only
        message = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", item.path, str(exc))
        return ItemError(item.path, "decode", type(exc).__name__,
                         f"{item.path}: must decode as audio (WAV, FLAC, OGG, MP3): {message}")
    return SourceRows.segments(source=item.source, label=item.label, group=item.group, split=split,
                               frames=frames, size=st.st_size, mtime_ns=st.st_mtime_ns,
                               sha256=hashlib.sha256(data).hexdigest())


def _extract_chunk(work: list[tuple[AudioItem, str]], spec: FeatureSpec) -> list[SourceRows | ItemError]:
    """A Ray task's body: warm librosa up once per process, then extract each clip."""
    warm_up(spec)
    return [_extract_one(item, split, spec) for item, split in work]
