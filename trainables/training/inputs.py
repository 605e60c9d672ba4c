"""The data checks every fit and prediction runs before any work."""

from __future__ import annotations

import numpy as np

from features.sequences import SequenceSet
from seqsweep.errors import InputError

__all__ = ["check_set", "check_pair"]


def check_set(data: SequenceSet, where: str) -> None:
    if not isinstance(data, SequenceSet):
        raise InputError(where, "must be a features.sequences.SequenceSet", type(data).__name__)
    if len(data) == 0:
        raise InputError(where, "needs at least one sequence", 0)
    if data.n_classes < 2:
        raise InputError(f"{where}.classes", "a classifier needs at least 2 classes", list(data.classes))
    short = np.flatnonzero(data.lengths < 1)
    if short.size:
        raise InputError(f"{where} clip {data.clip_ids[short[0]]!r}", "every sequence needs at least one frame", 0)
    bad_y = np.flatnonzero((data.y < 0) | (data.y >= data.n_classes))
    if bad_y.size:
        raise InputError(
            f"{where} clip {data.clip_ids[bad_y[0]]!r}", f"labels must be in [0, {data.n_classes})", int(data.y[bad_y[0]])
        )
    if data.padded:
        finite = bool(np.isfinite(data.x).all())
        bad = None if finite else int(np.flatnonzero(~np.isfinite(data.x).all(axis=(1, 2)))[0])
    else:
        bad = next((i for i, s in enumerate(data.x) if not np.isfinite(s).all()), None)
    if bad is not None:
        raise InputError(f"{where} clip {data.clip_ids[bad]!r}", "feature values must be finite", "NaN or inf")


def check_pair(train: SequenceSet, valid: SequenceSet | None) -> None:
    check_set(train, "train")
    if valid is None:
        return
    check_set(valid, "valid")
    if valid.dim != train.dim:
        raise InputError("valid", f"frames must have the training set's D = {train.dim}", f"D={valid.dim}")
    if list(valid.classes) != list(train.classes):
        raise InputError("valid.classes", f"must equal the training classes {list(train.classes)}", list(valid.classes))
