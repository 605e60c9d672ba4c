"""The live leaderboard: rewritten atomically while the sweep runs.

Two CSVs in the experiment folder, readable by pandas with no post-processing:

* ``leaderboard.csv``: one row per trial: rank, trial id, status, model, the objective and
  ``<metric>_mean/_std/_min``, the costs of its bag (fit seconds per fit and in all,
  prediction seconds per 1,000 clips, parameters), seeds, folds, fits done, the settings
  the trial used (`trainables.settings.used_settings`: a setting its family does not read
  stays empty), when it started and its checkpoint folder (Ray Tune's, taken from the Tune
  trial so that results need not read Ray's folders), error;
* ``leaderboard_folds.csv``: one row per (trial, seed, fold), with every ``fit_<key>`` the
  trial reports for that fit as column ``<key>``.

`LiveLeaderboard` is a Ray Tune callback on the driver; it rewrites both files as
results come (at most once a second between a trial's ends), from rows it keeps in memory (and reloads on ``--resume``); the table's
columns, reader and writer are `seqsweep.layout`'s, its ranking `search.ranking`'s.
Ray Tune writes its own ``progress.csv`` per trial; this is the one table across trials.
"""

from __future__ import annotations

import math
import posixpath
import time
from typing import Any

from ray.tune import Callback

from search.ranking import fold_frame, rank_rows, setting_column, setting_columns
from seqsweep.layout import (
    CHECKPOINT,
    ERROR,
    FIT_PREFIX,
    MODEL,
    OBJECTIVE,
    SCORES,
    START_TIME,
    STATUS,
    TrialStatus,
    read_folds,
    read_leaderboard,
    write_folds,
    write_leaderboard,
)
from trainables.registry import split_flat_config
from trainables.settings import used_settings
from trainables.trial.run import flat_config

__all__ = ["LiveLeaderboard"]


def _settings(config: dict[str, Any], train: dict[str, Any], *, tokens: bool) -> dict[str, Any]:
    """The settings a trial used (sampled, fixed and defaults its family reads), as columns."""
    family = config.get(MODEL)
    try:
        name, model_config, train_config = split_flat_config(flat_config(config, train))
        used = used_settings(name, model_config, train_config, tokens=tokens)
    except Exception:  # a config the model refused: show what was sampled
        inner = config.get(family, {})
        used = dict(inner) if isinstance(inner, dict) else {}
    return {setting_column(str(family), key): value for key, value in used.items()}


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _from_ray(trial: Any, row: dict[str, Any]) -> dict[str, Any]:
    """What results needs of Ray Tune's trial, as columns: `START_TIME` (Tune's start time;
    ``None`` until Tune marks the trial running, just after ``on_trial_start``: then the
    driver's clock now) and `CHECKPOINT` (the trial's last checkpoint folder, relative to
    the experiment folder, once it has one). A value the row already holds is kept."""
    out = {}
    if not _known(row.get(START_TIME)):
        out[START_TIME] = trial.run_metadata.start_time or time.time()
    checkpoint = trial.checkpoint
    if checkpoint is not None:
        out[CHECKPOINT] = posixpath.relpath(checkpoint.path, trial.remote_experiment_path)
    return out


