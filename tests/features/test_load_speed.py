"""The fast loader (`FeatureStore.load`: one view of the frames' buffer and one scatter per
chunk) gives exactly what the straightforward path gives: each part file read row by row
with pyarrow's ``to_pylist``, its frames decoded one row at a time, rows sorted by clip id.

Covered: lengths 1..N, D = 1 and D = 27, several part files, rows written out of order,
both part formats (1: nested lists, 2: frames as bytes) and a store holding both, the
loader's split and label filters, sliced chunks, a token set and extracted audio.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features import FeatureStore, import_files
from features.rows import SourceRows
from features.store.schema import frame_chunks, frames_column, row_schema
from features.synth_tokens import write_token_dataset
from seqsweep.errors import StoreError


def straightforward(root, dataset: str, feature_set: str, *, split: str | None = None,
                    labels: set[str] | None = None) -> dict[str, tuple[str, np.ndarray]]:
    """clip_id -> (label, float32[T, D]) read row by row from the part files the manifest lists."""
    folder = root / dataset / feature_set
    manifest = json.loads((folder / "_manifest.json").read_text())
    dim, out = manifest["dim"], {}
    for part in manifest["parts"]:
        for row in pq.read_table(folder / part).to_pylist():
            if (split is not None and row["split"] != split) or (labels is not None and row["label"] not in labels):
                continue
            f = row["features"]
            frames = np.frombuffer(f, dtype="<f4").reshape(-1, dim) if isinstance(f, bytes) \
                else np.asarray(f, dtype=np.float32).reshape(-1, dim)
            assert len(frames) == row["n_frames"]
            out[row["clip_id"]] = (row["label"], frames)
    return dict(sorted(out.items()))


def assert_same(loaded, expected: dict[str, tuple[str, np.ndarray]]) -> None:
    """``loaded`` (a SequenceSet, padded or ragged) holds exactly ``expected``, in clip id order."""
    assert list(loaded.clip_ids) == list(expected)
    assert [loaded.classes[y] for y in loaded.y] == [lab for lab, _ in expected.values()]
    assert loaded.lengths.tolist() == [len(f) for _, f in expected.values()]
    for i, (_, frames) in enumerate(expected.values()):
        row = loaded.x[i]
        if loaded.padded:
            assert np.array_equal(row[:len(frames)], frames) and not row[len(frames):].any()
        else:
            assert row.dtype == np.float32 and np.array_equal(row, frames)
    if loaded.padded:
        assert loaded.x.shape[1] == max((len(f) for _, f in expected.values()), default=0)


def write_store(root, *, dim: int, n: int, parts: int, seed: int = 0) -> None:
    """``n`` rows of lengths 1..n (shuffled) in ``<root>/d/f``, committed as ``parts`` part files."""
    rng = np.random.default_rng(seed)
    store = FeatureStore(root)
    writer = store.writer("d", "f", info={"kind": "test", "param_hash": "h", "params": {}}, dim=dim)
    order = rng.permutation(n)
    for k, i in enumerate(order):
        frames = rng.standard_normal((int(i) + 1, dim)).astype(np.float32)
        writer.add(SourceRows.segments(source=f"s{i:03d}", label=f"c{i % 3}", group=f"g{i}",
                                       split="test" if i % 4 == 0 else "train", frames=[frames],
                                       size=1, mtime_ns=1, sha256="x"))
        if (k + 1) % -(-n // parts) == 0:
            writer.commit()
    writer.close()


def to_format_1(root, *, every: int = 1) -> None:
    """Rewrite every ``every``-th part of ``<root>/d/f`` in format 1 (nested lists), as an
    older seqsweep wrote them."""
    folder = root / "d" / "f"
    manifest = json.loads((folder / "_manifest.json").read_text())
    for part in manifest["parts"][::every]:
        table = pq.read_table(folder / part)
        nested = frames_column(table["features"], manifest["dim"])
        table = table.set_column(table.column_names.index("features"), "features", nested)
        pq.write_table(table.cast(row_schema(manifest["dim"])), folder / part)


@pytest.mark.parametrize("dim", [1, 27])
@pytest.mark.parametrize("old", [None, 1, 2], ids=["format2", "format1", "mixed"])
def test_load_equals_straightforward_path(tmp_path, dim, old):
    write_store(tmp_path, dim=dim, n=40, parts=3)
    if old is not None:
        to_format_1(tmp_path, every=old)
    store = FeatureStore(tmp_path)
    assert len(json.loads((tmp_path / "d" / "f" / "_manifest.json").read_text())["parts"]) == 3
    for kw in ({}, {"split": "train"}, {"split": "test", "labels": ["c0", "c2"]}):
        expected = straightforward(tmp_path, "d", "f", split=kw.get("split"),
                                   labels=set(kw["labels"]) if "labels" in kw else None)
        for padded in (False, True):
            assert_same(store.load("d", "f", padded=padded, **kw), expected)
    ragged = store.load("d", "f")
    assert all(x.base is not None for x in ragged.x)  # views, not copies per row
    rows = store.read_rows("d", "f", columns=["clip_id", "features"])
    assert rows.schema.field("features").type == pa.list_(pa.list_(pa.float32(), dim))
    by_id = straightforward(tmp_path, "d", "f")
    for clip, frames in zip(rows["clip_id"].to_pylist(), rows["features"].to_pylist()):
        assert np.array_equal(np.asarray(frames, np.float32).reshape(-1, dim), by_id[clip][1])


@pytest.mark.parametrize("old", [False, True], ids=["format2", "format1"])
def test_frame_chunks_honour_slices(tmp_path, old):
    write_store(tmp_path, dim=3, n=12, parts=2)
    if old:
        to_format_1(tmp_path)
    folder = tmp_path / "d" / "f"
    parts = json.loads((folder / "_manifest.json").read_text())["parts"]
    column = pa.chunked_array([c for p in parts for c in pq.read_table(folder / p)["features"].chunks])
    sliced = column.slice(2, 7)  # starts inside the first chunk, ends inside the second
    assert len(sliced.chunks) == 2 and sliced.chunks[0].offset == 2
    reference = [np.frombuffer(f, "<f4").reshape(-1, 3) if isinstance(f, bytes) else np.asarray(f, np.float32)
                 for f in sliced.to_pylist()]
    got = [values[a:b] for values, offsets in frame_chunks(sliced, 3) for a, b in zip(offsets[:-1], offsets[1:])]
    assert len(got) == 7 and all(np.array_equal(g, r) for g, r in zip(got, reference))


def test_token_set_loads_the_stored_ids(tmp_path):
    path = write_token_dataset(tmp_path / "src", classes=3, sequences=30, vocab=8, min_length=1, max_length=30)
    import_files([path], store=tmp_path / "s", dataset="ch")
    store = FeatureStore(tmp_path / "s")
    expected = straightforward(tmp_path / "s", "ch", "raw")
    padded, ragged = store.load("ch", "raw", padded=True), store.load("ch", "raw")
    assert padded.vocab_size == ragged.vocab_size is not None and padded.dim == 1
    assert len(set(ragged.lengths.tolist())) > 5  # varied lengths
    assert_same(padded, expected)
    assert_same(ragged, expected)


def test_extracted_audio_loads_as_written(synth_store):
    store = FeatureStore(synth_store)
    for feature_set in ("mfcc27", "wave-"):
        name = next(f for f in store.feature_sets("synth") if f.startswith(feature_set))
        expected = straightforward(synth_store, "synth", name, split="train")
        assert_same(store.load("synth", name, split="train", padded=True), expected)
        assert_same(store.load("synth", name, split="train"), expected)


def test_frames_that_are_not_whole_frames_are_refused(tmp_path):
    bad = pa.chunked_array([pa.array([b"\0" * 8, b"\0" * 10], pa.large_binary())])
    with pytest.raises(StoreError, match="whole frames of 2 float32 values"):
        frame_chunks(bad, 2, where="x.parquet: features")
