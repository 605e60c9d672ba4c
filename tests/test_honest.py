"""Honest numbers: no figure is scored on the data that chose it.

* labels that carry no signal give chance-level CV objectives and ensemble estimates;
* Optuna's study holds COMPLETE, FAIL and PRUNED as they happened, nothing left RUNNING;
* cross-fitted ensemble weights are not flattered by the rows that fitted them;
* a resume on other folds is refused;
* fold-paired (Wilcoxon) pruning compares like with like.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from search.spec import SweepSpec
from seqsweep.errors import ConfigError


def _run(spec: SweepSpec, **kw):
    from search.sweep import run_sweep

    return run_sweep(spec, echo=lambda *_: None, verbose=0, **kw)


def _study(experiment: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(experiment / "optuna.log")))
    return optuna.load_study(study_name=name, storage=storage)


# ---- labels with no signal ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def noise_store(tmp_path_factory) -> Path:
    """64 sequences of pure noise with random labels (2 classes), imported as a pickle."""
    from features import import_files

    rng = np.random.default_rng(8)
    pairs = [(rng.standard_normal((int(rng.integers(8, 24)), 4)).astype(np.float32), f"c{int(rng.integers(2))}")
             for _ in range(64)]
    root = tmp_path_factory.mktemp("noise")
    path = root / "noise.pkl"
    path.write_bytes(pickle.dumps(pairs))
    summary = import_files([path], store=root / "store", dataset="noise", feature_set="raw", test_size=0.25, seed=0)
    assert summary.failed == 0
    return root / "store"


@pytest.mark.slow
def test_labels_without_signal_score_at_chance(ray_session, noise_store, tmp_path):
    """Early stopping on (patience 10 of 30 epochs: many epochs to choose from), four
    configurations, 3 folds x 3 seeds of 48 train clips: the best CV objective and the
    chosen ensemble's out-of-fold figure stay near 0.5. Measured on this data: 0.53 and
    0.56; with the epoch chosen on the scored fold (seqsweep before the inner split) the
    best objective was 0.66, and 0.58-0.72 on three other noise draws."""
    from results.pipeline import finish_sweep

    spec = SweepSpec.from_dict({
        "name": "noise", "store": str(noise_store), "dataset": "noise", "feature_set": "raw",
        "storage": str(tmp_path / "runs"), "cv": {"folds": 3, "seeds": 3},
        "search": {"num_samples": 4, "sampler": "random", "seed": 1},
        "models": {"cnn1d": {"filters": [8], "num_blocks": 1, "lr": [0.01, 0.03], "epochs": 30, "batch_size": 8,
                             "early_stopping_patience": 10, "dropout": [0.0, 0.3]}},
        "ensemble": {"top_k": 4, "methods": ["soft", "max", "vote", "weighted"]},
    })
    outcome = _run(spec)
    assert outcome.ok == 4
    assert 0.4 < outcome.best["objective"] < 0.6, outcome.best
    summary = finish_sweep(outcome.experiment_dir, echo=lambda *_: None, report=False)
    table = summary.table.set_index("method")
    chosen = table.loc[summary.best_ensemble]
    assert chosen["oof_balanced_accuracy"] < 0.62, summary.table
    # the test split is 16 clips of noise: nothing there either
    assert chosen["test_balanced_accuracy"] < 0.75, summary.table


# ---- what Optuna is told ------------------------------------------------------------------------
def test_optuna_study_holds_complete_fail_and_pruned(ray_session, synth_store, tmp_path):
    """Three grid points run one at a time (grid seed 3 orders them good, failing, bad): a
    1-NN that finishes, an LSTM whose loss diverges (FAIL), and a kNN that votes the
    training prior (chance) and is stopped by the Wilcoxon scheduler after 4 paired fits."""
    spec = SweepSpec.from_dict({
        "name": "states", "store": str(synth_store), "dataset": "synth", "feature_set": "mfcc27",
        "storage": str(tmp_path / "runs"), "cv": {"folds": 2, "seeds": 3},
        "search": {"sampler": "grid", "seed": 3, "max_concurrent": 1, "scheduler": "wilcoxon", "grace_fits": 4},
        "models": {"lstm": {"optimizer": "adamw", "lr": 1.0e+10, "weight_decay": 1.0e+10, "epochs": 2,
                            "units": [4], "num_layers": 1},
                   "knn": {"n_neighbors": [1, 200]}},
    })
    outcome = _run(spec)
    exp = Path(outcome.experiment_dir)
    board = pd.read_csv(exp / "leaderboard.csv", dtype={"trial_id": str})
    by_k = board.set_index(board["n_neighbors"].fillna(-1).astype(int))
    assert by_k.loc[1, "status"] == "ok" and by_k.loc[200, "status"] == "pruned"
    assert board.loc[board["model"] == "lstm", "status"].tolist() == ["failed"]
    assert board["rank"].notna().sum() == 1 and outcome.best["n_neighbors"] == 1
    assert by_k.loc[200, "fits_done"] < 6

    trials = _study(exp, "states").trials
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE", "FAIL", "PRUNED"]
    complete = next(t for t in trials if t.state.name == "COMPLETE")
    assert complete.value == pytest.approx(by_k.loc[1, "objective"])
    assert complete.user_attrs["model"] == "knn" and complete.user_attrs["status"] == "ok"
    failed = next(t for t in trials if t.state.name == "FAIL")
    assert "finite" in failed.user_attrs["error"]


def test_orphaned_optuna_trials_are_closed(tmp_path):
    """A trial the study handed out but whose Ray trial never ended is FAIL after the sweep."""
    from search.searcher import close_orphans, journal_storage

    study = optuna.create_study(study_name="s", storage=journal_storage(str(tmp_path)), direction="maximize")
    done = study.ask()
    study.tell(done, 0.5)
    study.ask()  # never told
    assert close_orphans(str(tmp_path), "s") == 1
    trials = _study(tmp_path, "s").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]
    assert trials[1].user_attrs["status"] == "orphaned"
    assert close_orphans(str(tmp_path), "never-made") == 0


def test_optuna_state_of_a_result():
    from search.searcher import optuna_state

    assert optuna_state({"status": "ok", "objective": 0.8}, error=False) == ("COMPLETE", 0.8)
    assert optuna_state({"status": "failed", "objective": float("nan")}, error=False) == ("FAIL", None)
    assert optuna_state({"status": "running", "objective": 0.9}, error=False) == ("PRUNED", None)
    assert optuna_state({"status": "ok", "objective": float("nan")}, error=False) == ("PRUNED", None)
    assert optuna_state(None, error=True) == ("FAIL", None)


# ---- ensembles: weights never scored on the rows that fitted them ---------------------------------------
def test_cross_fitted_ensembles_are_not_flattered_by_their_own_rows():
    """Thirty candidates of pure noise on 100 rows: an ensemble whose members (top 5) or
    weights (greedy selection) are chosen and scored on the same rows looks far better than
    chance (0.74 for greedy); cross-fitted over five parts, neither does."""
    from results.ensemble import (
        combine,
        cross_fit,
        greedy_selection,
        score,
        soft_vote,
        top_k_weights,
    )

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    pool = rng.dirichlet([1.0, 1.0], size=(30, 100))
    folds = np.array_split(rng.permutation(100), 5)
    parts = [(np.setdiff1d(np.arange(100), held), held) for held in folds]

    in_sample = score(y, soft_vote(pool, weights=greedy_selection(pool, y)), "balanced_accuracy")
    honest = score(y, cross_fit(greedy_selection, "weighted", pool, y, parts), "balanced_accuracy")
    assert in_sample > 0.68
    assert abs(honest - 0.5) < 0.12

    top5 = top_k_weights(pool, y, k=5, metric="balanced_accuracy") > 0
    in_sample = score(y, combine("soft", pool[top5]), "balanced_accuracy")
    choose = lambda p, t: top_k_weights(p, t, k=5, metric="balanced_accuracy")  # noqa: E731
    honest = score(y, cross_fit(choose, "soft", pool, y, parts), "balanced_accuracy")
    assert in_sample > 0.62
    assert abs(honest - 0.5) < 0.12


def test_per_group_means_the_segments_of_each_file():
    from results.ensemble import per_group

    y = np.array([0, 0, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    group_y, group_proba = per_group(y, proba, np.array(["a", "a", "b", "b", "b"]))
    assert group_y.tolist() == [0, 1]
    np.testing.assert_allclose(group_proba, [[0.6, 0.4], [0.4, 0.6]])


# ---- resume on the same ground ------------------------------------------------------------------------
def test_resume_refuses_other_folds(ray_session, synth_store, tmp_path):
    base = {"name": "r", "store": str(synth_store), "dataset": "synth", "feature_set": "mfcc27",
            "storage": str(tmp_path / "runs"), "cv": {"folds": 2, "seeds": 1},
            "search": {"num_samples": 1, "seed": 0}, "models": {"knn": {"n_neighbors": 1}}}
    _run(SweepSpec.from_dict(base))
    with pytest.raises(ConfigError, match=r"--resume: must score new trials on the folds.*cv.folds: 2 then, 3 now"):
        _run(SweepSpec.from_dict({**base, "cv": {"folds": 3, "seeds": 1}}), resume=True)
    with pytest.raises(ConfigError, match=r"search.seed: 0 then, 4 now"):
        _run(SweepSpec.from_dict({**base, "search": {"num_samples": 1, "seed": 4}}), resume=True)
    outcome = _run(SweepSpec.from_dict(base), resume=True)  # the same ground: accepted
    assert outcome.ok == 1


# ---- fold-paired pruning -----------------------------------------------------------------------------------
def test_wilcoxon_p_value_pairs_by_seed_and_fold():
    from search.wilcoxon import paired_p_value

    incumbent = {(0, k): 0.8 + 0.02 * k for k in range(5)}
    worse = {key: v - 0.1 for key, v in incumbent.items()}
    p, n = paired_p_value(worse, incumbent)
    assert n == 5 and p == pytest.approx(1 / 32)  # every pair lower: the smallest one-sided p for 5
    assert paired_p_value(incumbent, incumbent) == (1.0, 5)
    better = {key: v + 0.1 for key, v in incumbent.items()}
    assert paired_p_value(better, incumbent)[0] > 0.9
    # only the (seed, fold)s both have are paired
    assert paired_p_value({(1, 0): 0.1, (0, 0): 0.1}, incumbent)[1] == 1
