"""`FeatureStore`: a store root, and everything read from it (manifests, splits, rows).

Writing rows goes through `FeatureStore.writer` (`features.store.writer`); the small
files a store owns outright (the dataset's ``_splits.parquet``) are written here.
Every write is atomic through `seqsweep.storage.write_atomic`.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from features.sequences import SequenceIndex, SequenceSet
from features.store.schema import (
    ERROR_SCHEMA,
    ERRORS,
    MANIFEST,
    SPLIT_SCHEMA,
    SPLITS,
    frame_chunks,
    frames_column,
    part_format,
    stored_schema,
)
from features.store.writer import FeatureSetWriter
from features.tokens import TokenVocab
from seqsweep import storage
from seqsweep.errors import StoreError

__all__ = ["FeatureStore"]


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
        # 60% more read time, so they are stored plain, with neither a dictionary nor min/max
        # statistics (of no use on frames' bytes); the small columns get zstd
        light = [name for name in table.column_names if name != "features"]
        compression = {name: ("none" if name == "features" else "zstd") for name in table.column_names}
        sink = io.BytesIO()
        pq.write_table(table, sink, compression=compression, use_dictionary=light, write_statistics=light)
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
        self.write_table_atomic(path, pa.Table.from_pandas(both, schema=SPLIT_SCHEMA, preserve_index=False))

    def errors(self, dataset: str, feature_set: str) -> pd.DataFrame:
        """The last extraction's failures: ``path, stage, error_type, message`` and, for a
        file that was read, its ``source_size`` and ``source_mtime_ns`` when it failed."""
        path = self.path(dataset, feature_set, ERRORS)
        table = pq.read_table(path, filesystem=self.fs) if self._exists(path) else ERROR_SCHEMA.empty_table()
        return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)  # exact ns, nullable

    # ---- reading rows ----------------------------------------------------------------
    def _part_paths(self, dataset: str, feature_set: str, manifest: dict[str, Any]) -> list[str]:
        return [self.path(dataset, feature_set, p) for p in manifest["parts"]]

    def _stored_datasets(self, dataset: str, feature_set: str, manifest: dict[str, Any]
                         ) -> list[pads.FileSystemDataset]:
        """The committed parts as datasets, one per part format present (format 1 and 2
        parts are both there when a format-1 feature set was extended); none when empty."""
        dim = int(manifest["dim"])
        paths = self._part_paths(dataset, feature_set, manifest)
        if not paths:
            return []
        found = pads.dataset(paths, format="parquet", filesystem=self.fs)
        by_format: dict[int, list[pads.Fragment]] = {}
        for fragment in found.get_fragments():
            physical = fragment.physical_schema
            if physical.get_field_index("features") < 0:
                raise StoreError(fragment.path, "a part file must have a 'features' column", physical.names)
            by_format.setdefault(part_format(physical.field("features").type), []).append(fragment)
        return [pads.FileSystemDataset(fragments, stored_schema(dim, format=version), found.format,
                                       filesystem=self.fs) for version, fragments in sorted(by_format.items())]

    def _read_stored(self, dataset: str, feature_set: str, manifest: dict[str, Any], *,
                     columns: list[str] | None, filter: pc.Expression | None) -> list[pa.Table]:
        """The committed rows as their parts store them: one table per part format present."""
        found = self._stored_datasets(dataset, feature_set, manifest)
        if not found:
            table = stored_schema(int(manifest["dim"])).empty_table()
            return [table.select(columns) if columns else table]
        return [d.to_table(columns=columns, filter=filter) for d in found]

    def scan_stored(self, dataset: str, feature_set: str, manifest: dict[str, Any], *, columns: list[str],
                    split: str | None = None, labels: Iterable[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The committed rows of ``split`` and ``labels`` (as `load` selects them) one record
        batch at a time, as their parts store them (``features`` of either format, see
        `features.store.schema.frame_chunks`): memory holds one batch, not the feature set."""
        expr, _ = _selection(manifest, split, labels)
        for found in self._stored_datasets(dataset, feature_set, manifest):
            yield from found.to_batches(columns=columns, filter=expr)

    def sequences_from(self, table: pa.Table, manifest: dict[str, Any], *, split: str | None = None,
                       labels: Iterable[str] | None = None, where: str) -> SequenceSet:
        """Rows already selected by ``split`` and ``labels`` (``clip_id, group, label,
        n_frames, features`` as `scan_stored` gives them, e.g. a node's mapped cache,
        `features.store.node_cache`) as the ragged `SequenceSet` `load` would give: clip id
        order, frames as views of the table's buffers (no copy when it is one chunk)."""
        _, classes = _selection(manifest, split, labels)
        vocab = self.vocab(manifest["dataset"], manifest["feature_set"], manifest=manifest)
        return _sequences([table], int(manifest["dim"]), classes, None if vocab is None else vocab.vocab_size,
                          where=f"{where}: features", padded=False)

    def read_rows(
        self,
        dataset: str,
        feature_set: str,
        *,
        columns: list[str] | None = None,
        filter: pc.Expression | None = None,
    ) -> pa.Table:
        """The committed rows (only the parts the manifest lists), projected and filtered,
        with ``features`` as ``list<fixed_size_list<float32, D>>`` whatever the parts' format
        (`features.store.schema`); the frames are not copied."""
        manifest = self.manifest(dataset, feature_set)
        dim = int(manifest["dim"])
        tables = self._read_stored(dataset, feature_set, manifest, columns=columns, filter=filter)
        if "features" in tables[0].column_names:
            where = f"{self.path(dataset, feature_set)}: features"
            tables = [t.set_column(t.column_names.index("features"), "features",
                                   frames_column(t["features"], dim, where=where)) for t in tables]
        return pa.concat_tables(tables)

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
        expr, classes = _selection(manifest, split, labels)
        tables = self._read_stored(dataset, feature_set, manifest, filter=expr,
                                   columns=["clip_id", "group", "label", "n_frames", "features"])
        vocab = self.vocab(dataset, feature_set, manifest=manifest)
        out = _sequences(tables, int(manifest["dim"]), classes, None if vocab is None else vocab.vocab_size,
                         where=f"{self.path(dataset, feature_set)}: features", padded=padded)
        if min_per_class is not None:
            out.check_min_per_class(min_per_class)
        return out

    def load_index(
        self,
        dataset: str,
        feature_set: str,
        *,
        split: str | None = None,
        labels: Iterable[str] | None = None,
        min_per_class: int | None = None,
    ) -> SequenceIndex:
        """What `load` gives but the frames: labels, groups, clip ids and lengths, rows in
        the same (clip id) order, read through column projection (``features`` is never
        read, so memory does not grow with the frames). Arguments as `load`'s."""
        manifest = self.manifest(dataset, feature_set)
        expr, classes = _selection(manifest, split, labels)
        table = self.read_rows(dataset, feature_set, columns=["clip_id", "group", "label", "n_frames"], filter=expr)
        order = pc.sort_indices(table["clip_id"]).to_numpy()
        y, groups, clip_ids = _labelled(table, order, classes)
        vocab = self.vocab(dataset, feature_set, manifest=manifest)
        out = SequenceIndex(y, classes, groups, clip_ids, table["n_frames"].to_numpy().astype(np.int64)[order],
                            int(manifest["dim"]), None if vocab is None else vocab.vocab_size)
        if min_per_class is not None:
            out.check_min_per_class(min_per_class)
        return out

    # ---- writing -----------------------------------------------------------------------
    def writer(self, dataset: str, feature_set: str, *, info: dict[str, Any], dim: int) -> FeatureSetWriter:
        """Open ``<dataset>/<feature_set>`` for adding rows; see `FeatureSetWriter`."""
        return FeatureSetWriter(self, dataset, feature_set, info=info, dim=dim)


