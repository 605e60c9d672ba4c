"""`FeatureSetWriter`: adds rows to one feature set, incrementally and atomically.

The manifest is the commit point: a part file is written first, then the manifest that
lists it, so a run killed in between leaves an orphan part that no reader takes as data
and that the next writer deletes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from features.rows import ItemError, SourceRows
from features.store.schema import (
    ERROR_SCHEMA,
    ERRORS,
    FORMAT_VERSION,
    LIGHT_COLUMNS,
    MANIFEST,
    rows_table,
)
from seqsweep import storage
from seqsweep.errors import StoreError


class StoreFiles(Protocol):
    """What a writer needs of its store (`features.store.reader.FeatureStore` is one).

    Stated here rather than imported, because the store imports this module to open
    writers.
    """

    fs: pafs.FileSystem

    def path(self, *parts: str) -> str: ...
    def has(self, dataset: str, feature_set: str) -> bool: ...
    def manifest(self, dataset: str, feature_set: str) -> dict[str, Any]: ...
    def read_rows(self, dataset: str, feature_set: str, *, columns: list[str] | None = None,
                  filter: pc.Expression | None = None) -> pa.Table: ...
    def write_atomic(self, path: str, data: bytes) -> None: ...
    def write_table_atomic(self, path: str, table: pa.Table) -> None: ...


__all__ = ["FeatureSetWriter", "StoreFiles"]


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

    def __init__(self, store: StoreFiles, dataset: str, feature_set: str, *, info: dict[str, Any], dim: int):
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
            light = store.read_rows(dataset, feature_set, columns=LIGHT_COLUMNS).to_pandas()
        else:
            self.manifest = {"format": FORMAT_VERSION, "dataset": dataset, "feature_set": feature_set,
                             **self.info, "dim": self.dim, "parts": [], "created": _now()}
            light = pd.DataFrame(columns=LIGHT_COLUMNS)
        self._rows = light  # the committed rows' light columns: what counts and planning read
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Delete part files and temporaries no manifest lists (left by a killed writer)."""
        listed = set(self.manifest["parts"])
        for info in self.store.fs.get_file_info(pafs.FileSelector(self._dir, allow_not_found=True)):
            name = info.base_name
            if (name.startswith("part-") and name not in listed) or storage.TEMPORARY in name:
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
        table = rows_table(self._buffer, self.dim)
        name = f"part-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        self.store.write_table_atomic(self.store.path(self.dataset, self.feature_set, name), table)
        parts.append(name)
        self._rows = pd.concat([self._rows, table.select(LIGHT_COLUMNS).to_pandas()], ignore_index=True)
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
            schema=ERROR_SCHEMA)
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
