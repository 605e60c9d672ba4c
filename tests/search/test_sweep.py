"""Sweeps: the spec at the door, the define-by-run space, CV plans, and real Ray Tune runs."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from features import FeatureStore
from search.space import SearchSpace, expand_grid, make_searcher
from search.spec import SweepSpec, load_spec
from seqsweep.errors import ConfigError, InputError, StoreError
from seqsweep.layout import TrialStatus
from tests.search.test_leaderboard import check_real_board
from trainables.trial.folds import make_plan

BASE = {
    "name": "t",
    "store": "store",
    "dataset": "synth",
    "feature_set": "mfcc27",
    "cv": {"folds": 2, "seeds": 1},
    "search": {"num_samples": 4, "seed": 0},
    "models": {
        "lstm": {"num_layers": [1, 2], "units": {"low": 4, "high": 16, "step": 4},
                 "lr": {"low": 1e-3, "high": 1e-2, "log": True}, "epochs": 3, "batch_size": 16},
        "knn": {"n_neighbors": [1, 3, 5]},
    },
}


def spec_with(**changes) -> SweepSpec:
    data = json.loads(json.dumps(BASE))
    for dotted, value in changes.items():
        node = data
        *path, last = dotted.split("__")
        for key in path:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return SweepSpec.from_dict(data, source="spec.yaml")


# ---- the spec ----------------------------------------------------------------------------------
def test_a_good_spec_and_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    spec = load_spec(path, dataset="other", num_samples=9, name=None)
    assert spec.dataset == "other" and spec.search.num_samples == 9 and spec.name == "t"
    assert spec.metric == "balanced_accuracy" and spec.search.sampler == "tpe"
    assert [m.name for m in spec.models] == ["lstm", "knn"]
    assert spec.models[0].per_layer["units"][0] == "num_layers"
    assert spec.experiment_path == os.path.abspath("runs") + "/t"


@pytest.mark.parametrize(("changes", "match"), [
    ({"search__sampler": "bayes"}, r"search.sampler: must be one of \['tpe', 'random', 'cmaes', 'grid'\] \(got bayes\)"),
    ({"metric": "auc"}, r"metric: must be one of .*'balanced_accuracy'.*\(got auc\)"),
    ({"colour": "red"}, r"colour: is not a known key"),
    ({"cv__folds": 1}, r"spec.yaml: cv.folds: Input should be greater than or equal to 2 \(got 1\)"),
    ({"models__gru": {}}, r"models.gru: model family must be one of .*'lstm'.*\(got gru\)"),
    ({"models__lstm__unitz": 3}, r"models.lstm.unitz: is not a hyperparameter of 'lstm'"),
    ({"models__lstm__lr": {"low": 0.1, "high": 0.01}}, r"models.lstm.lr: a range needs low < high"),
    ({"models__lstm__lr": {"low": 0, "high": 0.01, "log": True}}, r"models.lstm.lr.low: must be > 0 on a log scale"),
    ({"dataset": None}, r"dataset: is required"),
    ({"models": {}}, r"models: must map one or more model families"),
    ({"train__optimizer": "sgd"}, r"train.optimizer: Input should be 'adam' or 'adamw' \(got sgd\)"),
    ({"search__sampler": "grid"}, r"grid sampler needs fixed values.*log-scale float range"),
    ({"objective": {"type": "median"}}, r"objective: must be one of \['mean', 'mean_minus_std'\]"),
])
def test_spec_errors_name_the_key_rule_and_value(changes, match):
    with pytest.raises(ConfigError, match=match):
        spec_with(**changes)


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="must be valid YAML"):
        load_spec(path)
    assert not (tmp_path / "pwned").exists()


# ---- the define-by-run space ---------------------------------------------------------------------
def test_space_samples_only_the_chosen_family_and_one_param_per_layer():
    spec = spec_with()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3), direction="maximize")
    seen = set()
    for _ in range(12):
        trial = study.ask()
        SearchSpace(spec.models)(trial)
        family = trial.params["model"]
        seen.add(family)
        others = {k for k in trial.params if k != "model" and not k.startswith(family + "/")}
        assert not others, f"{family} trial sampled another family's keys {others}"
        if family == "lstm":
            n = trial.params["lstm/num_layers"]
            widths = [k for k in trial.params if k.startswith("lstm/units_")]
            assert len(widths) == n  # each layer its own width
        study.tell(trial, 0.5)
    assert seen == {"lstm", "knn"}


def test_same_spec_and_seed_give_the_same_first_trials():
    def first(seed: int) -> list[dict]:
        searcher = make_searcher(spec_with(search__seed=seed))
        return [searcher.suggest(f"t{i}") for i in range(4)]

    assert first(0) == first(0)
    assert first(0) != first(1)


def test_grid_enumerates_every_point_once():
    spec = spec_with(search__sampler="grid",
                     models={"lstm": {"num_layers": [1, 2], "units": [8, 16], "lr": [0.01]}, "knn": {"n_neighbors": [1, 3]}})
    points = expand_grid(spec)
    lstm = [p for p in points if p["model"] == "lstm"]
    assert len(lstm) == 2 + 4 and len(points) == 8  # 1 layer x 2 widths, 2 layers x 2x2 widths, 2 k
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)


# ---- folds -------------------------------------------------------------------------------------
def test_cv_plan_is_stratified_group_aware_and_fixed(synth_store):
    data = FeatureStore(synth_store).load("synth", "mfcc27", split="train")
    groups = np.array([f"g{i // 2}" for i in range(len(data))], dtype=object)  # pairs of clips share a group
    data = type(data)(data.x, data.y, data.classes, groups, data.clip_ids)
    plan = make_plan(data, folds=3, seeds=2, base_seed=5)
    assert len(plan) == 6 and plan.seeds == (5, 6)
    for f in plan.fits:
        assert set(groups[f.train]).isdisjoint(groups[f.valid])
        assert set(data.y[f.valid]) == set(range(data.n_classes))  # every class in every fold
    for s in (0, 1):
        valid = np.concatenate([f.valid for f in plan.fits if f.seed_index == s])
        assert sorted(valid) == list(range(len(data)))  # each clip validated once per seed
    again = make_plan(data, folds=3, seeds=2, base_seed=5)
    assert all(np.array_equal(a.valid, b.valid) for a, b in zip(plan.fits, again.fits))
    with pytest.raises(InputError, match=r"class '\w+'.*needs at least 40 clips"):
        make_plan(data, folds=40, seeds=1)


def test_token_sets_search_embedding_dim_by_default():
    from search.space import with_token_defaults

    spec = spec_with(models={"lstm": {"units": [8], "num_layers": 1},
                             "cnn1d": {"embedding_dim": 12},
                             "knn": {"n_neighbors": [1, 3]}})
    assert with_token_defaults(spec, tokens=False) is spec
    models = {m.name: m for m in with_token_defaults(spec, tokens=True).models}
    lstm = models["lstm"].params["embedding_dim"]
    assert (lstm.kind, lstm.low, lstm.high, lstm.log) == ("int", 8, 64, True)
    assert models["cnn1d"].params["embedding_dim"].value == 12  # the spec's own value stays
    assert "embedding_dim" not in models["knn"].params


# ---- real sweeps on the session's Ray -------------------------------------------------------------
def _run(spec: SweepSpec, **kw):
    from search.sweep import run_sweep

    return run_sweep(spec, echo=lambda *_: None, verbose=0, **kw)


def test_tiny_sweep_end_to_end(ray_session, synth_store, tmp_path):
    spec = spec_with(store=str(synth_store), storage=str(tmp_path / "runs"))
    outcome = _run(spec)
    exp = Path(outcome.experiment_dir)
    board = pd.read_csv(exp / "leaderboard.csv")
    assert len(board) == 4 and set(board["status"]) == {"ok"}
    assert list(board["rank"]) == [1, 2, 3, 4]
    for col in ("trial_id", "model", "lr", "n_neighbors", "units_0", "accuracy_mean", "balanced_accuracy_std",
                "f1_macro_min", "n_params", "fit_seconds_mean", "fit_seconds_total", "predict_seconds_per_1000",
                "seeds", "folds", "error"):
        assert col in board.columns, col
    check_real_board(exp)  # each row only its family's settings, costs filled, integers as integers
    folds = pd.read_csv(exp / "leaderboard_folds.csv")
    assert len(folds) == 4 * 2 and set(folds["fold"]) == {0, 1}

    train = FeatureStore(synth_store).load("synth", "mfcc27", split="train")
    test_ids = set(FeatureStore(synth_store).load("synth", "mfcc27", split="test").clip_ids)
    for ckpt in glob.glob(str(exp / "trial_*" / "checkpoint_*")):
        oof = np.load(Path(ckpt) / "oof.npz")
        assert oof["proba"].shape == (1, len(train), 4)
        assert np.isfinite(oof["proba"]).all()  # every train clip validated once
        assert not set(oof["clip_ids"]) & test_ids  # the test split is never touched
        fits = json.loads((Path(ckpt) / "fits.json").read_text())
        assert len(fits["fits"]) == 2 and len(fits["histories"]) == 2

    # the statuses are TrialStatus's strings; each row names its start and its checkpoint folder
    board = pd.read_csv(exp / "leaderboard.csv", dtype={"trial_id": str})
    assert set(board["status"]) <= {s.value for s in TrialStatus}
    assert board["start_time"].notna().all() and board["start_time"].between(time.time() - 600, time.time()).all()
    for _, row in board.iterrows():
        assert row["checkpoint"].startswith(f"trial_{row['trial_id']}/checkpoint_")
        assert (exp / row["checkpoint"] / "oof.npz").exists()

    from search.status import sweep_status

    text = sweep_status(str(exp))
    assert "trials: 4 of 4 (4 ok)" in text and "fits: 8 of 8 planned" in text and "top 4:" in text


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(ray_session, synth_store, tmp_path):
    spec = spec_with(store=str(synth_store), storage=str(tmp_path / "runs"), search__num_samples=4,
                     search__sampler="random",
                     models={"lstm": {"optimizer": "adamw", "lr": 1.0e+10, "weight_decay": 1.0e+10,  # diverges
                                      "epochs": 2, "units": [4], "num_layers": 1},
                             "knn": {"n_neighbors": [1, 3]}})
    outcome = _run(spec)
    board = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard.csv")
    failed = board[board["model"] == "lstm"]
    ok = board[board["model"] == "knn"]
    assert len(failed) >= 1 and len(ok) >= 1, board[["model", "status"]]
    assert set(failed["status"]) == {TrialStatus.FAILED} and set(ok["status"]) == {TrialStatus.OK}
    assert failed["checkpoint"].isna().all() and ok["checkpoint"].notna().all()  # a failed trial saves none
    assert failed["error"].str.contains("finite").all(), failed["error"].tolist()
    assert failed["objective"].isna().all() and failed["rank"].isna().all()  # failed trials are not ranked
    assert list(board["model"])[-len(failed):] == ["lstm"] * len(failed)  # and are listed last
    assert list(ok["rank"]) == list(range(1, len(ok) + 1))
    assert outcome.best["model"] == "knn" and outcome.failed == len(failed)


def test_an_existing_name_needs_resume(ray_session, synth_store, tmp_path):
    spec = spec_with(store=str(synth_store), storage=str(tmp_path / "runs"), search__num_samples=1,
                     models={"knn": {"n_neighbors": 1}})
    _run(spec)
    with pytest.raises(ConfigError, match="pass --resume to continue it"):
        _run(spec)
    with pytest.raises(ConfigError, match="needs a sweep to continue"):
        _run(spec.with_overrides(name="never-ran"), resume=True)


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(ray_session, synth_store, tmp_path):
    """A driver killed mid-sweep: --resume keeps finished trials, restores the Optuna
    searcher (not a random one, Ray issue 30861) and reaches num_samples with no duplicates."""
    num_samples = 8
    data = json.loads(json.dumps(BASE))
    data.update(store=str(synth_store), storage=str(tmp_path / "runs"), name="killed")
    data["search"].update(num_samples=num_samples, max_concurrent=1)
    data["models"] = {"lstm": {**data["models"]["lstm"], "epochs": 250}}  # ~2 s a trial: time to kill it
    data["train"] = {"fused": False}  # one fit after another: the kill is timed against that
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    exp = tmp_path / "runs" / "killed"

    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    driver = subprocess.Popen([sys.executable, "-m", "seqsweep", "sweep", "run", str(path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            board = exp / "leaderboard.csv"
            if board.exists() and (pd.read_csv(board)["status"] == "ok").sum() >= 3:
                table = pd.read_csv(board)
                done_before = set(table.loc[table["status"] == "ok", "trial_id"])
                time.sleep(2.0)  # the experiment state is saved every second
                break
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.5)
        else:
            pytest.fail("three trials did not finish in time")
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    before = pd.read_csv(exp / "leaderboard.csv")
    assert len(done_before) >= 3 and (before["status"] == "ok").sum() < num_samples

    _run(load_spec(path), resume=True)
    board = pd.read_csv(exp / "leaderboard.csv")
    assert len(board) == num_samples and board["trial_id"].is_unique
    assert set(board["status"]) == {"ok"}
    assert done_before <= set(board["trial_id"])  # finished trials kept

    from search.searcher import TruthfulOptunaSearch

    searcher = TruthfulOptunaSearch()
    searcher.restore_from_dir(str(exp))
    assert isinstance(searcher._sampler, optuna.samplers.TPESampler)  # not a random one
    # the study went on, every trial told, and none left RUNNING (orphans of the kill are FAIL)
    states = [t.state for t in optuna.load_study(
        study_name="killed", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(exp / "optuna.log")))).trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == num_samples
    assert optuna.trial.TrialState.RUNNING not in states


def test_storage_at_a_uri(ray_session, synth_store, tmp_path):
    """Ray Tune's storage and the live leaderboard accept a URI (file:// here, s3:// on a cluster)."""
    spec = spec_with(store=f"file://{synth_store}", storage=f"file://{tmp_path}/runs", search__num_samples=2,
                     models={"knn": {"n_neighbors": [1, 3]}})
    outcome = _run(spec)
    assert outcome.ok == 2
    board = pd.read_csv(tmp_path / "runs" / "t" / "leaderboard.csv")
    assert len(board) == 2 and (board["status"] == "ok").all()


