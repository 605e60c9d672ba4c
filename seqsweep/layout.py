"""The experiment folder, named once: its files and folders, what is read of Ray Tune's own
layout, the trial statuses, the keys a trial reports and the leaderboard's columns, with
the one reader and the one writer of each leaderboard CSV (Ray keeps its names the same
way, in ``ray/air/constants.py`` and ``ray/tune/result.py``; Optuna its states in
``optuna/trial/_state.py``).

An experiment folder is ``<storage>/<name>/``, a local path or a URI; search writes it
during the sweep, results adds the ensembles and the report after it::

    sweep.json                  the sweep spec as run (search.spec.SweepSpec.save)
    plan.json                   the fold plan's fingerprint: a resume must score on the same folds
    optuna.log                  the Optuna study (JournalStorage), for optuna-dashboard
    leaderboard.csv             one row per trial, written as trials finish
    leaderboard_folds.csv       one row per (trial, seed, fold)
    trial_<id>/                 Ray Tune's trial folder (named by search.sweep), holding
      result.json, progress.csv   Tune's own logs
      checkpoint_<n>/             the trial's last report (the leaderboard's ``checkpoint``):
        oof.npz                     the trial's out-of-fold probabilities
        fits.json                   each fit's epochs and scores
        fold_models/                each fit's weights (no pickles)
    ensembles.csv               every member, ensemble and the final choice: out-of-fold and test figures
    ensembles_run<n>.csv        an earlier run's ensembles.csv, kept when the ensembles are rebuilt
    test_looks.csv              every scoring of the test split: when, command, settings, what, figure
    ensemble/ensemble.json      the saved ensembles that `predict` loads
    ensemble/test_predictions.npz
    report/                     report.md and its plots

No pandas at import: a trial imports the names on every worker; the readers import it.
"""

from __future__ import annotations

import enum
import io
from typing import TYPE_CHECKING

from seqsweep.storage import join, read_bytes, write_csv_atomic

if TYPE_CHECKING:
    import pandas as pd

# ---- files and folders ------------------------------------------------------------------------
SPEC_FILE = "sweep.json"
PLAN_FILE = "plan.json"
OPTUNA_LOG = "optuna.log"
LEADERBOARD = "leaderboard.csv"
FOLDS = "leaderboard_folds.csv"
OOF_FILE = "oof.npz"
FITS_FILE = "fits.json"
FOLD_MODELS = "fold_models"
ENSEMBLES_CSV = "ensembles.csv"
ENSEMBLES_RUN = "ensembles_run{run}.csv"  # .format(run=n): the ensembles.csv of run n, kept
TEST_LOOKS = "test_looks.csv"
ENSEMBLE_DIR = "ensemble"
ENSEMBLE_JSON = "ensemble.json"
TEST_PREDICTIONS = "test_predictions.npz"
REPORT_DIR = "report"
REPORT_FILE = "report.md"

# what is read of Ray Tune's layout, only for experiments written before the leaderboard
# held `CHECKPOINT` and `START_TIME` (ray.air.constants.EXPR_RESULT_FILE; Tune's checkpoint folders)
RAY_CHECKPOINT_PREFIX = "checkpoint_"
RAY_RESULT_FILE = "result.json"
RAY_TIMESTAMP = "timestamp"  # ray.tune.result.TIMESTAMP: when a result was reported (Unix seconds)
RAY_TIME_TOTAL = "time_total_s"  # ray.tune.result.TIME_TOTAL_S: the trial's seconds so far


def trial_dirname(trial_id: str) -> str:
    """``trial_<id>``: the trial's folder in the experiment folder (short and stable: Tune's
    default spells out every parameter)."""
    return f"trial_{trial_id}"


# ---- trial statuses ---------------------------------------------------------------------------
class TrialStatus(str, enum.Enum):
    """A trial's status, as the trial reports it and the leaderboard's ``status`` column
    holds it (each member *is* its string: ``TrialStatus.OK == "ok"``).

    ``RUNNING``: fits still to come (every report but the last). ``OK``: every fit done,
    the trial is ranked. ``PRUNED``: a scheduler stopped it before its last fit.
    ``FAILED``: a fit raised (a NaN loss, out of memory, a config the model refused): a
    row with its error. ``ERROR``: the trial's worker failed (Ray's error). ``ORPHANED``:
    only in the Optuna study: a trial whose Ray trial never finished (driver stopped).
    """

    RUNNING = "running"
    OK = "ok"
    PRUNED = "pruned"
    FAILED = "failed"
    ERROR = "error"
    ORPHANED = "orphaned"

    def __str__(self) -> str:
        return self.value

    def is_finished(self) -> bool:
        """Whether the trial has ended (``RUNNING`` is the only status that has not)."""
        return self is not TrialStatus.RUNNING


