"""The README's cluster command on a real two-node Ray cluster on this machine.

Two ``ray start --block`` processes (a head and a worker, one CPU each), each in its own
process group, with token authentication on (a token of the test's own, so nothing under
``~/.ray`` is touched). Both nodes share one temporary folder, as two ``ray start`` with
Ray's defaults on one machine do: so they also share the job's unpacked working directory,
which is what once made the job's driver die with ``Intel oneMKL FATAL ERROR: Cannot load
.../libtorch_cpu.so`` (see `seqsweep.ray_runtime`). The sweep is submitted exactly as the
README says, ``ray job submit --working-dir . -- python -m seqsweep sweep run ...``, with the
experiment on a ``file://`` URI, and the test checks what a user would: the job SUCCEEDED
(``ray job status`` and the Jobs API), the leaderboard, ensembles and report are at the
storage, the trials ran on both nodes, and the Optuna study in ``optuna.log`` holds them.

``ray.cluster_utils.Cluster`` (tests/test_faults.py) runs its nodes under the test's own
process and never goes through a job's working directory: this test does.

These two nodes use the machine's outward address, as any Ray cluster of ``ray start``
nodes does; it cannot be kept on loopback (Ray 2.60, measured here): ``--node-ip-address
127.0.0.1`` is turned back into the outward address (``resolve_ip_for_localhost``); with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (how seqsweep keeps its own instances on 127.0.0.1)
``ray start --address`` refuses to add a worker node; and a worker started without it to a
head started with it kept calling the head's GCS at the outward address and never joined.
So the variable is taken out of these nodes' environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from seqsweep.ray_runtime import LOOPBACK_ENV

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
JOB_TIMEOUT_S = 300


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ray_cli() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


class TwoNodeCluster:
    """A head and a worker started with two ``ray start --block`` (not ``cluster_utils``)."""

    def __init__(self, root: Path, token_path: Path):
        self.root = root
        self.token = token_path.read_text().strip()
        # the README's client side: RAY_AUTH_MODE=token (here with our own token file)
        self.env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", LOOPBACK_ENV)}
        self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path), RAY_USAGE_STATS_ENABLED="0",
                        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        # a short temporary folder of our own (Unix socket paths must stay short), shared by
        # both nodes as Ray's default /tmp/ray would be
        self.temp_dir = root / "ray"
        (gcs, dash, client, *agents) = _free_ports(11)
        self.gcs = f"127.0.0.1:{gcs}"
        self.dashboard = f"http://127.0.0.1:{dash}"
        common = ["--block", "--num-cpus", "1", "--temp-dir", str(self.temp_dir), "--disable-usage-stats"]

        def node_ports(a: list[int]) -> list[str]:
            return ["--dashboard-agent-listen-port", str(a[0]), "--dashboard-agent-grpc-port", str(a[1]),
                    "--runtime-env-agent-port", str(a[2]), "--metrics-export-port", str(a[3])]

        self.procs: list[subprocess.Popen] = []
        self._logs: list = []
        self._head = ["--head", "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                      "--ray-client-server-port", str(client), *node_ports(agents[:4]), *common]
        self._worker = ["--address", self.gcs, *node_ports(agents[4:]), *common]

    def start(self) -> None:
        self._start("head", self._head)
        self.wait_for_nodes(1)
        self._start("worker", self._worker)
        self.wait_for_nodes(2)

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (closed by stop())
        self._logs.append(log)
        # its own session and so its own process group: the teardown ends exactly this group
        self.procs.append(subprocess.Popen([_ray_cli(), "start", *args], stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, cwd=self.root, start_new_session=True))

    def state(self, kind: str, *filters: str) -> list[dict]:
        """`ray list <kind>` (Ray's state API) as JSON, through the CLI and the token as a user has them."""
        args = ["list", kind, "--address", self.dashboard, "--format", "json", "--detail", "--limit", "10000"]
        for f in filters:
            args += ["--filter", f]
        out = self.ray(*args)
        if out.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args)}: {out.stderr[-2000:]}")
        return json.loads(out.stdout)

    def nodes(self) -> list[dict]:
        return self.state("nodes", "state=ALIVE")

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in sorted(self.root.glob("*.log")))

    def wait_for_nodes(self, n: int, timeout: float = 120) -> None:
        deadline, last = time.time() + timeout, None
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"`ray start` exited with {p.returncode}:\n{self.logs()}")
            try:
                if len(self.nodes()) >= n:
                    return
            except Exception as exc:  # the dashboard is not up yet
                last = exc
            time.sleep(1)
        raise AssertionError(f"{n} Ray node(s) not up within {timeout:.0f} s ({last!r}):\n{self.logs()}")

    def ray(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([_ray_cli(), *args], cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def stop(self) -> None:
        """End the two process groups this cluster started (never `ray stop`: other Ray
        instances may run on this machine): SIGTERM, then SIGKILL for what is left (a
        `ray start --block` takes about 30 s to wind down on SIGTERM alone)."""
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.time() + 5
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(1.0, deadline - time.time()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        for log in self._logs:
            log.close()


@pytest.fixture(scope="module")
def two_nodes():
    root = Path(tempfile.mkdtemp(prefix="ssray"))
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    cluster = TwoNodeCluster(root, token)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _last_result(trial_dir: Path) -> dict:
    lines = (trial_dir / "result.json").read_text().strip().splitlines()
    return json.loads(lines[-1])


def test_readme_cluster_command_runs_a_sweep_on_two_nodes(two_nodes, synth_store, tmp_path):
    import optuna
    from ray.job_submission import JobStatus, JobSubmissionClient

    storage = tmp_path / "runs"
    submission_id = "sweep-quick"
    # the README's command ("Run a sweep"), on this cluster and a local store
    submit = two_nodes.ray(
        "job", "submit", "--address", two_nodes.dashboard, "--working-dir", ".", "--submission-id", submission_id,
        "--", "python", "-m", "seqsweep", "sweep", "run", "examples/quick.yaml",
        "--store", str(synth_store), "--storage", f"file://{storage}", "--num-samples", "2",
        timeout=JOB_TIMEOUT_S)
    log = submit.stdout + submit.stderr
    assert "oneMKL" not in log, log[-4000:]
    assert submit.returncode == 0, log[-4000:]

    # the job succeeded, as `ray job status` and the Jobs API say
    status = two_nodes.ray("job", "status", "--address", two_nodes.dashboard, submission_id)
    assert f"Job '{submission_id}' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr
    client = JobSubmissionClient(two_nodes.dashboard, headers={"Authorization": f"Bearer {two_nodes.token}"})
    assert client.get_job_status(submission_id) == JobStatus.SUCCEEDED
    job = client.get_job_info(submission_id)
    assert job.entrypoint.startswith("python -m seqsweep sweep run examples/quick.yaml")

    # everything the README promises is at the storage
    exp = storage / "quick"
    board = pd.read_csv(exp / "leaderboard.csv", dtype={"trial_id": str})
    assert len(board) == 2 and set(board["status"]) == {"ok"}, board
    assert (exp / "ensembles.csv").exists()
    assert (exp / "report" / "report.md").exists()

    # the two trials ran one on each node: Ray Tune records each trial's process id (both
    # nodes share this machine's IP), and the state API says on which node that process was
    nodes = {n["node_id"] for n in two_nodes.nodes()}
    assert len(nodes) == 2
    actors = two_nodes.state("actors", "class_name=ImplicitFunc", f"job_id={job.job_id}")
    node_of_pid = {a["pid"]: a["node_id"] for a in actors}
    trial_nodes = {node_of_pid.get(_last_result(d)["pid"]) for d in exp.glob("trial_*")}
    assert trial_nodes == nodes, (trial_nodes, nodes, node_of_pid)

    # the Optuna study is in optuna.log, every trial COMPLETE with what a reader wants
    journal = optuna.storages.journal.JournalFileBackend(str(exp / "optuna.log"))
    study = optuna.load_study(study_name="quick", storage=optuna.storages.JournalStorage(journal))
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for t in trials:
        assert {"ray_trial_id", "model", "cv_mean", "cv_std", "status"} <= set(t.user_attrs), t.user_attrs
        assert t.user_attrs["status"] == "ok"
    assert sorted(t.user_attrs["ray_trial_id"] for t in trials) == sorted(board["trial_id"])


def test_each_node_builds_its_own_node_cache_once(two_nodes, synth_store, tmp_path):
    """``data.path: node_cache`` on the two-node cluster: every trial ok, and on each node the
    first trial copied the train split into that node's memory-mapped cache and the others
    mapped it (`features.store.node_cache`); the caches are gone when the job ends."""
    import yaml

    spec = yaml.safe_load((REPO / "examples" / "quick.yaml").read_text())
    spec.update(data={"path": "node_cache"}, cv={"folds": 2, "seeds": 1},
                models={"knn": {"n_neighbors": [1, 3, 5]}}, ensemble={"top_k": 2, "methods": ["soft"]})
    path = tmp_path / "cached.yaml"
    path.write_text(yaml.safe_dump(spec))
    storage = tmp_path / "runs"
    submit = two_nodes.ray(
        "job", "submit", "--address", two_nodes.dashboard, "--working-dir", ".", "--submission-id", "sweep-cached",
        "--", "python", "-m", "seqsweep", "sweep", "run", str(path), "--store", str(synth_store),
        "--storage", f"file://{storage}", "--num-samples", "4", timeout=JOB_TIMEOUT_S)
    log = submit.stdout + submit.stderr
    assert submit.returncode == 0, log[-4000:]
    assert "each node's first trial copies it" in log and "node cache: built on 2 node(s)" in log, log[-4000:]

    exp = storage / "quick"
    board = pd.read_csv(exp / "leaderboard.csv", dtype={"trial_id": str})
    assert len(board) == 4 and set(board["status"]) == {"ok"}, board
    caches = [json.loads(f.read_text())["node_cache"] for f in exp.glob("trial_*/checkpoint_*/fits.json")]
    assert len(caches) == 4 and all(c is not None for c in caches), caches
    nodes = {n["node_id"] for n in two_nodes.nodes()}
    assert {c["node"] for c in caches} == nodes, caches  # trials ran on both nodes
    built = sorted(c["node"] for c in caches if c["built"])
    assert built == sorted(nodes), caches  # one build per node, the other trials mapped it
    assert len({c["path"] for c in caches}) == 2
    assert not any(Path(c["path"]).exists() for c in caches)  # removed when the sweep ended


def test_the_strongest_families_run_on_two_nodes(two_nodes, synth_store, tmp_path):
    """One trial each of minirocket, multirocket_hydra and inception_time (the grid sampler
    gives every family its one point), submitted as a job to the two-node cluster: each
    trial ok, its fold models saved, and the ensemble built from them."""
    import yaml

    spec = yaml.safe_load((REPO / "examples" / "quick.yaml").read_text())
    spec.update(name="strongest", cv={"folds": 2, "seeds": 1},
                search={"sampler": "grid", "seed": 0, "num_samples": 3},
                models={"minirocket": {"n_features": 1008, "max_dilations": 8},
                        "multirocket_hydra": {"n_kernels": 168, "hydra_kernels": 4, "hydra_groups": 8},
                        "inception_time": {"depth": 3, "filters": 8, "kernel_size": 10, "epochs": 3,
                                           "batch_size": 16}},
                ensemble={"top_k": 3, "methods": ["soft"]})
    path = tmp_path / "strongest.yaml"
    path.write_text(yaml.safe_dump(spec))
    storage = tmp_path / "runs"
    submit = two_nodes.ray(
        "job", "submit", "--address", two_nodes.dashboard, "--working-dir", ".", "--submission-id", "sweep-strongest",
        "--metadata-json", '{"job_name": "strongest"}',
        "--", "python", "-m", "seqsweep", "sweep", "run", str(path), "--store", str(synth_store),
        "--storage", f"file://{storage}", timeout=JOB_TIMEOUT_S)
    log = submit.stdout + submit.stderr
    assert submit.returncode == 0, log[-4000:]
    exp = storage / "strongest"
    board = pd.read_csv(exp / "leaderboard.csv", dtype={"trial_id": str})
    assert sorted(board["model"]) == ["inception_time", "minirocket", "multirocket_hydra"], board
    assert set(board["status"]) == {"ok"}, board
    assert len(list(exp.glob("trial_*/checkpoint_*/fold_models/*"))) == 3 * 2  # 2 fold models each
    assert (exp / "ensembles.csv").exists()
