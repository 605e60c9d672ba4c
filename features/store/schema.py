"""The on-disk format of a feature set: its file names, its Arrow schemas, and how
frames pack into Arrow rows (`rows_table`) and back out (`frames_view`).

Kept in one place because the reader (`features.store.reader`) and the writer
(`features.store.writer`) must agree on every byte of it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from features.rows import SourceRows

__all__ = [
    "ERRORS", "ERROR_SCHEMA", "FORMAT_VERSION", "LIGHT_COLUMNS", "MANIFEST", "SOURCE_COLUMNS",
    "SPLITS", "SPLIT_SCHEMA", "frames_view", "row_schema", "rows_table",
]

MANIFEST = "_manifest.json"
ERRORS = "_errors.parquet"
SPLITS = "_splits.parquet"
FORMAT_VERSION = 1
SOURCE_COLUMNS = ["source", "source_size", "source_mtime_ns", "source_hash"]
"""The source fingerprint stored beside every row; it makes re-extraction incremental."""
LIGHT_COLUMNS = ["clip_id", "group", "label", "split", "n_frames", *SOURCE_COLUMNS]
"""The small columns: what counts, planning and the manifest read, without the frames."""
ERROR_SCHEMA = pa.schema([("path", pa.string()), ("stage", pa.string()),
                          ("error_type", pa.string()), ("message", pa.string()),
                          ("source_size", pa.int64()), ("source_mtime_ns", pa.int64())])
"""``_errors.parquet``: one `features.rows.ItemError` per row, with the failed file's stat."""
SPLIT_SCHEMA = pa.schema([("group", pa.string()), ("label", pa.string()), ("split", pa.string())])


def row_schema(dim: int) -> pa.Schema:
    """The schema of a feature set's rows with D = ``dim``."""
    return pa.schema([
        ("clip_id", pa.string()), ("group", pa.string()), ("label", pa.string()),
        ("split", pa.string()), ("n_frames", pa.int32()),
        ("features", pa.list_(pa.list_(pa.float32(), dim))),
        ("source", pa.string()), ("source_size", pa.int64()),
        ("source_mtime_ns", pa.int64()), ("source_hash", pa.string()),
    ])


def frames_view(column: pa.ChunkedArray, dim: int) -> np.ndarray:
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


def rows_table(batch: list[SourceRows], dim: int) -> pa.Table:
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

