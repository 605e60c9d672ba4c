"""Honest numbers: no figure is scored on the data that chose it.

* labels that carry no signal give chance-level CV objectives and ensemble estimates;
* Optuna's study holds COMPLETE, FAIL and PRUNED as they happened, nothing left RUNNING;
* cross-fitted ensemble weights are not flattered by the rows that fitted them;
* the final choice among the rank-1 member and every ensemble, cross-fitted itself, reads
  chance on labels without signal at a real sweep's size;
* library selection finds two families that each see half of the signal;
* two trials of one configuration share the folds and start from their own seeds;
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
    final choice's out-of-fold figure stay near 0.5. Measured on this data: 0.53 and
    0.56 (0.63 for the final choice once each trial drew its own seeds); with the epoch
    chosen on the scored fold (seqsweep before the inner split) the best objective was
    0.66, and 0.58-0.72 on three other noise draws.

    The final choice's figure is one figure on 48 clips: under no signal its standard error
    is 0.5 / sqrt(48) = 0.072, so the allowance is chance + 2.5 standard errors, 0.68 (a
    false alarm about once in 160 draws). The best objective is the largest of four such
    figures, and each trial draws its own seeds (a hash of its random trial id), so it moves
    from run to run: its allowance is chance + 3 standard errors, 0.72 (a false alarm about
    once in 185 runs); a bound of 0.6 failed about one run in three (0.62 seen on
    2026-12-06).
    `test_the_final_choice_reads_chance_on_labels_without_signal` holds the same rule, on 24
    trials and more rows, to a far tighter band."""
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
    assert 0.4 < outcome.best["objective"] < 0.5 + 3 * 0.5 / 48**0.5, outcome.best
    summary = finish_sweep(outcome.experiment_dir, echo=lambda *_: None, report=False)
    chosen = summary.final_row()
    assert chosen["oof_balanced_accuracy"] < 0.5 + 2.5 * 0.5 / 48**0.5, summary.table
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


# ---- the final choice and library selection, on pools of synthetic out-of-fold probabilities ------------
def _pool(oof: np.ndarray, y: np.ndarray) -> list:
    """Members from out-of-fold probabilities [shape=(M, N, C)], ranked as a sweep ranks them
    (by their out-of-fold balanced accuracy, best first)."""
    from results.ensemble import score
    from results.experiment import Member

    order = np.argsort([-score(y, p, "balanced_accuracy") for p in oof], kind="stable")
    ids = np.asarray([f"r{i}" for i in range(len(y))])
    return [Member(trial_id=f"t{k:02d}", model="synthetic", rank=r + 1, objective=0.0, config={},
                   oof=oof[k][None].astype(np.float32), y=y, clip_ids=ids, classes=["a", "b"])
            for r, k in enumerate(order)]


def _choose(pool: list, *, top_k: int = 5, seed: int = 0):
    from results.build import build_ensembles, pool_probabilities, weight_parts
    from results.choice import final_choice

    parts = weight_parts(pool, folds=5, seed=seed)
    defs, candidates = build_ensembles(pool, ["soft", "max", "vote", "weighted"], top_k=top_k,
                                       metric="balanced_accuracy", parts=parts)
    final = final_choice(candidates, defs, pool_probabilities(pool), pool[0].y, parts, metric="balanced_accuracy",
                         split_groups=pool[0].groups, seed=seed)
    return defs, final


def test_the_final_choice_reads_chance_on_labels_without_signal():
    """24 trials of noise (sharing a common part, as trials of one sweep do) on 240 rows,
    top 5, library selection on, four draws. Under the null each row is a fair coin for any
    procedure that did not see it, so one draw's balanced accuracy has sd about
    0.5 / sqrt(240) = 0.032 and the mean of four 0.016: the allowance is chance plus 3 of
    those (0.548), a false alarm once in ~700 draws. The rank-1 member's plain out-of-fold
    figure (what the leaderboard shows) is the best of 24 and reads far above it (about
    +2 sd of one draw), so the allowance does catch a figure scored on the rows that chose it."""
    from results.ensemble import average_seeds, score

    n, draws = 240, 4
    finals, plain_best = [], []
    for draw in range(draws):
        rng = np.random.default_rng(100 + draw)
        y = rng.integers(0, 2, n)
        logits = 0.7 * rng.standard_normal(n) + rng.standard_normal((24, n))
        p1 = 1 / (1 + np.exp(-2 * logits))
        pool = _pool(np.stack([1 - p1, p1], axis=2), y)
        defs, final = _choose(pool, seed=draw)
        assert {"best_member", "soft", "max", "vote", "weighted"} == {d.method for d in defs}
        finals.append(score(y, final.oof_proba, "balanced_accuracy"))
        plain_best.append(score(y, average_seeds(pool[0].oof), "balanced_accuracy"))
    allowance = 3 * 0.5 / np.sqrt(n * draws)
    assert abs(np.mean(finals) - 0.5) < allowance, finals
    assert np.mean(plain_best) > 0.5 + allowance, plain_best  # the naive figure would fail this test


