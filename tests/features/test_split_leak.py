"""A group is never on both sides of the test split, whatever a manifest changes between
extractions: a real store, extracted, its manifest changed, extracted again."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from features import FeatureSpec, FeatureStore, extract_audio
from seqsweep.errors import InputError

SPEC = FeatureSpec.create("wave", sr=1000)


def _manifest(path: Path, rows: list[tuple[Path, str, str, str]]) -> Path:
    """A manifest CSV of (audio file, label, group, split or '')."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["path", "label", "group", "split"])
        out.writerows([(str(audio), label, group, split) for audio, label, group, split in rows])
    return path


def _extract(manifest: Path, store: Path):
    summary = extract_audio(manifest, store=store, dataset="leak", spec=SPEC, use_ray=False, progress=False)
    assert summary.failed == 0, summary
    return summary


def _rows(store: Path):
    rows = FeatureStore(store).read_rows("leak", SPEC.name, columns=["clip_id", "source", "group", "split"])
    return rows.to_pandas().set_index("source")


def _no_group_straddles(store: Path) -> None:
    rows = _rows(store)
    sides = rows.groupby("group")["split"].nunique()
    assert (sides == 1).all(), rows.sort_values("group")
    recorded = FeatureStore(store).splits("leak")
    assert all(recorded[g] == s for g, s in zip(rows["group"], rows["split"])), (rows, recorded)


def test_a_moved_group_moves_every_row_of_it(synth_dir, tmp_path):
    files = sorted(synth_dir.rglob("*.wav"))
    by_class = {}
    for f in files:
        by_class.setdefault(f.parent.name, []).append(f)
    (a, b, c, *rest), (d, e, *_) = list(by_class.values())[:2]
    label_1, label_2 = a.parent.name, d.parent.name
    store = tmp_path / "store"
    # run 1: a and b form group "track"; nobody names a split, so the store draws it
    first = [(a, label_1, "track", ""), (b, label_1, "track", ""), (d, label_2, "d", ""), (e, label_2, "e", ""),
             *[(f, label_1, f.stem, "") for f in rest[:4]]]
    _extract(_manifest(tmp_path / "one.csv", first), store)
    _no_group_straddles(store)
    before = _rows(store)
    side = FeatureStore(store).splits("leak")["track"]
    other = "test" if side == "train" else "train"
    frames_b = FeatureStore(store).read_rows("leak", SPEC.name, columns=["source", "features"]).to_pandas()

    # run 2: the manifest names the other side for a only (its bytes unchanged), adds c to the
    # group, no longer lists b, and moves e from its own group into "track"
    second = [(a, label_1, "track", other), (c, label_1, "track", ""), (d, label_2, "d", ""),
              (e, label_2, "track", ""), *[(f, label_1, f.stem, "") for f in rest[:4]]]
    summary = _extract(_manifest(tmp_path / "two.csv", second), store)
    assert summary.added == 1 and summary.unchanged == 7  # c extracted; a, d, e and the rest are not
    assert any("follow their group" in note for note in summary.notes), summary.notes
    _no_group_straddles(store)
    rows = _rows(store)
    track = rows[rows["group"] == "track"]
    assert len(track) == 4 and set(track["split"]) == {other}  # a, b (not listed: still stored), c and e
    assert len(rows) == len(before) + 1  # no row doubled
    # the moved rows kept their frames
    after = FeatureStore(store).read_rows("leak", SPEC.name, columns=["source", "features"]).to_pandas()
    key = b.as_posix()
    np.testing.assert_array_equal(np.stack(after.set_index("source").loc[key, "features"]),
                                  np.stack(frames_b.set_index("source").loc[key, "features"]))

    # a third run that changes nothing moves nothing
    again = _extract(_manifest(tmp_path / "two.csv", second), store)
    assert again.added == 0 and not any("follow" in note for note in again.notes)
    _no_group_straddles(store)


def test_sources_of_one_group_naming_both_sides_are_refused(synth_dir, tmp_path):
    a, b = sorted(synth_dir.rglob("*.wav"))[:2]
    manifest = _manifest(tmp_path / "m.csv", [(a, a.parent.name, "track", "train"),
                                              (b, b.parent.name, "track", "test")])
    with pytest.raises(InputError, match=r"leak: split of group 'track': every source of a group must name the "
                                         r"same split .*\(got train and test\)"):
        _extract(manifest, tmp_path / "store")