def test_a_train_split_too_big_for_the_object_store_is_refused_with_its_size(ray_session):
    from search.sweep import check_object_store
    from seqsweep.errors import StoreError

    check_object_store(700 * 2**20, what="d/f train split", capacity=2**30)  # 0.68 of 1 GiB: fine
    with pytest.raises(StoreError, match=r"d/f train split: must fit in Ray's object store.*1.00 GiB.*"
                                         r"\(got 0.88 GiB padded\)"):
        check_object_store(900 * 2**20, what="d/f train split", capacity=2**30)
    check_object_store(1000, what="tiny")  # the session's real store


def test_train_fused_is_checked_and_a_fused_trial_runs(ray_session, synth_store, tmp_path):
    """train.fused: true trains a trial's seeds x folds fits as one stacked model; the
    trial's rows, fold models and out-of-fold probabilities are as a sequential trial's."""
    with pytest.raises(ConfigError, match=r"train.fused: must be auto, true or false \(got sometimes\)"):
        spec_with(train={"fused": "sometimes"})
    assert spec_with().fused == "auto"
    spec = spec_with(store=str(synth_store), storage=str(tmp_path / "runs"), search__num_samples=1,
                     cv={"folds": 2, "seeds": 2}, train={"fused": True},
                     models={"cnn1d": {"filters": [4], "num_blocks": 1, "epochs": 2, "batch_size": 16}})
    outcome = _run(spec)
    assert outcome.ok == 1
    exp = Path(outcome.experiment_dir)
    (ckpt,) = glob.glob(str(exp / "trial_*" / "checkpoint_*"))
    fits = json.loads((Path(ckpt) / "fits.json").read_text())
    assert fits["fused"] is True and len(fits["fits"]) == 4
    assert all((Path(ckpt) / f["file"]).exists() for f in fits["fits"])
    assert np.isfinite(np.load(Path(ckpt) / "oof.npz")["proba"]).all()


