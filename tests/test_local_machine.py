"""What depends on the machine a user runs on: bf16 autocast on the CPU, and the local Ray.

bf16: a CPU without a bf16 path in oneDNN (no AVX-512) cannot run an LSTM under
``torch.autocast("cpu", dtype=torch.bfloat16)``. ``train.amp: bf16`` there is refused with
one clear error, by every fit (sequential, fused, prediction) and by a sweep before any
trial starts. The tests that need the probe to say "no" make it say so; the sweep's own
probe runs in a Ray worker, on this machine's real CPU.

Ray: every instance seqsweep starts by itself lives on 127.0.0.1: its nodes' addresses,
every socket its processes listen on, and every peer they talk to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import trainables.environment as environment
from seqsweep.errors import ConfigError
from trainables import fit, predict_proba
from trainables.fused.many import fit_many

NO_BF16 = "Test CPU [no avx512f, avx512_bf16 or amx_bf16]: could not create a primitive descriptor"
BF16_CPU = {"epochs": 1, "batch_size": 8, "device": "cpu", "amp": "bf16"}


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(environment, "cpu_bf16", lambda: (False, NO_BF16))


def _check_refusal(info: pytest.ExceptionInfo) -> None:
    err = info.value
    assert err.where == "train.amp"
    assert environment.BF16_RULE in err.rule
    assert err.value == f"bf16 on {NO_BF16}"


def test_the_probe_answers_once_and_names_the_cpu():
    ok, found = environment.cpu_bf16()
    assert isinstance(ok, bool) and found.startswith(environment.cpu_name())
    assert environment.cpu_bf16() == (ok, found)  # cached: one probe a process


def test_a_fit_refuses_bf16_on_a_cpu_without_it(cpu_without_bf16, synth_mfcc):
    train = synth_mfcc
    with pytest.raises(ConfigError) as info:
        fit("lstm", {"units": (4,)}, train, None, seed=0, train_config=BF16_CPU)
    _check_refusal(info)


def test_a_fused_fit_refuses_bf16_on_a_cpu_without_it(cpu_without_bf16, synth_mfcc):
    train = synth_mfcc
    half = np.arange(len(train))
    fits = [(0, half[::2], half[1::2]), (1, half[1::2], half[::2])]
    with pytest.raises(ConfigError) as info:
        fit_many("cnn1d", None, train, fits, train_config=BF16_CPU)
    _check_refusal(info)


def test_prediction_refuses_bf16_on_a_cpu_without_it(cpu_without_bf16, synth_mfcc):
    train = synth_mfcc
    result = fit("lstm", {"units": (4,)}, train, None, seed=0,
                 train_config={**BF16_CPU, "amp": "off"}, return_weights=True)
    with pytest.raises(ConfigError) as info:
        predict_proba("lstm", {"units": (4,)}, result.weights, train, device="cpu", amp="bf16")
    _check_refusal(info)


def test_bf16_where_the_cpu_has_it_is_autocast(synth_mfcc):
    if not environment.cpu_bf16()[0]:
        pytest.skip(f"this CPU has no bf16 autocast: {environment.cpu_bf16()[1]}")
    assert environment.resolve_amp("bf16", torch.device("cpu")) is torch.bfloat16


def _spec(store, tmp_path, **train):
    from search.spec import SweepSpec

    return SweepSpec.from_dict({
        "name": "precision", "store": str(store), "dataset": "synth", "feature_set": "mfcc27",
        "cv": {"folds": 2, "seeds": 1}, "search": {"num_samples": 1, "seed": 0},
        "models": {"lstm": {"units": [4], "num_layers": 1, "epochs": 1}},
        "train": train, "storage": str(tmp_path / "runs")})


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_sweep_checks_bf16_where_its_trials_run_before_any_starts(device, ray_session, synth_store, tmp_path):
    """The probe runs as a Ray task with a trial's resources, on this machine's real CPU:
    where the trials cannot run bf16 (``cuda`` with no GPU, or a CPU without bf16) the sweep
    stops with the rule before any trial; where they can, the check passes."""
    from search.sweep import check_precision, run_sweep

    spec = _spec(synth_store, tmp_path, amp="bf16", device=device)
    can = environment.amp_problem("bf16", device) is None
    if can:
        check_precision(spec)
        return
    with pytest.raises(ConfigError) as info:
        run_sweep(spec, echo=lambda *_: None)
    expected = "CUDA was asked for" if device == "cuda" else environment.BF16_RULE
    assert expected in str(info.value)
    assert not (tmp_path / "runs" / "precision" / "leaderboard.csv").exists()  # no trial ran


def _ray_addresses() -> dict[str, list[str]]:
    """The node addresses Ray reports, and the local and remote IPs of every socket of this
    process and the Ray processes it started."""
    import psutil
    import ray

    me = psutil.Process()
    listen, peers = set(), set()
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                listen.add(c.laddr.ip)
            elif c.raddr:
                peers.add(c.raddr.ip)
    nodes = [n["NodeManagerAddress"] for n in ray.nodes()]
    return {"nodes": nodes, "listen": sorted(listen), "peers": sorted(peers)}


def _loopback(ip: str) -> bool:
    return ip.removeprefix("::ffff:") in ("127.0.0.1", "::1")


def test_the_tests_local_ray_is_on_loopback(ray_session):
    seen = _ray_addresses()
    assert seen["nodes"] and all(_loopback(ip) for ip in seen["nodes"]), seen
    assert all(_loopback(ip) for ip in seen["listen"] + seen["peers"]), seen


@pytest.mark.slow
def test_the_ray_a_command_starts_is_on_loopback():
    """`ensure_ray` with no address, in a fresh process that imported Ray before (as a
    command may): the node, its dashboard, and every socket stay on 127.0.0.1."""
    script = textwrap.dedent("""
        import json, os
        os.environ.pop("RAY_ADDRESS", None)
        os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        import ray
        from seqsweep.ray_runtime import ensure_ray
        from tests.test_local_machine import _ray_addresses
        url = ensure_ray(num_cpus=1)
        ray.get(ray.remote(lambda: 1).remote())
        print("RESULT", json.dumps({**_ray_addresses(), "dashboard": url}))
        ray.shutdown()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    seen = json.loads(line.removeprefix("RESULT "))
    assert seen["nodes"] == ["127.0.0.1"], seen
    assert seen["dashboard"].startswith("http://127.0.0.1:"), seen
    assert all(_loopback(ip) for ip in seen["listen"] + seen["peers"]), seen
