"""Watching a sweep: its metrics on the node's Prometheus endpoint, its Optuna study as
optuna-dashboard reads it, and `seqsweep sweep status --watch`.

One small real sweep (module scope) serves every test: 4 trials drawn at random between a
kNN and an LSTM whose learning rate makes every fit diverge, so the sweep has finished and
failed trials.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from search.status import status_frame, watch
from tests.search.test_sweep import spec_with

SWEEP = "watched"


class Scraper(threading.Thread):
    """Scrapes the driver's node's metrics endpoint every second while the sweep runs and
    after it, keeping the last value seen of each of this sweep's samples in ``latest``
    (Ray drops a gauge ~20 s after it was last set, so one look after the sweep could miss it)."""

    def __init__(self, ray) -> None:
        super().__init__(daemon=True)
        self.ray, self.latest, self.stop = ray, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.latest.update(_scrape(self.ray))


@pytest.fixture(scope="module")
def sweep(ray_session, synth_store, tmp_path_factory):
    """(experiment folder, its leaderboard, the scraper of its metrics) of one finished sweep
    with ok and failed trials."""
    from search.sweep import run_sweep

    spec = spec_with(name=SWEEP, store=str(synth_store), storage=str(tmp_path_factory.mktemp("runs")),
                     search__num_samples=4, search__sampler="random",
                     models={"lstm": {"optimizer": "adamw", "lr": 1.0e+10, "weight_decay": 1.0e+10,  # diverges
                                      "epochs": 2, "units": [4], "num_layers": 1},
                             "knn": {"n_neighbors": [1, 3]}})
    scraper = Scraper(ray_session)
    scraper.start()
    outcome = run_sweep(spec, echo=lambda *_: None, verbose=0)
    exp = Path(outcome.experiment_dir)
    board = pd.read_csv(exp / "leaderboard.csv", dtype={"trial_id": str})
    assert set(board["status"]) == {"ok", "failed"}, board[["model", "status"]]  # both kinds, for the tests
    yield exp, board, scraper
    scraper.stop.set()


# ---- the metrics on the node's endpoint ------------------------------------------------------------
def _scrape(ray) -> dict[tuple[str, tuple], float]:
    """Every ``ray_seqsweep_*`` sample of this sweep on the driver's node's metrics endpoint:
    {(sample name, sorted (tag, value) pairs of seqsweep's own tags): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    me = ray.get_runtime_context().get_node_id()
    (node,) = [n for n in ray.nodes() if n["NodeID"] == me]
    url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ray_seqsweep_") and sample.labels.get("sweep") == SWEEP:
                tags = tuple(sorted((k, v) for k, v in sample.labels.items() if k in ("family", "status", "le")))
                out[(sample.name, tags)] = sample.value
    return out


def test_the_sweeps_metrics_reach_the_nodes_endpoint(sweep):
    exp, board, scraper = sweep
    knn_fits = int(board.loc[board["model"] == "knn", "fits_done"].sum())
    expected = {("ray_seqsweep_fits_planned", ()): 4 * 2,
                ("ray_seqsweep_fits_done", ()): board["fits_done"].sum(),
                ("ray_seqsweep_best_objective", ()): board.loc[board["status"] == "ok", "objective"].max(),
                ("ray_seqsweep_fits_total", (("family", "knn"),)): knn_fits,
                ("ray_seqsweep_fit_seconds_count", (("family", "knn"),)): knn_fits}
    for (family, status), n in board.groupby(["model", "status"]).size().items():
        expected[("ray_seqsweep_trials", (("family", family), ("status", status)))] = n
    expected[("ray_seqsweep_family_best", (("family", "knn"),))] = \
        board.loc[board["model"] == "knn", "objective"].max()

    def shown(samples):
        return {k: samples.get(k) for k in expected}

    deadline = time.time() + 45  # the node's agent exports application metrics about every 10 s
    while shown(scraper.latest) != pytest.approx(expected) and time.time() < deadline:
        time.sleep(1)
    samples = dict(scraper.latest)
    assert shown(samples) == pytest.approx(expected)
    dashboard = (Path(__file__).parents[2] / "docs/grafana/seqsweep_grafana_dashboard.json").read_text()
    queried = set(re.findall(r"ray_seqsweep_\w+", dashboard))
    assert queried and queried <= {name for name, _ in samples}  # the Grafana dashboard draws real series
    assert ("ray_seqsweep_fits_total", (("family", "lstm"),)) not in samples  # its fits never finished
    assert samples[("ray_seqsweep_fit_seconds_bucket", (("family", "knn"), ("le", "+Inf")))] == knn_fits


# ---- the study as optuna-dashboard reads it --------------------------------------------------------
def test_the_study_names_its_objective_and_records_each_trials_attributes(sweep):
    exp, board, _ = sweep
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(exp / "optuna.log")))
    study = optuna.load_study(study_name=SWEEP, storage=storage)
    assert study.metric_names == ["balanced_accuracy CV mean"]
    rows = board.set_index("trial_id")
    assert len(study.trials) == len(board)
    for trial in study.trials:
        attrs = trial.user_attrs
        row = rows.loc[attrs["ray_trial_id"]]
        assert attrs["model"] == row["model"] and attrs["status"] == row["status"]
        assert attrs["fits_done"] == row["fits_done"]
        if row["status"] == "ok":
            assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == pytest.approx(row["objective"])
            for stat in ("mean", "std", "min"):
                assert attrs[f"cv_{stat}"] == pytest.approx(row[f"balanced_accuracy_{stat}"])
        else:
            assert trial.state == optuna.trial.TrialState.FAIL and attrs["error"] == row["error"][:500]


