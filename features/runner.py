"""Extract audio into the store as Ray tasks (`extract_audio`).

Sequence files (pickle, ``.ts``, CSV) are imported by `features.sequence_import`.

`extract_audio` plans before it computes: it lists the sources, compares each with the
fingerprint stored beside its rows (size and mtime first, the sha256 of its bytes when
those changed) and only sends new or changed clips to Ray. An unchanged dataset
costs a directory listing and one small Parquet read, and Ray is not even started.

Work is sent as chunks of a few clips per task (one librosa/numba warm-up per worker
process, not per file); the driver writes results as they arrive and commits a part
every ~64 MB, so a killed run keeps what it committed and the next run does the rest.
While a local Ray instance starts, and until its workers hand back their first chunk,
the driver warms librosa up and extracts clips itself (`features.head_start`).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from features.audio import AudioItem, discover_audio
from features.extract import FeatureSpec
from features.head_start import head_start_if_ray_starts
from features.incremental import (
    ExtractionSummary,
    align_splits,
    check_fraction,
    is_unchanged,
    splits_for,
)
from features.rows import ItemError
from features.store import FeatureStore
from features.worker import _extract_chunk

__all__ = ["extract_audio"]


def extract_audio(
    source: str | Path,
    *,
    store: str | FeatureStore,
    dataset: str,
    spec: FeatureSpec,
    test_size: float = 0.2,
    seed: int = 0,
    use_ray: bool = True,
    address: str | None = None,
    progress: bool = True,
    chunk_size: int | None = None,
    dashboard: bool = True,
) -> ExtractionSummary:
    """Extract ``spec``'s features from an audio folder or manifest CSV into the store.

    Only new or changed clips are computed. Each bad file lands in ``_errors.parquet``
    and in the returned summary; the rest are extracted. ``use_ray=False`` runs in this
    process (for debugging and the benchmark's baseline). ``dashboard=False`` starts a
    local Ray without its dashboard (about 2 s sooner here; a sweep run later in the same
    process then has none either); it changes nothing on a running Ray or a cluster.
    """
    check_fraction(test_size)
    started = time.perf_counter()
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    items, errors = discover_audio(source)
    info = {**spec.to_dict(), "param_hash": spec.param_hash, "source": os.fspath(source),
            "source_type": "audio", "test_size": test_size, "split_seed": seed}
    writer = store.writer(dataset, spec.name, info=info, dim=spec.dim)
    summary = ExtractionSummary(store.root, dataset, spec.name, sources=len(items))

    known = writer.fingerprints()
    failed_before = _deterministic_failures(store, dataset, spec.name)
    stats: dict[str, tuple[int, int]] = {}
    todo: list[AudioItem] = []
    for item in items:
        try:
            st = os.stat(item.path)
            unchanged = is_unchanged(item.path, st, known.get(item.source))
        except OSError as exc:
            errors.append(ItemError.from_exception(exc, path=item.path, stage="read"))
            continue
        stats[item.path] = (st.st_size, st.st_mtime_ns)
        if unchanged:
            summary.unchanged += 1
        elif item.path in failed_before and failed_before[item.path][0] == stats[item.path]:
            errors.append(failed_before[item.path][1])  # same bytes fail the same way: not retried
        else:
            todo.append(item)
    splits = splits_for(store, dataset, ((i.group, i.label, i.split) for i in items),
                         test_size=test_size, seed=seed)
    work = [(item, splits[item.group]) for item in todo]

    for result in _run(work, spec, use_ray=use_ray, address=address, progress=progress,
                       chunk_size=chunk_size, dashboard=dashboard):
        if isinstance(result, ItemError):
            errors.append(result)
        else:
            writer.add(result)
            summary.added += 1
    writer.add_errors(errors, stats)
    # the stored rows of unchanged sources follow the manifest's group and that group's split
    align_splits(writer, splits, summary, groups={item.source: item.group for item in items})
    writer.close()
    summary.errors, summary.failed = errors, len(errors)
    summary.clips_total = writer.n_clips
    summary.seconds = time.perf_counter() - started
    return summary


def _deterministic_failures(store: FeatureStore, dataset: str, feature_set: str
                            ) -> dict[str, tuple[tuple[int, int], ItemError]]:
    """path -> ((size, mtime_ns), error) for files that failed to decode or check last time."""
    if not store.has(dataset, feature_set):
        return {}
    table = store.errors(dataset, feature_set)
    table = table[table["stage"].isin(["decode", "check"]) & table["source_size"].notna()]
    return {row.path: ((int(row.source_size), int(row.source_mtime_ns)),
                       ItemError(row.path, row.stage, row.error_type, row.message))
            for row in table.itertuples(index=False)}


class _Plain:
    """The work list when Ray was already running: the `HeadStart` interface, no thread."""

    def __init__(self, work: list) -> None:
        self._left = list(work)

    def take(self, n: int) -> list:
        chunk, self._left = self._left[:n], self._left[n:]
        return chunk

    def stop(self) -> list:
        return []


def _run(work: list[tuple[AudioItem, str]], spec: FeatureSpec, *, use_ray: bool, address: str | None,
         progress: bool, chunk_size: int | None, dashboard: bool = True):
    """Yield each clip's `SourceRows` or `ItemError` as it finishes."""
    from tqdm.auto import tqdm

    if not work:
        return
    bar = tqdm(total=len(work), unit="clip", desc=f"extract {spec.name}", disable=not progress)
    try:
        if not use_ray:  # the same task body, one clip at a time in this process
            for pair in work:
                yield from _extract_chunk([pair], spec)
                bar.update(1)
            return

        import ray

        from seqsweep.ray_runtime import ensure_ray

        head = head_start_if_ray_starts(work, spec)  # the driver extracts while a local Ray starts
        try:
            ensure_ray(address, include_dashboard=dashboard)
        except BaseException:
            if head is not None:
                head.stop()
            raise
        if head is None:
            head = _Plain(work)
        cpus = max(1, int(ray.available_resources().get("CPU", 1)))
        size = chunk_size or max(1, min(8, math.ceil(len(work) / (4 * cpus))))
        task = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(_extract_chunk)
        spec_ref = ray.put(spec)
        pending: dict = {}
        started = 0

        def submit() -> None:  # one more chunk from the list's front, if any is left
            nonlocal started
            chunk = head.take(size)
            if chunk:  # each task named for the dashboard: "extract mfcc27 clips 16-23 of 120"
                name = f"extract {spec.name} clips {started}-{started + len(chunk) - 1} of {len(work)}"
                pending[task.options(name=name).remote(chunk, spec_ref)] = chunk
                started += len(chunk)

        handed = False

        def from_head():  # once: the driver stops extracting and hands over what it has
            # (the list it shared stays: `submit` goes on taking chunks from it)
            nonlocal handed
            if not handed:
                handed, early = True, head.stop()
                bar.update(len(early))
                yield from early

        # two chunks queued per CPU: Ray always has the next one at hand, and the driver's
        # thread keeps taking clips from the same list until Ray's first result arrives
        for _ in range(2 * cpus):
            submit()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            yield from from_head()  # the workers are warm now
            ref = done[0]
            chunk = pending.pop(ref)
            try:
                results = ray.get(ref)
            except Exception as exc:  # the worker died more often than Ray retries
                results = [ItemError.from_exception(exc, path=item.path, stage="worker") for item, _ in chunk]
            yield from results
            bar.update(len(chunk))
            submit()
        yield from from_head()  # the driver's thread took every clip before Ray handed back a chunk
    finally:
        bar.close()

