"""A sweep that outgrows its data: 20,000 clips, the driver's memory, and handing the data
to the trials.

    python benchmarks/big_store.py                   # 20,000 clips of 10 s mfcc27 frames
    python benchmarks/big_store.py --clips 5000 --frames 200

1. Writes a store of synthetic ``mfcc27`` rows straight to Parquet through the store's own
   writer (no audio: the point is the data's size), 20% of the clips held out for test.
2. Loads the train split padded, as a sweep's driver does: seconds and the driver's peak
   resident memory.
3. Hands it to two trials two ways, side by side, on a local Ray: through the object store
   once (`ray.put`, what `tune.with_parameters` does, and what seqsweep uses) and, the
   plain alternative, by value in each trial's arguments (serialised again per trial).
4. Runs a 2-trial sweep (kNN, 2 folds x 1 seed) on it: wall time and the driver's peak
   memory.
5. Shows what happens when the train split does not fit: the check run against an object
   store smaller than the data.

Printed: sizes, seconds, peak memory, ratios. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_gib() -> float:
    """The driver's peak resident memory so far (Linux reports KiB)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20_000)
    parser.add_argument("--frames", type=int, default=431, help="frames per clip (431 = 10 s at hop 512)")
    args = parser.parse_args()

    import os

    import ray

    from features.store import FeatureStore
    from search.spec import SweepSpec
    from search.sweep import check_object_store, run_sweep
    from seqsweep.errors import StoreError
    from seqsweep.ray_runtime import init_local_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="seqsweep-big-"))
    seconds = write_store(work / "store", clips=args.clips, frames=args.frames)
    on_disk = sum(f.stat().st_size for f in (work / "store").rglob("*.parquet")) / 2**30
    print(f"store: {args.clips} clips x {args.frames} frames x 27 values, {on_disk:.2f} GiB of Parquet, "
          f"written in {seconds:.1f} s")

    rss_before = peak_rss_gib()
    started = time.perf_counter()
    data = FeatureStore(work / "store").load("big", "mfcc27", split="train", padded=True)
    t_load = time.perf_counter() - started
    size = data.x.nbytes / 2**30
    print(f"driver: loaded {len(data)} train clips padded ({size:.2f} GiB) in {t_load:.1f} s; "
          f"peak memory {peak_rss_gib():.2f} GiB (before loading {rss_before:.2f} GiB)")

    init_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def touch(value) -> float:  # what a trial does first: read its data
        return float(value.x[:, 0, 0].sum())

    ray.get([touch.remote(data.subset(np.arange(2))) for _ in range(2)])  # start the workers first
    started = time.perf_counter()
    ref = ray.put(data)
    ray.get([touch.remote(ref) for _ in range(2)])
    t_store = time.perf_counter() - started
    started = time.perf_counter()
    ray.get([touch.remote(data) for _ in range(2)])  # by value: serialised into each call
    t_value = time.perf_counter() - started
    print(f"hand the train split to 2 trials: object store once {t_store:.2f} s, by value per trial "
          f"{t_value:.2f} s (ratio by value / object store {t_value / t_store:.1f}x)")
    del ref

    spec = SweepSpec.from_dict({
        "name": "big", "store": str(work / "store"), "dataset": "big", "feature_set": "mfcc27",
        "storage": str(work / "runs"), "cv": {"folds": 2, "seeds": 1},
        "search": {"num_samples": 2, "sampler": "random", "seed": 0},
        "models": {"knn": {"n_neighbors": [1, 15]}}, "ensemble": {"top_k": 2, "methods": ["soft"]},
    })
    started = time.perf_counter()
    outcome = run_sweep(spec, verbose=0, echo=lambda *_: None)
    print(f"2-trial sweep (kNN, 2 folds x 1 seed): {time.perf_counter() - started:.1f} s, {outcome.ok} ok; "
          f"driver peak memory {peak_rss_gib():.2f} GiB")

    try:
        check_object_store(data.x.nbytes, what="big/mfcc27 train split", capacity=data.x.nbytes / 2)
    except StoreError as exc:
        print(f"an object store half the data's size: {exc}")


if __name__ == "__main__":
    main()
