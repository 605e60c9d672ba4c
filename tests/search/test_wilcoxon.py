"""The Wilcoxon scheduler's rule holds its false-stop rate, still stops clearly worse
configurations, and refuses fewer than 4 fits before its first look."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from search.spec import SweepSpec
from search.wilcoxon import WilcoxonScheduler, look_level, one_sided_p, simulate_stops, stops
from seqsweep.errors import ConfigError

ALPHA = 0.1
FITS, MIN_FITS = 15, 5  # the spec's defaults: 5 folds x 3 seeds, first look after one seed's folds
REPS = 200
#: two binomial standard errors of a rate at the nominal level over REPS simulated configurations
ALLOWANCE = 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)  # 0.042


def _corrected(candidates: int):
    return lambda d: stops(d, p_threshold=ALPHA, looks=FITS - MIN_FITS, candidates=candidates) is not None


@pytest.mark.parametrize("candidates", [1, 10])
def test_a_configuration_as_good_as_the_incumbent_is_stopped_at_most_at_the_nominal_rate(candidates):
    rate = simulate_stops(_corrected(candidates), candidates=candidates, fits=FITS, min_fits=MIN_FITS,
                          reps=REPS, seed=candidates)
    assert rate.stopped <= ALPHA + ALLOWANCE, rate


def test_the_uncorrected_rule_breaks_that_bound_against_the_best_of_10():
    """The same simulation catches the rule this module replaced (p < 0.1 at every look)."""
    rate = simulate_stops(lambda d: one_sided_p(d) < ALPHA, candidates=10, fits=FITS, min_fits=MIN_FITS,
                          reps=REPS, seed=10)
    assert rate.stopped > ALPHA + ALLOWANCE, rate


def test_a_clearly_worse_configuration_is_still_stopped_before_its_last_fit():
    # 0.1 below the incumbent's level, per-fit noise sd 0.03: every fold says so
    rate = simulate_stops(_corrected(10), candidates=10, fits=FITS, min_fits=MIN_FITS, shift=-0.1, reps=40, seed=3)
    assert rate.stopped == 1.0 and rate.mean_fits < FITS - 2, rate


def test_look_level_spends_the_threshold_over_looks_and_candidates():
    assert look_level(0.1, looks=10, candidates=5) == pytest.approx(0.002)
    assert look_level(0.1, looks=0, candidates=0) == 0.1  # nothing to divide by: one look, one candidate
    # a look whose level 2**-k cannot reach is answered without a test, and never stops
    lower = -np.arange(1, 13) / 100  # every pair lower, no ties
    assert stops(lower[:5], p_threshold=0.1, looks=10, candidates=10) is None
    assert stops(lower, p_threshold=0.1, looks=10, candidates=10) == pytest.approx(2.0 ** -12)


def _fit(k: int, score: float, *, status: str = "running") -> dict:
    return {"fit_seed": k // 5, "fit_fold": k % 5, "fit_balanced_accuracy": score, "status": status,
            "fits_total": FITS, "objective": score}


def test_the_scheduler_stops_a_worse_trial_and_lets_an_equal_one_finish():
    rng = np.random.default_rng(0)
    scheduler = WilcoxonScheduler(fit_metric="fit_balanced_accuracy", p_threshold=ALPHA, min_fits=MIN_FITS)
    folds = 0.8 + rng.normal(0, 0.05, FITS)
    best = SimpleNamespace(trial_id="best")
    for k in range(FITS):
        scheduler.on_trial_result(None, best, _fit(k, folds[k]))
    scheduler.on_trial_complete(None, best, {**_fit(FITS - 1, folds[-1], status="ok"),
                                             "objective": float(folds.mean())})
    assert scheduler.incumbent == ("best", pytest.approx(folds.mean())) and scheduler.finished == 1

    worse, equal = SimpleNamespace(trial_id="worse"), SimpleNamespace(trial_id="equal")
    lower = folds - 0.1 + rng.normal(0, 0.01, FITS)
    decisions = [scheduler.on_trial_result(None, worse, _fit(k, lower[k])) for k in range(FITS - 1)]
    assert TrialScheduler.STOP in decisions
    stopped_after = decisions.index(TrialScheduler.STOP) + 1
    assert MIN_FITS <= stopped_after < FITS - 1 and "worse" in scheduler.pruned
    # the same scores up to noise: never stopped
    noisy = folds + rng.normal(0, 0.01, FITS)
    assert all(scheduler.on_trial_result(None, equal, _fit(k, noisy[k])) == TrialScheduler.CONTINUE
               for k in range(FITS - 1))


def _spec(search: dict, cv: dict | None = None) -> SweepSpec:
    return SweepSpec.from_dict({"name": "w", "store": "store", "dataset": "d", "feature_set": "f",
                                "models": {"knn": {"n_neighbors": 1}}, "cv": cv or {"folds": 3, "seeds": 2},
                                "search": search}, source="sweep.yaml")


def test_fewer_than_4_fits_before_the_first_look_are_refused():
    with pytest.raises(ConfigError, match=r"sweep.yaml: search.grace_fits: must be >= 4 with scheduler wilcoxon.*"
                                          r"\(got 3\)"):
        _spec({"scheduler": "wilcoxon", "grace_fits": 3})
    with pytest.raises(ConfigError, match=r"search.grace_fits: must be >= 4"):
        WilcoxonScheduler(fit_metric="fit_accuracy", min_fits=3)
    assert _spec({"scheduler": "asha", "grace_fits": 3}).search.grace(3) == 3  # ASHA keeps its own floor
    assert _spec({"scheduler": "wilcoxon"}).search.grace(3) == 4  # one seed's 3 folds: raised to 4
    # 2 folds x 2 seeds: the first look would be the last fit, so the scheduler could never stop anything
    with pytest.raises(ConfigError, match=r"search.scheduler: wilcoxon looks first after 4 fits.*\(got 4 fits\)"):
        _spec({"scheduler": "wilcoxon"}, cv={"folds": 2, "seeds": 2})
