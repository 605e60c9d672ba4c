"""Fold-paired pruning: stop a configuration once it is significantly worse than the best
finished one on the *same* (seed, fold)s.

Every trial of a sweep is scored on the same CV splits, so two trials' scores on one
(seed, fold) are paired: the fold's difficulty cancels out of their difference. After each
fit, `WilcoxonScheduler` takes the running trial's per-fit scores on the (seed, fold)s it
has done, pairs them with the incumbent's (the best trial that finished with status
``ok``) on the same (seed, fold)s, and runs scipy's one-sided Wilcoxon signed-rank test
(`scipy.stats.wilcoxon`, ``alternative="less"``). When the p-value falls below
``p_threshold`` the trial is stopped; Ray Tune then marks it stopped, the leaderboard says
``pruned`` and Optuna is told ``PRUNED`` (`search.searcher`).

Optuna's `WilcoxonPruner` does the same test inside an Optuna study, but Ray Tune's
`OptunaSearch` cannot use Optuna pruners and no Ray Tune scheduler pairs results by fold,
so this is written here, on Ray Tune's `FIFOScheduler`.

A one-sided signed-rank test on n pairs cannot reach p below ``1 / 2**n``, so with the
default threshold 0.1 nothing is pruned before 4 fits; ``min_fits`` (the spec's
``search.grace_fits``, by default one seed's folds) can demand more.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

__all__ = ["WilcoxonScheduler", "paired_p_value"]


def paired_p_value(candidate: dict[tuple[int, int], float], incumbent: dict[tuple[int, int], float]) -> tuple[float, int]:
    """One-sided p-value that ``candidate`` scores lower than ``incumbent`` on the (seed, fold)
    keys both have, and how many pairs that was. 1.0 when every pair ties or none exist."""
    keys = sorted(set(candidate) & set(incumbent))
    diffs = np.array([candidate[k] - incumbent[k] for k in keys], dtype=float)
    if len(keys) == 0 or not np.any(diffs):
        return 1.0, len(keys)
    from scipy.stats import wilcoxon

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that exact p-values need no ties
        # zsplit: a tied fold counts half for each side (a tie is no evidence either way)
        return float(wilcoxon(diffs, zero_method="zsplit", alternative="less").pvalue), len(keys)


class WilcoxonScheduler(FIFOScheduler):
    """Stop a trial whose per-(seed, fold) scores are significantly below the incumbent's.

    Parameters
    ----------
    fit_metric : the per-fit result key (``fit_balanced_accuracy``), higher is better.
    p_threshold : stop when the one-sided p-value is below this (Optuna's default 0.1).
    min_fits : compare only once the trial has at least this many fits (and never fewer
        than 4, below which the test cannot reach 0.1).
    """

    def __init__(self, *, fit_metric: str, p_threshold: float = 0.1, min_fits: int = 4) -> None:
        super().__init__()
        self.fit_metric = fit_metric
        self.p_threshold = float(p_threshold)
        self.min_fits = max(int(min_fits), 1)
        self.scores: dict[str, dict[tuple[int, int], float]] = {}
        self.incumbent: tuple[str, float] | None = None  # (trial id, its CV objective)
        self.pruned: dict[str, float] = {}  # trial id -> the p-value that stopped it

    def _record(self, trial_id: str, result: dict[str, Any]) -> None:
        if "fit_seed" in result and self.fit_metric in result:
            value = result[self.fit_metric]
            if value is not None and math.isfinite(value):
                key = (int(result["fit_seed"]), int(result["fit_fold"]))
                self.scores.setdefault(trial_id, {})[key] = float(value)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        tid = str(trial.trial_id)
        self._record(tid, result)
        if self.incumbent is None or tid == self.incumbent[0] or result.get("status") != "running":
            return TrialScheduler.CONTINUE
        mine = self.scores.get(tid, {})
        if len(mine) < self.min_fits:
            return TrialScheduler.CONTINUE
        p, n = paired_p_value(mine, self.scores[self.incumbent[0]])
        if n >= self.min_fits and p < self.p_threshold:
            self.pruned[tid] = p
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        tid = str(trial.trial_id)
        self._record(tid, result or {})
        objective = (result or {}).get("objective")
        finished = (result or {}).get("status") == "ok" and objective is not None and math.isfinite(objective)
        if finished and (self.incumbent is None or objective > self.incumbent[1]):
            if self.incumbent is not None:
                self.scores.pop(self.incumbent[0], None)
            self.incumbent = (tid, float(objective))
        elif self.incumbent is None or tid != self.incumbent[0]:
            self.scores.pop(tid, None)  # only the incumbent's scores are compared against

    def debug_string(self) -> str:
        return f"WilcoxonScheduler: {len(self.pruned)} trials pruned (p < {self.p_threshold})"