def _sequences(tables: list[pa.Table], dim: int, classes: list[str], vocab_size: int | None, *, where: str,
               padded: bool) -> SequenceSet:
    """Rows as stored (``clip_id, group, label, n_frames, features`` of either format, one or
    more tables) as a `SequenceSet` in clip id order, labelled by ``classes``: padded, or
    ragged views of the tables' frame buffers (no copy when the rows are one chunk)."""
    chunks = [c for t in tables for c in frame_chunks(t["features"], dim, where=where)]
    table = pa.concat_tables([t.drop_columns(["features"]) for t in tables])
    stored_lengths = np.concatenate([np.diff(offsets) for _, offsets in chunks] or [np.zeros(0, np.int64)])
    if not np.array_equal(stored_lengths, table["n_frames"].to_numpy()):
        raise StoreError(where, "must hold n_frames frames in every row",
                         f"{int((stored_lengths != table['n_frames'].to_numpy()).sum())} rows differ")
    # rows in clip_id order, whatever order the parts were written in: the order is
    # computed on the ids alone and applied to the frames by offset
    order = pc.sort_indices(table["clip_id"]).to_numpy()
    lengths = stored_lengths[order]
    y, groups, clip_ids = _labelled(table, order, classes)
    x = _scatter_padded(chunks, order, lengths, dim) if padded else _ragged_views(chunks, order)
    return SequenceSet(x, y, classes, groups, clip_ids, lengths, vocab_size)


