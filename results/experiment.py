"""Reading a finished sweep's experiment folder: the spec as run, the leaderboard, and each
trial's out-of-fold probabilities and learning curves.

The folder ``<storage>/<name>/`` (its names, columns and CSV reader: `seqsweep.layout`)
holds ``sweep.json``, ``leaderboard.csv``, ``leaderboard_folds.csv`` and, for each trial
that finished with status ``ok``, the checkpoint folder its leaderboard row names, holding
``oof.npz``, ``fits.json`` and ``fold_models/``. The folder may be a local path or any URI
Ray Tune stores experiments at (``file://``, ``s3://``, ``gs://``): every read goes through
`seqsweep.storage`.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from results.ensemble.spec import ResultsSpec
from seqsweep import storage
from seqsweep.errors import StoreError
from seqsweep.layout import (
    CHECKPOINT,
    FITS_FILE,
    LEADERBOARD,
    OOF_FILE,
    RAY_CHECKPOINT_PREFIX,
    RAY_RESULT_FILE,
    RAY_TIME_TOTAL,
    RAY_TIMESTAMP,
    SPEC_FILE,
    START_TIME,
    STATUS,
    TrialStatus,
    read_folds,
    read_leaderboard,
    trial_dirname,
)

__all__ = ["Experiment", "Member", "load_experiment"]


@dataclass
class Member:
    """One trial that may join an ensemble: its identity, config and out-of-fold output.

    Attributes
    ----------
    trial_id, model, rank, objective : from the leaderboard.
    config : the flat model + training config the trial ran (``fits.json``), without
        ``model``; ``trainables.split_flat_config({"model": model, **config})`` rebuilds it.
    oof : float32 [shape=(n_seeds, N_train, C)] out-of-fold probabilities per CV seed.
    y : int64 [shape=(N_train,)] true classes; ``clip_ids`` and ``groups``
        [shape=(N_train,)] (groups are the clip ids for trials saved before groups were);
        ``classes``.
    fits : per (seed, fold) scalars (and ``file``: the fold model, relative to
        ``checkpoint``); ``histories``: per fit, one dict per epoch.
    checkpoint : the trial's checkpoint folder (``oof.npz``, ``fits.json``, ``fold_models/``).
    """

    trial_id: str
    model: str
    rank: int
    objective: float
    config: dict[str, Any]
    oof: np.ndarray
    y: np.ndarray
    clip_ids: np.ndarray
    classes: list[str]
    fits: list[dict[str, Any]] = field(default_factory=list)
    histories: list[list[dict[str, Any]]] = field(default_factory=list)
    checkpoint: str = ""
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = np.asarray(self.clip_ids, dtype=str)

    @property
    def init_seeds(self) -> list[int]:
        """The seeds its fits started from, one per CV seed in plan order (`trainables.trial.folds.init_seed`;
        a trial saved before trials had their own seeds started from the plan seeds)."""
        starts = {int(f["seed"]): int(f.get("init_seed", f["seed"])) for f in self.fits}
        return [starts[s] for s in sorted(starts)]

    @property
    def flat_config(self) -> dict[str, Any]:
        """``{"model": ..., **config}`` for `trainables.split_flat_config`."""
        return {"model": self.model, **self.config}


@dataclass
class Experiment:
    """A sweep's experiment folder, read: ``spec`` (``sweep.json``, `ResultsSpec.load`: every section checked, ``ensemble`` too) and
    ``board`` (``leaderboard.csv``, ranked, ``trial_id`` as text)."""

    path: str
    spec: ResultsSpec
    board: pd.DataFrame

    @property
    def metric(self) -> str:
        return self.spec.metric

    def folds(self) -> pd.DataFrame:
        """``leaderboard_folds.csv`` (one row per trial, seed and fold; empty if absent)."""
        return read_folds(self.path)

    def ok_trials(self) -> pd.DataFrame:
        """Rows with status ``ok``, best first."""
        board = self.board[self.board[STATUS] == TrialStatus.OK]
        return board.sort_values("rank", kind="stable").reset_index(drop=True)

    def trial_dir(self, trial_id: str) -> str:
        return storage.join(self.path, trial_dirname(trial_id))

    def checkpoint(self, trial_id: str) -> str:
        """The trial's last checkpoint folder holding ``oof.npz`` (the leaderboard's
        ``checkpoint``); `StoreError` if none."""
        row = self.board[self.board["trial_id"] == trial_id]
        named = row[CHECKPOINT].iloc[0] if CHECKPOINT in row and len(row) else None
        if isinstance(named, str) and named:
            found = [storage.join(self.path, named)]
            missing = storage.join(found[0], OOF_FILE)
        else:
            # A board written before it held the checkpoint (its experiments must still
            # report): the trial folder's last checkpoint folder of Ray Tune's that holds one.
            folder = self.trial_dir(trial_id)
            found = [storage.join(folder, name) for name in storage.list_names(folder)
                     if name.startswith(RAY_CHECKPOINT_PREFIX)]
            missing = storage.join(folder, f"{RAY_CHECKPOINT_PREFIX}*", OOF_FILE)
        found = [c for c in found if storage.exists(storage.join(c, OOF_FILE))]
        if not found:
            raise StoreError(missing, "a trial with status ok must have saved its out-of-fold probabilities",
                             "no such file")
        return found[-1]

    def start_time(self, trial_id: str) -> float | None:
        """When the trial started (Unix seconds: the leaderboard's ``start_time``); None if
        it never reported."""
        row = self.board[self.board["trial_id"] == trial_id]
        named = row[START_TIME].iloc[0] if START_TIME in row and len(row) else None
        if named is not None and pd.notna(named):
            return float(named)
        # A board written before it held the start (its experiments must still report):
        # the first result in Ray Tune's result.json, its timestamp less its run time.
        data = storage.read_bytes(storage.join(self.trial_dir(trial_id), RAY_RESULT_FILE))
        try:
            first = json.loads(data.split(b"\n", 1)[0]) if data else None
            return float(first[RAY_TIMESTAMP]) - float(first.get(RAY_TIME_TOTAL, 0.0))
        except (TypeError, ValueError, KeyError):
            return None

    def member(self, row: dict[str, Any] | pd.Series) -> Member:
        """Read one ok trial's ``oof.npz`` and ``fits.json``."""
        trial_id = str(row["trial_id"])
        ckpt = self.checkpoint(trial_id)
        with np.load(io.BytesIO(storage.read_bytes(storage.join(ckpt, OOF_FILE))), allow_pickle=False) as data:
            oof, y = data["proba"], data["y"].astype(np.int64)
            clip_ids, classes = data["clip_ids"].astype(str), [str(c) for c in data["classes"]]
            groups = data["groups"].astype(str) if "groups" in data.files else None
        fits_path = storage.join(ckpt, FITS_FILE)
        try:
            fits = json.loads(storage.read_bytes(fits_path) or b"")
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(fits_path, "must be the trial's readable fits.json", str(exc)) from None
        config = {k: v for k, v in fits.get("config", {}).items() if k != "model"}
        return Member(trial_id=trial_id, model=str(fits.get("model", row["model"])), rank=int(row["rank"]),
                      objective=float(row["objective"]), config=config, oof=oof, y=y, clip_ids=clip_ids,
                      classes=classes, fits=fits.get("fits", []), histories=fits.get("histories", []),
                      checkpoint=ckpt, groups=groups)

    def top_members(self, top_k: int | None, *, echo=None) -> list[Member]:
        """The ``top_k`` best ok trials (every one with ``None``; fewer if the sweep has
        fewer, and ``echo`` says so).

        Raises `StoreError` when no trial finished ok, or the members' out-of-fold rows
        disagree (different clips or classes: not the same sweep's data).
        """
        ok = self.ok_trials()
        if ok.empty:
            raise StoreError(storage.join(self.path, LEADERBOARD), "ensembles need at least one trial with "
                             "status ok", f"{len(self.board)} trials, none ok")
        if top_k is not None and len(ok) < top_k and echo is not None:
            echo(f"top_k is {top_k} but only {len(ok)} trials finished ok: using those {len(ok)}")
        members = [self.member(row) for _, row in (ok if top_k is None else ok.head(top_k)).iterrows()]
        first = members[0]
        for other in members[1:]:
            if list(other.clip_ids) != list(first.clip_ids) or other.classes != first.classes:
                raise StoreError(self.checkpoint(other.trial_id), f"out-of-fold rows must cover the same "
                                 f"clips and classes as trial {first.trial_id}'s", "a different train split")
        return members


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Read ``sweep.json`` and ``leaderboard.csv`` of the experiment folder ``path`` (a local
    path or a URI such as ``s3://bucket/runs/quick``).

    Raises `StoreError` naming the folder or file when it is missing or unreadable.
    """
    path = storage.resolve(path)
    if not storage.is_dir(path) and not storage.exists(storage.join(path, SPEC_FILE)):
        raise StoreError(path, "must be a sweep's experiment folder (<storage>/<name>)", "no such folder")
    spec_path = storage.join(path, SPEC_FILE)
    board_path = storage.join(path, LEADERBOARD)
    for needed in (spec_path, board_path):
        if not storage.exists(needed):
            raise StoreError(needed, "a sweep's experiment folder must hold this file",
                             "missing (is this <storage>/<name> of a sweep that ran?)")
    return Experiment(path, ResultsSpec.load(path), read_leaderboard(path))
