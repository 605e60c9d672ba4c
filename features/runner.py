"""Fill the store: extract audio (as Ray tasks) or import sequence files.

`extract_audio` plans before it computes: it lists the sources, compares each with the
fingerprint stored beside its rows (size and mtime first, the sha256 of its bytes when
those changed) and only sends new or changed clips to Ray. An unchanged dataset
costs a directory listing and one small Parquet read, and Ray is not even started.

Work is sent as chunks of a few clips per task (one librosa/numba warm-up per worker
process, not per file); the driver writes results as they arrive and commits a part
every ~64 MB, so a killed run keeps what it committed and the next run does the rest.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from features.audio import AudioItem, discover_audio
from features.extract import FeatureSpec
from features.importers import GroupFile, ItemError, Record, format_of, read_source
from features.rows import SourceRows
from features.splits import assign_test_split
from features.store import FeatureSetWriter, FeatureStore
from features.tokens import UNKNOWN_ID, TokenVocab, check_tokens, looks_like_tokens
from features.worker import _extract_chunk
from seqsweep.errors import ConfigError, InputError, SeqsweepError

IMPORT_FORMATS = ("pickle", "ts", "csv")

__all__ = ["ExtractionSummary", "extract_audio", "import_files"]


@dataclass
class ExtractionSummary:
    """What one `extract_audio` / `import_files` call did."""

    store: str
    dataset: str
    feature_set: str
    sources: int = 0  # sources found
    unchanged: int = 0  # skipped: same bytes, same parameters
    added: int = 0  # sources extracted or imported in this run
    failed: int = 0
    clips_total: int = 0  # rows in the feature set after the run
    seconds: float = 0.0
    errors: list[ItemError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth a line (an import's vocabulary)

    def __str__(self) -> str:
        text = (f"{self.dataset}/{self.feature_set}: {self.sources} sources, {self.added} extracted, "
                f"{self.unchanged} unchanged, {self.failed} failed; {self.clips_total} clips in the store "
                f"({self.seconds:.1f} s)")
        text += "".join(f"\n{note}" for note in self.notes)
        if self.errors:
            shown = "\n".join(f"  {e.path} [{e.stage}] {e.error_type}: {e.message}" for e in self.errors[:10])
            more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
            text += f"\nfailed (see {self.feature_set}/_errors.parquet):\n{shown}{more}"
        return text


# ---- planning ------------------------------------------------------------------------------
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_unchanged(path: str, st: os.stat_result, known: tuple[int, int, str] | None) -> bool:
    """Same size and mtime as stored, or (when those moved) the same bytes."""
    if known is None:
        return False
    if (st.st_size, st.st_mtime_ns) == known[:2]:
        return True
    return st.st_size == known[0] and _file_sha256(path) == known[2]


def _splits_for(store: FeatureStore, dataset: str, entries: Iterable[tuple[str, str, str | None]],
                *, test_size: float, seed: int) -> dict[str, str]:
    """group -> split for every (group, label, own split) given; records new groups.

    A split the source names (a manifest column, a TRAIN/TEST file) wins; otherwise a
    group keeps the split it was first given; new groups are split stratified by label.
    """
    existing = store.splits(dataset)
    own: dict[str, tuple[str, str]] = {}
    fresh: dict[str, str] = {}
    for group, label, split in entries:
        if split is not None:
            if existing.get(group) != split:
                own[group] = (label, split)
        elif group not in existing:
            fresh.setdefault(group, label)
    assigned = assign_test_split(fresh, test_size=test_size, seed=seed)
    record = {**own, **{g: (fresh[g], s) for g, s in assigned.items()}}
    store.add_splits(dataset, record)
    return {**existing, **{g: s for g, (_, s) in record.items()}}


def _check_fraction(test_size: float) -> None:
    if not 0.0 < test_size < 1.0:
        raise ConfigError("test_size", "must be a fraction strictly between 0 and 1", test_size)


# ---- audio extraction ------------------------------------------------------------------------
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
) -> ExtractionSummary:
    """Extract ``spec``'s features from an audio folder or manifest CSV into the store.

    Only new or changed clips are computed. Each bad file lands in ``_errors.parquet``
    and in the returned summary; the rest are extracted. ``use_ray=False`` runs in this
    process (for debugging and the benchmark's baseline).
    """
    _check_fraction(test_size)
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
            unchanged = _is_unchanged(item.path, st, known.get(item.source))
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
    splits = _splits_for(store, dataset, ((i.group, i.label, i.split) for i in items),
                         test_size=test_size, seed=seed)
    work = [(item, splits[item.group]) for item in todo]

    for result in _run(work, spec, use_ray=use_ray, address=address, progress=progress,
                       chunk_size=chunk_size):
        if isinstance(result, ItemError):
            errors.append(result)
        else:
            writer.add(result)
            summary.added += 1
    writer.add_errors(errors, stats)
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


def _chunks(work: Sequence, size: int) -> list:
    return [work[i:i + size] for i in range(0, len(work), size)]


def _run(work: list[tuple[AudioItem, str]], spec: FeatureSpec, *, use_ray: bool, address: str | None,
         progress: bool, chunk_size: int | None):
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

        ensure_ray(address)
        cpus = max(1, int(ray.available_resources().get("CPU", 1)))
        size = chunk_size or max(1, min(8, math.ceil(len(work) / (4 * cpus))))
        task = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(_extract_chunk)
        spec_ref = ray.put(spec)
        pending = {task.remote(chunk, spec_ref): chunk for chunk in _chunks(work, size)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            chunk = pending.pop(ref)
            try:
                results = ray.get(ref)
            except Exception as exc:  # the worker died more often than Ray retries
                results = [ItemError.from_exception(exc, path=item.path, stage="worker") for item, _ in chunk]
            yield from results
            bar.update(len(chunk))
    finally:
        bar.close()


# ---- imports --------------------------------------------------------------------------------
_Loaded = tuple[Path, os.stat_result, str, list[Record]]
"""One imported source: its path, stat, fingerprint hash and good records."""

def _import_info(*, feature_set: str, format: str | None, sources: list[str], tokens: bool,
                 test_size: float, seed: int) -> dict:
    """The writer's ``info`` for an imported feature set; a token set hashes apart, so one
    feature set never mixes token ids with numbers."""
    params: dict = {"format": format or "auto"}
    if tokens:
        params["tokens"] = True
    return {"kind": feature_set, "params": params, "beat_sync": False, "segment_seconds": None,
            "param_hash": f"import:{feature_set}" + (":tokens" if tokens else ""), "source_type": "import",
            "source": sources, "test_size": test_size, "split_seed": seed}


def _group_files(files: Sequence[Path], groups: Sequence[str | Path] | None) -> list[GroupFile | None]:
    """One `GroupFile` (or None) per source file, read up front (a missing one fails here)."""
    if not groups:
        return [None] * len(files)
    if len(groups) != len(files):
        raise ConfigError("--groups", f"needs one groups file per source file ({len(files)}), in the same order",
                          f"{len(groups)} groups files")
    return [GroupFile.read(g) for g in groups]


def _reader_options(path: Path, fmt: str, *, group_column: str | None,
                    group_file: GroupFile | None) -> dict:
    """The reader keywords the import options mean for one file of format ``fmt``."""
    if fmt == "csv":
        if group_file is not None:
            raise ConfigError(f"--groups {group_file.path}", "groups files are for pickle and .ts sources; "
                              "a CSV names its group column (--group-column)", str(path))
        return {"group_column": group_column}
    if group_column is not None:
        raise ConfigError("--group-column", "is for CSV sources; pickle and .ts sources take --groups FILE",
                          str(path))
    return {"groups": group_file}


def _import_hash(path: Path, options: dict) -> str:
    """The source's sha256, folded with the group options that shape its rows, so a new
    groups file or group column re-imports an unchanged source."""
    sha = _file_sha256(str(path))
    shaping = []
    if options.get("group_column") is not None:
        shaping.append(f"group_column={options['group_column']}")
    if options.get("groups") is not None:
        shaping.append("groups=" + hashlib.sha256("\n".join(options["groups"].groups).encode()).hexdigest())
    if not shaping:
        return sha
    return hashlib.sha256("|".join([sha, *shaping]).encode()).hexdigest()


def _token_records(fresh: list[_Loaded], errors: list[ItemError]) -> list[_Loaded]:
    """``fresh`` without the records that cannot be token ids (each one an error)."""
    out = []
    for f, st, sha, records in fresh:
        kept = []
        for r in records:
            where = f"{f} [{r.clip_id}]"
            try:
                check_tokens(r.frames, where=where)
            except InputError as exc:
                errors.append(ItemError.from_exception(exc, path=where, stage="check"))
                continue
            kept.append(r)
        if kept:
            out.append((f, st, sha, kept))
    return out


def _encode_tokens(writer: FeatureSetWriter, fresh: list[_Loaded], splits: dict[str, str],
                   summary: ExtractionSummary) -> list[_Loaded]:
    """Grow the writer's vocabulary with the train records' values, record it in its manifest
    (before any part is written), and return ``fresh`` with every record's frames as ids."""
    entry = writer.manifest.get("tokens")
    old = TokenVocab.from_manifest(entry) if entry is not None else TokenVocab()
    train = [r.frames for *_, recs in fresh for r in recs if splits[r.group] == "train"]
    vocab = old.extended(np.unique(np.concatenate(train)) if train else [])
    writer.manifest["tokens"] = vocab.to_manifest()
    encoded = [(f, st, sha, [replace(r, frames=vocab.encode(r.frames)) for r in recs]) for f, st, sha, recs in fresh]
    unknown = sum(int((r.frames == UNKNOWN_ID).sum()) for *_, recs in encoded for r in recs)
    total = sum(r.n_frames for *_, recs in encoded for r in recs)
    summary.notes.append(f"tokens: {vocab.vocab_size} ids ({vocab.vocab_size - 1} values seen in the train split "
                         f"+ unknown id {UNKNOWN_ID}); {unknown} of {total} imported steps are unknown")
    if vocab.vocab_size > old.vocab_size and writer.n_clips:
        summary.notes.append(f"tokens: the vocabulary grew from {old.vocab_size} to {vocab.vocab_size} ids; rows "
                             "imported before keep their ids (import train and test files together)")
    return encoded


def import_files(
    files: Sequence[str | Path],
    *,
    store: str | FeatureStore,
    dataset: str,
    format: str | None = None,
    feature_set: str = "raw",
    test_size: float = 0.2,
    seed: int = 0,
    tokens: bool | None = None,
    group_column: str | None = None,
    groups: Sequence[str | Path] | None = None,
) -> ExtractionSummary:
    """Import pickled, ``.ts`` or tabular CSV sequences into ``<dataset>/<feature_set>``.

    A file whose bytes (and group options) are unchanged since it was imported is skipped;
    a changed one replaces its rows. Each bad item is reported and the rest are kept.

    Parameters
    ----------
    files : the sources (format from ``format`` or each file's extension).
    tokens : store the values as token ids (`features.tokens`): True forces it (a value
        that is not a whole number, or D > 1, is an item error), False stores numbers,
        None guesses: a new feature set is tokens when every imported sequence has one
        whole number per step; an existing one keeps what it is.
    group_column : for CSV sources, the column of groups (see `features.importers.read_table`;
        without it a GTZAN-style ``filename`` column gives the track).
    groups : for pickle and ``.ts`` sources, one groups file per source, in the same order
        (`features.importers.GroupFile`: one group per line, one line per item).

    Raises
    ------
    ConfigError : a bad ``test_size`` or ``format``, ``groups`` not one per file, a group
        option for the other kind of source.
    InputError : a missing groups file, or nothing readable at all.
    StoreError : ``tokens`` contradicts an existing feature set.
    """
    _check_fraction(test_size)
    if format is not None and format not in IMPORT_FORMATS:
        raise ConfigError("format", f"must be one of {list(IMPORT_FORMATS)}", format)
    started = time.perf_counter()
    files = [Path(f) for f in files]
    group_files = _group_files(files, groups)
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    existing = store.manifest(dataset, feature_set) if store.has(dataset, feature_set) else None
    sources = sorted(set(existing.get("source", []) if existing else []) | {str(f) for f in files})

    def info(is_tokens: bool) -> dict:
        return _import_info(feature_set=feature_set, format=format, sources=sources, tokens=is_tokens,
                            test_size=test_size, seed=seed)

    # an existing feature set fixes D, tokens or not, and knows its files: unchanged ones are not parsed again
    writer = None
    if existing:
        tokens = ("tokens" in existing) if tokens is None else tokens
        writer = store.writer(dataset, feature_set, info=info(tokens), dim=existing["dim"])
    known = writer.fingerprints() if writer else {}
    summary = ExtractionSummary(store.root, dataset, feature_set, sources=len(files))
    errors: list[ItemError] = []
    loaded: list[_Loaded] = []
    for f, group_file in zip(files, group_files):
        try:
            fmt = format_of(f, format=format)
        except ConfigError as exc:  # this file only: the others are still imported
            errors.append(ItemError.from_exception(exc, path=str(f), stage="read"))
            continue
        options = _reader_options(f, fmt, group_column=group_column, group_file=group_file)
        try:
            st = f.stat()
            sha = _import_hash(f, options)
            if known.get(f.name, (None, None, None))[2] == sha:
                summary.unchanged += 1
                continue
            result = read_source(f, format=fmt, **options)
        except (OSError, SeqsweepError) as exc:
            errors.append(ItemError.from_exception(exc, path=str(f), stage="read"))
            continue
        errors.extend(result.errors)
        if result.records:
            loaded.append((f, st, sha, result.records))

    if writer is None:
        dims = {r.frames.shape[1] for _, _, _, recs in loaded for r in recs}
        if not dims:
            raise InputError(", ".join(map(str, files)), "at least one sequence must be readable",
                             f"{len(errors)} errors: " + "; ".join(f"{e.path}: {e.message}" for e in errors[:3]))
        if tokens is None:
            tokens = looks_like_tokens(r.frames for *_, recs in loaded for r in recs)
        writer = store.writer(dataset, feature_set, info=info(tokens), dim=min(dims))
    dim = writer.dim

    fresh = []
    for f, st, sha, records in loaded:
        bad = {r.frames.shape[1] for r in records} - {dim}
        if bad:
            errors.append(ItemError(str(f), "check", "InputError",
                                    f"every sequence of feature set {feature_set!r} must have D={dim} values "
                                    f"per frame (got D={sorted(bad)})"))
        else:
            fresh.append((f, st, sha, records))
    if tokens:
        fresh = _token_records(fresh, errors)
    splits = _splits_for(store, dataset, ((r.group, r.label, r.split) for *_, recs in fresh for r in recs),
                         test_size=test_size, seed=seed)
    if tokens:
        fresh = _encode_tokens(writer, fresh, splits, summary)
    for f, st, sha, records in fresh:
        writer.add(SourceRows(
            f.name, st.st_size, st.st_mtime_ns, sha,
            clip_ids=[r.clip_id for r in records], groups=[r.group for r in records],
            labels=[r.label for r in records], splits=[splits[r.group] for r in records],
            frames=[r.frames for r in records]))
        summary.added += 1
    writer.manifest["source"] = sources  # an existing manifest keeps its info otherwise
    writer.add_errors(errors)
    writer.close()
    summary.errors, summary.failed = errors, len(errors)
    summary.clips_total = writer.n_clips
    summary.seconds = time.perf_counter() - started
    return summary