def test_the_spec_saves_and_loads_itself(tmp_path):
    spec = spec_with(search__sampler="random", train={"fused": False, "optimizer": "adamw"},
                     objective={"type": "mean_minus_std", "std_weight": 0.5}, ensemble={"methods": "soft,vote"})
    spec = spec.with_overrides(storage=str(tmp_path / "runs"))
    path = spec.save()
    assert path == f"{spec.experiment_path}/sweep.json"
    back = SweepSpec.load(spec.experiment_path)
    assert back == spec.with_overrides(store=os.path.abspath("store"), storage=spec.storage_path)
    assert back.source == "spec.yaml" and back.fused is False and back.train.fixed == {"optimizer": "adamw"}
    assert back.models[0].params["lr"] == spec.models[0].params["lr"]
    assert back.models[0].per_layer == spec.models[0].per_layer


def test_a_sweep_json_written_before_the_spec_saved_itself_loads(tmp_path):
    """The layout `search.sweep` wrote before `SweepSpec.save`: models by name only,
    objective and std_weight at the top, fused beside train, no storage."""
    folder = tmp_path / "runs" / "t"
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({
        "name": "t", "store": "/data/store", "dataset": "synth", "feature_set": "mfcc27",
        "metric": "accuracy", "objective": "mean_minus_std", "std_weight": 2.0, "cv": {"folds": 2, "seeds": 1},
        "search": {"num_samples": 4, "max_concurrent": None, "sampler": "tpe", "seed": 3, "scheduler": "none",
                   "grace_fits": None, "wilcoxon_p": 0.1},
        "resources": {"cpus": 1.0, "gpus": 0.0}, "train": {"optimizer": "adamw"}, "fused": "auto",
        "ensemble": {"top_k": 5, "methods": ["soft", "max"], "refit": "bag", "fit_weights": False},
        "models": ["lstm", "knn"], "source": "examples/quick.yaml"}))
    spec = SweepSpec.load(folder)
    assert spec.metric == "accuracy" and spec.objective.type == "mean_minus_std" and spec.objective.std_weight == 2
    assert [m.name for m in spec.models] == ["lstm", "knn"] and spec.search.seed == 3
    assert spec.ensemble["methods"] == ["soft", "max"] and spec.train.fixed == {"optimizer": "adamw"}  # results checks it
    assert spec.experiment_path == str(folder) and spec.source == "examples/quick.yaml"
    with pytest.raises(StoreError, match="sweep.json: a sweep's experiment folder must hold this file"):
        SweepSpec.load(tmp_path)
