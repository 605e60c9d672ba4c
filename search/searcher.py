"""The searcher Ray Tune drives: Ray's `OptunaSearch`, told the truth about every trial.

Ray's `OptunaSearch` tells Optuna ``COMPLETE`` with whatever the last result held: a
trial that failed (objective NaN) or that a scheduler stopped after a few folds (a partial
running mean, not comparable with a full CV score) would enter the study as if it had
finished. `TruthfulOptunaSearch` changes only that step (`on_trial_complete`):

==========================================  =================  ========================
the trial's last result                      Optuna state       value
==========================================  =================  ========================
``status == "ok"`` and a finite objective    ``COMPLETE``       the CV objective
``status == "failed"``, or a worker error    ``FAIL``           none
anything else (a scheduler stopped it)        ``PRUNED``         its last reported value
==========================================  =================  ========================

and records on each Optuna trial the user attributes a reader of the study wants (the
columns of optuna-dashboard's trial table): the Ray trial id, the model family
(``model``), the CV mean, std and min of the metric (``cv_mean``, ``cv_std``, ``cv_min``),
the fits done (kept current while the trial runs), its seqsweep status (``running``,
``ok``, ``pruned``, ``failed``, ``error``) and, for a failure, the error. The study names
its objective (`objective_name`: ``balanced_accuracy CV mean``), so the dashboard's plots
say what they draw instead of "Objective 0". Sampling, the space and restoring are Ray's
and Optuna's.

The study lives in Optuna's `JournalStorage`, in the experiment folder's ``optuna.log``
(for an object-store experiment, a local journal copied there when the sweep ends), so
``optuna-dashboard <experiment>/optuna.log`` can show it and `close_orphans` can settle it
after the sweep: a trial the driver had asked for but whose Ray trial never ended (the
driver was killed between the two) is marked ``FAIL`` there, so no trial of a finished
sweep is left ``RUNNING``.
"""

from __future__ import annotations

import math
import os
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from seqsweep.layout import OPTUNA_LOG, TrialStatus
from seqsweep.storage import join, write_bytes_atomic

__all__ = ["TruthfulOptunaSearch", "optuna_state", "objective_name", "journal_path", "journal_storage",
           "upload_journal", "close_orphans"]

#: The Optuna journal file in the experiment folder (``optuna-dashboard`` opens it).


def objective_name(metric: str, objective: str = "mean", std_weight: float = 1.0) -> str:
    """The study's name for a trial's objective: ``"<metric> CV mean"``, or for
    ``mean_minus_std`` ``"<metric> CV mean - <w> std"``."""
    if objective == "mean_minus_std":
        return f"{metric} CV mean - {std_weight:g} std"
    return f"{metric} CV mean"


def optuna_state(result: dict[str, Any] | None, *, error: bool) -> tuple[str, float | None]:
    """(``"COMPLETE"`` | ``"FAIL"`` | ``"PRUNED"``, value) for a trial's last result (see the
    module's table)."""
    if error:
        return "FAIL", None
    result = result or {}
    status = result.get("status")
    objective = result.get("objective")
    if status == TrialStatus.FAILED:
        return "FAIL", None
    if status == TrialStatus.OK and isinstance(objective, (int, float)) and math.isfinite(objective):
        return "COMPLETE", float(objective)
    return "PRUNED", None


