"""The Parquet feature store: where extracted and imported sequences live.

Layout under a root (a local path, or any URI `pyarrow.fs` opens: ``s3://``, ``gs://``)::

    <root>/<dataset>/_splits.parquet                 group -> train/test, made once
    <root>/<dataset>/<feature_set>/_manifest.json    the commit point (see below)
    <root>/<dataset>/<feature_set>/_errors.parquet   files that failed, with stage and message
    <root>/<dataset>/<feature_set>/part-*.parquet    rows, one per clip

Rows: ``clip_id, group, label, split, n_frames, features`` where ``features`` is
``list<fixed_size_list<float32, D>>`` (T frames of D values), plus the source's
fingerprint (``source, source_size, source_mtime_ns, source_hash``) that makes
re-extraction incremental.

A token feature set (imported chord ids and the like, `features.tokens`) stores dense ids
in ``features`` and its vocabulary in the manifest (``tokens``: ``vocab_size``,
``unknown_id``, ``id_to_value``); `FeatureStore.load` sets ``SequenceSet.vocab_size``.

Every file is written under a temporary name and renamed into place. The manifest
lists the part files that hold data: a reader reads only those, so a part written by
an extraction killed before its manifest was renamed is never taken as data (and is
removed by the next writer).
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from features.importers import ItemError
from features.rows import SourceRows
from features.sequences import SequenceSet
from features.tokens import TokenVocab
from seqsweep import storage
from seqsweep.errors import StoreError

__all__ = ["FeatureStore", "FeatureSetWriter", "SourceRows", "row_schema", "MANIFEST", "ERRORS", "SPLITS"]

MANIFEST = "_manifest.json"
ERRORS = "_errors.parquet"
SPLITS = "_splits.parquet"
FORMAT_VERSION = 1
_SOURCE_COLUMNS = ["source", "source_size", "source_mtime_ns", "source_hash"]
_LIGHT_COLUMNS = ["clip_id", "group", "label", "split", "n_frames", *_SOURCE_COLUMNS]
_ERROR_SCHEMA = pa.schema([("path", pa.string()), ("stage", pa.string()),
                           ("error_type", pa.string()), ("message", pa.string()),
                           ("source_size", pa.int64()), ("source_mtime_ns", pa.int64())])
_SPLIT_SCHEMA = pa.schema([("group", pa.string()), ("label", pa.string()), ("split", pa.string())])


def row_schema(dim: int) -> pa.Schema:
    """The schema of a feature set's rows with D = ``dim``."""
    return pa.schema([
        ("clip_id", pa.string()), ("group", pa.string()), ("label", pa.string()),
        ("split", pa.string()), ("n_frames", pa.int32()),
        ("features", pa.list_(pa.list_(pa.float32(), dim))),
        ("source", pa.string()), ("source_size", pa.int64()),
        ("source_mtime_ns", pa.int64()), ("source_hash", pa.string()),
    ])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FeatureStore:
    """A feature store root: read feature sets, and open writers on them."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = os.fspath(root)
        self.fs, self._base = storage.filesystem(root)

    def __repr__(self) -> str:
        return f"FeatureStore({self.root!r})"

    # ---- paths and small I/O ---------------------------------------------------------
    def path(self, *parts: str) -> str:
        return str(PurePosixPath(self._base, *parts)) if "://" in self.root else os.path.join(self._base, *parts)

    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def _listdir(self, path: str) -> list[pafs.FileInfo]:
        if not self._exists(path):
            return []
        return self.fs.get_file_info(pafs.FileSelector(path))

    def write_atomic(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` (in this store's filesystem) atomically."""
        storage.write_atomic(self.fs, path, data)

    def write_table_atomic(self, path: str, table: pa.Table) -> None:
        # float features barely compress (zstd saved 11% on mfcc27) and decoding them cost
        # 60% more read time, so they are stored plain; the small columns get zstd
        compression = {name: ("none" if name == "features" else "zstd") for name in table.column_names}
        sink = io.BytesIO()
        pq.write_table(table, sink, compression=compression)
        self.write_atomic(path, sink.getvalue())

    # ---- what is there ---------------------------------------------------------------
    def datasets(self) -> list[str]:
        return sorted(i.base_name for i in self._listdir(self._base)
                      if i.type == pafs.FileType.Directory and not i.base_name.startswith((".", "_")))

    def feature_sets(self, dataset: str) -> list[str]:
        return sorted(i.base_name for i in self._listdir(self.path(dataset))
                      if i.type == pafs.FileType.Directory
                      and self._exists(self.path(dataset, i.base_name, MANIFEST)))

    def has(self, dataset: str, feature_set: str) -> bool:
        return self._exists(self.path(dataset, feature_set, MANIFEST))

    def manifest(self, dataset: str, feature_set: str) -> dict[str, Any]:
        """The feature set's `_manifest.json`; `StoreError` lists what exists if it is missing."""
        path = self.path(dataset, feature_set, MANIFEST)
        if not self._exists(path):
            if dataset not in self.datasets():
                raise StoreError(f"dataset {dataset!r}", f"must be one of {self.datasets()} in {self.root}",
                                 dataset)
            raise StoreError(f"feature set {feature_set!r}",
                             f"must be one of {self.feature_sets(dataset)} in dataset {dataset!r}", feature_set)
        with self.fs.open_input_stream(path) as fh:
            return json.loads(fh.read())

    def vocab(self, dataset: str, feature_set: str, *, manifest: dict[str, Any] | None = None
              ) -> TokenVocab | None:
        """The id map of a token feature set (`features.tokens`); None for real-valued frames."""
        manifest = self.manifest(dataset, feature_set) if manifest is None else manifest
        entry = manifest.get("tokens")
        if entry is None:
            return None
        return TokenVocab.from_manifest(entry, where=f"{self.path(dataset, feature_set, MANIFEST)}: tokens")

    def splits(self, dataset: str) -> dict[str, str]:
        """group -> ``train``/``test`` for every group the dataset has seen."""
        path = self.path(dataset, SPLITS)
        if not self._exists(path):
            return {}
        table = pq.read_table(path, filesystem=self.fs)
        return dict(zip(table["group"].to_pylist(), table["split"].to_pylist()))

    def add_splits(self, dataset: str, assigned: dict[str, tuple[str, str]]) -> None:
        """Record ``group -> (label, split)`` for new groups; an existing group keeps its split
        unless the source itself names a different one (the caller decides)."""
        if not assigned:
            return
        path = self.path(dataset, SPLITS)
        old = pq.read_table(path, filesystem=self.fs).to_pandas() if self._exists(path) else None
        new = pd.DataFrame([(g, lab, s) for g, (lab, s) in assigned.items()], columns=["group", "label", "split"])
        both = new if old is None else pd.concat([old[~old["group"].isin(new["group"])], new])
        both = both.sort_values("group", kind="stable")
        self.write_table_atomic(path, pa.Table.from_pandas(both, schema=_SPLIT_SCHEMA, preserve_index=False))

    def errors(self, dataset: str, feature_set: str) -> pd.DataFrame:
        """The last extraction's failures: ``path, stage, error_type, message`` and, for a
        file that was read, its ``source_size`` and ``source_mtime_ns`` when it failed."""
        path = self.path(dataset, feature_set, ERRORS)
        table = pq.read_table(path, filesystem=self.fs) if self._exists(path) else _ERROR_SCHEMA.empty_table()
        return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)  # exact ns, nullable

    # ---- reading rows ----------------------------------------------------------------
    def _part_paths(self, dataset: str, feature_set: str, manifest: dict[str, Any]) -> list[str]:
        return [self.path(dataset, feature_set, p) for p in manifest["parts"]]

    def read_rows(
        self,
        dataset: str,
        feature_set: str,
        *,
        columns: list[str] | None = None,
        filter: pc.Expression | None = None,
    ) -> pa.Table:
        """The committed rows (only the parts the manifest lists), projected and filtered."""
        manifest = self.manifest(dataset, feature_set)
        schema = row_schema(manifest["dim"])
        paths = self._part_paths(dataset, feature_set, manifest)
        if not paths:
            table = schema.empty_table()
            return table.select(columns) if columns else table
        data = pads.dataset(paths, schema=schema, format="parquet", filesystem=self.fs)
        return data.to_table(columns=columns, filter=filter)

    def load(
        self,
        dataset: str,
        feature_set: str,
        *,
        split: str | None = None,
        labels: Iterable[str] | None = None,
        padded: bool = False,
        min_per_class: int | None = None,
    ) -> SequenceSet:
        """Load a feature set as a `SequenceSet`.

        Parameters
        ----------
        split : ``"train"``, ``"test"`` or None for both.
        labels : keep only these classes (``classes`` is then these, sorted).
        padded : ``x`` as ``float32[N, T_max, D]`` with ``lengths``; else a list of
            ``float32[T_i, D]`` views straight onto the Arrow buffer (no copy).

        A token feature set (its manifest has ``tokens``) gives a set whose ``vocab_size``
        is the vocabulary's and whose frames are the stored ids (`features.tokens`).
        min_per_class : raise `InputError` naming a class with fewer clips (distinct
            groups) than this, e.g. the number of cross-validation folds.
        """
        manifest = self.manifest(dataset, feature_set)
        classes = list(manifest["classes"])
        expr = None
        if split is not None:
            if split not in ("train", "test"):
                raise StoreError("split", "must be 'train', 'test' or None", split)
            expr = pc.field("split") == split
        if labels is not None:
            wanted = sorted(set(labels))
            unknown = sorted(set(wanted) - set(classes))
            if unknown:
                raise StoreError("labels", f"must be among the classes {classes}", unknown)
            classes = wanted
            cond = pc.field("label").isin(wanted)
            expr = cond if expr is None else expr & cond
        table = self.read_rows(dataset, feature_set,
                               columns=["clip_id", "group", "label", "n_frames", "features"], filter=expr)
        # rows in clip_id order, whatever order the parts were written in: the order is
        # computed on the ids alone and applied to the frames by offset (no copy of them)
        order = pc.sort_indices(table["clip_id"]).to_numpy()
        dim = int(manifest["dim"])
        file_lengths = table["n_frames"].to_numpy().astype(np.int64)
        starts = (np.cumsum(file_lengths) - file_lengths)[order]
        lengths = file_lengths[order]
        frames = _frames_view(table["features"], dim)
        index = {name: i for i, name in enumerate(classes)}
        labels = table["label"].to_numpy(zero_copy_only=False)[order]
        y = np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(table))
        groups = table["group"].to_numpy(zero_copy_only=False)[order].astype(object)
        clip_ids = table["clip_id"].to_numpy(zero_copy_only=False)[order].astype(object)
        if padded:
            x = _scatter_padded(frames, starts, lengths, dim)
        else:
            x = [frames[a:a + t] for a, t in zip(starts.tolist(), lengths.tolist())]
        vocab = self.vocab(dataset, feature_set, manifest=manifest)
        out = SequenceSet(x, y, classes, groups, clip_ids, lengths, None if vocab is None else vocab.vocab_size)
        if min_per_class is not None:
            out.check_min_per_class(min_per_class)
        return out

    # ---- writing -----------------------------------------------------------------------
    def writer(self, dataset: str, feature_set: str, *, info: dict[str, Any], dim: int) -> FeatureSetWriter:
        """Open ``<dataset>/<feature_set>`` for adding rows; see `FeatureSetWriter`."""
        return FeatureSetWriter(self, dataset, feature_set, info=info, dim=dim)


