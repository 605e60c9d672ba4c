"""Tests for `features.safe_pickle` and `features.importers` on data made here.

Each reader has a test class that subclasses `features.testing.SourceContract`: the
contract's tests (what every source must do) run against it, beside its own.

The real UCR/UEA files come from aeon's bundled datasets and are skipped when aeon
(an optional ``[bench]`` dependency) is not installed.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from features.importers import (
    GroupFile,
    ImportResult,
    Record,
    read_pickle,
    read_source,
    read_table,
    read_ts,
    split_from_name,
)
from features.safe_pickle import load_plain_pickle, loads_plain_pickle
from features.testing import Item, SourceContract
from seqsweep.errors import ConfigError, InputError

# ---- safe_pickle -----------------------------------------------------------------------


class _Evil:
    """Pickles as a call to os.system that would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Rot13:
    def __reduce__(self):
        return (codecs.encode, ("abc", "rot13"))


def _dump(path: Path, obj: object, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_os_system_pickle_is_refused_before_it_runs(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = _dump(tmp_path / "train.pkl", [np.arange(3.0), _Evil(marker)], protocol)
    with pytest.raises(InputError) as info:
        load_plain_pickle(path)
    assert info.value.where == str(path)
    assert info.value.value == f"global {os.system.__module__}.system"
    assert "may hold only numpy arrays" in str(info.value)
    assert not marker.exists()
    # the importer refuses the whole file the same way
    with pytest.raises(InputError, match="system"):
        read_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj, name, protocol",
    [
        (eval, "builtins.eval", 4),
        (eval, "__builtin__.eval", 2),  # protocol 2 spells builtins the Python 2 way
        (np.loadtxt, "numpy.loadtxt", 4),
        (np.int64, "numpy.int64", 4),  # the type, not a scalar
        (1 + 2j, "builtins.complex", 4),
        ({1, 2}, "builtins.set", 3),  # protocol 4+ writes sets with no global at all
        (np.array([1, 2j], dtype=object), "builtins.complex", 5),  # object array, bad element
    ],
)
def test_other_globals_are_refused(obj: object, name: str, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    with pytest.raises(InputError) as info:
        loads_plain_pickle(data, where="x.pkl")
    assert info.value.value == f"global {name}"
    assert info.value.where == "x.pkl"


def test_codecs_encode_only_for_latin1() -> None:
    with pytest.raises(InputError, match="latin-1"):
        loads_plain_pickle(pickle.dumps(_Rot13(), protocol=2))


def _plain() -> dict:
    return {
        "float": np.arange(5.0),
        "int2d": np.arange(6, dtype=np.int32).reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "view": np.arange(10.0)[::3],
        "big_endian": np.array([1, 2], dtype=">i4"),
        "strings": np.array(["a", "bc"]),
        "objects": np.array([np.arange(2.0), np.arange(3.0)], dtype=object),
        "scalars": [np.float64(1.0), np.int64(3), np.float32(2.5), np.bool_(True)],
        "builtins": [b"bytes", "str", 1, 2.5, True, None, (1, 2), [3], {"k": -1}],
    }


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_data_round_trips(tmp_path: Path, protocol: int) -> None:
    obj = _plain()
    path = _dump(tmp_path / "p.pkl", obj, protocol)
    got = load_plain_pickle(path)
    ref = pickle.loads(path.read_bytes())  # what an unrestricted load gives
    assert got.keys() == obj.keys()
    for key in ("float", "int2d", "fortran", "view", "big_endian", "strings"):
        np.testing.assert_array_equal(got[key], obj[key])
        # numpy itself stores >i4 as native int32 under protocols 2-4
        assert got[key].dtype == ref[key].dtype
    assert got["objects"].dtype == object
    for a, b in zip(got["objects"], obj["objects"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert got["scalars"] == obj["scalars"]
    assert [type(v) for v in got["scalars"]] == [np.float64, np.int64, np.float32, np.bool_]
    assert got["builtins"] == obj["builtins"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_numpy1_spelling_loads_without_warnings(protocol: int) -> None:
    data = pickle.dumps([np.arange(3.0), np.float64(2.0)], protocol=protocol)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arr, scalar = loads_plain_pickle(old)
    np.testing.assert_array_equal(arr, np.arange(3.0))
    assert scalar == 2.0


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps([1, 2, 3])[:-3]])
def test_unreadable_pickles(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(InputError, match="readable pickle"):
        load_plain_pickle(path)


def test_missing_pickle_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="readable file"):
        load_plain_pickle(tmp_path / "nope.pkl")


# ---- read_pickle -----------------------------------------------------------------------


def _chords() -> list[tuple[np.ndarray, object]]:
    return [
        (np.array([-1.0, -1.0, 144.0, 12.0, 32.0, -1.0, -1.0]), 0),
        (np.array([5.0, -1.0, 7.0, -1.0]), 1),  # interior padding is kept
        (np.array([3.0]), 2),
    ]


def _write_groups(path: Path, groups: Sequence[str] | None) -> None:
    """The groups file of a pickle or .ts source: ``<path>.groups``, one line per item."""
    if groups is not None:
        path.with_suffix(".groups").write_text("\n".join(groups) + "\n")


def _group_file(path: Path, grouped: bool) -> GroupFile | None:
    return GroupFile.read(path.with_suffix(".groups")) if grouped else None


class TestReadPickle(SourceContract):
    """`read_pickle`: the source contract, then the pickle layouts and padding."""

    extension = ".pkl"
    stage = "pickle"

    def write(self, path: Path, items: Sequence[Item], *, groups: Sequence[str] | None = None) -> Path:
        _write_groups(path, groups)
        return _dump(path, list(items))

    def read(self, path: Path, *, grouped: bool = False) -> ImportResult:
        return read_pickle(path, groups=_group_file(path, grouped))

    def write_without_required_part(self, path: Path) -> str:
        _dump(path, {"features": [np.ones(2)], "classes": [0]})
        return "'x'+'y'"

    def test_read_pickle_strips_end_padding(self, tmp_path: Path) -> None:
        path = _dump(tmp_path / "chords_train.pkl", _chords(), protocol=2)
        res = read_pickle(path)
        assert isinstance(res, ImportResult) and res.errors == [] and res.columns is None
        assert [r.clip_id for r in res.records] == [f"chords_train.pkl#{i}" for i in range(3)]
        assert [r.group for r in res.records] == [r.clip_id for r in res.records]
        assert [r.label for r in res.records] == ["0", "1", "2"]
        assert {r.split for r in res.records} == {"train"}
        first = res.records[0].frames
        assert first.dtype == np.float32 and first.shape == (3, 1)
        np.testing.assert_array_equal(first[:, 0], [144.0, 12.0, 32.0])
        np.testing.assert_array_equal(res.records[1].frames[:, 0], [5.0, -1.0, 7.0])
        assert res.records[2].frames.shape == (1, 1)
        assert res.dim == 1

    def test_read_pickle_keeps_padding_when_asked(self, tmp_path: Path) -> None:
        path = _dump(tmp_path / "c.pkl", _chords())
        res = read_pickle(path, pad_value=None)
        assert res.records[0].n_frames == 7
        assert {r.split for r in res.records} == {None}

    def test_read_pickle_2d_and_string_labels(self, tmp_path: Path) -> None:
        pad = -np.ones((1, 3))
        seq = np.concatenate([pad, np.arange(12.0).reshape(4, 3), pad, pad])
        seq[2, 1] = -1.0  # a partly -1 frame is not padding
        path = _dump(tmp_path / "x_test.pkl", [(seq, "rock"), (np.ones((2, 3)), np.str_("jazz"))])
        res = read_pickle(path)
        assert res.errors == []
        assert res.records[0].frames.shape == (4, 3)
        assert [r.label for r in res.records] == ["rock", "jazz"]
        assert res.records[0].split == "test"

    def test_one_bad_item_never_loses_the_others(self, tmp_path: Path) -> None:
        items = [
            (np.array([-1.0, 1.0, 2.0, -1.0]), 0),   # 0 good
            (np.array([-1.0, -1.0, -1.0]), 1),      # 1 all padding
            (np.array(["a", "b"]), 0),              # 2 not numeric
            (np.array([1.0]), 0, "extra"),          # 3 not a pair
            np.array([1.0, 2.0]),                   # 4 not a pair
            (np.zeros((2, 2, 2)), 1),               # 5 3-D
            (np.array([1.0, np.nan]), 1),           # 6 not finite
            (np.array([1.0, 2.0]), 0.5),            # 7 bad label
            (np.ones((3, 2)), 1),                   # 8 another dimension
            ([1.0, [2.0, 3.0]], 1),                 # 9 ragged
            (np.array([4.0, 5.0, -1.0]), 1),        # 10 good
        ]
        path = _dump(tmp_path / "mixed.pkl", items)
        res = read_pickle(path)
        assert [r.clip_id for r in res.records] == ["mixed.pkl#0", "mixed.pkl#10"]
        np.testing.assert_array_equal(res.records[1].frames[:, 0], [4.0, 5.0])
        bad = {int(e.path.rsplit("#", 1)[1]): e for e in res.errors}
        assert sorted(bad) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
        for i, err in bad.items():
            assert err.path == f"{path}#{i}"
            assert err.stage == "pickle" and err.error_type == "InputError"
            assert err.message.startswith(f"{path}#{i}: ")
        assert "besides padding" in bad[1].message
        assert "only numbers" in bad[2].message
        assert "(sequence, label) pair" in bad[3].message and "tuple of length 3" in bad[3].message
        assert "1-D" in bad[5].message and "(2, 2, 2)" in bad[5].message
        assert "finite" in bad[6].message
        assert "label" in bad[7].message and "0.5" in bad[7].message
        assert "same frame dimension (1)" in bad[8].message

    def test_parallel_layouts(self, tmp_path: Path) -> None:
        seqs = [np.array([-1.0, 1.0, 2.0]), np.array([3.0, -1.0])]
        expected = [[1.0, 2.0], [3.0]]
        for name, obj in [
            ("tuple.pkl", (seqs, [0, 1])),
            ("dict.pkl", {"X": seqs, "y": np.array([0, 1])}),
            ("padded.pkl", {"x": np.array([[1.0, 2.0, -1.0], [3.0, -1.0, -1.0]]), "Y": ["a", "b"]}),
        ]:
            res = read_pickle(_dump(tmp_path / name, obj))
            assert res.errors == [], name
            assert len(res.records) == 2, name
            if name != "padded.pkl":
                assert [r.frames[:, 0].tolist() for r in res.records] == expected
        padded = read_pickle(tmp_path / "padded.pkl").records
        assert [r.frames[:, 0].tolist() for r in padded] == [[1.0, 2.0], [3.0]]
        assert [r.label for r in padded] == ["a", "b"]
        # a list (not a tuple) of exactly two pairs is still read as pairs
        two_pairs = read_pickle(_dump(tmp_path / "two.pkl", [(np.ones(2), 0), (np.ones(3), 1)]))
        assert [r.n_frames for r in two_pairs.records] == [2, 3]
        two_tuple = read_pickle(_dump(tmp_path / "two_t.pkl", ((np.ones(2), 0), (np.ones(3), 1))))
        assert [r.n_frames for r in two_tuple.records] == [2, 3]

    @pytest.mark.parametrize(
        "obj, match",
        [
            ({"features": [], "classes": []}, "keys"),
            ({"X": [np.ones(2)], "y": [0, 1]}, "same length"),
            ([], "at least one"),
            (np.ones(3), "list of \\(sequence, label\\) pairs"),
            (42, "list of"),
        ],
    )
    def test_read_pickle_file_level_errors(self, tmp_path: Path, obj: object, match: str) -> None:
        path = _dump(tmp_path / "bad.pkl", obj)
        with pytest.raises(InputError, match=match) as info:
            read_pickle(path)
        assert info.value.where == str(path)

    def test_read_pickle_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="existing file"):
            read_pickle(tmp_path / "none.pkl")


# ---- names and records -----------------------------------------------------------------


@pytest.mark.parametrize(
    "stem, split",
    [("train", "train"), ("TEST", "test"), ("chords_test", "test"), ("a-train", "train"),
     ("JapaneseVowels_TRAIN", "train"), ("contest", None), ("pretrain", None), ("data", None),
     ("train_set", None)],
)
def test_split_from_name(stem: str, split: str | None) -> None:
    assert split_from_name(stem) == split


def test_record_is_frozen() -> None:
    rec = Record("a#0", "a#0", "x", None, np.zeros((1, 1), np.float32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.label = "y"  # type: ignore[misc]


# ---- read_ts ---------------------------------------------------------------------------

UNIVARIATE = """\
# a comment
@problemName Tiny
@timeStamps false
@missing true
@univariate true
@equalLength false
@classLabel true up down

@data
1,?,3,?:up
?,?,2.5,4:down
?,?,?:up
5:down
"""

MULTIVARIATE = """\
@problemName Multi
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b c
@data
1,2,3:4,5,6:a
1,2:3,4:b
1,2,3:4,5:a
1,x,3:4,5,6:b
1,2,3:4,5,6:z
1,2,3:c
7,8,9,10:1,2,3,4:c
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _aeon_data() -> Path:
    aeon = pytest.importorskip("aeon")
    root = Path(aeon.__file__).parent / "datasets" / "data"
    if not root.is_dir():
        pytest.skip(f"aeon has no bundled datasets at {root}")
    return root


class TestReadTs(SourceContract):
    """`read_ts`: the source contract, then the .ts header, missing values and aeon's files."""

    extension = ".ts"
    stage = "ts"

    def write(self, path: Path, items: Sequence[Item], *, groups: Sequence[str] | None = None) -> Path:
        classes = sorted({label for _, label in items if label})
        lines = ["@problemName contract", "@missing false", "@equalLength false",
                 f"@classLabel true {' '.join(classes)}", "@data"]
        for frames, label in items:
            channels = (",".join(repr(float(v)) for v in channel) for channel in frames.T)
            lines.append(":".join(channels) + f":{label}")
        _write_groups(path, groups)
        return _write(path.parent, path.name, "\n".join(lines) + "\n")

    def read(self, path: Path, *, grouped: bool = False) -> ImportResult:
        return read_ts(path, groups=_group_file(path, grouped))

    def write_without_required_part(self, path: Path) -> str:
        _write(path.parent, path.name, "@problemName X\n@data\n1,2:a\n")
        return "@classLabel"

    def test_read_ts_univariate_missing_values_filled(self, tmp_path: Path) -> None:
        res = read_ts(_write(tmp_path, "Tiny_TRAIN.ts", UNIVARIATE))
        assert res.errors == []
        frames = [r.frames[:, 0].tolist() for r in res.records]
        assert frames == [[1.0, 2.0, 3.0, 3.0], [2.5, 2.5, 2.5, 4.0], [0.0, 0.0, 0.0], [5.0]]
        assert [r.frames.shape for r in res.records] == [(4, 1), (4, 1), (3, 1), (1, 1)]
        assert [r.label for r in res.records] == ["up", "down", "up", "down"]
        assert [r.clip_id for r in res.records] == [f"Tiny_TRAIN.ts#{i}" for i in range(4)]
        assert {r.split for r in res.records} == {"train"}
        assert all(r.frames.dtype == np.float32 for r in res.records)

    def test_read_ts_variable_length_and_bad_lines(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "multi.ts", MULTIVARIATE)
        res = read_ts(path)
        assert [r.clip_id for r in res.records] == ["multi.ts#0", "multi.ts#1", "multi.ts#6"]
        assert [r.frames.shape for r in res.records] == [(3, 2), (2, 2), (4, 2)]
        np.testing.assert_array_equal(res.records[0].frames, [[1, 4], [2, 5], [3, 6]])
        assert {r.split for r in res.records} == {None}
        msgs = {e.path: e.message for e in res.errors}
        assert list(msgs) == [
            f"{path}#2 (line 10)", f"{path}#3 (line 11)", f"{path}#4 (line 12)", f"{path}#5 (line 13)",
        ]
        m = list(msgs.values())
        assert "same length" in m[0] and "channel 1 has 2" in m[0]
        assert "numbers or ?" in m[1] and "'x'" in m[1]
        assert "declared classes" in m[2] and "'z'" in m[2]
        assert "2 channel(s)" in m[3]
        assert all(e.stage == "ts" for e in res.errors)

    @pytest.mark.parametrize(
        "header, match",
        [
            ("@problemName X\n@classLabel true a\n", "must start with @"),
            ("@timeStamps true\n@classLabel true a\n@data\n", "time-stamped"),
            ("@classLabel false\n@data\n", "class labels"),
            ("@data\n", "class labels"),
            ("@targetLabel true\n@data\n", "regression"),
            ("@missing maybe\n@classLabel true a\n@data\n", "true or false"),
            ("@dimensions zero\n@classLabel true a\n@data\n", "positive integer"),
            ("@classLabel true\n@data\n", "list the class values"),
            ("@univariate true\n@dimensions 3\n@classLabel true a\n@data\n", "@dimensions 1"),
            ("junk\n@data\n", "must start with @"),
        ],
    )
    def test_read_ts_header_errors(self, tmp_path: Path, header: str, match: str) -> None:
        path = _write(tmp_path, "h.ts", header + "1,2:a\n")
        with pytest.raises(InputError, match=match):
            read_ts(path)

    def test_read_ts_needs_data_line(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="@data"):
            read_ts(_write(tmp_path, "h.ts", "@problemName X\n@classLabel true a\n# only a header\n"))

    def test_read_ts_series_length_and_case_blind_header(self, tmp_path: Path) -> None:
        text = "@TIMESTAMPS false\n@equalLength true\n@seriesLength 3\n@dimension 1\n" \
            "@classLabel true 1 2\n@data\n1,2,3:1\n1,2:2\n4,5,6:2\n"
        res = read_ts(_write(tmp_path, "eq_test.ts", text))
        assert [r.label for r in res.records] == ["1", "2"]
        assert {r.split for r in res.records} == {"test"}
        assert len(res.errors) == 1 and "@seriesLength 3" in res.errors[0].message

    def test_read_ts_japanese_vowels(self) -> None:
        path = _aeon_data() / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts"
        res = read_ts(path)
        assert res.errors == []
        assert len(res.records) == 270
        assert {r.frames.shape[1] for r in res.records} == {12}
        assert sorted({r.label for r in res.records}) == [str(i) for i in range(1, 10)]
        lengths = [r.n_frames for r in res.records]
        # the archive says 7-29 over TRAIN and TEST; TRAIN alone runs 7-26
        assert min(lengths) == 7 and max(lengths) <= 29
        assert {r.split for r in res.records} == {"train"}
        from aeon.datasets import load_from_ts_file

        x, y = load_from_ts_file(str(path))
        for rec, ref, lab in zip(res.records, x, y, strict=True):
            np.testing.assert_allclose(rec.frames, np.asarray(ref).T, rtol=1e-6)
            assert rec.label == str(lab)

    def test_read_ts_basic_motions(self) -> None:
        res = read_ts(_aeon_data() / "BasicMotions" / "BasicMotions_TRAIN.ts")
        assert res.errors == []
        assert len(res.records) == 40
        assert {r.frames.shape for r in res.records} == {(100, 6)}
        assert sorted({r.label for r in res.records}) == ["Badminton", "Running", "Standing", "Walking"]

    def test_read_ts_rejects_aeon_timestamps_file(self) -> None:
        path = _aeon_data() / "UnitTest" / "UnitTestTimeStamps_TRAIN.ts"
        if not path.exists():
            pytest.skip("aeon's time-stamped unit-test file is not bundled")
        with pytest.raises(InputError, match="time-stamped"):
            read_ts(path)


# ---- read_table ------------------------------------------------------------------------

GTZAN = """\
filename,length,chroma_stft_mean,rms_mean,tempo,label
blues.00000.wav,661794,0.35,0.13,123.0,blues
blues.00001.wav,661794,0.34,,107.6,blues
rock.00000.wav,661794,0.41,0.11,99.4,rock
rock.00001.wav,661794,0.38,0.09,inf,rock
jazz.00000.wav,661794,0.30,0.05,112.3,jazz
"""


class TestReadTable(SourceContract):
    """`read_table`: the source contract, then GTZAN-style tables and their columns."""

    extension = ".csv"
    stage = "table"
    max_frames = 1  # one row per clip

    def write(self, path: Path, items: Sequence[Item], *, groups: Sequence[str] | None = None) -> Path:
        dim = max(frames.shape[1] for frames, _ in items)
        header = [f"f{j}" for j in range(dim)] + ["label"] + (["group"] if groups else [])
        lines = [",".join(header)]
        for i, (frames, label) in enumerate(items):
            cells = [repr(float(v)) for v in frames[0]] + [""] * (dim - frames.shape[1]) + [label]
            lines.append(",".join(cells + ([groups[i]] if groups else [])))
        return _write(path.parent, path.name, "\n".join(lines) + "\n")

    def read(self, path: Path, *, grouped: bool = False) -> ImportResult:
        return read_table(path, group_column="group" if grouped else None)

    def write_without_required_part(self, path: Path) -> str:
        _write(path.parent, path.name, "a,b,genre\n1,2,x\n")
        return "'label'"

    def test_read_table_gtzan_like(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "features_30_sec.csv", GTZAN)
        res = read_table(path)
        assert res.columns == ["chroma_stft_mean", "rms_mean", "tempo"]
        assert [r.clip_id for r in res.records] == ["blues.00000.wav", "rock.00000.wav", "jazz.00000.wav"]
        assert [r.label for r in res.records] == ["blues", "rock", "jazz"]
        assert [r.group for r in res.records] == [r.clip_id for r in res.records]
        assert all(r.frames.shape == (1, 3) and r.frames.dtype == np.float32 for r in res.records)
        np.testing.assert_allclose(res.records[0].frames[0], [0.35, 0.13, 123.0], rtol=1e-6)
        assert {r.split for r in res.records} == {None}
        assert [e.path for e in res.errors] == [f"{path}#1", f"{path}#3"]
        assert "rms_mean" in res.errors[0].message and "tempo" in res.errors[1].message
        assert all(e.stage == "table" for e in res.errors)

    def test_read_table_missing_label_column(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "t.csv", "a,b,genre\n1,2,x\n")
        with pytest.raises(InputError) as info:
            read_table(path)
        msg = str(info.value)
        assert "'label'" in msg and "columns found: a, b, genre" in msg
        assert read_table(path, label_column="genre").records[0].label == "x"

    def test_read_table_non_numeric_feature_column(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "t.csv", "a,mood,label\n1,happy,x\n2,sad,y\n")
        with pytest.raises(InputError) as info:
            read_table(path)
        assert "'mood'" in info.value.where and "'happy'" in str(info.value)
        res = read_table(path, drop_columns=("mood",))
        assert res.columns == ["a"]

    def test_read_table_split_group_id_columns(self, tmp_path: Path) -> None:
        text = (
            "track,seg,f1,f2,split,label\n"
            "t1,t1.0,1,2,train,a\n"
            "t1,t1.1,1,2,TRAIN,a\n"
            "t2,t2.0,3,4,test,b\n"
            "t2,t2.1,3,4,valid,b\n"
            "t3,t2.0,3,4,,b\n"
            "t4,t4.0,true,0,,b\n"
        )
        path = _write(tmp_path, "t.csv", text)
        res = read_table(path, id_column="seg", group_column="track")
        assert [r.clip_id for r in res.records] == ["t1.0", "t1.1", "t2.0", "t4.0"]
        assert [r.group for r in res.records] == ["t1", "t1", "t2", "t4"]
        assert [r.split for r in res.records] == ["train", "train", "test", None]
        np.testing.assert_array_equal(res.records[3].frames, [[1.0, 0.0]])
        assert res.columns == ["f1", "f2"]
        assert len(res.errors) == 2
        assert "valid" in res.errors[0].message and "unique" in res.errors[1].message
        with pytest.raises(InputError, match="id column 'nope'"):
            read_table(path, id_column="nope")

    def test_read_table_row_ids_and_file_split(self, tmp_path: Path) -> None:
        res = read_table(_write(tmp_path, "feat_test.csv", "x,label\n1.5,0\n2.5,1\n"))
        assert [r.clip_id for r in res.records] == ["feat_test.csv#0", "feat_test.csv#1"]
        assert [r.label for r in res.records] == ["0", "1"]
        assert {r.split for r in res.records} == {"test"}

    @pytest.mark.parametrize(
        "text, match",
        [("label\nx\n", "numeric feature column"), ("a,label\n", "at least one row"),
         ("", "readable CSV")],
    )
    def test_read_table_file_level_errors(self, tmp_path: Path, text: str, match: str) -> None:
        with pytest.raises(InputError, match=match):
            read_table(_write(tmp_path, "t.csv", text))


# ---- read_source -----------------------------------------------------------------------


def test_read_source_dispatch(tmp_path: Path) -> None:
    pkl = _dump(tmp_path / "a.pickle", _chords())
    assert len(read_source(pkl).records) == 3
    assert read_source(pkl, pad_value=None).records[0].n_frames == 7
    ts = _write(tmp_path, "u.TS", UNIVARIATE)
    assert len(read_source(ts).records) == 4
    csv = _write(tmp_path, "f.CSV", "x,genre\n1,a\n")
    assert read_source(csv, label_column="genre").columns == ["x"]
    txt = _write(tmp_path, "f.txt", "x,label\n1,a\n")
    assert read_source(txt, format="csv").records[0].label == "a"


def test_read_source_unknown_format(tmp_path: Path) -> None:
    path = _write(tmp_path, "f.txt", "x")
    with pytest.raises(ConfigError, match="pickle .*ts .*csv"):
        read_source(path)
    with pytest.raises(ConfigError, match="'arff'") as info:
        read_source(path, format="arff")
    assert info.value.where == "format"
    with pytest.raises(ConfigError, match="read_table"):
        read_source(_write(tmp_path, "g.csv", "x,label\n1,a\n"), pad_value=0)


# ---- the contract itself ---------------------------------------------------------------


class _LosesBadItems(TestReadPickle):
    """A reader that forgets its errors: the contract must catch it."""

    def read(self, path: Path, *, grouped: bool = False) -> ImportResult:
        res = super().read(path, grouped=grouped)
        return ImportResult(records=res.records, columns=res.columns)


class _ShiftsIds(TestReadTs):
    """A reader that numbers only the good items: the contract must catch it."""

    def read(self, path: Path, *, grouped: bool = False) -> ImportResult:
        res = super().read(path, grouped=grouped)
        records = [dataclasses.replace(r, clip_id=f"{path.name}#{i}") for i, r in enumerate(res.records)]
        return ImportResult(records=records, errors=res.errors)


@pytest.mark.parametrize(
    "broken, test",
    [(_LosesBadItems, "test_a_non_finite_value_is_an_item_error_and_the_others_stay"),
     (_LosesBadItems, "test_one_frame_dimension_per_file"),
     (_ShiftsIds, "test_groups_given_per_item"),
     (_ShiftsIds, "test_a_non_finite_value_is_an_item_error_and_the_others_stay")],
)
def test_the_contract_fails_a_broken_reader(tmp_path: Path, broken: type, test: str) -> None:
    with pytest.raises(AssertionError):
        getattr(broken(), test)(tmp_path)
