"""The examples/ YAMLs and the README's commands, run as a user runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from search.spec import load_spec
from seqsweep.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_a_valid_spec(path):
    spec = load_spec(path)
    assert spec.models and spec.name == path.stem


def _cli(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_quick_example_runs_as_documented(ray_session, tmp_path, monkeypatch):
    """README: synth -> extract -> `seqsweep sweep run examples/quick.yaml` -> status."""
    monkeypatch.chdir(tmp_path)
    _cli("features", "synth", "data")
    _cli("features", "extract", "data", "--store", "store", "--dataset", "synth")
    out = _cli("sweep", "run", ROOT / "examples" / "quick.yaml")
    assert "sweep finished" in out
    exp = tmp_path / "runs" / "quick"
    board = pd.read_csv(exp / "leaderboard.csv")
    spec = load_spec(ROOT / "examples" / "quick.yaml")
    assert len(board) == spec.search.num_samples and (board["status"] == "ok").all()
    assert board["balanced_accuracy_mean"].max() > 0.4  # 4 classes: chance is 0.25
    status = _cli("sweep", "status", exp)
    assert re.search(rf"trials: {spec.search.num_samples} of {spec.search.num_samples} ", status), status


@pytest.mark.slow
def test_japanese_vowels_example_on_aeons_copy(ray_session, tmp_path, monkeypatch):
    aeon = pytest.importorskip("aeon")
    data = Path(aeon.__file__).parent / "datasets" / "data" / "JapaneseVowels"
    monkeypatch.chdir(tmp_path)
    _cli("features", "import", data / "JapaneseVowels_TRAIN.ts", data / "JapaneseVowels_TEST.ts",
         "--store", "store", "--dataset", "japanese_vowels")
    _cli("sweep", "run", ROOT / "examples" / "japanese_vowels.yaml", "--num-samples", "2", "--no-ensemble")
    board = pd.read_csv(tmp_path / "runs" / "japanese_vowels" / "leaderboard.csv")
    assert len(board) == 2 and (board["status"] == "ok").all()


@pytest.mark.slow
def test_gtzan_lstm_example_on_a_synthetic_gtzan_folder(ray_session, tmp_path, monkeypatch):
    """The seeds' own setup on a small folder of the GTZAN layout: 6 s clips cut into 3 s
    segments, the spec as it is but for the number of trials."""
    monkeypatch.chdir(tmp_path)
    _cli("features", "synth", "genres", "--classes", "3", "--clips", "8", "--seconds", "6")
    _cli("features", "extract", "genres", "--store", "store", "--dataset", "gtzan", "--segment-seconds", "3")
    out = _cli("sweep", "run", ROOT / "examples" / "gtzan_lstm.yaml", "--num-samples", "2")
    assert "sweep finished" in out
    exp = tmp_path / "runs" / "gtzan_lstm"
    board = pd.read_csv(exp / "leaderboard.csv")
    assert len(board) == 2 and set(board["status"]) <= {"ok", "pruned"}
    assert (board["seeds"] == 3).all() and (board["folds"] == 5).all()
    ensembles = pd.read_csv(exp / "ensembles.csv")
    assert set(ensembles.loc[ensembles["kind"] == "ensemble", "method"]) == {"soft", "max", "vote", "weighted"}


@pytest.mark.slow
def test_chords_example_runs_as_documented(ray_session, tmp_path, monkeypatch):
    """Synthetic chord tokens -> import (stored as tokens) -> the chords example: the
    networks embed the ids, with embedding_dim searched, and the forest counts them."""
    monkeypatch.chdir(tmp_path)
    _cli("features", "synth", "data", "--tokens", "--clips", "30")
    out = _cli("features", "import", "data/chords.pkl", "--store", "store", "--dataset", "chords")
    assert "tokens:" in out
    out = _cli("sweep", "run", ROOT / "examples" / "chords.yaml", "--num-samples", "4", "--no-ensemble")
    assert "token ids, vocabulary" in out and "sweep finished" in out
    board = pd.read_csv(tmp_path / "runs" / "chords" / "leaderboard.csv")
    assert len(board) == 4 and (board["status"] == "ok").all()
    nets = board[board["model"].isin(["lstm", "cnn1d"])]
    assert nets["embedding_dim"].between(8, 64).all()