def _labelled(table: pa.Table, order: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, groups, clip_ids)`` of ``table``'s rows taken in ``order``: class indices into
    ``classes``, and the groups and ids as object arrays."""
    index = {name: i for i, name in enumerate(classes)}
    labels = table["label"].to_numpy(zero_copy_only=False)[order]
    y = np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(order))
    groups = table["group"].to_numpy(zero_copy_only=False)[order].astype(object)
    clip_ids = table["clip_id"].to_numpy(zero_copy_only=False)[order].astype(object)
    return y, groups, clip_ids


def _selection(manifest: dict[str, Any], split: str | None, labels: Iterable[str] | None
               ) -> tuple[pc.Expression | None, list[str]]:
    """The row filter for ``split`` and ``labels`` (see `FeatureStore.load`) and the classes
    the rows are then labelled with."""
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
    return expr, classes


def _scatter_padded(chunks: list[tuple[np.ndarray, np.ndarray]], order: np.ndarray, lengths: np.ndarray,
                    dim: int) -> np.ndarray:
    """Zeros ``float32[N, T_max, D]`` whose row i is stored row ``order[i]``'s frames.

    ``chunks`` are `frame_chunks`' ``(float32[F_k, D], int64[n_k + 1])`` in stored row order
    and ``lengths`` is ``int64[N]`` in output order. One scatter per chunk moves every frame
    as one ``4 * D``-byte item to its cell (no Python per row: 9.7 GB/s for 200 rows of
    1292 x 27 here, and 6 GB/s for 5000 rows of 1-50 frames, where a copy per row gave 4.6).
    """
    n = len(order)
    t_max = int(lengths.max()) if n else 0
    out = np.zeros((n, t_max, dim), dtype=np.float32)
    if not out.size:
        return out
    frame = np.dtype((np.void, 4 * dim))
    cells = out.view(frame).reshape(-1)  # cell i * T_max + t holds row i's frame t
    dest = np.empty(n, dtype=np.int64)
    dest[order] = np.arange(n)  # stored row -> output row
    row = 0
    for values, offsets in chunks:
        k = len(offsets) - 1
        counts = np.diff(offsets)
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts)  # each frame's t
        np.put(cells, np.repeat(dest[row:row + k] * t_max, counts) + within,
               np.ascontiguousarray(values).view(frame).reshape(-1))
        row += k
    return out


def _ragged_views(chunks: list[tuple[np.ndarray, np.ndarray]], order: np.ndarray) -> list[np.ndarray]:
    """``float32[T_i, D]`` views, row i being stored row ``order[i]``, all into one buffer:
    the Arrow buffer itself when the rows came in one chunk, else one concatenation of them."""
    if not chunks:
        return []
    values = chunks[0][0] if len(chunks) == 1 else np.concatenate([v for v, _ in chunks])
    bases = np.cumsum([0] + [len(v) for v, _ in chunks[:-1]])
    starts = np.concatenate([offsets[:-1] + base for (_, offsets), base in zip(chunks, bases)])
    ends = np.concatenate([offsets[1:] + base for (_, offsets), base in zip(chunks, bases)])
    return [values[a:b] for a, b in zip(starts[order].tolist(), ends[order].tolist())]