FINAL_STATUSES = (TrialStatus.OK, TrialStatus.PRUNED, TrialStatus.FAILED, TrialStatus.ERROR)
"""The statuses a trial ends with on the leaderboard (``running`` is the only other one)."""
FAILURES = (TrialStatus.FAILED, TrialStatus.ERROR)

# ---- what a trial reports (its result keys) ---------------------------------------------------
METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted")
"""The scores of every fit (`trainables.training.metrics` computes them); each is reported as
``<metric>_mean``, ``_std`` and ``_min`` over the trial's fits and ``fit_<metric>`` per fit."""
STATUS = "status"  # a TrialStatus
ERROR = "error"  # what went wrong ("" when nothing did)
MODEL = "model"  # the model family
OBJECTIVE = "objective"  # what Optuna maximises and the leaderboard ranks by (NaN unless ok)
FITS_DONE = "fits_done"
FITS_TOTAL = "fits_total"
N_PARAMS = "n_params"
PREDICT_COST = "predict_seconds_per_1000"
FIT_PREFIX = "fit_"
"""One fit's own keys: ``fit_seed``, ``fit_fold``, ``fit_<metric>``, ... (the long board's columns)."""

# ---- the leaderboard's columns ----------------------------------------------------------------
FIRST = ["rank", "trial_id", STATUS, MODEL]
METRIC_COLUMNS = [OBJECTIVE, *[f"{m}_{s}" for m in METRICS for s in ("mean", "std", "min")]]
COSTS = ["fit_seconds_mean", "fit_seconds_total", PREDICT_COST, N_PARAMS]
CV = ["seeds", "folds", FITS_DONE]
START_TIME = "start_time"
"""When the trial started (Unix seconds, the driver's clock: Ray Tune's start time)."""
CHECKPOINT = "checkpoint"
"""The trial's last checkpoint folder, relative to the experiment folder (``trial_<id>/checkpoint_<n>``)."""
RUN = [START_TIME, CHECKPOINT]
SCORES = [*METRIC_COLUMNS, *COSTS, *CV, ERROR]
"""Every column a trial's results fill (the rest of a row is its identity, settings and `RUN`)."""
FOLD_COLUMNS = ["trial_id", MODEL, "seed", "fold", "init_seed", *METRICS, "seconds", "predict_seconds",
                "best_epoch"]
INTEGER_COLUMNS = frozenset({"rank", N_PARAMS, "seeds", "folds", FITS_DONE, "seed", "fold", "init_seed", "best_epoch"})
_RENAMED = {"train_seconds": "fit_seconds_mean"}  # boards written before the costs were split


def leaderboard_order(settings: list[str]) -> list[str]:
    """``leaderboard.csv``'s columns: `FIRST`, `METRIC_COLUMNS`, `COSTS`, `CV`, the trial's
    ``settings`` (in the order given), `RUN`, and ``error`` last."""
    return [*FIRST, *METRIC_COLUMNS, *COSTS, *CV, *settings, *RUN, ERROR]


# ---- the one reader and the one writer of each CSV --------------------------------------------
def _read(path: str, empty: list[str]) -> pd.DataFrame:
    import pandas as pd

    data = read_bytes(path)
    if data is None:
        return pd.DataFrame(columns=empty)
    # trial ids are hex strings: one made of digits only ("14986905") or like "1e5" must stay a string
    frame = pd.read_csv(io.BytesIO(data), dtype={"trial_id": str})
    frame = frame.rename(columns={k: v for k, v in _RENAMED.items() if v not in frame})
    if ERROR in frame:
        frame[ERROR] = frame[ERROR].fillna("").astype(str)
    return frame


def read_leaderboard(experiment_dir: str) -> pd.DataFrame:
    """``leaderboard.csv`` of the experiment folder (a local path or URI): ``trial_id`` and
    ``error`` as text (``""`` where no error), columns of older boards renamed; a frame
    with no rows when there is no leaderboard yet. Rows as written (ranked, best first)."""
    return _read(join(experiment_dir, LEADERBOARD), [*FIRST, *SCORES])


def read_folds(experiment_dir: str) -> pd.DataFrame:
    """``leaderboard_folds.csv`` of the experiment folder: one row per (trial, seed, fold),
    ``trial_id`` as text; no rows when there is none yet."""
    return _read(join(experiment_dir, FOLDS), FOLD_COLUMNS)


def write_leaderboard(board: pd.DataFrame, experiment_dir: str) -> None:
    """Write ``leaderboard.csv`` atomically (``board`` in `leaderboard_order`)."""
    write_csv_atomic(board, join(experiment_dir, LEADERBOARD))


def write_folds(folds: pd.DataFrame, experiment_dir: str) -> None:
    """Write ``leaderboard_folds.csv`` atomically."""
    write_csv_atomic(folds, join(experiment_dir, FOLDS))