def _frames_view(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    """All frames of a ``list<fixed_size_list<float32, D>>`` column as ``float32[sum T, D]``.

    Zero-copy when the column is one chunk without nulls (one read of one part);
    otherwise the chunks are concatenated once.
    """
    chunks = [c.flatten().flatten() for c in column.chunks]  # honours each chunk's slice offset
    if not chunks:
        return np.zeros((0, dim), dtype=np.float32)
    flat = chunks[0].to_numpy(zero_copy_only=True) if len(chunks) == 1 else np.concatenate(
        [c.to_numpy(zero_copy_only=True) for c in chunks])
    return flat.reshape(-1, dim)


def _scatter_padded(frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray, dim: int) -> np.ndarray:
    """Zeros ``float32[N, T_max, D]`` with row i = ``frames[starts[i]:starts[i] + lengths[i]]``:
    one contiguous block copy per sequence (measured 10x faster here than one fancy-indexed
    scatter of every frame)."""
    n = len(lengths)
    out = np.zeros((n, int(lengths.max()) if n else 0, dim), dtype=np.float32)
    for i, (a, t) in enumerate(zip(starts.tolist(), lengths.tolist())):
        out[i, :t] = frames[a:a + t]
    return out


def _rows_table(batch: list[SourceRows], dim: int) -> pa.Table:
    """Arrow rows for a batch of sources, frames packed once into one float32 buffer."""
    n_frames = [len(f) for item in batch for f in item.frames]
    flat = [f.reshape(-1) for item in batch for f in item.frames]
    values = pa.array(np.concatenate(flat) if flat else np.zeros(0, np.float32), type=pa.float32())
    offsets = pa.array(np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int32))
    features = pa.ListArray.from_arrays(offsets, pa.FixedSizeListArray.from_arrays(values, dim),
                                        type=pa.list_(pa.list_(pa.float32(), dim)))

    def per_row(attr: str) -> list:
        return [v for item in batch for v in getattr(item, attr)]

    def per_source(attr: str) -> list:
        return [getattr(item, attr) for item in batch for _ in item.frames]

    return pa.Table.from_arrays(
        [pa.array(per_row("clip_ids"), pa.string()), pa.array(per_row("groups"), pa.string()),
         pa.array(per_row("labels"), pa.string()), pa.array(per_row("splits"), pa.string()),
         pa.array(n_frames, pa.int32()), features,
         pa.array(per_source("source"), pa.string()), pa.array(per_source("size"), pa.int64()),
         pa.array(per_source("mtime_ns"), pa.int64()), pa.array(per_source("sha256"), pa.string())],
        schema=row_schema(dim),
    )


