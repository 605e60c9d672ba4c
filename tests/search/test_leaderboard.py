"""The leaderboard users read: only the settings a trial used, its costs, stable typed columns."""

from __future__ import annotations

import io
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from search.leaderboard import LiveLeaderboard
from search.ranking import fold_frame, pareto_front, rank_rows
from seqsweep.layout import COSTS, CV, FIRST, METRIC_COLUMNS, RUN
from trainables.configs import MODEL_CONFIGS, TrainConfig
from trainables.registry import get_model_spec, model_names

# what each family's fit reads of the training config, spelled out here (the code reads it
# off the config classes): torch families every setting but where and how fast it runs;
# knn only z-scores, random_forest only weights classes; other scikit-learn-kind families
# (the ROCKET ones) are handed both by fit_classic
_RUN = {"device", "num_threads"}
_EARLY = {"inner_fraction", "monitor"}
_SKLEARN = {"knn": {"standardize"}, "random_forest": {"class_weighted"}}


def expected_settings(family: str, *, tokens: bool, early_stopping: bool) -> set[str]:
    """The columns a row of ``family`` must fill (with no setting left at ``None``)."""
    config = MODEL_CONFIGS[family]
    model = {k for k in _no_nones(config)().to_flat() if tokens or k != "embedding_dim"}
    model = {f"knn_{k}" if family == "knn" and k in ("metric", "weights") else k for k in model}
    if get_model_spec(family).kind == "torch":
        # without early stopping its patience is None (off, an empty cell), and what it reads is unused
        train = set(TrainConfig.field_names()) - _RUN - (set() if early_stopping else
                                                         _EARLY | {"early_stopping_patience"})
        embeds = tokens and "embedding_dim" in config.field_names()
        train -= {"standardize"} if embeds else set()
    else:
        train = _SKLEARN.get(family, {"class_weighted", "standardize"})
    return model | train


def _no_nones(config: type) -> Any:
    """``config`` with every field whose default is None given a value (so that a filled
    cell and a used setting are the same thing in the checks)."""
    values = {}
    for name, info in config.__pydantic_fields__.items():
        if info.default is None:
            kinds = [a for a in typing.get_args(info.annotation) if a is not type(None)]
            values[name] = 0.5 if "float" in str(kinds[0]) else 3
    return lambda: config(**values)


def filled_settings(board: pd.DataFrame) -> dict[str, set[str]]:
    """trial_id -> the setting columns with a value in its row."""
    settings = [c for c in board.columns if c not in {*FIRST, *METRIC_COLUMNS, *COSTS, *CV, *RUN, "error"}]
    return {str(row["trial_id"]): {c for c in settings if pd.notna(row[c])} for _, row in board.iterrows()}


def assert_integers_written_as_integers(csv_text: str) -> None:
    """Every declared-integer setting and count is written as an integer (never ``16.0``)."""
    board = pd.read_csv(io.StringIO(csv_text), dtype=str)
    ints = ["rank", "n_params", "seeds", "folds", "fits_done", "n_neighbors", "epochs", "batch_size",
            "num_layers", "units_0", "kernel_size", "n_estimators", "max_depth", "depth", "n_features", "stacks"]
    present = [c for c in ints if c in board]
    for column in present:
        values = board[column].dropna()
        assert values.str.fullmatch(r"-?\d+").all(), (column, values.tolist())
    pd.read_csv(io.StringIO(csv_text), dtype={**dict.fromkeys(present, "Int64"), "trial_id": str})  # pandas agrees


@dataclass
class _RunMetadata:
    start_time: float | None = None


@dataclass
class _Checkpoint:
    path: str


