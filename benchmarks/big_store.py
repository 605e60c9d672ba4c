"""A sweep that outgrows its data: the driver's memory, a trial's, the node cache's build
time and the sweep's wall time, through the object store and through the node cache.

    python benchmarks/big_store.py                          # 5,000, 20,000 and 80,000 clips
    python benchmarks/big_store.py --clips 5000 --frames 100

For each size it writes a store of synthetic ``mfcc27`` rows (``--frames`` frames x 27
values a clip, 20% held out for test) through the store's own writer, then, each in a
process of its own so that every peak is its own:

1. the driver's read: `FeatureStore.load` padded (what a driver did before) against
   `FeatureStore.load_index` (labels, groups, lengths: what it reads now), seconds and
   the process's peak resident memory;
2. a 2-trial sweep (LSTM of 4 units, 1 epoch, 2 folds x 1 seed) on a local Ray of 2 CPUs
   per path: ``data.path: object_store`` (where the padded split fits the object store,
   which is Ray's default of 30% of memory) and ``data.path: node_cache``; and a
   ``node_cache`` sweep whose object store (``--small-store`` bytes) is smaller than the split.
   Printed: wall time, the driver's peak memory, the first trial's cache build seconds
   (from the trials' ``fits.json``), and the trials' peak resident memory (sampled every
   0.2 s; ``shared`` is the part of it in shared pages: the mapped cache and Ray's store).

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def write_store(root: Path, *, clips: int, frames: int, classes: int = 10, seed: int = 0) -> float:
    """``clips`` synthetic rows of ``frames`` x 27 values in ``<root>/big/mfcc27``; seconds."""
    from features.rows import SourceRows
    from features.splits import assign_test_split
    from features.store import FeatureStore

    started = time.perf_counter()
    store = FeatureStore(root)
    rng = np.random.default_rng(seed)
    labels = [f"class{i % classes}" for i in range(clips)]
    ids = [f"clip{i:06d}.wav" for i in range(clips)]
    split = assign_test_split(dict(zip(ids, labels)), test_size=0.2, seed=seed)
    store.add_splits("big", {g: (labels[i], split[g]) for i, g in enumerate(ids)})
    info = {"kind": "mfcc27", "params": {"synthetic": True}, "beat_sync": False, "segment_seconds": None,
            "param_hash": "synthetic-mfcc27", "source_type": "import", "source": ["synthetic"]}
    writer = store.writer("big", "mfcc27", info=info, dim=27)
    centres = rng.standard_normal((classes, 27)).astype(np.float32)
    for i, (clip, label) in enumerate(zip(ids, labels)):
        x = centres[i % classes] + rng.standard_normal((frames, 27), dtype=np.float32)
        writer.add(SourceRows(clip, 0, 0, "", [clip], [clip], [label], [split[clip]], [x]))
    writer.close()
    return time.perf_counter() - started


def child_read(store: str, how: str) -> dict:
    """The driver's read of the train split: ``padded`` (`load`) or ``index`` (`load_index`)."""
    from features.store import FeatureStore

    before = peak_rss_gib()
    started = time.perf_counter()
    fs = FeatureStore(store)
    data = fs.load("big", "mfcc27", split="train", padded=True) if how == "padded" else \
        fs.load_index("big", "mfcc27", split="train")
    return {"seconds": time.perf_counter() - started, "peak_gib": peak_rss_gib(), "before_gib": before,
            "padded_gib": (data.x.nbytes if how == "padded" else data.padded_nbytes) / 2**30}