class FeatureSetWriter:
    """Adds rows to one feature set, incrementally and atomically.

    ``info`` describes the feature set (kind, params, ``param_hash``, the source):
    opening an existing feature set made with a different ``param_hash`` is refused.

    Use: `fingerprint` says what a source looked like when it was extracted; `add`
    buffers what a source produced (replacing the rows of an earlier version of that
    source); `add_errors` records failures; `commit` writes the buffered rows as a new
    part and then the manifest (the commit point); `close` commits and writes
    `_errors.parquet`.
    """

    #: buffered float32 values that trigger a commit (~64 MB)
    COMMIT_VALUES = 16_000_000

    def __init__(self, store: FeatureStore, dataset: str, feature_set: str, *, info: dict[str, Any], dim: int):
        self.store, self.dataset, self.feature_set, self.dim = store, dataset, feature_set, int(dim)
        self.info = dict(info)
        self._dir = store.path(dataset, feature_set)
        self._buffer: list[SourceRows] = []
        self._buffered_values = 0
        self._replace: set[str] = set()
        self.errors: list[ItemError] = []
        self._error_stats: dict[str, tuple[int, int]] = {}
        if store.has(dataset, feature_set):
            self.manifest = store.manifest(dataset, feature_set)
            if self.manifest["param_hash"] != info["param_hash"] or self.manifest["dim"] != self.dim:
                raise StoreError(
                    f"{store.path(dataset, feature_set)}",
                    "an existing feature set is only extended with the same parameters; "
                    "changed parameters make a new feature set (another name)",
                    f"stored {self.manifest['kind']} {self.manifest['params']}, asked {info.get('params')}",
                )
            light = store.read_rows(dataset, feature_set, columns=_LIGHT_COLUMNS).to_pandas()
        else:
            self.manifest = {"format": FORMAT_VERSION, "dataset": dataset, "feature_set": feature_set,
                             **self.info, "dim": self.dim, "parts": [], "created": _now()}
            light = pd.DataFrame(columns=_LIGHT_COLUMNS)
        self._rows = light  # the committed rows' light columns: what counts and planning read
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Delete part files and temporaries no manifest lists (left by a killed writer)."""
        listed = set(self.manifest["parts"])
        for info in self.store._listdir(self._dir):
            name = info.base_name
            if (name.startswith("part-") and name not in listed) or ".tmp-" in name:
                self.store.fs.delete_file(info.path)

    # ---- what is already there ---------------------------------------------------------
    def fingerprints(self) -> dict[str, tuple[int, int, str]]:
        """source -> (size, mtime_ns, sha256) of every committed source."""
        first = self._rows.drop_duplicates("source")
        return {s: (int(z), int(m), h) for s, z, m, h in
                zip(first["source"], first["source_size"], first["source_mtime_ns"], first["source_hash"])}

    # ---- adding ------------------------------------------------------------------------
    def add(self, rows: SourceRows) -> None:
        for f in rows.frames:
            if f.ndim != 2 or f.shape[1] != self.dim or len(f) < 1:
                raise StoreError(f"{rows.source}", f"frames must have shape (T >= 1, {self.dim})", f.shape)
        self._replace.add(rows.source)
        self._buffer.append(rows)
        self._buffered_values += sum(f.size for f in rows.frames)
        if self._buffered_values >= self.COMMIT_VALUES:
            self.commit()

    def add_errors(self, errors: Iterable[ItemError],
                   stats: dict[str, tuple[int, int]] | None = None) -> None:
        """Record failures; ``stats`` maps a failed file's path to its (size, mtime_ns) so a
        later run can tell it has not changed."""
        self.errors.extend(errors)
        self._error_stats.update(stats or {})

    def commit(self) -> None:
        """Write the buffered rows as one new part, then the manifest that lists it."""
        if not self._buffer:
            return
        parts = list(self.manifest["parts"])
        stale = self._rows["source"].isin(self._replace)
        if stale.any():
            parts = self._rewrite_without(parts, self._replace)
            self._rows = self._rows[~stale]
        table = _rows_table(self._buffer, self.dim)
        name = f"part-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        self.store.write_table_atomic(self.store.path(self.dataset, self.feature_set, name), table)
        parts.append(name)
        self._rows = pd.concat([self._rows, table.select(_LIGHT_COLUMNS).to_pandas()], ignore_index=True)
        self._buffer, self._buffered_values, self._replace = [], 0, set()
        old_parts = set(self.manifest["parts"])
        self._write_manifest(parts)
        for gone in old_parts - set(parts):
            self.store.fs.delete_file(self.store.path(self.dataset, self.feature_set, gone))

    def _rewrite_without(self, parts: list[str], sources: set[str]) -> list[str]:
        """Copies of the parts that hold rows of ``sources``, without those rows."""
        kept = []
        for part in parts:
            path = self.store.path(self.dataset, self.feature_set, part)
            table = pq.read_table(path, filesystem=self.store.fs)
            mask = pc.is_in(table["source"], pa.array(sorted(sources), pa.string()))
            if not pc.any(mask).as_py():
                kept.append(part)
                continue
            remaining = table.filter(pc.invert(mask))
            if len(remaining):
                name = f"part-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
                self.store.write_table_atomic(self.store.path(self.dataset, self.feature_set, name), remaining)
                kept.append(name)
        return kept

    def _write_manifest(self, parts: list[str]) -> None:
        rows = self._rows
        counts: dict[str, dict[str, int]] = {}
        for (split, label), n in rows.groupby(["split", "label"]).size().items():
            counts.setdefault(split, {})[label] = int(n)
        self.manifest.update(
            parts=parts,
            classes=sorted(rows["label"].unique().tolist()),
            counts=counts,
            n_clips=int(len(rows)),
            n_sources=int(rows["source"].nunique()),
            n_frames=int(rows["n_frames"].sum()),
            n_errors=len(self.errors),
            versions=_versions(),
            updated=_now(),
        )
        self.store.write_atomic(self.store.path(self.dataset, self.feature_set, MANIFEST),
                                json.dumps(self.manifest, indent=2, sort_keys=True).encode())

    def close(self) -> None:
        """Commit what is buffered and write this run's errors (an empty table if none)."""
        self.commit()
        self._write_manifest(list(self.manifest["parts"]))
        none = (None, None)
        table = pa.Table.from_pylist(
            [{"path": e.path, "stage": e.stage, "error_type": e.error_type, "message": e.message,
              "source_size": self._error_stats.get(e.path, none)[0],
              "source_mtime_ns": self._error_stats.get(e.path, none)[1]} for e in self.errors],
            schema=_ERROR_SCHEMA)
        self.store.write_table_atomic(self.store.path(self.dataset, self.feature_set, ERRORS), table)

    @property
    def n_clips(self) -> int:
        return int(len(self._rows))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("seqsweep", "librosa", "numpy", "pyarrow", "soundfile"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out
