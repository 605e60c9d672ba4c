"""Fold-paired pruning: stop a configuration once it is significantly worse than the best
finished one on the *same* (seed, fold)s, at a false-stop rate that is known.

Every trial of a sweep is scored on the same CV splits, so two trials' scores on one
(seed, fold) are paired: the fold's difficulty cancels out of their difference. After each
fit, `WilcoxonScheduler` takes the running trial's per-fit scores on the (seed, fold)s it
has done, pairs them with the incumbent's (the best trial that finished with status
``ok``) on the same (seed, fold)s, and runs scipy's one-sided Wilcoxon signed-rank test
(`scipy.stats.wilcoxon`, ``alternative="less"``). When the p-value falls below the level
of that look the trial is stopped; Ray Tune then marks it stopped, the leaderboard says
``pruned`` and Optuna is told ``PRUNED`` (`search.searcher`).

**The level of one look.** Testing after every fit, each time at ``p_threshold``, stops a
configuration *as good as the incumbent* far more often than ``p_threshold``: the looks
repeat the test on accumulating data (Armitage, McPherson and Rowe 1969, "Repeated
significance tests on accumulating data", J. R. Stat. Soc. A 132), and the incumbent is
the best of the ``m`` trials finished so far, chosen on the very fold scores it is
compared on, so its scores sit above its true level. In `benchmarks/pruning.py`'s
simulation the uncorrected rule stopped such a configuration about twice as often as
nominal against one finished trial and five times as often against the best of 10.
Each look therefore spends ``p_threshold / (L * m)`` (`look_level`): ``L`` is the number
of looks a trial can get (one per fit from ``min_fits`` to the last fit but one; the
last fit finishes the trial, so stopping there saves nothing) and ``m`` the finished
trials the incumbent was chosen from. This is the Bonferroni inequality (Dunn 1961,
"Multiple comparisons among means", J. Am. Stat. Assoc. 56) over the looks and the
candidates for incumbent, the uniform case of alpha spending (Lan and DeMets 1983): a
stop against the incumbent at some look is a stop against one of the ``m`` finished
trials at one of the ``L`` looks, and under the null (the candidate is exchangeable
with them) each of those ``L * m`` events has probability at most its level, so a
configuration as good as every finished trial is stopped with probability at most
``p_threshold``. The price is power: a one-sided signed-rank test on n pairs cannot
reach p below ``2**-n``, so the first look that can stop anything moves later as the
sweep finishes more trials (`simulate_stops` measures both sides).

Optuna's `WilcoxonPruner` does the uncorrected test inside an Optuna study, but Ray
Tune's `OptunaSearch` cannot use Optuna pruners and no Ray Tune scheduler pairs results
by fold, so this is written here, on Ray Tune's `FIFOScheduler`. ``min_fits`` (the
spec's ``search.grace_fits``) is at least `WILCOXON_MIN_FITS` (4), below which even one
uncorrected look at 0.1 cannot stop anything.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.spec import WILCOXON_MIN_FITS
from seqsweep.errors import ConfigError
from seqsweep.layout import TrialStatus

__all__ = ["StopRate", "WilcoxonScheduler", "look_level", "one_sided_p", "paired_p_value", "simulate_stops",
           "stops"]


def one_sided_p(diffs: np.ndarray) -> float:
    """scipy's one-sided p-value that paired differences ``diffs`` (n,) (candidate minus
    incumbent) sit below zero; 1.0 when there are none or every one is zero."""
    diffs = np.asarray(diffs, dtype=float)
    if diffs.size == 0 or not np.any(diffs):
        return 1.0
    from scipy.stats import wilcoxon

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that exact p-values need no ties
        # zsplit: a tied fold counts half for each side (a tie is no evidence either way)
        return float(wilcoxon(diffs, zero_method="zsplit", alternative="less").pvalue)


def paired_p_value(candidate: dict[tuple[int, int], float], incumbent: dict[tuple[int, int], float]) -> tuple[float, int]:
    """One-sided p-value that ``candidate`` scores lower than ``incumbent`` on the (seed, fold)
    keys both have, and how many pairs that was. 1.0 when every pair ties or none exist."""
    keys = sorted(set(candidate) & set(incumbent))
    return one_sided_p(np.array([candidate[k] - incumbent[k] for k in keys], dtype=float)), len(keys)


def look_level(p_threshold: float, *, looks: int, candidates: int) -> float:
    """The level one look spends: ``p_threshold / (looks * candidates)`` (Bonferroni over the
    ``looks`` a trial can get and the ``candidates`` the incumbent was chosen from)."""
    return float(p_threshold) / (max(int(looks), 1) * max(int(candidates), 1))


def stops(diffs: np.ndarray, *, p_threshold: float, looks: int, candidates: int) -> float | None:
    """The rule at one look: the one-sided p of the paired differences ``diffs`` (k,)
    (candidate minus incumbent, one per (seed, fold)) when it is below `look_level` (stop),
    else None (go on).

    The smallest one-sided p on k pairs is ``2**-k`` (every pair lower), so a look whose
    level is at or below that is answered without calling scipy."""
    level = look_level(p_threshold, looks=looks, candidates=candidates)
    if 2.0 ** -len(diffs) >= level:
        return None
    p = one_sided_p(diffs)
    return p if p < level else None


@dataclass(frozen=True)
class StopRate:
    """What `simulate_stops` measured: the share of ``reps`` configurations stopped, and the
    mean fits each one ran (a stopped one ran up to its stopping look; the rest all)."""

    stopped: float
    mean_fits: float
    reps: int


def simulate_stops(rule: Callable[[np.ndarray], bool], *, candidates: int, fits: int, min_fits: int,
                   shift: float = 0.0, reps: int = 400, seed: int = 0, noise_sd: float = 0.03,
                   fold_sd: float = 0.05) -> StopRate:
    """How often ``rule`` stops a configuration, in a seeded simulation of one sweep's scores.

    Each of ``fits`` (seed, fold)s has a difficulty drawn once (normal, sd ``fold_sd``),
    shared by every configuration; a configuration's score on it is its true level plus
    that difficulty plus its own noise (normal, sd ``noise_sd``). The incumbent is the best
    by mean over all ``fits`` of ``candidates`` configurations of level 0; the candidate has
    level ``shift`` (0: exactly as good as the incumbent's true level) and is looked at
    after each fit from ``min_fits`` to ``fits - 1``: ``rule(diffs)`` gets the (k,) paired
    differences so far and says whether to stop (for this module's rule:
    ``lambda d: stops(d, ...) is not None``). Repeated ``reps`` times.
    """
    rng = np.random.default_rng(seed)
    stopped, ran = 0, 0
    for _ in range(reps):
        difficulty = rng.normal(0.0, fold_sd, fits)
        pool = difficulty + rng.normal(0.0, noise_sd, (candidates, fits))
        incumbent = pool[int(np.argmax(pool.mean(axis=1)))]
        diffs = shift + difficulty + rng.normal(0.0, noise_sd, fits) - incumbent
        done = fits
        for k in range(min_fits, fits):
            if rule(diffs[:k]):
                stopped, done = stopped + 1, k
                break
        ran += done
    return StopRate(stopped=stopped / reps, mean_fits=ran / reps, reps=reps)


class WilcoxonScheduler(FIFOScheduler):
    """Stop a trial whose per-(seed, fold) scores are significantly below the incumbent's.

    Parameters
    ----------
    fit_metric : the per-fit result key (``fit_balanced_accuracy``), higher is better.
    p_threshold : the false-stop rate to hold for a configuration as good as the incumbent
        (Optuna's default 0.1), spent over the looks and candidates (`look_level`).
    min_fits : the first look, after this many fits; at least `WILCOXON_MIN_FITS`. The
        number of looks is read from each result's ``fits_total`` (the trial's planned fits).
    """

    def __init__(self, *, fit_metric: str, p_threshold: float = 0.1, min_fits: int = WILCOXON_MIN_FITS) -> None:
        super().__init__()
        if int(min_fits) < WILCOXON_MIN_FITS:
            raise ConfigError("search.grace_fits", f"must be >= {WILCOXON_MIN_FITS} with scheduler wilcoxon "
                              "(fewer paired fits cannot show a difference)", min_fits)
        self.fit_metric = fit_metric
        self.p_threshold = float(p_threshold)
        self.min_fits = int(min_fits)
        self.scores: dict[str, dict[tuple[int, int], float]] = {}
        self.incumbent: tuple[str, float] | None = None  # (trial id, its CV objective)
        self.finished = 0  # trials finished ok: the candidates the incumbent was chosen from
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
        if self.incumbent is None or tid == self.incumbent[0] or result.get("status") != TrialStatus.RUNNING:
            return TrialScheduler.CONTINUE
        mine, theirs = self.scores.get(tid, {}), self.scores[self.incumbent[0]]
        keys = sorted(set(mine) & set(theirs))
        if len(keys) < self.min_fits:
            return TrialScheduler.CONTINUE
        diffs = np.array([mine[k] - theirs[k] for k in keys], dtype=float)
        looks = int(result.get("fits_total") or len(keys) + 1) - self.min_fits
        p = stops(diffs, p_threshold=self.p_threshold, looks=looks, candidates=self.finished)
        if p is not None:
            self.pruned[tid] = p
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        tid = str(trial.trial_id)
        self._record(tid, result or {})
        objective = (result or {}).get("objective")
        finished = (result or {}).get("status") == TrialStatus.OK and objective is not None and math.isfinite(objective)
        self.finished += int(finished)
        if finished and (self.incumbent is None or objective > self.incumbent[1]):
            if self.incumbent is not None:
                self.scores.pop(self.incumbent[0], None)
            self.incumbent = (tid, float(objective))
        elif self.incumbent is None or tid != self.incumbent[0]:
            self.scores.pop(tid, None)  # only the incumbent's scores are compared against

    def debug_string(self) -> str:
        return (f"WilcoxonScheduler: {len(self.pruned)} trials pruned (p < {self.p_threshold} spent over "
                f"looks and {self.finished} finished trials)")
