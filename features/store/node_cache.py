"""One memory-mapped copy of a feature set's rows per node, shared by every trial there.

When a train split outgrows Ray's object store (or the driver's memory), the sweep's
driver reads only labels, groups, clip ids and lengths (`FeatureStore.load_index`) and
hands each trial a small `NodeCacheSource` instead of the data. The first trial on a node
writes the rows into one Arrow IPC file on that node's local disk, straight from the
store (a local path or any URI `pyarrow.fs` opens), under an exclusive ``fcntl`` lock, so
concurrent trials on the node write it once; every trial then memory-maps it
(`pyarrow.memory_map` + `pyarrow.ipc.open_file`): the frames are views of the mapped
file, zero copy, its pages shared by every process on the node through the OS page cache,
and a split larger than memory pages from disk instead of failing. Batches are padded
one at a time from those views (`trainables.training.padded`).

**Where.** ``<root>/<sweep>/<node id>/<key>/rows.arrow``, ``root`` being
``$SEQSWEEP_NODE_CACHE`` or ``<the node's temp folder>/seqsweep-node-cache``, ``key`` the
sha256 of the feature set's ``_manifest.json`` (its parameter hash, classes and the part
files that hold its rows): a changed feature set gets a new key and is never read stale.
The node id is in the path so that two Ray nodes sharing one machine's temp folder each
keep their own copy, as nodes on two machines do. When the sweep ends, the driver runs one
cleanup task pinned to each alive node (`remove_on_every_node`) that deletes that node's
``<root>/<sweep>/<node id>`` (and the sweep's folder once it is empty).

**How it is written.** The rows stream from the store one record batch at a time; their
frames go end to end into a raw scratch file and the small columns stay in memory, then
one record batch (the small columns + a ``large_binary`` ``features`` column whose data
buffer is that scratch file, memory-mapped) is written to ``rows.arrow.tmp`` and renamed
into place. So the building trial's memory grows with the clip count, not the frames, and
the file holds one record batch: every row's frames are one contiguous buffer, and the
views need no concatenation.

**pyarrow alone, not Ray Data.** Ray Data's ``read_parquet`` would read the parts as Ray
tasks into Ray's object store, the very store that is too small, and hand back blocks of
its own choosing; what is needed here is one sequential read on one node into one local
file, which `pyarrow.dataset` does with column projection and the split's filter already
(`FeatureStore.scan_stored`), with no extra dependency and no scheduling.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from features.sequences import SequenceSet
from features.store.reader import FeatureStore
from features.store.schema import frame_chunks
from seqsweep.errors import StoreError

__all__ = ["CACHE_ENV", "CacheInfo", "NodeCacheSource", "cache_root", "manifest_key", "remove_on_every_node",
           "remove_sweep"]

#: Overrides where nodes keep their caches (a folder on each node's local disk).
CACHE_ENV = "SEQSWEEP_NODE_CACHE"
ROWS_FILE = "rows.arrow"
BUILD_FILE = "build.json"
LIGHT = ["clip_id", "group", "label", "n_frames"]


def cache_root() -> Path:
    """``$SEQSWEEP_NODE_CACHE``, or ``seqsweep-node-cache`` in this node's temp folder."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir(), "seqsweep-node-cache"))


def manifest_key(manifest: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of a feature set's manifest (its parameter hash, classes,
    parts and counts): any change to the feature set changes the key."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CacheInfo:
    """How a trial got its rows: the cache file, whether this call built it, and in how many
    seconds (0 when it was already there)."""

    path: str
    built: bool
    seconds: float


