"""`seqsweep features ...` as a user types it, and imports landing in the store."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from features import FeatureStore, import_files
from seqsweep.cli import main


def run(*args: str):
    result = CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)
    return result


def test_help_lists_the_rooms_and_python_m_seqsweep_works():
    # `python -m seqsweep` is the spelling on a cluster's nodes (the repository is shipped, not installed)
    out = subprocess.run([sys.executable, "-m", "seqsweep", "--help"], capture_output=True, text=True, check=True)
    assert "features" in out.stdout
    assert "--segment-seconds" in run("features", "extract", "--help").output


def test_synth_extract_info(tmp_path):
    res = run("features", "synth", tmp_path / "a", "--classes", "3", "--clips", "4", "--seconds", "1")
    assert res.exit_code == 0 and "wrote 12 clips" in res.output
    (tmp_path / "a" / "drone" / "broken.wav").write_bytes(b"not a wav")
    res = run("features", "extract", tmp_path / "a", "--store", tmp_path / "s", "--dataset", "demo",
              "--no-ray", "--param", "n_mfcc=13")
    assert res.exit_code == 0, res.output
    assert "12 extracted" in res.output and "1 failed" in res.output and "broken.wav" in res.output
    res = run("features", "info", "--store", tmp_path / "s")
    assert "demo/mfcc27  D=27  clips=12" in res.output and "drone" in res.output


def test_extract_exits_nonzero_when_nothing_could_be_extracted(tmp_path):
    (tmp_path / "a" / "rock").mkdir(parents=True)
    (tmp_path / "a" / "rock" / "x.wav").write_bytes(b"junk")
    res = run("features", "extract", tmp_path / "a", "--store", tmp_path / "s", "--dataset", "d", "--no-ray")
    assert res.exit_code == 1 and "0 extracted" in res.output


def test_bad_option_values_are_named(tmp_path):
    res = CliRunner().invoke(main, ["features", "extract", str(tmp_path), "--store", "s", "--dataset", "d",
                                    "--param", "n_mfccs=3"])
    assert res.exit_code != 0 and "n_mfccs" in res.output and "must be one of" in res.output
    res = CliRunner().invoke(main, ["features", "extract", str(tmp_path), "--store", "s", "--dataset", "d",
                                    "--test-size", "1.5"])
    assert res.exit_code != 0 and "test_size" in res.output


# ---- imports into the store ------------------------------------------------------------------
def _chord_pickles(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for split, n in (("train", 30), ("test", 10)):
        pairs = []
        for i in range(n):
            body = rng.integers(0, 150, size=rng.integers(3, 12)).astype(float)
            seq = np.concatenate([-np.ones(i % 3), body, -np.ones(2)])
            pairs.append((seq, i % 5))
        path = tmp_path / f"{split}.pkl"
        path.write_bytes(pickle.dumps(pairs))
        paths.append(path)
    return paths


def test_import_chord_pickles_keeps_their_split_and_strips_padding(tmp_path):
    files = _chord_pickles(tmp_path)
    res = run("features", "import", *files, "--store", tmp_path / "s", "--dataset", "chords")
    assert res.exit_code == 0, res.output
    store = FeatureStore(tmp_path / "s")
    train = store.load("chords", "raw", split="train")
    test = store.load("chords", "raw", split="test")
    assert (len(train), len(test)) == (30, 10)
    assert train.dim == 1 and all((x >= 0).all() for x in train.x)  # no -1 padding left
    assert train.classes == ["0", "1", "2", "3", "4"]
    again = import_files(files, store=tmp_path / "s", dataset="chords")
    assert (again.added, again.unchanged) == (0, 2)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-pickle",))


def test_import_refuses_a_pickle_that_carries_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([(np.arange(3.0), 0), _Evil()]))
    res = run("features", "import", tmp_path / "evil.pkl", "--store", tmp_path / "s", "--dataset", "x")
    assert res.exit_code != 0
    assert "os.system" in res.output or "posix.system" in res.output
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_import_ts_and_table(tmp_path):
    ts = tmp_path / "Toy_TRAIN.ts"
    ts.write_text(
        "@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n"
        "@equalLength false\n@classLabel true up down\n@data\n"
        "1,2,3:4,5,6:up\n3,?,1:1,1,1:down\n1,2:2,1:up\n5,4,3,2:1,1,1,1:down\n")
    csv = tmp_path / "features_30_sec.csv"
    csv.write_text("filename,length,a_mean,b_var,label\nx.wav,10,0.1,0.2,rock\ny.wav,10,0.3,0.1,jazz\n"
                   "z.wav,10,0.2,0.2,rock\nw.wav,10,0.5,0.6,jazz\nv.wav,10,0.1,0.9,rock\n")
    summary = import_files([ts], store=tmp_path / "s", dataset="toy")
    assert summary.clips_total == 4 and summary.failed == 0
    seqs = FeatureStore(tmp_path / "s").load("toy", "raw", split="train")
    assert len(seqs) == 4 and seqs.dim == 2 and sorted(seqs.lengths) == [2, 3, 3, 4]
    assert all(np.isfinite(x).all() for x in seqs.x)  # '?' filled

    table = import_files([csv], store=tmp_path / "s", dataset="gtzan_csv", feature_set="tab")
    seqs = FeatureStore(tmp_path / "s").load("gtzan_csv", "tab")
    assert table.clips_total == 5 and seqs.dim == 2 and set(seqs.lengths) == {1}


def test_import_japanese_vowels_from_aeon(tmp_path):
    aeon = pytest.importorskip("aeon")
    data = Path(aeon.__file__).parent / "datasets" / "data" / "JapaneseVowels"
    files = [data / "JapaneseVowels_TRAIN.ts", data / "JapaneseVowels_TEST.ts"]
    summary = import_files(files, store=tmp_path / "s", dataset="jv")
    assert summary.failed == 0 and summary.clips_total == 640
    store = FeatureStore(tmp_path / "s")
    train, test = store.load("jv", "raw", split="train"), store.load("jv", "raw", split="test")
    assert (len(train), len(test), train.dim, train.n_classes) == (270, 370, 12, 9)
    assert train.lengths.min() >= 7 and train.lengths.max() <= 29