class TruthfulOptunaSearch(OptunaSearch):
    """`OptunaSearch` whose finished trials enter the study as ``COMPLETE``, ``FAIL`` or
    ``PRUNED`` by what really happened (see the module's table). ``cv_metric`` names the
    metric whose CV mean, std and min become user attributes; ``objective_name`` (see
    `objective_name`) names the study's objective; the rest goes to `OptunaSearch`."""

    def __init__(self, *args: Any, cv_metric: str | None = None, objective_name: str | None = None,
                 **kwargs: Any) -> None:
        self._cv_metric = cv_metric
        self._objective_name = objective_name
        self._restored_open: set[str] = set()
        super().__init__(*args, **kwargs)

    def _setup_study(self, mode: Any) -> None:
        super()._setup_study(mode)
        if self._objective_name:
            import warnings

            import optuna

            with warnings.catch_warnings():  # experimental since Optuna 3.2, still in 5.1
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._ot_study.set_metric_names([self._objective_name])

    # A resumed sweep restores this searcher as it was at the last saved experiment state,
    # but the journal file kept every write after it: a trial that finished between the
    # two is finished in the study and running again in Ray Tune. The study keeps its first
    # answer; the repeat run's reports and completion are not written over it. Only the
    # trials open at the restore can be in that state, so only they are looked up in the
    # journal (once each), never a trial this process asked for.
    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self._restored_open = {t for t in self._ot_trials if t not in self._completed_trials}

    def _finished_in_study(self, trial_id: str) -> bool:
        if trial_id not in self._restored_open:
            return False
        ot_trial = self._ot_trials[trial_id]
        if self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished():
            return True
        self._restored_open.discard(trial_id)  # still open in the study: it is this run's to tell
        return False

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._ot_trials and self._finished_in_study(trial_id):
            return
        super().on_trial_result(trial_id, result)
        # live attributes, so the dashboard's table shows a running trial's family and progress
        ot_trial = self._ot_trials[trial_id]
        if "model" not in ot_trial.user_attrs and result.get("model"):
            _set_attrs(ot_trial, {"ray_trial_id": trial_id, "model": result["model"], "status": TrialStatus.RUNNING})
        _set_attrs(ot_trial, {"fits_done": result.get("fits_done")})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        import optuna

        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if self._finished_in_study(trial_id):
            self._completed_trials.add(trial_id)
            return
        ot_trial = self._ot_trials[trial_id]
        state, value = optuna_state(result, error=error)
        result = result or {}
        status = TrialStatus.ERROR if error else result.get("status")
        if state == "PRUNED" and status in (None, TrialStatus.RUNNING):  # a scheduler stopped it
            status = TrialStatus.PRUNED
        attrs = {"ray_trial_id": trial_id, "status": status, "model": result.get("model"),
                 "fits_done": result.get("fits_done")}
        metric = self._cv_metric
        if metric:
            attrs.update(cv_mean=result.get(f"{metric}_mean"), cv_std=result.get(f"{metric}_std"),
                         cv_min=result.get(f"{metric}_min"))
        if result.get("error"):
            attrs["error"] = str(result["error"])[:500]
        _set_attrs(ot_trial, attrs)
        try:
            self._ot_study.tell(ot_trial, value, state=getattr(optuna.trial.TrialState, state))
        except RuntimeError as exc:
            # GridSampler calls study.stop() after the last grid point, which Optuna allows
            # only inside study.optimize; the state was stored before (Optuna's `_tell`
            # stores it in a `finally`), so only that complaint is dropped
            if "Study.stop" not in str(exc):
                raise
        self._completed_trials.add(trial_id)


def _set_attrs(ot_trial: Any, attrs: dict[str, Any]) -> None:
    """Set each attribute that has a value (no None, no NaN) as a user attribute of the
    Optuna trial, numpy scalars as Python ones; one that holds that value already is left."""
    for key, v in attrs.items():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        v = v.item() if hasattr(v, "item") else v
        if ot_trial.user_attrs.get(key) != v:
            ot_trial.set_user_attr(key, v)


def journal_path(experiment_dir: str) -> str:
    """Where the study's journal is written: ``<experiment_dir>/optuna.log`` on a local (or
    ``file://``) folder; for an object store (``s3://``, ``gs://``), which cannot append to
    a file, a local copy under ``~/.cache/seqsweep/journals/`` that `upload_journal`
    copies into the experiment folder when the sweep ends."""
    import hashlib

    if experiment_dir.startswith("file://"):
        return os.path.join(experiment_dir[len("file://"):], OPTUNA_LOG)
    if "://" not in experiment_dir:
        return os.path.join(experiment_dir, OPTUNA_LOG)
    key = hashlib.sha256(experiment_dir.encode()).hexdigest()[:16]
    return os.path.join(os.path.expanduser("~"), ".cache", "seqsweep", "journals", key, OPTUNA_LOG)


def journal_storage(experiment_dir: str):
    """Optuna's journal storage for the experiment (see `journal_path`)."""
    import optuna

    path = journal_path(experiment_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


def upload_journal(experiment_dir: str) -> None:
    """Copy a local journal kept for an object-store experiment into its folder (no-op for a
    local experiment, whose journal is already there)."""
    path = journal_path(experiment_dir)
    if "://" in experiment_dir and not experiment_dir.startswith("file://") and os.path.exists(path):
        with open(path, "rb") as fh:
            write_bytes_atomic(fh.read(), join(experiment_dir, OPTUNA_LOG))


def close_orphans(experiment_dir: str, study_name: str) -> int:
    """Mark ``FAIL`` every trial of the study still ``RUNNING`` once the sweep is over (an
    Optuna trial whose Ray trial never ended); returns how many (0 without a journal)."""
    import optuna

    if not os.path.exists(journal_path(experiment_dir)):
        return 0
    storage = journal_storage(experiment_dir)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no trial was ever asked for
        return 0
    closed = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # FrozenTrial._trial_id: the storage's key for the trial (Optuna has no public getter)
        storage.set_trial_user_attr(trial._trial_id, "status", TrialStatus.ORPHANED)
        storage.set_trial_user_attr(trial._trial_id, "error", "its Ray trial never finished (driver stopped)")
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        closed += 1
    return closed
