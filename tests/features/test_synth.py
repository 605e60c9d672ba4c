"""Tests for `features.synth`: layout, determinism, range, and how hard the classes are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from features.synth import GENRES, genre_styles, make_clip, write_dataset
from seqsweep.errors import ConfigError

SR = 22050
K, CLIPS, SECONDS = 4, 10, 3.0


def test_layout_and_format(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, classes=3, clips=2, seconds=0.5, sr=8000, seed=1)
    names = [s.name for s in genre_styles(3)]
    assert names == ["drone", "pulse", "chords"]
    assert paths == [tmp_path / n / f"{n}.{i:05d}.wav" for n in names for i in range(2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for path in paths:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames) == (8000, 1, 4000)
        assert info.subtype == "PCM_16" and info.format == "WAV"


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    def digest(root: Path, seed: int, clips: int = 2) -> dict[str, str]:
        paths = write_dataset(root, classes=2, clips=clips, seconds=0.3, seed=seed)
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}

    a, b, c = digest(tmp_path / "a", 7), digest(tmp_path / "b", 7), digest(tmp_path / "c", 8)
    assert a == b
    assert not set(a.values()) & set(c.values())
    # a clip depends only on (seed, class, index): more clips leave the first ones alone
    more = digest(tmp_path / "d", 7, clips=3)
    assert {name: more[name] for name in a} == a
    x = make_clip(GENRES[0], seconds=0.2, sr=SR, rng=np.random.default_rng(3))
    y = make_clip(GENRES[0], seconds=0.2, sr=SR, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("style", genre_styles(10), ids=lambda s: s.name)
def test_clip_range_and_shape(style) -> None:
    clip = make_clip(style, seconds=1.0, sr=SR, rng=np.random.default_rng(0))
    assert clip.dtype == np.float32 and clip.shape == (SR,)
    assert np.isfinite(clip).all()
    peak = float(np.abs(clip).max())
    assert 0.3 <= peak <= 0.95
    assert float(np.std(clip)) > 0.01


def test_style_names_cycle_uniquely() -> None:
    styles = genre_styles(len(GENRES) * 2 + 1)
    names = [s.name for s in styles]
    assert len(set(names)) == len(names)
    assert names[len(GENRES)] == f"{GENRES[0].name}2"
    assert names[-1] == f"{GENRES[0].name}3"
    assert styles[len(GENRES)].tempo_bpm != GENRES[0].tempo_bpm


@pytest.mark.parametrize("kw", [{"classes": 0}, {"clips": 0}, {"seed": -1}])
def test_bad_options(tmp_path: Path, kw: dict) -> None:
    with pytest.raises(ConfigError):
        write_dataset(tmp_path, **kw)


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Mean MFCC and four one-number summaries per clip of a K-class set, read back from WAV."""
    librosa = pytest.importorskip("librosa")
    root = tmp_path_factory.mktemp("synth")
    paths = write_dataset(root, classes=K, clips=CLIPS, seconds=SECONDS, sr=SR, seed=0)
    out: dict[str, list] = {"mfcc": [], "rms": [], "centroid": [], "zcr": [], "onset": [], "y": []}
    names = [s.name for s in genre_styles(K)]
    for path in paths:
        clip, sr = sf.read(path, dtype="float32")
        assert sr == SR
        out["y"].append(names.index(path.parent.name))
        out["mfcc"].append(librosa.feature.mfcc(y=clip, sr=sr, n_mfcc=13).mean(axis=1))
        out["rms"].append(librosa.feature.rms(y=clip).mean())
        out["centroid"].append(librosa.feature.spectral_centroid(y=clip, sr=sr).mean())
        out["zcr"].append(librosa.feature.zero_crossing_rate(clip).mean())
        out["onset"].append(librosa.onset.onset_strength(y=clip, sr=sr).mean())
    return {k: np.asarray(v) for k, v in out.items()}


def test_classes_are_learnable_from_mean_mfcc(summary: dict[str, np.ndarray]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    acc = cross_val_score(model, summary["mfcc"], summary["y"], cv=cv).mean()
    assert acc > 1 / K + 0.3, acc


@pytest.mark.parametrize("feature", ["rms", "centroid", "zcr", "onset"])
def test_no_single_summary_feature_separates_the_classes(
    summary: dict[str, np.ndarray], feature: str
) -> None:
    # the best a single feature can do: a tree on it alone with one leaf per class, scored
    # on the very clips it was fit to (optimistic, so passing is meaningful)
    from sklearn.tree import DecisionTreeClassifier

    x = summary[feature][:, None]
    tree = DecisionTreeClassifier(max_leaf_nodes=K, random_state=0).fit(x, summary["y"])
    acc = tree.score(x, summary["y"])
    assert acc < 0.95, (feature, acc)