class TrialMemory(threading.Thread):
    """Samples the resident memory of Ray Tune's trial processes (``ray::ImplicitFunc``)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.rss = self.shared = 0
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.done.is_set():  # this process's own Ray only: its descendants
            for p in me.children(recursive=True):
                try:
                    if "ImplicitFunc" in " ".join(p.cmdline()):
                        mem = p.memory_info()
                        if mem.rss > self.rss:
                            self.rss, self.shared = mem.rss, mem.shared
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            time.sleep(0.2)


def child_sweep(store: str, path: str, object_store: int | None, work: str) -> dict:
    """A 2-trial sweep through ``path`` on a local Ray of our own; its costs."""
    import ray

    from search.spec import SweepSpec
    from search.sweep import run_sweep
    from seqsweep.ray_runtime import init_local_ray

    kwargs = {} if object_store is None else {"object_store_memory": object_store}
    init_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False, **kwargs)
    capacity = min(n["Resources"]["object_store_memory"] for n in ray.nodes() if n["Alive"])
    spec = SweepSpec.from_dict({
        "name": f"{path}-{object_store or 'default'}", "store": store, "dataset": "big", "feature_set": "mfcc27", "storage": f"{work}/runs",
        "cv": {"folds": 2, "seeds": 1}, "search": {"num_samples": 2, "sampler": "random", "seed": 0},
        "models": {"lstm": {"units": 4, "epochs": 1, "num_layers": 1, "batch_size": 64}},
        "data": {"path": path}, "train": {"early_stopping_patience": None},
    })
    before = peak_rss_gib()
    sampler = TrialMemory()
    sampler.start()
    started = time.perf_counter()
    outcome = run_sweep(spec, verbose=0, echo=lambda *_: None)
    wall = time.perf_counter() - started
    sampler.done.set()
    ray.shutdown()
    caches = [json.loads(f.read_text()).get("node_cache") for f in
              Path(outcome.experiment_dir).glob("trial_*/checkpoint_*/fits.json")]
    build = [c["build_seconds"] for c in caches if c and c["built"]]
    return {"wall_s": wall, "ok": outcome.ok, "trials": outcome.trials, "driver_peak_gib": peak_rss_gib(),
            "driver_before_gib": before, "trial_rss_gib": sampler.rss / 2**30,
            "trial_shared_gib": sampler.shared / 2**30, "build_s": build, "object_store_gib": capacity / 2**30}


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                         env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_size(clips: int, frames: int, small_store: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="seqsweep-big-"))
    store = str(work / "store")
    seconds = write_store(Path(store), clips=clips, frames=frames)
    on_disk = sum(f.stat().st_size for f in Path(store).rglob("*.parquet")) / 2**30
    print(f"\n== {clips} clips x {frames} frames x 27 values: {on_disk:.2f} GiB of Parquet, written in {seconds:.0f} s")
    for how in ("padded", "index"):
        r = run_child("read", store, how)
        if "error" in r:
            print(f"driver read ({how}): {r['error']}")
            continue
        print(f"driver read, {'load padded (before)' if how == 'padded' else 'load_index (now)'}: "
              f"{r['seconds']:.2f} s, peak memory {r['peak_gib']:.2f} GiB (after imports {r['before_gib']:.2f} GiB); "
              f"padded split {r['padded_gib']:.2f} GiB")
    for path, object_store in (("object_store", None), ("node_cache", None), ("node_cache", small_store)):
        r = run_child("sweep", store, path, str(object_store or 0), str(work))
        label = f"{path}, object store {'default' if object_store is None else f'{object_store / 2**20:.0f} MiB'}"
        if "error" in r:
            print(f"sweep ({label}): {r['error']}")
            continue
        build = ", ".join(f"{s:.1f} s" for s in r["build_s"]) or "-"
        print(f"sweep ({label} = {r['object_store_gib']:.2f} GiB): {r['ok']}/{r['trials']} ok in {r['wall_s']:.0f} s; "
              f"driver peak {r['driver_peak_gib']:.2f} GiB (at start {r['driver_before_gib']:.2f}); trial peak "
              f"resident {r['trial_rss_gib']:.2f} GiB ({r['trial_shared_gib']:.2f} shared); cache build {build}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, store, *rest = sys.argv[2:]
        if kind == "read":
            print(json.dumps(child_read(store, rest[0])))
        else:
            path, object_store, work = rest
            print(json.dumps(child_sweep(store, path, int(object_store) or None, work)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, nargs="+", default=[5_000, 20_000, 80_000])
    parser.add_argument("--frames", type=int, default=100, help="frames per clip (100 = 2.3 s at hop 512)")
    parser.add_argument("--small-store", type=int, default=100 * 2**20,
                        help="object store bytes of the run whose split does not fit it")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; each figure from one run")
    for clips in args.clips:
        one_size(clips, args.frames, args.small_store)


if __name__ == "__main__":
    main()
