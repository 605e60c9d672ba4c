"""`SourceContract`: what every source reader must do, written once as tests.

Each reader (`features.importers.read_pickle`, ``read_ts``, ``read_table``) gets a test
class in ``tests/features/test_importers.py`` that subclasses `SourceContract` and says how to write
a file of its format; the contract's ``test_*`` methods then run against that reader, so
every format is held to the same rules (Optuna does the same for its samplers in
``optuna/testing/pytest_samplers.py``). A new reader subclasses it too.

The rules (each one a test below):

* it returns an `ImportResult` whose records hold ``float32[T, D]`` frames, C-contiguous,
  T >= 1, every value finite, one D per file, and the labels as given (strings);
* a record's ``clip_id`` is ``"<file name>#<i>"`` and its group is that id unless the
  source names groups; item indices (and groups) count bad items too, so a fix or a drop
  never moves a neighbour's id;
* the split comes from the file name (``*_train``, ``*_TEST``), else None;
* a bad item (a non-finite value, an empty label, another frame dimension) becomes one
  `ItemError` that names ``"<path>#<i>"``, the reader's stage and the rule; the others
  are kept;
* a missing file, a file that is not of the format, and a file that lacks a part the
  format requires (the CSV's label column, ...) raise `InputError` naming the file and
  what is missing;
* `read_source` picks this reader from the file extension.

This module imports neither pytest nor anything heavy at import time (pytest is imported
inside the tests that need ``pytest.raises``), so ``import features.testing`` works where
pytest is not installed; ``tmp_path`` is pytest's fixture, passed by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from features.importers import ImportResult, read_source
from seqsweep.errors import InputError

__all__ = ["Item", "SourceContract"]

Item = tuple[np.ndarray, str]
"""One item a test writes: ``(frames, label)`` with frames ``float64[T, D]``."""


class SourceContract:
    """Base class of one reader's tests: subclass it, set the attributes, write `write`.

    Attributes
    ----------
    extension : the file extension `read_source` maps to this reader (``".pkl"``).
    stage : the ``ItemError.stage`` this reader reports (``"pickle"``).
    max_frames : the most frames per item the format holds (1 for a table of one row
        per clip); None for no limit.
    """

    extension: str
    stage: str
    max_frames: int | None = None

    # ---- what a subclass provides ----------------------------------------------------
    def write(self, path: Path, items: Sequence[Item], *, groups: Sequence[str] | None = None) -> Path:
        """Write ``items`` (and ``groups``, one per item, when given) to ``path`` in this format."""
        raise NotImplementedError

    def read(self, path: Path, *, grouped: bool = False) -> ImportResult:
        """Read ``path`` with this reader; ``grouped``: it was written with groups."""
        raise NotImplementedError

    def write_without_required_part(self, path: Path) -> str:
        """Write a file that lacks a part the format requires; return that part's name,
        as the error message must spell it (``"'label'"``)."""
        raise NotImplementedError

    # ---- helpers ---------------------------------------------------------------------
    def _items(self, dims: Sequence[int], labels: Sequence[str] | None = None) -> list[Item]:
        """Items of dimension ``dims[i]``, lengths 1, 2, 3, ... (capped by ``max_frames``)."""
        rng = np.random.default_rng(len(dims))
        labels = labels if labels is not None else [f"c{i % 2}" for i in range(len(dims))]
        out = []
        for i, (d, label) in enumerate(zip(dims, labels, strict=True)):
            t = min(i + 1, self.max_frames or i + 1)
            out.append((rng.uniform(1.0, 9.0, size=(t, d)), label))
        return out

    def _path(self, tmp_path: Path, stem: str = "source") -> Path:
        return tmp_path / f"{stem}{self.extension}"

    def _assert_item_error(self, res: ImportResult, path: Path, index: int, rule: str) -> None:
        """``res`` has exactly one error, for item ``index`` of ``path``, mentioning ``rule``."""
        assert len(res.errors) == 1, res.errors
        err = res.errors[0]
        where = f"{path}#{index}"
        assert err.path == where or err.path.startswith(f"{where} "), err.path  # .ts adds the line
        assert err.stage == self.stage
        assert err.error_type == "InputError"
        assert err.message.startswith(where), err.message  # may add the line or the column
        assert rule in err.message, err.message

    # ---- the contract ----------------------------------------------------------------
    def test_records_are_float32_frames_with_their_labels(self, tmp_path: Path) -> None:
        items = self._items([2, 2, 2], labels=["up", "down", "up"])
        res = self.read(self.write(self._path(tmp_path), items))
        assert isinstance(res, ImportResult)
        assert res.errors == []
        assert [r.label for r in res.records] == ["up", "down", "up"]
        for rec, (frames, _) in zip(res.records, items, strict=True):
            assert rec.frames.dtype == np.float32
            assert rec.frames.flags.c_contiguous
            assert rec.frames.shape == frames.shape
            assert rec.n_frames == frames.shape[0] >= 1
            np.testing.assert_allclose(rec.frames, frames, rtol=1e-6)
        assert res.dim == 2

    def test_ids_count_items_and_groups_default_to_them(self, tmp_path: Path) -> None:
        path = self.write(self._path(tmp_path, "ids"), self._items([1, 1, 1]))
        res = self.read(path)
        assert [r.clip_id for r in res.records] == [f"{path.name}#{i}" for i in range(3)]
        assert [r.group for r in res.records] == [r.clip_id for r in res.records]

    def test_groups_given_per_item(self, tmp_path: Path) -> None:
        items = self._items([1, 1, 1])
        items[1] = (np.full_like(items[1][0], np.inf), items[1][1])
        path = self.write(self._path(tmp_path), items, groups=["work1", "work2", "work1"])
        res = self.read(path, grouped=True)
        # the bad item still counts: item 2 keeps its group
        assert [r.group for r in res.records] == ["work1", "work1"]
        assert [r.clip_id for r in res.records] == [f"{path.name}#0", f"{path.name}#2"]

    def test_split_from_the_file_name(self, tmp_path: Path) -> None:
        for stem, split in [("chords_train", "train"), ("Tiny_TEST", "test"), ("contest", None)]:
            res = self.read(self.write(self._path(tmp_path, stem), self._items([1, 1])))
            assert {r.split for r in res.records} == {split}, stem

    def test_a_non_finite_value_is_an_item_error_and_the_others_stay(self, tmp_path: Path) -> None:
        items = self._items([2, 2, 2])
        frames = items[1][0].copy()
        frames[-1, 0] = np.inf
        items[1] = (frames, items[1][1])
        path = self.write(self._path(tmp_path), items)
        res = self.read(path)
        self._assert_item_error(res, path, 1, "finite")
        assert [r.clip_id for r in res.records] == [f"{path.name}#0", f"{path.name}#2"]
        np.testing.assert_allclose(res.records[1].frames, items[2][0], rtol=1e-6)

    def test_an_empty_label_is_an_item_error(self, tmp_path: Path) -> None:
        path = self.write(self._path(tmp_path), self._items([1, 1, 1], labels=["a", "", "b"]))
        res = self.read(path)
        self._assert_item_error(res, path, 1, "label")
        assert [r.label for r in res.records] == ["a", "b"]

    def test_one_frame_dimension_per_file(self, tmp_path: Path) -> None:
        res = self.read(self.write(self._path(tmp_path), self._items([2, 2, 3])))
        assert len({r.frames.shape[1] for r in res.records}) == 1
        assert res.errors, "an item of another dimension must be reported, not dropped"
        assert len(res.records) + len(res.errors) == 3

    def test_a_missing_file_names_itself(self, tmp_path: Path) -> None:
        import pytest

        path = self._path(tmp_path, "nowhere")
        with pytest.raises(InputError, match="existing file") as info:
            self.read(path)
        assert info.value.where == str(path)

    def test_a_file_of_another_format_is_refused(self, tmp_path: Path) -> None:
        import pytest

        path = self._path(tmp_path, "garbage")
        path.write_bytes(b"\x80\x04\x95garbage\x00\xff\xfe")
        with pytest.raises(InputError) as info:
            self.read(path)
        assert info.value.where.startswith(str(path))

    def test_a_missing_required_part_is_named(self, tmp_path: Path) -> None:
        import pytest

        path = self._path(tmp_path, "incomplete")
        needle = self.write_without_required_part(path)
        with pytest.raises(InputError) as info:
            self.read(path)
        assert info.value.where.startswith(str(path))
        assert needle in str(info.value)

    def test_read_source_picks_this_reader(self, tmp_path: Path) -> None:
        path = self.write(self._path(tmp_path), self._items([2, 2]))
        mine, dispatched = self.read(path), read_source(path)
        assert [r.clip_id for r in dispatched.records] == [r.clip_id for r in mine.records]
        for a, b in zip(dispatched.records, mine.records, strict=True):
            np.testing.assert_array_equal(a.frames, b.frames)
