"""`SequenceSet`: the in-memory form of one feature set that every later room reads.

A `SequenceSet` holds N labelled sequences of frames, each of shape ``(T_i, D)``. It is
either *ragged* (``x`` is a list of float32 arrays) or *padded* (``x`` is one float32
array of shape ``(N, T_max, D)``, zero after each sequence's end, with ``lengths``).
The loader in `features.store` makes them; `trainables` and `search` only read them.

A *token* set (``vocab_size`` not None, see `features.tokens`) holds one integer id per
step (D = 1) in ``[0, vocab_size)``, id 0 meaning "unknown"; models embed the ids instead
of reading them as numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from seqsweep.errors import InputError

__all__ = ["SequenceIndex", "SequenceSet", "pad_sequences"]


def pad_sequences(seqs: list[np.ndarray], *, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pad ragged ``(T_i, D)`` arrays into ``(N, T_max, D)`` zeros plus ``lengths`` (int64).

    One allocation and one copy per sequence; an empty list gives shape ``(0, 0, dim)``.
    """
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    if dim is None:
        dim = int(seqs[0].shape[1]) if seqs else 0
    t_max = int(lengths.max()) if len(seqs) else 0
    out = np.zeros((len(seqs), t_max, dim), dtype=np.float32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


class _Labelled:
    """Checks on labels and groups, shared by `SequenceSet` and `SequenceIndex`."""

    y: np.ndarray
    classes: list[str]
    groups: np.ndarray

    def class_counts(self, *, by: str = "clips") -> dict[str, int]:
        """Clips (or distinct groups, ``by="groups"``) per class name; 0 for an empty class."""
        if by == "groups":
            counts = Counter(y for y, _ in set(zip(self.y.tolist(), self.groups.tolist())))
        elif by == "clips":
            counts = Counter(self.y.tolist())
        else:
            raise ValueError(f"by must be 'clips' or 'groups', got {by!r}")
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    def check_min_per_class(self, minimum: int, *, why: str = "cross-validation folds") -> None:
        """Raise `InputError` naming the first class with fewer than ``minimum`` groups.

        Groups, not clips, are what folds split (the segments of one track count once).
        """
        for name, count in self.class_counts(by="groups").items():
            if count < minimum:
                raise InputError(
                    f"class {name!r}",
                    f"needs at least {minimum} clips (distinct groups) for {minimum} {why}",
                    f"{count}",
                )


@dataclass
class SequenceSet(_Labelled):
    """N labelled sequences of D-dimensional frames.

    Attributes
    ----------
    x : list of ``float32[T_i, D]`` (ragged), or ``float32[N, T_max, D]`` (padded).
    y : ``int64[N]`` class indices into `classes`.
    classes : class names; ``classes[y[i]]`` is clip i's label.
    groups : ``str[N]``: clips sharing a group never straddle two folds.
    clip_ids : ``str[N]``: stable ids from the store.
    lengths : ``int64[N]``: sequence lengths T_i (always set).
    vocab_size : for a token set, the number of ids (the unknown id 0 included; values
        are whole numbers in ``[0, vocab_size)``, D = 1); None for real-valued frames.
        Kept by `subset`, `to_padded` and `to_ragged`.
    """

    x: list[np.ndarray] | np.ndarray
    y: np.ndarray
    classes: list[str]
    groups: np.ndarray
    clip_ids: np.ndarray
    lengths: np.ndarray = field(default=None)  # type: ignore[assignment]
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        self.groups = np.asarray(self.groups, dtype=object)
        self.clip_ids = np.asarray(self.clip_ids, dtype=object)
        if self.lengths is None:
            if self.padded:
                raise InputError("SequenceSet.lengths", "a padded set needs its lengths", None)
            self.lengths = np.fromiter((len(s) for s in self.x), dtype=np.int64, count=len(self.x))
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        if self.vocab_size is not None:
            if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, (int, np.integer)) \
                    or self.vocab_size < 1:
                raise InputError("SequenceSet.vocab_size", "must be a positive integer (or None)", self.vocab_size)
            self.vocab_size = int(self.vocab_size)
            if len(self.x) and self.dim != 1:
                raise InputError("SequenceSet.vocab_size", "a token set has one id per step (D = 1)",
                                 f"D={self.dim}")
        n = len(self.y)
        for name in ("x", "groups", "clip_ids", "lengths"):
            if len(getattr(self, name)) != n:
                raise InputError(
                    f"SequenceSet.{name}", f"must have one entry per label ({n})", len(getattr(self, name))
                )

    # ---- shape ---------------------------------------------------------------------
    @property
    def padded(self) -> bool:
        return isinstance(self.x, np.ndarray)

    @property
    def dim(self) -> int:
        """D, the number of values per frame."""
        if self.padded:
            return int(self.x.shape[2])
        return int(self.x[0].shape[1]) if len(self.x) else 0

    @property
    def is_tokens(self) -> bool:
        """Whether the frames are token ids (``vocab_size`` is set)."""
        return self.vocab_size is not None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.y)

    # ---- conversions -----------------------------------------------------------------
    def to_padded(self) -> SequenceSet:
        """The same set with ``x`` as ``float32[N, T_max, D]`` (self if already padded)."""
        if self.padded:
            return self
        x, lengths = pad_sequences(list(self.x), dim=self.dim)
        return SequenceSet(x, self.y, self.classes, self.groups, self.clip_ids, lengths, self.vocab_size)

    def to_ragged(self) -> SequenceSet:
        """The same set with ``x`` as a list of views ``float32[T_i, D]`` (no copy)."""
        if not self.padded:
            return self
        seqs = [self.x[i, : int(t)] for i, t in enumerate(self.lengths)]
        return SequenceSet(seqs, self.y, self.classes, self.groups, self.clip_ids, self.lengths, self.vocab_size)

    def index(self) -> SequenceIndex:
        """Its labels, groups, clip ids and lengths, without the frames."""
        return SequenceIndex(self.y, self.classes, self.groups, self.clip_ids, self.lengths, self.dim,
                             self.vocab_size)

    def subset(self, index: np.ndarray) -> SequenceSet:
        """Rows ``index`` (integer positions or a boolean mask), in that order; classes kept."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        x = self.x[index] if self.padded else [self.x[i] for i in index]
        return SequenceSet(
            x, self.y[index], self.classes, self.groups[index], self.clip_ids[index], self.lengths[index],
            self.vocab_size,
        )


@dataclass
class SequenceIndex(_Labelled):
    """What a fold plan and the sweep's checks need of N sequences, without their frames:
    labels, groups, clip ids and lengths (`FeatureStore.load_index` reads only these columns,
    so a driver's memory does not grow with the frames).

    Attributes
    ----------
    y : ``int64[N]`` class indices into `classes`.
    classes : class names.
    groups : ``str[N]``; clip_ids : ``str[N]``; lengths : ``int64[N]`` (T_i).
    dim : D, the values per frame (the feature set's manifest).
    vocab_size : as `SequenceSet.vocab_size`.
    """

    y: np.ndarray
    classes: list[str]
    groups: np.ndarray
    clip_ids: np.ndarray
    lengths: np.ndarray
    dim: int
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        self.groups = np.asarray(self.groups, dtype=object)
        self.clip_ids = np.asarray(self.clip_ids, dtype=object)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        for name in ("groups", "clip_ids", "lengths"):
            if len(getattr(self, name)) != len(self.y):
                raise InputError(f"SequenceIndex.{name}", f"must have one entry per label ({len(self.y)})",
                                 len(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def padded_nbytes(self) -> int:
        """Bytes of the set padded as ``float32[N, T_max, D]`` plus its ``int64`` lengths."""
        t_max = int(self.lengths.max()) if len(self) else 0
        return 4 * len(self) * t_max * self.dim + 8 * len(self)

    @property
    def frame_nbytes(self) -> int:
        """Bytes of the frames themselves (``float32``, ``sum T_i x D``): a node cache's size."""
        return 4 * int(self.lengths.sum()) * self.dim
