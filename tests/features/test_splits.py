"""`features.splits.group_split`, the one group-aware stratified split, and its four callers:
the test split, the CV folds, the inner early-stopping split and the ensemble's cross-fit.

The golden rows were recorded from the wrappers each caller had before they shared
`group_split` (commit 8603ea2): the same seeds must keep giving the same rows, or every
figure the project has published would move.
"""

from __future__ import annotations

import numpy as np
import pytest

from features.sequences import SequenceIndex
from features.splits import assign_test_split, group_split
from seqsweep.errors import ConfigError, InputError
from trainables.training.inner import inner_split
from trainables.trial.folds import make_plan

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 1])
PAIRS = np.array([f"t{i // 2}" for i in range(len(Y))], dtype=object)  # two rows a group
ALONE = np.arange(len(Y)).astype(str)  # every row its own group (a dataset without groups)


def _index(y: np.ndarray, groups: np.ndarray) -> SequenceIndex:
    classes = [f"class{i}" for i in range(int(y.max()) + 1)]
    return SequenceIndex(y, classes, groups, groups, np.ones(len(y), dtype=np.int64), 1)


def _layout(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Random rows: 2-4 classes, groups of 1-4 rows of one class (or one row each),
    every class with at least ``folds`` groups; and the folds."""
    rng = np.random.default_rng(seed)
    folds, n_classes = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    group_labels = np.concatenate([np.arange(n_classes).repeat(folds), rng.integers(0, n_classes, rng.integers(0, 30))])
    size = 1 if seed % 3 == 0 else int(rng.integers(2, 5))
    return group_labels.repeat(size), np.arange(len(group_labels)).repeat(size).astype(str), folds


# ---- golden: the rows the old wrappers gave -----------------------------------------------------
def test_cv_folds_are_the_old_folds():
    plan = make_plan(_index(Y, PAIRS), folds=3, seeds=2, base_seed=4)
    assert [(f.seed, f.fold, f.valid.tolist()) for f in plan.fits] == [
        (4, 0, [0, 1, 6, 7, 14, 15]), (4, 1, [8, 9, 10, 11, 16, 17]), (4, 2, [2, 3, 4, 5, 12, 13]),
        (5, 0, [2, 3, 4, 5, 10, 11]), (5, 1, [0, 1, 8, 9, 12, 13]), (5, 2, [6, 7, 14, 15, 16, 17])]
    alone = make_plan(_index(Y, ALONE), folds=4, seeds=1, base_seed=2)  # StratifiedGroupKFold even so
    assert [f.valid.tolist() for f in alone.fits] == [
        [2, 7, 14, 15, 17], [3, 8, 9, 13, 16], [0, 4, 10, 11], [1, 5, 6, 12]]


def test_inner_split_is_the_old_inner_split():
    fit_rows, stop_rows = inner_split(Y, PAIRS, fraction=0.25, seed=11)
    assert fit_rows.tolist() == [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15]
    assert stop_rows.tolist() == [4, 5, 10, 11, 16, 17]


def test_cross_fit_parts_are_the_old_parts():
    grouped = group_split(Y, PAIRS, folds=3, seed=2, kfold_when_ungrouped=True)
    assert [held.tolist() for _, held in grouped] == [
        [8, 9, 10, 11, 16, 17], [2, 3, 4, 5, 14, 15], [0, 1, 6, 7, 12, 13]]
    alone = group_split(Y, ALONE, folds=4, seed=2, kfold_when_ungrouped=True)  # StratifiedKFold
    assert [held.tolist() for _, held in alone] == [
        [2, 6, 10, 14, 16], [0, 5, 8, 13, 15], [3, 4, 9, 12], [1, 7, 11, 17]]


def test_test_split_is_the_old_test_split():
    labels = {f"g{i:02d}": ["rock", "jazz", "pop"][i % 3] for i in range(15)}
    split = assign_test_split(labels, test_size=0.3, seed=5)
    assert sorted(g for g, side in split.items() if side == "test") == ["g01", "g02", "g09", "g11", "g12"]
    # too few groups to stratify: each group's own hash draw
    few = assign_test_split({"a": "rock", "b": "rock", "c": "jazz", "d": "rock"}, test_size=0.3, seed=5)
    assert few == {"a": "train", "b": "test", "c": "train", "d": "train"}


# ---- properties -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(24))
def test_folds_keep_groups_whole_hold_every_row_once_and_stratify(seed):
    y, groups, folds = _layout(seed)
    for quick in (False, True):
        parts = group_split(y, groups, folds=folds, seed=seed, kfold_when_ungrouped=quick)
        assert len(parts) == folds
        for kept, held in parts:
            assert kept.dtype == held.dtype == np.int64
            assert set(groups[kept]).isdisjoint(groups[held])
            assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(y)))
        assert sorted(np.concatenate([held for _, held in parts]).tolist()) == list(range(len(y)))
        held_groups = np.array([np.bincount(y[held], minlength=y.max() + 1) for _, held in parts])
        held_groups //= len(y) // len(set(groups.tolist()))  # rows -> groups (equal sizes)
        assert (held_groups.max(axis=0) - held_groups.min(axis=0)).max() <= 1


@pytest.mark.parametrize("seed", range(12))
def test_a_hold_out_keeps_groups_whole_and_stratifies_the_groups(seed):
    rng = np.random.default_rng(seed)
    group_labels = np.concatenate([np.arange(3).repeat(5), rng.integers(0, 3, 30)])
    size = int(rng.integers(1, 4))
    y, groups = group_labels.repeat(size), np.array([f"g{i}" for i in range(len(group_labels))]).repeat(size)
    test_size = float(rng.choice([0.2, 0.25, 0.3]))
    ((kept, held),) = group_split(y, groups, test_size=test_size, seed=seed)
    assert set(groups[kept]).isdisjoint(groups[held])
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(y)))
    held_per_class = np.bincount(y[held], minlength=3) // size
    assert np.abs(held_per_class - test_size * np.bincount(group_labels)).max() <= 1


def test_the_seed_alone_decides_the_rows():
    y, groups, folds = _layout(4)
    for kwargs in ({"folds": folds}, {"test_size": 0.25}):
        runs = {seed: [held.tolist() for _, held in group_split(y, groups, seed=seed, **kwargs)] for seed in range(6)}
        assert runs == {seed: [held.tolist() for _, held in group_split(y, groups, seed=seed, **kwargs)]
                        for seed in range(6)}
        assert len({str(rows) for rows in runs.values()}) > 1


def test_fewer_parts_when_there_are_fewer_groups():
    y = np.array([0] * 12 + [1, 1])
    groups = np.array(["a", "b", "c", "d"] * 3 + ["e", "f"])
    parts = group_split(y, groups, folds=20, seed=0)  # 6 groups: 6 parts, a group held in each
    assert sorted(groups[held].tolist()[0] for _, held in parts) == ["a", "b", "c", "d", "e", "f"]
    assert all(len(set(groups[held].tolist())) == 1 for _, held in parts)


def test_a_class_with_fewer_groups_than_folds_is_named():
    y = np.array([0] * 10 + [1] * 4)
    groups = np.array([f"a{i}" for i in range(10)] + ["b1", "b1", "b2", "b2"], dtype=object)
    with pytest.raises(InputError) as caught:
        make_plan(_index(y, groups), folds=3, seeds=1)
    err = caught.value
    assert err.where == "class 'class1'" and err.value == "2"
    assert err.rule == "needs at least 3 clips (distinct groups) for 3 cross-validation folds"


def test_exactly_one_of_folds_and_test_size():
    for kwargs in ({}, {"folds": 3, "test_size": 0.2}):
        with pytest.raises(ConfigError, match="exactly one of folds and test_size"):
            group_split(Y, PAIRS, seed=0, **kwargs)
