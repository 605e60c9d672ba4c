"""Faults on a real multi-node Ray cluster started on this machine (`ray.cluster_utils.Cluster`):
a node lost in the middle of a sweep or of an extraction, and a driver killed mid-sweep.

Each node is a real raylet with its own worker processes; `remove_node(...,
allow_graceful=False)` kills it the way a lost machine disappears.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node, one CPU each, in place of the session's single-node Ray
    (which is started again afterwards, for the tests that follow)."""
    import ray
    from ray.cluster_utils import Cluster

    from seqsweep.ray_runtime import init_local_ray, pin_loopback
    from tests.conftest import RAY_TEST_INIT

    had_session_ray = ray.is_initialized()
    ray.shutdown()
    pin_loopback()  # both nodes, and the drivers the tests start, on 127.0.0.1
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()
    if had_session_ray:
        init_local_ray(**RAY_TEST_INIT)


def _add_worker(cluster):
    node = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return node


def _spec(store: Path, storage: Path, name: str, samples: int, epochs: int) -> dict:
    return {"name": name, "store": str(store), "dataset": "synth", "feature_set": "mfcc27",
            "cv": {"folds": 2, "seeds": 1}, "search": {"num_samples": samples, "seed": 0, "max_concurrent": 2},
            "models": {"lstm": {"units": [8], "num_layers": 1, "lr": {"low": 3e-3, "high": 1e-2, "log": True},
                                "epochs": epochs, "batch_size": 16}},
            # one fit after another: the faults are timed against trials of a known length
            "train": {"fused": False},
            "storage": str(storage)}


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _oks(board: Path) -> int:
    return int((pd.read_csv(board)["status"] == "ok").sum()) if board.exists() else 0


def test_a_sweep_finishes_complete_when_a_node_dies(cluster, synth_store, tmp_path):
    import ray

    from search.spec import SweepSpec
    from search.sweep import run_sweep

    worker = _add_worker(cluster)
    worker_id = worker.node_id
    # trials long enough (400 epochs, a few seconds each) that the sweep cannot end before the
    # killer sees two running in the live leaderboard (which shows a started trial within a second)
    spec = SweepSpec.from_dict(_spec(synth_store, tmp_path / "runs", "node-lost", samples=6, epochs=400))
    board = Path(spec.experiment_path) / "leaderboard.csv"
    killed: dict[str, object] = {}

    def kill_the_worker_mid_sweep():
        # wait until a trial runs on the worker node, then pull the plug
        def busy_on_worker() -> bool:  # a trial done, and both nodes busy with one each
            if not board.exists() or _oks(board) < 1:
                return False
            running = int((pd.read_csv(board)["status"] == "running").sum())
            return running == 2 and any(n["NodeID"] == worker_id and n["Alive"] for n in ray.nodes())
        _wait_for(busy_on_worker, 120, "a finished trial and two running")
        cluster.remove_node(worker, allow_graceful=False)
        killed["at"] = time.time()

    killer = threading.Thread(target=kill_the_worker_mid_sweep, daemon=True)
    killer.start()
    outcome = run_sweep(spec, verbose=0, echo=lambda *_: None)
    killer.join(5)
    assert "at" in killed, "the worker node was never killed"
    frame = pd.read_csv(board)
    assert len(frame) == 6 and (frame["status"] == "ok").all(), frame[["trial_id", "status", "error"]]
    assert outcome.ok == 6
    folds = pd.read_csv(board.with_name("leaderboard_folds.csv"))
    assert len(folds) == 6 * 2  # the leaderboard is complete: every fit of every trial
    # the trial that ran on the lost node failed once and was retried (FailureConfig)
    state = sorted(board.parent.glob("experiment_state-*.json"))[-1].read_text()
    failures = [int(n) for n in re.findall(r'num_failures\\": (\d+)', state)]
    assert len(failures) == 6 and sum(failures) >= 1, failures


def test_the_driver_is_killed_and_the_sweep_resumed(cluster, synth_store, tmp_path):
    from search.spec import load_spec
    from search.sweep import run_sweep

    _add_worker(cluster)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec(synth_store, tmp_path / "runs", "driver-lost", samples=8, epochs=40)))
    board = tmp_path / "runs" / "driver-lost" / "leaderboard.csv"
    env = {**os.environ, "RAY_ADDRESS": cluster.address}
    driver = subprocess.Popen([sys.executable, "-m", "seqsweep", "sweep", "run", str(path), "--no-ensemble"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _oks(board) >= 2 or driver.poll() is not None, 180, "two finished trials")
        assert driver.poll() is None, "the sweep ended before it could be killed"
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert _oks(board) < 8
    run_sweep(load_spec(path), resume=True, verbose=0, echo=lambda *_: None)
    frame = pd.read_csv(board)
    assert len(frame) == 8 and frame["trial_id"].is_unique and (frame["status"] == "ok").all()


def test_extraction_redoes_the_files_of_a_lost_node(cluster, tmp_path):
    from features import FeatureSpec, FeatureStore, extract_audio
    from features.synth import write_dataset

    worker = _add_worker(cluster)
    src = tmp_path / "audio"
    n_files = len(write_dataset(src, classes=3, clips=20, seconds=6.0, seed=1))  # ~3 s of work here
    killed_at: list[float] = []

    def kill():
        cluster.remove_node(worker, allow_graceful=False)
        killed_at.append(time.perf_counter())

    timer = threading.Timer(1.0, kill)  # while the worker node's first tasks still run
    timer.start()
    summary = extract_audio(src, store=tmp_path / "store", dataset="synth", spec=FeatureSpec.create("mfcc27"),
                            progress=False, chunk_size=1)
    finished_at = time.perf_counter()
    timer.join()
    assert killed_at and killed_at[0] < finished_at, "the node must die in the middle of the extraction"
    assert summary.failed == 0, summary
    assert summary.added == n_files and summary.clips_total == n_files
    seqs = FeatureStore(tmp_path / "store").load("synth", "mfcc27")
    assert len(seqs) == n_files and len(set(seqs.clip_ids)) == n_files
    manifest = json.loads((tmp_path / "store" / "synth" / "mfcc27" / "_manifest.json").read_text())
    assert manifest["n_clips"] == n_files


def test_fractional_gpus_pack_four_trials_on_one_gpu(cluster, synth_store, tmp_path):
    """`resources: {gpus: 0.25}` puts four trials on one GPU: Ray schedules by the declared
    GPU (a node that says it has one; torch here still trains on the CPU)."""
    from search.spec import SweepSpec
    from search.sweep import run_sweep, trial_capacity

    cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    assert trial_capacity(0.25, 0.25)[0] == 4  # the one GPU, not the CPUs, is the limit
    data = _spec(synth_store, tmp_path / "runs", "packed", samples=4, epochs=2)
    data["search"].pop("max_concurrent")
    data["models"] = {"knn": {"n_neighbors": [1, 3, 5, 7]}}
    data["resources"] = {"cpus": 0.25, "gpus": 0.25}
    said: list[str] = []
    outcome = run_sweep(SweepSpec.from_dict(data), verbose=0, echo=said.append)
    assert any("4 at once (the cluster fits 4 of 0.25 CPU + 0.25 GPU each)" in s for s in said), said
    assert outcome.ok == 4