def test_an_objective_minus_std_is_named_so():
    from search.searcher import objective_name

    assert objective_name("f1_macro", "mean_minus_std", 0.5) == "f1_macro CV mean - 0.5 std"


# ---- sweep status --watch -----------------------------------------------------------------------------
def test_watch_on_a_finished_sweep_prints_one_frame_and_ends(sweep):
    exp, board, _ = sweep
    frames: list[str] = []

    def no_sleep(_):
        raise AssertionError("a finished sweep is not watched again")

    assert watch(f"file://{exp}", interval=5, echo=frames.append, clear=False, sleep=no_sleep) == 1
    (text,) = frames
    ok = board[board["status"] == "ok"]
    assert f"trials: 4 of 4 ({len(ok)} ok, {4 - len(ok)} failed)" in text
    assert f"fits: {int(board['fits_done'].sum())} of 8 planned" in text
    assert "ended" in text and text.rstrip().endswith("sweep ended")
    assert f"    1  {ok.sort_values('rank')['trial_id'].iloc[0]}" in text  # the best trial leads the top list
    failed = board[board["status"] == "failed"]
    assert f"last failures ({len(failed)} in all):" in text
    assert f"failed: trial {failed['trial_id'].max()} (lstm): {failed['error'].iloc[0].splitlines()[0]}" in text

    result = CliRunner().invoke(_status_command(), [str(exp), "--watch", "--interval", "0.5"])
    assert result.exit_code == 0 and result.output.count("sweep ended") == 1, result.output


def _status_command():
    from search.commands import status

    return status


def test_watch_redraws_until_the_sweep_ends_and_stops_on_ctrl_c(sweep, tmp_path):
    exp, board, _ = sweep
    live = tmp_path / SWEEP
    shutil.copytree(exp, live, ignore=shutil.ignore_patterns("trial_*", "*.pkl", "*.json.*"))
    running = board.copy()
    first = running["trial_id"].max()  # the last trial still running, after one of its fits
    running.loc[running["trial_id"] == first, ["status", "fits_done", "rank"]] = ["running", 1, pd.NA]
    running.to_csv(live / "leaderboard.csv", index=False)
    began = (live / "plan.json").stat().st_mtime

    frames: list[str] = []
    sleeps: list[float] = []

    def sleep(seconds):  # the sweep ends during the second wait
        sleeps.append(seconds)
        if len(sleeps) == 2:
            board.to_csv(live / "leaderboard.csv", index=False)

    clock = iter([began + 60, began + 65, began + 70])
    assert watch(str(live), interval=5, echo=frames.append, clear=True, clock=lambda: next(clock),
                 sleep=sleep) == 3
    assert sleeps == [5, 5]
    assert all(f.startswith("\x1b[H\x1b[2J") for f in frames)  # redrawn in place
    assert "1 running" in frames[0] and "elapsed: 1m00s; about" in frames[0] and "left at" in frames[0]
    assert "Ctrl-C to stop" in frames[1] and frames[2].endswith("sweep ended")

    def interrupted(_):
        raise KeyboardInterrupt

    running.to_csv(live / "leaderboard.csv", index=False)
    frames.clear()
    assert watch(str(live), interval=1, echo=frames.append, clear=False, sleep=interrupted) == 1
    assert "stopped watching" in frames[-1]
    assert not status_frame(str(live)).ended
