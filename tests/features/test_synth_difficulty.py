"""The synthetic audio's difficulty knob (`features.synth.write_dataset(difficulty=...)`)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from features.synth import GENRES, blend, write_dataset
from seqsweep.errors import ConfigError


def test_blend_moves_a_style_towards_another_and_keeps_its_name():
    a, b = GENRES[0], GENRES[1]
    assert blend(a, b, 0.0) == a
    far = blend(a, b, 1.0)
    assert far.name == a.name and far.chord == b.chord and far.rolloff == pytest.approx(b.rolloff)
    assert far.tempo_bpm == pytest.approx(b.tempo_bpm)
    half = blend(a, b, 0.4)
    assert half.chord == a.chord and min(a.even, b.even) <= half.even <= max(a.even, b.even)
    with pytest.raises(ConfigError, match="amount: must be between 0 and 1"):
        blend(a, b, 1.5)


def test_difficulty_zero_keeps_the_clips_and_more_changes_them(tmp_path):
    plain = write_dataset(tmp_path / "a", classes=3, clips=2, seconds=0.5)
    again = write_dataset(tmp_path / "b", classes=3, clips=2, seconds=0.5, difficulty=0.0)
    hard = write_dataset(tmp_path / "c", classes=3, clips=2, seconds=0.5, difficulty=0.6)
    read = [[sf.read(p)[0] for p in paths] for paths in (plain, again, hard)]
    assert all(np.array_equal(x, y) for x, y in zip(read[0], read[1]))
    assert not any(np.array_equal(x, y) for x, y in zip(read[0], read[2]))
    with pytest.raises(ConfigError, match="difficulty: must be in"):
        write_dataset(tmp_path / "d", classes=2, clips=1, difficulty=1.0)