class LiveLeaderboard(Callback):
    """Ray Tune callback that keeps ``leaderboard.csv`` and ``leaderboard_folds.csv`` current.

    ``train`` holds the spec's fixed training keys (so a row shows the values a trial
    really used); ``seeds`` and ``folds`` are the CV shape, written on every row;
    ``tokens`` whether the sweep's data are token ids (``embedding_dim`` applies only then).

    The files are rewritten (atomically, with fsync) at most every ``write_every_s`` seconds
    while trials start and results stream in: a rewrite of both files costs ~15 ms of the
    driver's loop, which the next trial's start would otherwise wait behind. A trial's end
    or failure, and the sweep's end, are written at once: how each trial ended never waits
    (a started trial's row, and the per-fit rows, may wait up to ``write_every_s``).
    """

    def __init__(self, experiment_dir: str, *, train: dict[str, Any], seeds: int, folds: int,
                 tokens: bool = False, write_every_s: float = 1.0) -> None:
        self.experiment_dir = experiment_dir.rstrip("/")
        self.train = dict(train)
        self.seeds, self.folds, self.tokens = seeds, folds, bool(tokens)
        self.write_every_s = float(write_every_s)
        self.rows: dict[str, dict[str, Any]] = {}
        self.fold_rows: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._reconciled = False
        self._written_at = -math.inf  # perf_counter of the last write
        self._dirty = False
        self._load_existing()

    # Pickled with the Tuner's state: only the settings travel; rows are reloaded from the
    # CSVs when a sweep is restored, so they are never older than the files.
    def __getstate__(self) -> dict[str, Any]:
        return {"experiment_dir": self.experiment_dir, "train": self.train, "seeds": self.seeds,
                "folds": self.folds, "tokens": self.tokens}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("experiment_dir"), **state)

    def _load_existing(self) -> None:
        for row in read_leaderboard(self.experiment_dir).to_dict("records"):
            row.pop("rank", None)  # recomputed from the statuses on every write
            self.rows[str(row["trial_id"])] = row
        for row in read_folds(self.experiment_dir).to_dict("records"):
            self.fold_rows[(str(row["trial_id"]), int(row["seed"]), int(row["fold"]))] = row

    # ---- Ray Tune hooks ----------------------------------------------------------------
    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        """On the first step of a restored sweep, drop rows of trials the restored experiment
        does not know (they finished after its last saved state and will not be resumed),
        and write the others' settings again from their configs (a board of an older
        version showed every family's settings on every row)."""
        if self._reconciled:
            return
        self._reconciled = True
        known = {str(t.trial_id): t for t in trials}
        if not self.rows:
            return
        self.rows = {tid: row for tid, row in self.rows.items() if tid in known}
        self.fold_rows = {k: v for k, v in self.fold_rows.items() if k[0] in known}
        for tid, row in self.rows.items():
            kept = {k: v for k, v in row.items() if k not in setting_columns(list(row))}
            self.rows[tid] = {**kept, **_settings(dict(known[tid].config), self.train, tokens=self.tokens)}
        self.write()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, {STATUS: TrialStatus.RUNNING})
        self._write_if_due()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._update(trial, result)
        self._write_if_due()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._write_if_due()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._dirty:
            self.write()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        status = TrialStatus(result.get(STATUS, TrialStatus.OK))
        if status is TrialStatus.RUNNING:  # a scheduler stopped it before its last fit
            status = TrialStatus.PRUNED
        self._update(trial, {**result, STATUS: status})
        self.write()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.get_error() or "the trial's worker failed"
        last_line = [line for line in str(error).strip().splitlines() if line.strip()][-1:]
        self._update(trial, {**(trial.last_result or {}), STATUS: TrialStatus.ERROR,
                             ERROR: last_line[0] if last_line else str(error), OBJECTIVE: math.nan})
        self.write()

    # ---- rows ------------------------------------------------------------------------------
    def _update(self, trial: Any, result: dict[str, Any]) -> None:
        tid = str(trial.trial_id)
        config = dict(trial.config)
        row = self.rows.get(tid) or {"trial_id": tid, MODEL: config.get(MODEL),
                                     **_settings(config, self.train, tokens=self.tokens)}
        row.update(seeds=self.seeds, folds=self.folds)
        for key in SCORES:
            if key in result:
                row[key] = result[key]
        if STATUS in result:
            row[STATUS] = TrialStatus(result[STATUS])
        row.setdefault(ERROR, "")
        row.update(_from_ray(trial, row))
        self.rows[tid] = row
        if f"{FIT_PREFIX}seed" in result:
            key = (tid, int(result[f"{FIT_PREFIX}seed"]), int(result[f"{FIT_PREFIX}fold"]))
            self.fold_rows[key] = {"trial_id": tid, MODEL: row[MODEL],
                                   **{k[len(FIT_PREFIX):]: v for k, v in result.items()
                                      if k.startswith(FIT_PREFIX) and k not in SCORES}}
        self._dirty = True

    def _write_if_due(self) -> None:
        if self._dirty and time.perf_counter() - self._written_at >= self.write_every_s:
            self.write()

    def write(self) -> None:
        """Rewrite both CSVs now (each atomically)."""
        self._written_at, self._dirty = time.perf_counter(), False
        write_leaderboard(rank_rows(list(self.rows.values())), self.experiment_dir)
        write_folds(fold_frame(list(self.fold_rows.values())), self.experiment_dir)
