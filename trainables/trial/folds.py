"""Repeated-seed cross-validation: the same folds for every trial, each trial's own
initialisation.

For seed ``s`` (``search.seed + s``), `features.splits.group_split` (scikit-learn's
`StratifiedGroupKFold` with ``shuffle=True, random_state=s``) cuts the train split into
``folds`` folds: stratified by label, and a group (the track a segment came from) never
straddles two folds. The plan is made once on the driver and shipped to every trial with
the data, so every trial is scored on the same folds and trials compare fold by fold.

What a fit starts from (its weight initialisation, batch order, dropout stream and inner
early-stopping split) is the trial's own: `init_seed` hashes the trial's identity (its Ray
Tune trial id, which a resumed trial keeps) with the plan's seed, so two trials of one
configuration make their own mistakes, and an ensemble of them has something to average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.sequences import SequenceIndex, SequenceSet
from features.splits import group_split

__all__ = ["CVFit", "CVPlan", "init_seed", "make_plan", "summarize", "plan_fingerprint", "fingerprint_changes"]


@dataclass(frozen=True)
class CVFit:
    """One (seed, fold): the plan seed that cut the folds (a trial's fits start from
    `init_seed` of it), and row positions."""

    seed: int
    seed_index: int
    fold: int
    train: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class CVPlan:
    """Every fit a trial makes, in order: seed 0's folds, then seed 1's, ..."""

    fits: tuple[CVFit, ...]
    folds: int
    seeds: tuple[int, ...]
    n_rows: int

    def __len__(self) -> int:
        return len(self.fits)


def make_plan(data: SequenceSet | SequenceIndex, *, folds: int, seeds: int, base_seed: int = 0) -> CVPlan:
    """Folds of ``data`` for ``seeds`` seeds (its labels and groups: a `SequenceIndex`
    without frames serves as well). `InputError` names a class with fewer groups than
    ``folds`` (no fold could hold one of each)."""
    data.check_min_per_class(folds)
    fits = []
    seed_values = tuple(base_seed + s for s in range(seeds))
    for s_index, seed in enumerate(seed_values):
        for k, (tr, va) in enumerate(group_split(data.y, data.groups, folds=folds, seed=seed)):
            fits.append(CVFit(seed, s_index, k, tr, va))
    return CVPlan(tuple(fits), folds, seed_values, len(data))


def init_seed(trial: str, seed: int) -> int:
    """The seed a trial's fits of plan seed ``seed`` start from: the first 4 bytes of
    sha256(``trial`` "/" ``seed``), below 2**31 (numpy, torch and scikit-learn all take it).

    ``trial`` is the trial's identity (its Ray Tune trial id); every fold of one plan seed
    shares the init seed, as a full refit with that seed does. Reproducible from the
    leaderboard's trial id and seed columns; different for two trials of one configuration.
    """
    import hashlib

    digest = hashlib.sha256(f"{trial}/{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def summarize(values: list[float]) -> dict[str, float]:
    """mean, std (population, 0 for one value) and min of per-fit values."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan")}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min())}


def plan_fingerprint(data: SequenceSet | SequenceIndex, plan: CVPlan, *, source: str) -> dict[str, object]:
    """What a sweep's folds were made from, to check that a resumed sweep scores its new
    trials on the same folds: the data's source (store/dataset/feature set), its train clips
    (count and a hash of their ids, labels and groups in order), and the CV shape and seed."""
    import hashlib

    digest = hashlib.sha256()
    for values in (data.clip_ids, data.y, data.groups):
        digest.update("\x1f".join(map(str, values)).encode())
        digest.update(b"\x1e")
    return {"source": source, "train_clips": len(data), "train_hash": digest.hexdigest()[:16],
            "folds": plan.folds, "seeds": len(plan.seeds), "base_seed": plan.seeds[0] if plan.seeds else 0}


def fingerprint_changes(before: dict[str, object], now: dict[str, object]) -> list[str]:
    """Human-readable differences between two `plan_fingerprint`s (empty if the same)."""
    names = {"source": "data source", "train_clips": "train clips", "train_hash": "train clips' ids, labels or "
             "groups", "folds": "cv.folds", "seeds": "cv.seeds", "base_seed": "search.seed"}
    return [f"{names.get(k, k)}: {before.get(k)!r} then, {now.get(k)!r} now"
            for k in names if before.get(k) != now.get(k)]
