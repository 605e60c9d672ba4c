"""The sweep's own metrics, through Ray's application metrics (`ray.util.metrics`).

`SweepMetrics` is a Ray Tune callback on the driver. After the live leaderboard has taken
each event in (it runs first in the callback list and keeps one row per trial), it sets
these metrics, every one tagged with the sweep's name (``sweep``):

=================================  =========  ===================  ===================================
metric (as Prometheus names it)     type       more tags            what it holds
=================================  =========  ===================  ===================================
``ray_seqsweep_trials``             Gauge      family, status       trials by seqsweep status now
                                                                    (running, ok, pruned, failed, error)
``ray_seqsweep_fits_done``          Gauge                           (seed, fold) fits done, all trials
``ray_seqsweep_fits_planned``       Gauge                           trials planned x seeds x folds
``ray_seqsweep_best_objective``     Gauge                           best CV objective of a finished trial
``ray_seqsweep_family_best``        Gauge      family               the same, per model family
``ray_seqsweep_fits_total``         Counter    family               fits reported by this driver
``ray_seqsweep_fit_seconds``        Histogram  family               seconds of each fit
=================================  =========  ===================  ===================================

The trial counts are gauges set from the leaderboard's rows, so a resumed sweep (a new
driver process, whose counters start at 0) still shows the whole sweep's counts; the fits
counter is there for rates (fits a minute). Ray 2.60's agent drops a gauge that has not
been set for two export intervals (~20 s; measured here: a gauge set once shows on the
endpoint from 10 s to 25 s after), so the callback sets the gauges again every
`REFRESH_S` seconds while the sweep runs, also when no trial reports for minutes; once
the driver stops they leave the endpoint (Prometheus keeps what it scraped). Ray's metrics agent on the driver's node
exports them on that node's Prometheus endpoint (``ray.nodes()[i]["MetricsExportPort"]``)
with Ray's own labels (``SessionName``, ``NodeAddress``, ...), about every 10 s.
``docs/grafana/seqsweep_grafana_dashboard.json`` draws them.

Ray 2.60's exporter reports a histogram's ``_sum`` from bucket midpoints (one fit of 0.5 s
in the bucket (0.1, 1] shows as 0.55): read fit times from the buckets (quantiles), not
from ``_sum / _count``.
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter as Tally
from typing import Any

from ray.tune import Callback

from seqsweep.layout import TrialStatus

__all__ = ["SweepMetrics", "FIT_SECONDS_BOUNDARIES", "METRIC_PREFIX", "REFRESH_S"]

#: every metric's name starts with it (Ray adds ``ray_`` in front when it exports them)
METRIC_PREFIX = "seqsweep_"

#: how often the gauges are set again while nothing happens (Ray drops them after ~20 s)
REFRESH_S = 5.0

#: the fit-seconds histogram's bucket edges: from a kNN fit (~0.01 s) to a long GPU fit
FIT_SECONDS_BOUNDARIES = [0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000]


@functools.lru_cache(maxsize=1)
def _instruments() -> dict[str, Any]:
    """The metric objects, made once per process (several sweeps in one process share
    them; their ``sweep`` tag tells them apart)."""
    from ray.util.metrics import Counter, Gauge, Histogram

    p = METRIC_PREFIX
    return {
        "trials": Gauge(f"{p}trials", description="Trials of the sweep by seqsweep status now.",
                        tag_keys=("sweep", "family", "status")),
        "fits_done": Gauge(f"{p}fits_done", description="(seed, fold) fits done by all trials of the sweep.",
                           tag_keys=("sweep",)),
        "fits_planned": Gauge(f"{p}fits_planned", description="Trials planned x seeds x folds.",
                              tag_keys=("sweep",)),
        "best": Gauge(f"{p}best_objective", description="Best CV objective of a finished trial so far.",
                      tag_keys=("sweep",)),
        "family_best": Gauge(f"{p}family_best", description="Best CV objective of a finished trial, per family.",
                             tag_keys=("sweep", "family")),
        "fits": Counter(f"{p}fits", description="(seed, fold) fits reported to this driver.",
                        tag_keys=("sweep", "family")),
        "fit_seconds": Histogram(f"{p}fit_seconds", description="Seconds one (seed, fold) fit took.",
                                 boundaries=FIT_SECONDS_BOUNDARIES, tag_keys=("sweep", "family")),
    }


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


class SweepMetrics(Callback):
    """Sets the sweep's metrics (see the module's table) from ``board``'s rows.

    ``board`` is the sweep's `search.leaderboard.LiveLeaderboard` (or anything with a
    ``rows`` mapping of trial id -> row with ``model``, ``status``, ``objective`` and
    ``fits_done``), and must come before this callback in the Tuner's list, so each event
    is in its rows when this callback reads them. ``planned_fits`` is trials planned x
    seeds x folds (pruned trials make fewer).
    """

    def __init__(self, board: Any, *, sweep: str, planned_fits: int) -> None:
        self.board = board
        self.sweep = sweep
        self.planned_fits = int(planned_fits)
        self._seen: set[tuple[str, str]] = set()  # (family, status) pairs ever set: set back to 0
        self._published = -math.inf  # time.monotonic() of the last publish

    # the metric objects stay out of the pickled experiment state (made again on restore)
    def __getstate__(self) -> dict[str, Any]:
        return {"board": self.board, "sweep": self.sweep, "planned_fits": self.planned_fits}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("board"), **state)

    # ---- Ray Tune hooks ----------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        self.publish()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.publish()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "fit_seed" in result:  # one (seed, fold) fit done
            tags = {"sweep": self.sweep, "family": str(result.get("model") or trial.config.get("model"))}
            metrics = _instruments()
            metrics["fits"].inc(1.0, tags=tags)
            seconds = _number(result.get("fit_seconds"))
            if seconds is not None:
                metrics["fit_seconds"].observe(seconds, tags=tags)
        self.publish()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.publish()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.publish()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._published >= REFRESH_S:  # keep the gauges alive (see the module)
            self.publish()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.publish()

    # ---- the gauges --------------------------------------------------------------------
    def publish(self) -> None:
        """Set every gauge from the leaderboard's rows as they are now."""
        self._published = time.monotonic()
        metrics = _instruments()
        sweep = {"sweep": self.sweep}
        rows = list(self.board.rows.values())
        counts = Tally((str(r.get("model")), str(r.get("status"))) for r in rows)
        self._seen |= set(counts)
        for family, status in self._seen:
            metrics["trials"].set(counts.get((family, status), 0),
                                  tags={**sweep, "family": family, "status": status})
        metrics["fits_done"].set(sum(_number(r.get("fits_done")) or 0 for r in rows), tags=sweep)
        metrics["fits_planned"].set(self.planned_fits, tags=sweep)
        best: dict[str, float] = {}
        for row in rows:
            value = _number(row.get("objective"))
            family = str(row.get("model"))
            if row.get("status") == TrialStatus.OK and value is not None and value > best.get(family, -math.inf):
                best[family] = value
        for family, value in best.items():
            metrics["family_best"].set(value, tags={**sweep, "family": family})
        if best:
            metrics["best"].set(max(best.values()), tags=sweep)