@dataclass(frozen=True)
class NodeCacheSource:
    """A feature set's rows as a trial opens them from its node's cache: a few strings,
    pickled into every trial instead of the data.

    ``store``, ``dataset``, ``feature_set``, ``split`` and ``labels`` select the rows as
    `FeatureStore.load` does; ``key`` is `manifest_key` of the manifest the driver planned
    on; ``sweep`` names the cache folder the driver removes at the end; ``n_rows`` is how
    many rows the plan has.
    """

    store: str
    dataset: str
    feature_set: str
    key: str
    sweep: str
    n_rows: int
    split: str | None = "train"
    labels: tuple[str, ...] | None = None

    def folder(self, node: str) -> Path:
        return cache_root() / self.sweep / node / self.key

    def open(self, *, node: str) -> tuple[SequenceSet, CacheInfo]:
        """The rows as a ragged `SequenceSet` (clip id order, as the driver's index) whose
        frames are views of this node's mapped cache, building it first if no trial on
        ``node`` has. `StoreError` when the store's feature set changed since the driver
        planned (its manifest has another key) or the rows are not the plan's."""
        store = FeatureStore(self.store)
        manifest = store.manifest(self.dataset, self.feature_set)
        where = store.path(self.dataset, self.feature_set)
        if manifest_key(manifest) != self.key:
            raise StoreError(where, "must not change while a sweep runs (its folds were made on the feature set "
                             "as it was); start a new sweep", f"manifest key {manifest_key(manifest)}, "
                             f"planned on {self.key}")
        folder = self.folder(node)
        path = folder / ROWS_FILE
        built, seconds = False, 0.0
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            with _locked(folder / ".lock"):
                if not path.exists():  # nobody built it while this trial waited
                    started = time.perf_counter()
                    rows = _write(store, self, manifest, path)
                    built, seconds = True, time.perf_counter() - started
                    (folder / BUILD_FILE).write_text(json.dumps(
                        {"node": node, "pid": os.getpid(), "seconds": seconds, "rows": rows,
                         "bytes": path.stat().st_size}))
        table = ipc.open_file(pa.memory_map(str(path))).read_all()
        data = store.sequences_from(table, manifest, split=self.split, labels=self.labels, where=str(path))
        if len(data) != self.n_rows:
            raise StoreError(str(path), f"must hold the {self.n_rows} rows the sweep's folds were made on",
                             len(data))
        return data, CacheInfo(str(path), built, seconds)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path``, held for the block (released if the process dies)."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(store: FeatureStore, source: NodeCacheSource, manifest: dict[str, Any], path: Path) -> int:
    """Stream the selected rows from ``store`` into ``path`` (one record batch, see the module
    docstring) through temporary names; returns the number of rows."""
    dim = int(manifest["dim"])
    scratch, staged = path.with_name(path.name + ".frames.tmp"), path.with_name(path.name + ".tmp")
    light: list[pa.RecordBatch] = []
    offsets = [np.zeros(1, np.int64)]
    written = 0
    try:
        with open(scratch, "wb") as fh:
            for batch in store.scan_stored(source.dataset, source.feature_set, manifest, columns=[*LIGHT, "features"],
                                           split=source.split, labels=source.labels):
                light.append(batch.select(LIGHT))
                for values, ends in frame_chunks(pa.chunked_array([batch.column("features")]), dim,
                                                 where=store.path(source.dataset, source.feature_set)):
                    fh.write(np.ascontiguousarray(values, dtype="<f4").data)
                    offsets.append(written + ends[1:] * (4 * dim))
                    written += int(ends[-1]) * 4 * dim
        frames = pa.memory_map(str(scratch)).read_buffer() if written else pa.py_buffer(b"")
        byte_offsets = np.concatenate(offsets)
        features = pa.Array.from_buffers(pa.large_binary(), len(byte_offsets) - 1,
                                         [None, pa.py_buffer(byte_offsets), frames])
        small = pa.Table.from_batches(light, schema=light[0].schema) if light else None
        columns = [small.column(c).combine_chunks() for c in LIGHT] if small is not None else \
            [pa.array([], t) for t in (pa.string(), pa.string(), pa.string(), pa.int32())]
        batch = pa.RecordBatch.from_arrays([*columns, features], names=[*LIGHT, "features"])
        with pa.OSFile(str(staged), "wb") as sink, ipc.new_file(sink, batch.schema) as writer:
            writer.write_batch(batch)
        os.replace(staged, path)
        return batch.num_rows
    finally:
        for tmp in (scratch, staged):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def remove_sweep(sweep: str, node: str | None = None) -> list[dict[str, Any]]:
    """Delete the caches of ``sweep`` that ``node`` keeps here (every node's, when None);
    returns the `BUILD_FILE` records found (node, seconds, rows, bytes), one per cache built."""
    folder = cache_root() / sweep
    mine = folder if node is None else folder / node
    builds = []
    for record in sorted(mine.glob(f"{'*/' if node is None else ''}*/{BUILD_FILE}")):
        with contextlib.suppress(OSError, ValueError):
            builds.append(json.loads(record.read_text()))
    shutil.rmtree(mine, ignore_errors=True)
    with contextlib.suppress(OSError):  # the sweep's folder, once no node of this machine keeps a cache in it
        folder.rmdir()
    return builds


def remove_on_every_node(sweep: str, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run `remove_sweep` for each alive Ray node, on it (one zero-CPU task pinned to each); returns
    every node's build records. A node that does not answer within ``timeout`` keeps its
    files (in its temp folder) and is skipped."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(remove_sweep)
    refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
                         name="seqsweep node cache cleanup").remote(sweep, n["NodeID"])
            for n in ray.nodes() if n.get("Alive")]
    builds: list[dict[str, Any]] = []
    for ref in refs:
        with contextlib.suppress(Exception):
            builds.extend(ray.get(ref, timeout=timeout))
    return builds
