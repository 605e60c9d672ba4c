"""The feature store end to end: extraction, layout, incremental runs, splits, bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from features import FeatureSpec, FeatureStore, extract_audio
from features.synth import write_dataset
from seqsweep.errors import InputError, StoreError

SR = 22050


def _copy(src: Path, dst: Path, classes: int | None = None) -> Path:
    shutil.copytree(src, dst)
    if classes is not None:
        for extra in sorted(p for p in dst.iterdir() if p.is_dir())[classes:]:
            shutil.rmtree(extra)
    return dst


def _extract(src, root, **kw):
    kw.setdefault("spec", FeatureSpec.create("mfcc27"))
    kw.setdefault("use_ray", False)
    kw.setdefault("progress", False)
    return extract_audio(src, store=root, dataset="d", **kw)


# ---- layout and schema --------------------------------------------------------------------
def test_layout_schema_and_manifest(synth_store):
    store = FeatureStore(synth_store)
    assert store.datasets() == ["synth"]
    assert "mfcc27" in store.feature_sets("synth")
    folder = synth_store / "synth" / "mfcc27"
    assert (folder / "_manifest.json").is_file() and (folder / "_errors.parquet").is_file()
    assert (synth_store / "synth" / "_splits.parquet").is_file()

    manifest = json.loads((folder / "_manifest.json").read_text())
    assert manifest["dim"] == 27 and manifest["kind"] == "mfcc27"
    assert manifest["params"]["sr"] == SR and manifest["params"]["hop_length"] == 512
    assert len(manifest["param_hash"]) == 64
    assert manifest["classes"] == ["bright", "chords", "drone", "pulse"]
    assert manifest["n_clips"] == 48
    assert sum(manifest["counts"]["train"].values()) + sum(manifest["counts"]["test"].values()) == 48
    assert {"librosa", "numpy", "pyarrow"} <= set(manifest["versions"])

    part = pq.read_table(folder / manifest["parts"][0])
    assert manifest["format"] == 2 and part.schema.field("features").type == pa.large_binary()
    rows = store.read_rows("synth", "mfcc27")
    assert rows.schema.field("features").type == pa.list_(pa.list_(pa.float32(), 27))
    assert part.schema.field("n_frames").type == pa.int32()
    assert part.column_names[:6] == ["clip_id", "group", "label", "split", "n_frames", "features"]
    # a 2 s clip at hop 512 gives 1 + 44100 // 512 frames
    assert set(part["n_frames"].to_pylist()) == {1 + int(2.0 * SR) // 512}


def test_loader_split_labels_padded_and_ragged(synth_store):
    store = FeatureStore(synth_store)
    train = store.load("synth", "mfcc27", split="train")
    test = store.load("synth", "mfcc27", split="test")
    assert len(train) + len(test) == 48
    assert set(train.groups).isdisjoint(test.groups)
    counts = test.class_counts()
    assert all(n == 12 * 0.2 or abs(n - 12 * 0.2) <= 1 for n in counts.values()), counts  # stratified

    padded = store.load("synth", "mfcc27", split="train", padded=True)
    assert padded.x.shape == (len(train), train.lengths.max(), 27) and padded.x.dtype == np.float32
    for i in range(len(train)):
        np.testing.assert_array_equal(padded.x[i, : train.lengths[i]], train.x[i])
    assert list(padded.clip_ids) == list(train.clip_ids)

    two = store.load("synth", "mfcc27", labels=["drone", "pulse"])
    assert two.classes == ["drone", "pulse"] and set(two.y.tolist()) == {0, 1}
    with pytest.raises(StoreError, match="must be among the classes"):
        store.load("synth", "mfcc27", labels=["jazz"])
    with pytest.raises(StoreError, match="feature set 'mfcc99'"):
        store.load("synth", "mfcc99")


def test_ragged_load_is_zero_copy(synth_store):
    seqs = FeatureStore(synth_store).load("synth", "mfcc27")
    assert not seqs.x[0].flags.owndata
    assert np.shares_memory(seqs.x[0], seqs.x[-1].base)  # views onto one buffer, not 48 copies


def test_class_with_too_few_clips_is_named(synth_store):
    seqs = FeatureStore(synth_store).load("synth", "mfcc27", split="test")
    with pytest.raises(InputError, match=r"class '\w+'.*needs at least 5 clips.*got [0-4]"):
        seqs.check_min_per_class(5)
    with pytest.raises(InputError, match="needs at least 50"):
        FeatureStore(synth_store).load("synth", "mfcc27", min_per_class=50)


# ---- extraction through Ray ----------------------------------------------------------------
def _bad_inputs(root: Path) -> dict[str, str]:
    """Add one file of each kind of bad input to a class folder; map name -> expected stage."""
    cls = sorted(p for p in root.iterdir() if p.is_dir())[0]
    (cls / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    sf.write(cls / "empty.wav", np.zeros(0, np.float32), SR)
    sf.write(cls / "silent.wav", np.zeros(SR, np.float32), SR)
    sf.write(cls / "short.wav", 0.5 * np.ones(100, np.float32), SR)
    os.symlink(root / "no-such-file.wav", cls / "dangling.wav")
    (cls / "notes.txt").write_text("not audio")
    return {"corrupt.wav": "decode", "empty.wav": "check", "silent.wav": "check", "short.wav": "check",
            "dangling.wav": "read", "notes.txt": "discover"}


def test_extract_with_ray_reports_every_bad_file_and_keeps_the_rest(ray_session, synth_dir, tmp_path):
    src = _copy(synth_dir, tmp_path / "audio", classes=2)
    expected = _bad_inputs(src)
    summary = _extract(src, tmp_path / "store", use_ray=True)
    assert summary.added == 24 and summary.clips_total == 24
    assert summary.failed == len(expected)

    errors = FeatureStore(tmp_path / "store").errors("d", "mfcc27")
    got = {Path(p).name: stage for p, stage in zip(errors["path"], errors["stage"])}
    assert got == expected
    messages = dict(zip(errors["path"].map(lambda p: Path(p).name), errors["message"]))
    assert "silent" in messages["silent.wav"] and "peak" in messages["silent.wav"]
    assert "at least one sample" in messages["empty.wav"]
    assert "at least 2048 samples" in messages["short.wav"]
    assert "corrupt.wav" in messages["corrupt.wav"]


def test_second_run_extracts_nothing_and_new_files_are_added(synth_dir, tmp_path):
    src = _copy(synth_dir, tmp_path / "audio", classes=2)
    first = _extract(src, tmp_path / "store")
    assert first.added == 24
    again = _extract(src, tmp_path / "store")
    assert (again.added, again.unchanged, again.clips_total) == (0, 24, 24)

    # touching a file (new mtime, same bytes) does not redo it
    some = next((src / "bright").glob("*.wav"))
    os.utime(some, ns=(1, 1))
    assert _extract(src, tmp_path / "store").added == 0

    # new files are added; earlier splits do not move
    store = FeatureStore(tmp_path / "store")
    before = store.splits("d")
    write_dataset(tmp_path / "more", classes=3, clips=6, seconds=1.0, seed=7)
    for f in (tmp_path / "more").rglob("*.wav"):
        dest = src / f.parent.name / ("new-" + f.name)
        dest.parent.mkdir(exist_ok=True)
        shutil.copy(f, dest)
    grown = _extract(src, tmp_path / "store")
    assert grown.added == 18 and grown.clips_total == 42
    after = store.splits("d")
    assert {g: after[g] for g in before} == before
    assert "test" in {after[g] for g in set(after) - set(before)}
    assert store.manifest("d", "mfcc27")["classes"] == ["bright", "chords", "drone", "pulse"]


def test_changed_file_replaces_its_rows(synth_dir, tmp_path):
    src = _copy(synth_dir, tmp_path / "audio", classes=1)
    _extract(src, tmp_path / "store")
    target = sorted((src / "bright").glob("*.wav"))[0]
    y, sr = sf.read(target)
    sf.write(target, y[: len(y) // 2], sr)  # now half as long
    summary = _extract(src, tmp_path / "store")
    assert (summary.added, summary.clips_total) == (1, 12)
    seqs = FeatureStore(tmp_path / "store").load("d", "mfcc27")
    lengths = dict(zip(seqs.clip_ids, seqs.lengths))
    assert lengths[f"bright/{target.name}"] == 1 + (len(y) // 2) // 512
    assert len(set(seqs.clip_ids)) == 12


def test_killed_commit_leaves_nothing_a_reader_takes_as_data(synth_dir, tmp_path, monkeypatch):
    from features import store as store_mod

    src = _copy(synth_dir, tmp_path / "audio", classes=1)
    _extract(src, tmp_path / "store")
    write_dataset(tmp_path / "more", classes=1, clips=3, seconds=1.0, seed=3)
    for f in (tmp_path / "more" / "drone").glob("*.wav"):
        shutil.copy(f, src / "bright" / ("late-" + f.name))

    def die(self, parts):
        raise KeyboardInterrupt("killed between the part and the manifest")

    monkeypatch.setattr(store_mod.FeatureSetWriter, "_write_manifest", die)
    with pytest.raises(KeyboardInterrupt):
        _extract(src, tmp_path / "store")
    monkeypatch.undo()

    folder = tmp_path / "store" / "d" / "mfcc27"
    assert len(list(folder.glob("part-*.parquet"))) == 2  # the orphan is on disk...
    assert len(FeatureStore(tmp_path / "store").load("d", "mfcc27")) == 12  # ...and not read
    summary = _extract(src, tmp_path / "store")  # the next run redoes the lost work
    assert (summary.added, summary.clips_total) == (3, 15)
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert sorted(p.name for p in folder.glob("part-*.parquet")) == sorted(manifest["parts"])


# ---- feature sets ----------------------------------------------------------------------------
def test_feature_set_names_follow_their_parameters():
    assert FeatureSpec.create("mfcc27").name == "mfcc27"
    assert FeatureSpec.create("mel128", beat_sync=True).name == "mel128_beat"
    assert FeatureSpec.create("chroma12", segment_seconds=3).name == "chroma12_seg3"
    changed = FeatureSpec.create("mfcc27", n_mfcc=20)
    assert changed.name.startswith("mfcc27-") and changed.dim == 34
    assert changed.param_hash != FeatureSpec.create("mfcc27").param_hash
    assert FeatureSpec.create("wave").params["sr"] == 8000


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kind": "mfcc99"}, r"feature_set: must be one of \['chroma12', 'mel128', 'mfcc27', 'wave'\]"),
    ({"kind": "mfcc27", "n_mfccs": 3}, r"mfcc27 parameter 'n_mfccs': must be one of"),
    ({"kind": "mfcc27", "hop_length": -1}, "must be positive"),
    ({"kind": "wave", "beat_sync": True}, "not 'wave'"),
    ({"kind": "mel128", "segment_seconds": 0}, "segment_seconds"),
])
def test_bad_feature_parameters_are_named(kwargs, match):
    from seqsweep.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        FeatureSpec.create(**kwargs)


def test_feature_kinds_shapes_and_segments(synth_dir, tmp_path):
    src = _copy(synth_dir, tmp_path / "audio", classes=2)
    for spec, dim in [(FeatureSpec.create("mel128", beat_sync=True), 128),
                      (FeatureSpec.create("chroma12", segment_seconds=0.5), 12),
                      (FeatureSpec.create("wave", sr=2000), 1)]:
        summary = _extract(src, tmp_path / "store", spec=spec)
        assert summary.failed == 0
        seqs = FeatureStore(tmp_path / "store").load("d", spec.name)
        assert seqs.dim == dim and all(np.isfinite(x).all() for x in seqs.x)
        if spec.beat_sync:
            assert seqs.lengths.max() < 1 + int(2.0 * SR) // 512  # beats, not frames
        if spec.segment_seconds:
            assert len(seqs) == 24 * 4  # four 0.5 s segments per 2 s clip
            assert {c.split("#")[0] for c in seqs.clip_ids} == set(seqs.groups)
            train, test = (FeatureStore(tmp_path / "store").load("d", spec.name, split=s) for s in ("train", "test"))
            assert set(train.groups).isdisjoint(test.groups)  # segments never straddle the split
        if spec.kind == "wave":
            assert set(seqs.lengths) == {4000}


def test_an_existing_name_with_other_parameters_is_refused(synth_store):
    store = FeatureStore(synth_store)
    info = {"kind": "mfcc27", "params": {"n_mfcc": 5}, "param_hash": "other"}
    with pytest.raises(StoreError, match="changed parameters make a new feature set"):
        store.writer("synth", "mfcc27", info=info, dim=27)


def test_manifest_csv_split_column_wins(synth_dir, tmp_path):
    wavs = sorted(synth_dir.rglob("*.wav"))[:12]
    lines = ["path,label,split,group"]
    for i, w in enumerate(wavs):
        # the split is named per group (song0 and song3 are test): a group is never on both sides
        lines.append(f"{w},{w.parent.name},{'test' if (i // 2) % 3 == 0 else 'train'},song{i // 2}")
    lines.append("missing-label.wav,,train,")
    lines.append(f"{wavs[0]},drone,validation,")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    summary = _extract(tmp_path / "m.csv", tmp_path / "store")
    assert summary.added == 12 and summary.failed == 2
    assert any("split must be one of" in e.message for e in summary.errors)
    seqs = FeatureStore(tmp_path / "store").load("d", "mfcc27", split="test")
    assert len(seqs) == 4 and set(seqs.groups) == {"song0", "song3"}


def test_missing_source_and_missing_columns(tmp_path):
    with pytest.raises(InputError, match="must exist"):
        _extract(tmp_path / "nope", tmp_path / "store")
    (tmp_path / "m.csv").write_text("file,genre\na.wav,rock\n")
    with pytest.raises(InputError, match=r"column 'path'.*columns \['file', 'genre'\]"):
        _extract(tmp_path / "m.csv", tmp_path / "store")


def test_a_store_at_a_uri(synth_dir, tmp_path):
    """Any root pyarrow.fs opens works (s3://, gs://, ...); file:// exercises the same path."""
    src = _copy(synth_dir, tmp_path / "audio", classes=2)
    uri = f"file://{tmp_path}/uri-store"
    summary = _extract(src, uri)
    assert summary.added == 24 and (tmp_path / "uri-store" / "d" / "mfcc27" / "_manifest.json").is_file()
    store = FeatureStore(uri)
    assert store.datasets() == ["d"] and len(store.load("d", "mfcc27", split="train")) > 0
    assert _extract(src, uri).added == 0  # incremental through the URI too
