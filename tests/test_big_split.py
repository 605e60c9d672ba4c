"""A train split bigger than Ray's object store: the driver reads labels only, each node
keeps one memory-mapped copy (`features.store.node_cache`), batches are padded one at a time.

The fast tests use a tiny store written through the store's own writer; the slow one starts
its own Ray with a small object store in a subprocess (the session's Ray is untouched) and
sweeps a split several times larger than it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.rows import SourceRows
from features.store import FeatureStore
from features.store.node_cache import (
    CACHE_ENV,
    NodeCacheSource,
    cache_root,
    manifest_key,
    remove_sweep,
)
from seqsweep.errors import StoreError

REPO = Path(__file__).resolve().parents[1]
INFO = {"kind": "test", "params": {}, "beat_sync": False, "segment_seconds": None, "param_hash": "test",
        "source_type": "import", "source": ["test"]}


def write_rows(root: Path, start: int, stop: int, *, dim: int = 3, classes: int = 3) -> None:
    """Clips ``start..stop-1`` (1-40 frames, 1 in 5 held out for test) into ``<root>/d/f``."""
    store = FeatureStore(root)
    rng = np.random.default_rng(start)
    ids = [f"c{i:05d}" for i in range(start, stop)]
    labels = [f"k{i % classes}" for i in range(start, stop)]
    splits = ["test" if i % 5 == 0 else "train" for i in range(start, stop)]
    store.add_splits("d", {c: (lab, s) for c, lab, s in zip(ids, labels, splits)})
    writer = store.writer("d", "f", info=INFO, dim=dim)
    for clip, label, split in zip(ids, labels, splits):
        frames = (int(label[1:]) + rng.standard_normal((int(rng.integers(1, 41)), dim))).astype(np.float32)
        writer.add(SourceRows(clip, 0, 0, "", [clip], [clip], [label], [split], [frames]))
    writer.close()


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    write_rows(tmp_path / "store", 0, 90)
    return tmp_path / "store"


def source(root: Path, sweep: str = "s") -> NodeCacheSource:
    store = FeatureStore(root)
    n = len(store.load_index("d", "f", split="train"))
    return NodeCacheSource(str(root), "d", "f", manifest_key(store.manifest("d", "f")), sweep, n)


def test_the_driver_index_is_the_split_without_its_frames(tiny):
    store = FeatureStore(tiny)
    index = store.load_index("d", "f", split="train")
    full = store.load("d", "f", split="train", padded=True)
    assert len(index) == 72 and index.dim == 3 and index.classes == full.classes
    for name in ("y", "groups", "clip_ids", "lengths"):
        assert np.array_equal(getattr(index, name), getattr(full, name)), name
    assert index.padded_nbytes == full.x.nbytes + full.lengths.nbytes
    assert full.index().padded_nbytes == index.padded_nbytes
    with pytest.raises(Exception, match="class 'k0'"):
        store.load_index("d", "f", split="train", min_per_class=30)


def test_the_node_cache_maps_what_the_store_holds(tiny):
    src = source(tiny)
    data, info = src.open(node="n1")
    assert info.built and info.seconds > 0 and Path(info.path).parent == cache_root() / "s" / "n1" / src.key
    full = FeatureStore(tiny).load("d", "f", split="train")
    assert np.array_equal(data.clip_ids, full.clip_ids) and np.array_equal(data.y, full.y)
    assert all(np.array_equal(a, b) for a, b in zip(data.x, full.x))
    # the frames are views of one mapped buffer, not copies
    assert not data.x[0].flags.owndata and not data.x[0].flags.writeable
    assert len({id(x.base) for x in data.x}) == 1
    again, info = src.open(node="n1")
    assert not info.built and np.array_equal(again.clip_ids, data.clip_ids)
    other, info = src.open(node="n2")  # another node keeps its own copy
    assert info.built
    builds = remove_sweep("s")
    assert sorted(b["node"] for b in builds) == ["n1", "n2"] and all(b["rows"] == 72 for b in builds)
    assert not (cache_root() / "s").exists()


def _open_in_child(root: str, cache: str, queue) -> None:
    os.environ[CACHE_ENV] = cache
    _, info = source(Path(root)).open(node="n")
    queue.put(info.built)


def test_concurrent_trials_on_a_node_write_the_cache_once(tiny):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_open_in_child, args=(str(tiny), os.environ[CACHE_ENV], queue)) for _ in range(4)]
    for c in children:
        c.start()
    built = [queue.get(timeout=60) for _ in children]
    for c in children:
        c.join(timeout=60)
    assert sorted(built) == [False, False, False, True]
    assert [b["node"] for b in remove_sweep("s")] == ["n"]


def test_a_changed_feature_set_is_never_read_stale(tiny):
    old = source(tiny)
    old.open(node="n")
    write_rows(tiny, 90, 100)  # the feature set grows: a new manifest
    with pytest.raises(StoreError, match="must not change while a sweep runs"):
        old.open(node="n")
    new = source(tiny)
    assert new.key != old.key and new.n_rows == old.n_rows + 8
    data, info = new.open(node="n")
    assert info.built and len(data) == new.n_rows
    with pytest.raises(StoreError, match="must hold the 1 rows"):
        NodeCacheSource(str(tiny), "d", "f", new.key, "s", 1).open(node="n")


def test_the_rule_that_picks_the_data_path():
    from search.sweep import AUTO_SHARE, choose_data_path

    gib = 2**30
    assert choose_data_path("auto", int(AUTO_SHARE * gib), capacity=gib) == "object_store"
    assert choose_data_path("auto", int(AUTO_SHARE * gib) + 1, capacity=gib) == "node_cache"
    assert choose_data_path("node_cache", 10, capacity=gib) == "node_cache"
    assert choose_data_path("object_store", 2 * gib, capacity=gib) == "object_store"  # then refused by its check


def test_ragged_frames_are_padded_per_batch_and_fit_the_same(one_torch_thread, tiny):
    from trainables import fit
    from trainables.training.padded import Batches, RaggedFrames, padded_arrays

    data, _ = source(tiny).open(node="n")
    x, lengths = padded_arrays(data)
    assert isinstance(x, RaggedFrames) and x.shape == (72, int(lengths.max()), 3)
    padded = data.to_padded()
    idx = np.array([5, 0, 7])
    xb, lb, yb = Batches(x, lengths, data.y, device=__import__("torch").device("cpu")).get(idx)
    steps = -(-int(lengths[idx].max()) // 8) * 8
    assert xb.shape == (3, steps, 3)
    assert np.array_equal(xb.numpy()[:, :x.shape[1]], padded.x[idx, :steps]) and not xb[:, x.shape[1]:].any() and np.array_equal(yb.numpy(), data.y[idx])
    train, valid = np.arange(0, 72, 2), np.arange(1, 72, 2)
    ragged_fit = fit("lstm", {"units": 8}, data.subset(train), data.subset(valid), seed=3,
                     train_config={"epochs": 2})
    padded_fit = fit("lstm", {"units": 8}, padded.subset(train), padded.subset(valid), seed=3,
                     train_config={"epochs": 2})
    np.testing.assert_allclose(ragged_fit.proba, padded_fit.proba, rtol=0, atol=1e-6)


def _sweep_spec(store: Path, storage: Path, path: str, name: str):
    from search.spec import SweepSpec

    return SweepSpec.from_dict({
        "name": name, "store": str(store), "dataset": "d", "feature_set": "f", "storage": str(storage),
        "cv": {"folds": 2, "seeds": 1}, "search": {"num_samples": 2, "sampler": "random", "seed": 0},
        "models": {"lstm": {"units": 4, "epochs": 1, "num_layers": 1}}, "data": {"path": path},
    })


def test_both_data_paths_sweep_on_the_same_folds(ray_session, tiny, tmp_path):
    from search.sweep import run_sweep

    lines: list[str] = []
    oof = {}
    for path in ("object_store", "node_cache"):
        outcome = run_sweep(_sweep_spec(tiny, tmp_path / "runs", path, path), verbose=0, echo=lines.append)
        assert outcome.ok == 2, outcome
        exp = Path(outcome.experiment_dir)
        board = pd.read_csv(exp / "leaderboard.csv")
        assert set(board["status"]) == {"ok"}
        caches = []
        for ckpt in sorted(exp.glob("trial_*/checkpoint_*")):
            caches.append(json.loads((ckpt / "fits.json").read_text())["node_cache"])
            with np.load(ckpt / "oof.npz") as saved:
                oof.setdefault(path, []).append(saved["clip_ids"])
        if path == "object_store":
            assert caches == [None, None]
        else:  # one node: the first trial built the cache, the second mapped it
            assert sorted(c["built"] for c in caches) == [False, True]
            assert len({c["path"] for c in caches}) == 1
            assert not Path(caches[0]["path"]).exists()  # removed when the sweep ended
    assert any(line.startswith("node cache: built on 1 node(s)") for line in lines), lines
    assert all(np.array_equal(a, b) for a, b in zip(oof["object_store"], oof["node_cache"]))


BIG_SWEEP = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    root = Path(sys.argv[1])
    import ray
    from search.spec import SweepSpec
    from search.sweep import run_sweep
    from seqsweep.ray_runtime import init_local_ray
    from features.store import FeatureStore
    index = FeatureStore(root / "store").load_index("big", "mfcc27", split="train")
    init_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory={store})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # imports, Ray and the index done
    spec = SweepSpec.from_dict({{"name": "big", "store": str(root / "store"), "dataset": "big",
        "feature_set": "mfcc27", "storage": str(root / "runs"), "cv": {{"folds": 2, "seeds": 1}},
        "search": {{"num_samples": 2, "sampler": "random", "seed": 0}},
        "models": {{"lstm": {{"units": 4, "epochs": 1, "num_layers": 1, "batch_size": 64}}}}}})
    lines = []
    outcome = run_sweep(spec, verbose=0, echo=lines.append)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ray.shutdown()
    print(json.dumps({{"ok": outcome.ok, "trials": outcome.trials, "split": index.padded_nbytes,
                      "peak_before": before, "peak_after": after, "lines": lines}}))
""")


@pytest.mark.slow
def test_a_split_several_times_larger_than_the_object_store_sweeps(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from big_store import write_store

    write_store(tmp_path / "store", clips=3000, frames=1200)  # here, so the sweep's driver measures the sweep
    store_bytes = 80 * 2**20
    script = BIG_SWEEP.format(repo=str(REPO), store=store_bytes)
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache"), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the subprocess's own session: its Ray and nothing else
        out, err = proc.communicate()
        pytest.fail(f"the big sweep did not finish in 420 s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-4000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["split"] > 3 * store_bytes, result  # ~0.26 GiB padded against 80 MiB
    assert result["ok"] == result["trials"] == 2, result
    assert any("each node's first trial copies it" in line for line in result["lines"]), result["lines"]
    grown = result["peak_after"] - result["peak_before"]
    assert grown < 0.25 * result["split"], (grown, result)