@dataclass
class _Trial:
    """What `LiveLeaderboard` reads of a Ray Tune trial."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)
    run_metadata: _RunMetadata = field(default_factory=_RunMetadata)
    checkpoint: _Checkpoint | None = None
    remote_experiment_path: str = "/runs/exp"


def _finished(n_fits: int = 2) -> dict[str, Any]:
    return {"status": "ok", "objective": 0.5, "balanced_accuracy_mean": 0.5, "n_params": 120, "fits_done": n_fits,
            "fit_seconds_mean": 1.5, "fit_seconds_total": 3.0, "predict_seconds_per_1000": 0.25}


@pytest.mark.parametrize(("tokens", "early_stopping"), [(False, False), (True, True)])
def test_every_family_fills_exactly_its_declared_settings(tmp_path, tokens, early_stopping):
    train = {"early_stopping_patience": 2} if early_stopping else {}
    board = LiveLeaderboard(str(tmp_path), train=train, seeds=1, folds=2, tokens=tokens)
    for i, family in enumerate(model_names()):
        config = {"model": family, family: _no_nones(MODEL_CONFIGS[family])().to_flat()}
        trial = _Trial(f"{i:08d}", config)  # an all-digit id must stay text
        board.on_trial_start(0, [], trial)
        trial.last_result = _finished()
        board.on_trial_complete(0, [], trial)
    text = (tmp_path / "leaderboard.csv").read_text()
    written = pd.read_csv(tmp_path / "leaderboard.csv", dtype={"trial_id": str})
    filled = filled_settings(written)
    for i, family in enumerate(model_names()):
        assert filled[f"{i:08d}"] == expected_settings(family, tokens=tokens, early_stopping=early_stopping), family
    assert "metric" not in written and "weights" not in written  # kNN's are knn_metric, knn_weights
    assert_integers_written_as_integers(text)
    assert written[COSTS].notna().all().all()


def test_columns_come_in_a_stable_order_with_typed_integers():
    rows = [
        {"trial_id": "b", "status": "ok", "model": "knn", "n_neighbors": 3, "knn_metric": "cosine", "objective": 0.6,
         "error": ""},
        {"trial_id": "a", "status": "ok", "model": "lstm", "num_layers": 2, "units_1": 8, "units_0": 16,
         "units_10": 4, "lr": 0.01, "epochs": 5, "objective": 0.7, "error": ""},
        {"trial_id": "c", "status": "failed", "model": "lstm", "num_layers": 1, "units_0": 4, "epochs": 5.0,
         "objective": math.nan, "error": "boom"},
    ]
    frame = rank_rows(rows)
    assert list(frame.columns[:len(FIRST)]) == FIRST
    assert list(frame.columns[len(FIRST):len(FIRST) + len(METRIC_COLUMNS)]) == METRIC_COLUMNS
    costs_at = len(FIRST) + len(METRIC_COLUMNS)
    assert list(frame.columns[costs_at:costs_at + len(COSTS) + len(CV)]) == COSTS + CV
    settings = list(frame.columns[costs_at + len(COSTS) + len(CV):-1 - len(RUN)])
    # the registry's order: lstm's fields (units by index after their count), then knn's, then training
    assert settings == ["num_layers", "units_0", "units_1", "units_10", "n_neighbors", "knn_metric", "lr", "epochs"]
    assert list(frame.columns[-1 - len(RUN):]) == [*RUN, "error"]
    assert list(frame["trial_id"]) == ["a", "b", "c"] and frame["rank"].tolist()[:2] == [1, 2]
    for column in ("rank", "num_layers", "units_0", "epochs", "n_neighbors", "n_params", "fits_done"):
        assert str(frame[column].dtype) == "Int64", column
    assert "5.0" not in frame.to_csv(index=False)


def test_the_long_board_takes_every_per_fit_key_the_trial_reports(tmp_path):
    board = LiveLeaderboard(str(tmp_path), train={}, seeds=1, folds=2, write_every_s=0)
    trial = _Trial("t1", {"model": "knn", "knn": {"n_neighbors": 3}})
    for fold in (1, 0):
        board.on_trial_result(0, [], trial, {**_finished(fold + 1), "status": "running", "fit_seed": 7,
                                             "fit_fold": fold, "fit_init_seed": 123456 + fold, "fit_accuracy": 0.5,
                                             "fit_seconds": 0.2, "fit_predict_seconds": 0.01,
                                             "fit_best_epoch": 1, "fit_new_thing": "x", "status_detail": "not a fit key"})
    folds = pd.read_csv(tmp_path / "leaderboard_folds.csv", dtype={"trial_id": str})
    assert list(folds[["seed", "fold", "init_seed"]].itertuples(index=False, name=None)) == [
        (7, 0, 123456), (7, 1, 123457)]
    assert folds["predict_seconds"].tolist() == [0.01, 0.01] and folds["new_thing"].tolist() == ["x", "x"]
    assert "status_detail" not in folds and "seconds_mean" not in folds  # the trial's summary is not a fit's
    # the live board shows a running trial's costs as they stand
    live = pd.read_csv(tmp_path / "leaderboard.csv")
    assert live.loc[0, "status"] == "running" and live[COSTS].notna().all().all()
    # a fit of an older sweep without an init_seed leaves its cell empty, the others stay integers
    older = {"trial_id": "t0", "model": "knn", "seed": 7, "fold": 0, "best_epoch": 1}
    text = fold_frame([*board.fold_rows.values(), older]).to_csv(index=False)
    assert "123456," in text and "123456.0" not in text and ",7.0," not in text


def test_pareto_front_keeps_the_trials_no_other_beats():
    board = pd.DataFrame({
        "trial_id": list("abcdefg"),
        "status": ["ok", "ok", "ok", "ok", "ok", "failed", "ok"],
        "objective": [0.90, 0.85, 0.80, 0.85, 0.70, 0.99, 0.95],
        "predict_seconds_per_1000": [2.0, 1.0, 1.5, 1.0, 0.1, 0.01, np.nan],
    })
    # c is beaten by b (better and faster); d ties b on both and stays, as b does; e is the
    # fastest; a the best with a time; f failed and g has no time: neither is on it
    assert pareto_front(board)["trial_id"].tolist() == ["a", "b", "d", "e"]
    assert pareto_front(board.drop(columns="predict_seconds_per_1000")).empty


def test_the_terminal_view_shows_each_rows_own_settings_and_the_frontier():
    from results.leaderboard import format_leaderboard

    board = rank_rows([
        {"trial_id": "k1", "status": "ok", "model": "knn", "n_neighbors": 1, "objective": 0.8,
         "predict_seconds_per_1000": 0.5, "fit_seconds_mean": 0.1},
        {"trial_id": "k2", "status": "ok", "model": "knn", "n_neighbors": 5, "objective": 0.7,
         "predict_seconds_per_1000": 0.4, "fit_seconds_mean": 0.1},
        {"trial_id": "l1", "status": "ok", "model": "lstm", "lr": 0.01, "num_layers": 1, "objective": 0.9,
         "predict_seconds_per_1000": 9.0, "fit_seconds_mean": 2.0},
        {"trial_id": "l2", "status": "ok", "model": "lstm", "lr": 0.001, "num_layers": 1, "objective": 0.6,
         "predict_seconds_per_1000": 8.0, "fit_seconds_mean": 2.0},
    ])
    lines = format_leaderboard(board, top=None).splitlines()
    by_trial = {line.split()[1]: line for line in lines[2:]}
    assert "lr=0.01" in by_trial["l1"] and "n_neighbors" not in by_trial["l1"]
    assert "n_neighbors=1" in by_trial["k1"] and "lr=" not in by_trial["k1"] and "<NA>" not in lines[2]
    assert "pred s/1k" in lines[1]
    front = format_leaderboard(board, top=None, pareto=True).splitlines()
    assert front[0].startswith("3 trials on the frontier") and not any(" l2 " in line for line in front)


def test_a_fit_times_its_validation_prediction(synth_mfcc, one_torch_thread):
    from trainables import fit

    rows = np.arange(len(synth_mfcc))
    for name in ("knn", "cnn1d"):
        result = fit(name, {"filters": (4,), "num_blocks": 1} if name == "cnn1d" else None,
                     synth_mfcc.subset(rows[::2]), synth_mfcc.subset(rows[1::2]), seed=0,
                     train_config={"epochs": 1})
        assert 0 < result.predict_seconds < result.seconds
        assert result.scalars()["predict_seconds"] == result.predict_seconds


def check_real_board(experiment_dir: Path, *, tokens: bool = False, early_stopping: bool = False) -> None:
    """What a real sweep's ``leaderboard.csv`` must satisfy (tests/search/test_sweep.py's
    tiny sweep calls this on its output, so no second sweep is started for it): each row
    fills exactly the settings its family declares (a setting at None, such as an unset
    ``early_stopping_patience``, is empty), the costs are filled on every finished row, and
    integers are written as integers."""
    text = (experiment_dir / "leaderboard.csv").read_text()
    board = pd.read_csv(io.StringIO(text), dtype={"trial_id": str})
    for (tid, filled), (_, row) in zip(filled_settings(board).items(), board.iterrows()):
        expected = expected_settings(row["model"], tokens=tokens, early_stopping=early_stopping)
        for name, count in MODEL_CONFIGS[row["model"]].sequence_fields.items():  # one width per layer it has
            expected = {k for k in expected if not k.startswith(f"{name}_")} | {
                f"{name}_{i}" for i in range(int(row[count]))}
        may_be_none = {name for cls in (MODEL_CONFIGS[row["model"]], TrainConfig)
                       for name, info in cls.__pydantic_fields__.items() if info.default is None}
        assert filled <= expected and expected - filled <= may_be_none, (tid, filled ^ expected)
    finished = board[board["status"] == "ok"]
    assert len(finished) and finished[COSTS].notna().all().all()
    assert (finished["predict_seconds_per_1000"] > 0).all() and (finished["fit_seconds_total"] >=
                                                                finished["fit_seconds_mean"]).all()
    assert_integers_written_as_integers(text)


def test_a_restored_sweep_rewrites_an_older_boards_rows(tmp_path):
    """A board of the previous layout (every family's settings on every row, kNN's
    ``metric``, ``train_seconds``) is rewritten from the trials' configs on the first step
    of a restored sweep; a trial the restored experiment does not know is dropped."""
    pd.DataFrame([
        {"rank": 1, "trial_id": "k1", "status": "ok", "model": "knn", "n_neighbors": 3.0, "metric": "cosine",
         "lr": 0.001, "epochs": 30.0, "objective": 0.8, "train_seconds": 0.5, "error": ""},
        {"rank": 2, "trial_id": "gone", "status": "ok", "model": "knn", "n_neighbors": 1.0, "metric": "euclidean",
         "lr": 0.001, "epochs": 30.0, "objective": 0.7, "train_seconds": 0.4, "error": ""},
    ]).to_csv(tmp_path / "leaderboard.csv", index=False)
    board = LiveLeaderboard(str(tmp_path), train={}, seeds=1, folds=2)
    board.on_step_begin(0, [_Trial("k1", {"model": "knn", "knn": {"n_neighbors": 3, "metric": "cosine"}})])
    written = pd.read_csv(tmp_path / "leaderboard.csv", dtype={"trial_id": str})
    assert written["trial_id"].tolist() == ["k1"] and written.loc[0, "fit_seconds_mean"] == 0.5
    assert filled_settings(written)["k1"] == expected_settings("knn", tokens=False, early_stopping=False)
    assert written.loc[0, "knn_metric"] == "cosine" and "metric" not in written and "lr" not in written


def test_results_are_written_at_most_every_interval_and_a_trials_end_at_once(tmp_path):
    board = LiveLeaderboard(str(tmp_path), train={}, seeds=1, folds=2, write_every_s=3600)
    trial = _Trial("t1", {"model": "knn", "knn": {"n_neighbors": 3}})
    fit = {"status": "running", "fit_seed": 7, "fit_accuracy": 0.5, "fit_seconds": 0.2}
    board.on_trial_result(0, [], trial, {**_finished(1), **fit, "fit_fold": 0})  # the first is due at once
    board.on_trial_result(0, [], trial, {**_finished(2), **fit, "fit_fold": 1})  # within the interval: held
    board.on_step_end(0, [])
    assert len(pd.read_csv(tmp_path / "leaderboard_folds.csv")) == 1
    trial.last_result = {**_finished(2), "status": "ok"}
    board.on_trial_complete(0, [], trial)
    assert len(pd.read_csv(tmp_path / "leaderboard_folds.csv")) == 2
    assert pd.read_csv(tmp_path / "leaderboard.csv").loc[0, "status"] == "ok"


def test_the_start_and_the_checkpoint_come_from_the_tune_trial(tmp_path):
    """``start_time`` is Tune's start (the clock's before Tune sets it, kept once written);
    ``checkpoint`` the last checkpoint folder, relative to the experiment folder."""
    board = LiveLeaderboard(str(tmp_path), train={}, seeds=1, folds=2, write_every_s=0)
    trial = _Trial("t1", {"model": "knn", "knn": {"n_neighbors": 3}})
    board.on_trial_start(0, [], trial)
    first = board.rows["t1"]["start_time"]
    assert isinstance(first, float) and math.isnan(pd.read_csv(tmp_path / "leaderboard.csv").loc[0, "checkpoint"])
    trial.run_metadata.start_time = first + 100.0
    trial.checkpoint = _Checkpoint("/runs/exp/trial_t1/checkpoint_000000")
    trial.last_result = _finished()
    board.on_trial_complete(0, [], trial)
    written = pd.read_csv(tmp_path / "leaderboard.csv")
    assert written.loc[0, "start_time"] == first and written.loc[0, "checkpoint"] == "trial_t1/checkpoint_000000"
    assert list(written.columns[-3:]) == [*RUN, "error"]
