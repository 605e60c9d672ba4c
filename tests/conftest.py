"""Session fixtures: synthetic audio made once, a store built from it, one local Ray.

Everything here is real: WAV files written by `features.synth`, features computed by
librosa, rows written and read through pyarrow, and (for the tests that ask for it)
a real local Ray instance started once per session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Ray prints a token-authentication warning and its own usage-stats prompt; neither is
# wanted in a test log.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SYNTH_CLASSES = 4
SYNTH_CLIPS = 12
SYNTH_SECONDS = 2.0


#: How the tests start their local Ray (`seqsweep.ray_runtime.init_local_ray`: a new instance
#: of our own, never a Ray some other process left running here, on 127.0.0.1 only), 2 CPUs,
#: no dashboard.
RAY_TEST_INIT = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}


def needs_cpu_bf16() -> pytest.MarkDecorator:
    """Skip a test of bf16 autocast on the CPU where this CPU cannot run it (no bf16 path
    in oneDNN without AVX-512: `trainables.environment.cpu_bf16` probes it once), saying
    what was found; on a CPU that can, the test runs."""
    from trainables.environment import cpu_bf16

    ok, found = cpu_bf16()
    return pytest.mark.skipif(not ok, reason=f"this CPU has no bf16 autocast: {found}")


@pytest.fixture(scope="session")
def ray_session():
    """One real local Ray instance for the whole test session, started on first use.

    tests/test_faults.py swaps in a multi-node cluster for its module and starts this
    instance again when it is done.
    """
    import ray

    from seqsweep.ray_runtime import init_local_ray

    if not ray.is_initialized():
        init_local_ray(**RAY_TEST_INIT)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's in-process fits: tiny models gain nothing from two,
    and on a shared 2-core machine a second spinning thread can slow a fit down tenfold."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """4 classes x 12 clips x 2 s of synthetic genre-like audio, GTZAN layout."""
    from features.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, classes=SYNTH_CLASSES, clips=SYNTH_CLIPS, seconds=SYNTH_SECONDS, seed=0)
    return out


@pytest.fixture(scope="session")
def synth_store(synth_dir, tmp_path_factory) -> Path:
    """A store with the synthetic audio as dataset ``synth`` in ``mfcc27`` and ``wave``
    (1000 Hz), extracted in-process (the Ray path has its own tests)."""
    from features import FeatureSpec, extract_audio

    root = tmp_path_factory.mktemp("store")
    for spec in (FeatureSpec.create("mfcc27"), FeatureSpec.create("wave", sr=1000)):
        summary = extract_audio(synth_dir, store=root, dataset="synth", spec=spec, use_ray=False,
                                progress=False)
        assert summary.failed == 0, summary
    return root


@pytest.fixture(scope="session")
def synth_mfcc(synth_store):
    """The synthetic audio as mfcc27 frames: a ragged SequenceSet, D = 27, both splits."""
    from features import FeatureStore

    return FeatureStore(synth_store).load("synth", "mfcc27")


@pytest.fixture(scope="session")
def synth_wave(synth_store):
    """The synthetic audio as its raw waveform at 1000 Hz: a ragged SequenceSet, D = 1."""
    from features import FeatureSpec, FeatureStore

    return FeatureStore(synth_store).load("synth", FeatureSpec.create("wave", sr=1000).name)
