"""`SourceRows`: what one source file produced, as it travels from a worker to the writer.

Kept apart from `features.store` so that extraction workers import numpy and librosa,
not pyarrow, pandas or scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SourceRows"]


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