def test_library_selection_joins_two_families_that_each_see_half_of_the_signal():
    """The label is the sign of x1 + x2; family A's 12 trials see only x1 (a little more of
    the signal: they fill the top 5), family B's 12 only x2. Greedy selection over the whole
    library picks trials of both families, and on 600 fresh test rows its ensemble beats
    every single trial of either family; the top-5 averages, all family A, do not."""
    from results.ensemble import combine, score

    rng = np.random.default_rng(3)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x1, x2 = rng.standard_normal(n), rng.standard_normal(n)
        return x1, x2, (1.3 * x1 + x2 + 0.2 * rng.standard_normal(n) > 0).astype(np.int64)

    def probas(x: np.ndarray, slopes: np.ndarray) -> np.ndarray:  # (12, n, 2): one trial per slope, own noise
        p1 = 1 / (1 + np.exp(-(slopes[:, None] * (x[None] + 0.3 * rng.standard_normal((len(slopes), len(x)))))))
        return np.stack([1 - p1, p1], axis=2)

    slopes = rng.uniform(1.5, 3.0, 12)
    x1, x2, y = draw(400)
    t1, t2, y_test = draw(600)
    oof = np.concatenate([probas(x1, slopes), probas(x2, slopes)])  # trials 0-11: family A, 12-23: family B
    test = dict(zip([f"t{k:02d}" for k in range(24)], np.concatenate([probas(t1, slopes), probas(t2, slopes)])))
    pool = _pool(oof, y)
    defs, final = _choose(pool)
    by_name = {d.method: d for d in defs}
    family = {f"t{k:02d}": "A" if k < 12 else "B" for k in range(24)}
    assert {family[t] for t in by_name["soft"].members} == {"A"}
    weighted = by_name["weighted"]
    assert {family[t] for t in weighted.members} == {"A", "B"}

    def on_test(d) -> float:
        return score(y_test, combine(d.combiner, np.stack([test[t] for t in d.members]), weights=d.weights),
                     "accuracy")

    best_single = max(score(y_test, p, "accuracy") for p in test.values())
    assert on_test(weighted) > best_single + 0.03, (on_test(weighted), best_single)
    assert on_test(by_name["soft"]) < on_test(weighted)
    assert final.name == "weighted" and set(final.per_part) == {"weighted"}


def test_two_trials_of_one_configuration_share_the_folds_and_not_the_seeds(ray_session, synth_store, tmp_path):
    """Two kNN trials of the same configuration: kNN draws nothing at random, so identical
    out-of-fold probabilities show identical folds; the init seeds (fits.json and the long
    leaderboard) differ between the trials and are `init_seed` of each trial's id."""
    import json

    from results.experiment import load_experiment
    from trainables.trial.folds import init_seed

    spec = SweepSpec.from_dict({
        "name": "twins", "store": str(synth_store), "dataset": "synth", "feature_set": "mfcc27",
        "storage": str(tmp_path / "runs"), "cv": {"folds": 2, "seeds": 2},
        "search": {"num_samples": 2, "sampler": "random", "seed": 0},
        "models": {"knn": {"n_neighbors": 3}},
    })
    outcome = _run(spec)
    assert outcome.ok == 2
    exp = load_experiment(outcome.experiment_dir)
    a, b = (exp.member(row) for _, row in exp.ok_trials().iterrows())
    assert a.config == b.config
    np.testing.assert_array_equal(a.oof, b.oof)  # the same folds
    assert [f["seed"] for f in a.fits] == [f["seed"] for f in b.fits] == [0, 0, 1, 1]
    for m in (a, b):
        assert m.init_seeds == [init_seed(m.trial_id, 0), init_seed(m.trial_id, 1)]
        assert json.loads((Path(m.checkpoint) / "fits.json").read_text())["init_seeds"] == m.init_seeds
    assert not set(a.init_seeds) & set(b.init_seeds)
    folds = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard_folds.csv", dtype={"trial_id": str})
    for m in (a, b):
        rows = folds[folds["trial_id"] == m.trial_id].sort_values(["seed", "fold"])
        assert list(rows["init_seed"]) == [f["init_seed"] for f in m.fits]


def test_init_seed_is_a_stable_hash_of_trial_and_seed():
    from trainables.trial.folds import init_seed

    assert init_seed("3f2a1_00004", 0) == init_seed("3f2a1_00004", 0)
    values = {init_seed(t, s) for t in ("a", "b", "c") for s in (0, 1, 2)}
    assert len(values) == 9 and all(0 <= v < 2**31 for v in values)
