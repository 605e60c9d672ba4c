"""The results room end to end: a real tiny sweep on the synthetic audio, its ensembles
refit and scored on the test split, the report, the leaderboard and predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import results.deploy
from search.spec import SweepSpec
from seqsweep.cli import main
from seqsweep.errors import ConfigError, StoreError
from trainables.training.metrics import METRICS

SPEC = {
    "name": "res",
    "dataset": "synth",
    "feature_set": "mfcc27",
    "cv": {"folds": 2, "seeds": 2},
    "search": {"num_samples": 5, "sampler": "random", "seed": 0},
    "models": {
        "knn": {"n_neighbors": [1, 3, 5]},
        "lstm": {"num_layers": 1, "units": [4, 8], "lr": 0.01, "epochs": 2, "batch_size": 16},
    },
    # top_k above the trials there are: the ensembles use the 5 there are, and say so
    "ensemble": {"top_k": 10, "fit_weights": True},
}
N_TRIALS = 5
METHODS = ["soft", "max", "vote", "weighted", "weighted_logloss"]


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def experiment(ray_session, synth_store, tmp_path_factory) -> Path:
    """A finished tiny sweep (no ensembles yet): knn and a tiny LSTM, 2 folds x 2 seeds."""
    from search.sweep import run_sweep

    spec = SweepSpec.from_dict({**SPEC, "store": str(synth_store),
                                "storage": str(tmp_path_factory.mktemp("runs"))})
    outcome = run_sweep(spec, echo=lambda *_: None, verbose=0)
    assert outcome.ok == N_TRIALS, pd.read_csv(Path(outcome.experiment_dir) / "leaderboard.csv")
    return Path(outcome.experiment_dir)


@pytest.fixture(scope="module")
def copies(experiment, tmp_path_factory):
    """Copies of the experiment folder taken before `finished` writes into it."""
    root = tmp_path_factory.mktemp("copies")
    made = {}
    for name in ("cli", "no_oof", "uri", "old"):
        made[name] = root / name
        shutil.copytree(experiment, made[name])
    return made


@pytest.fixture(scope="module")
def finished(experiment, copies):
    """`finish_sweep` run once, with every test-split scoring and test-split load counted."""
    from results.pipeline import finish_sweep

    calls = {"score_test": [], "load_split": []}
    score_test, load_split = results.deploy.score_test, results.deploy.load_split

    def spy_score(y, proba, *, n_classes, groups=None):
        calls["score_test"].append(proba)
        return score_test(y, proba, n_classes=n_classes, groups=groups)

    def spy_load(spec, split):
        calls["load_split"].append(split)
        return load_split(spec, split)

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results.deploy, "score_test", spy_score)
        mp.setattr("results.pipeline.load_split", spy_load)
        summary = finish_sweep(str(experiment), echo=lines.append)
    return summary, calls, lines


# ---- ensembles --------------------------------------------------------------------------------------
def test_ensembles_csv(experiment, finished):
    summary, _, lines = finished
    assert any("only 5 trials finished ok" in line for line in lines), lines
    table = pd.read_csv(experiment / "ensembles.csv", dtype={"members": str})
    assert list(table.columns) == ["kind", "method", "form", "members", "weights", "estimate",
                                   *[f"{s}_{m}" for s in ("oof", "test") for m in METRICS]]  # whole clips: no per-group columns
    assert set(table["form"]) == {"bag"}
    board = pd.read_csv(experiment / "leaderboard.csv", dtype={"trial_id": str})
    members = table[table["kind"] == "member"]
    assert list(members["members"]) == list(board["trial_id"])  # every ok trial, best first
    assert list(members["method"]) == ["best_member"] + ["member"] * (N_TRIALS - 1)
    assert list(members["estimate"]) == ["cross-fitted"] + ["as ranked"] * (N_TRIALS - 1)
    ensembles = table[table["kind"] == "ensemble"]
    assert list(ensembles["method"]) == METHODS
    final = table.iloc[-1]  # the final choice: one of the candidates, its figure nested
    assert final["kind"] == "final" and final["method"] == summary.final and final["estimate"] == "nested"
    assert final["method"] in ["best_member", *METHODS] and len(summary.per_part) == 2  # one choice per part
    same = table[table["method"] == final["method"]].iloc[0]
    assert final["members"] == same["members"] and final["test_accuracy"] == same["test_accuracy"]
    for _, row in ensembles.iterrows():
        weights = [float(w) for w in str(row["weights"]).split(";")]
        assert len(weights) == len(str(row["members"]).split(";"))
        assert sum(weights) == pytest.approx(1.0, abs=1e-5) and min(weights) > 0
        assert set(str(row["members"]).split(";")) <= set(board["trial_id"])
    scores = table.filter(regex="^(oof|test)_")
    assert scores.notna().all().all() and ((scores >= 0) & (scores <= 1)).all().all()
    assert summary.best_member == board["trial_id"].iloc[0] and summary.best_ensemble in METHODS
    text = str(summary)
    assert f"the best of {N_TRIALS} finished trials" in text and f"what seqsweep hands over (predict's default): " \
        f"{summary.final}" in text
    assert f"final choice {summary.final}: out-of-fold balanced_accuracy" in summary.agreement()
    looks = pd.read_csv(experiment / "test_looks.csv")  # the ledger: one row per test figure of the table
    assert list(looks["run"]) == [1] * len(table) and set(looks["metric"]) == {"balanced_accuracy"}
    assert list(looks["figure"]) == pytest.approx(list(table["test_balanced_accuracy"]))
    assert looks["scored"].iloc[-1] == f"final {summary.final} ({final['members']})"


def test_each_member_and_ensemble_is_scored_on_test_exactly_once(finished):
    summary, calls, _ = finished
    assert calls["load_split"].count("test") == 1
    assert len(calls["score_test"]) == N_TRIALS + len(METHODS)  # one per member, one per ensemble
    assert len({id(p) for p in calls["score_test"]}) == len(calls["score_test"])
    assert len(summary.table) == N_TRIALS + len(METHODS) + 1  # and the final choice, one of them


def test_saved_ensemble_predicts_what_was_scored(experiment, synth_store, finished):
    from results.deploy import load_split
    from results.ensemble import combine
    from results.experiment import load_experiment
    from results.predict import load_ensemble

    folder = experiment / "ensemble"
    info = json.loads((folder / "ensemble.json").read_text())
    assert info["features"]["kind"] == "mfcc27" and info["features"]["source_type"] == "audio"
    # each member is its bag: 2 seeds x 2 folds of CV models, each trial's from its own init seeds
    starts = [m["seeds"] for m in info["members"]]
    assert all(s[0] == s[1] != s[2] == s[3] for s in starts) and len({tuple(s) for s in starts}) == N_TRIALS
    assert [m["folds"] for m in info["members"]] == [[0, 1, 0, 1]] * N_TRIALS
    assert {m["form"] for m in info["members"]} == {"bag"}
    assert all((folder / f).stat().st_size > 0 for m in info["members"] for f in m["files"])
    assert {m["model"] for m in info["members"]} == {"knn", "lstm"}
    assert set(info["methods"]) == {"best_member", *METHODS} and info["best"]["final"] in info["methods"]
    files = [f for m in info["members"] for f in m["files"]]
    assert {Path(f).suffix for f in files} == {".pt", ".npz"}  # no pickle: loading runs no code

    saved = load_ensemble(experiment)  # the weights read back from disk
    test = load_split(load_experiment(experiment).spec, "test")
    with np.load(folder / "test_predictions.npz") as data:
        assert list(data["clip_ids"]) == list(test.clip_ids)
        member = {t: saved.members[t].predict_proba(test) for t in data["member_ids"]}
        for k, tid in enumerate(data["member_ids"]):
            np.testing.assert_allclose(member[tid], data["member_proba"][k], atol=1e-5)
        for k, method in enumerate(data["methods"]):
            entry = info["methods"][method]
            again = combine(entry["combiner"], np.stack([member[t] for t in entry["members"]]),
                            weights=entry["weights"])
            np.testing.assert_allclose(again, data["ensemble_proba"][k], atol=1e-5)
        weighted = list(data["methods"]).index("weighted")
        np.testing.assert_allclose(saved.predict_proba(test, "weighted"), data["ensemble_proba"][weighted],
                                   atol=1e-5)


def test_a_bagged_member_predicts_the_mean_of_its_fold_models(experiment, finished):
    """The deployed member is exactly its CV fold models, read from its trial's checkpoint:
    its test probabilities are their mean."""
    from results.deploy import load_split
    from results.experiment import load_experiment
    from trainables import predict_proba, split_flat_config
    from trainables.training.saved import weights_from_bytes

    exp = load_experiment(experiment)
    test = load_split(exp.spec, "test")
    with np.load(experiment / "ensemble" / "test_predictions.npz") as data:
        saved = dict(zip(data["member_ids"], data["member_proba"]))
    for row in exp.ok_trials().head(2).to_dict("records"):
        member = exp.member(row)
        name, model_config, _ = split_flat_config(member.flat_config)
        fold_probas = []
        for f in member.fits:  # straight from the trial's checkpoint, not the ensemble folder
            path = Path(member.checkpoint) / f["file"]
            weights = weights_from_bytes(path.suffix, path.read_bytes(), model=member.model,
                                         flat_config=member.config, seed=f["init_seed"], where=str(path))
            fold_probas.append(predict_proba(name, model_config, weights, test))
        assert len(fold_probas) == 4
        np.testing.assert_allclose(saved[member.trial_id], np.mean(fold_probas, axis=0), atol=1e-5)


def test_rebuild_from_the_cli_and_clear_errors(copies, tmp_path):
    res = cli("results", "ensemble", copies["cli"], "--top-k", "2", "--methods", "soft,vote", "--no-report")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(copies["cli"] / "ensembles.csv", dtype={"members": str})
    assert list(table["method"])[:-1] == ["best_member", "member", "soft", "vote", "weighted_logloss"]  # fit_weights
    assert table["kind"].iloc[-1] == "final"
    assert not (copies["cli"] / "report").exists()
    # a second look at the test split: said, recorded, and the first table kept
    res = cli("results", "ensemble", copies["cli"], "--top-k", "2", "--methods", "max", "--no-report")
    assert res.exit_code == 0 and "scored 1 time(s) before (6 looks in test_looks.csv)" in res.output, res.output
    assert "6 earlier looks at this test split" in res.output
    pd.testing.assert_frame_equal(pd.read_csv(copies["cli"] / "ensembles_run1.csv", dtype={"members": str}), table)
    looks = pd.read_csv(copies["cli"] / "test_looks.csv")
    assert list(looks["run"]) == [1] * 6 + [2] * 5 and looks["command"].str.len().gt(0).all()
    assert '"methods": ["max"]' in looks["settings"].iloc[-1]

    res = cli("results", "ensemble", copies["cli"], "--methods", "soft,median")
    assert res.exit_code == 1 and "methods: must be among" in res.output and "median" in res.output
    res = cli("results", "ensemble", tmp_path)
    assert res.exit_code == 1 and "sweep.json: a sweep's experiment folder must hold this file" in res.output

    board = pd.read_csv(copies["no_oof"] / "leaderboard.csv", dtype={"trial_id": str})
    best = board["trial_id"].iloc[0]
    for oof in (copies["no_oof"] / f"trial_{best}").glob("checkpoint_*/oof.npz"):
        oof.unlink()
    from results.pipeline import finish_sweep

    with pytest.raises(StoreError, match=rf"trial_{best}.*oof.npz: a trial with status ok must have saved"):
        finish_sweep(str(copies["no_oof"]), echo=lambda *_: None)

    from results.report import write_report  # without an ensemble: the CV figures, and a note

    text = Path(write_report(str(copies["no_oof"]))).read_text()
    assert "No ensemble yet: run `seqsweep results ensemble DIR`" in text
    assert (copies["no_oof"] / "report" / "cv_spread.png").exists()
    assert not (copies["no_oof"] / "report" / "confusion_best_member.png").exists()


def test_a_board_written_before_it_named_starts_and_checkpoints_still_reports(experiment, copies):
    """An experiment whose board has no ``start_time`` and ``checkpoint`` (written before
    the leaderboard held them): results find both in Ray Tune's folders, as they did then."""
    from results.experiment import load_experiment
    from results.report import _start_order

    board = pd.read_csv(copies["old"] / "leaderboard.csv", dtype={"trial_id": str})
    assert board["checkpoint"].notna().all() and board["start_time"].notna().all()
    board.drop(columns=["start_time", "checkpoint"]).to_csv(copies["old"] / "leaderboard.csv", index=False)
    new, old = load_experiment(experiment), load_experiment(copies["old"])
    assert "checkpoint" not in old.board
    for tid, named in zip(board["trial_id"], board["checkpoint"]):
        assert old.checkpoint(tid) == f"{old.path}/{named}" and new.checkpoint(tid) == f"{new.path}/{named}"
        assert abs(old.start_time(tid) - new.start_time(tid)) < 5.0  # Ray's first result less its run time
    # the old way's clock is Ray's whole-second timestamp: trials started within a second or
    # two of each other may come in either order, later ones never before earlier ones
    old_order = _start_order(old)
    assert sorted(old_order) == sorted(_start_order(new))
    assert all(new.start_time(a) <= new.start_time(b) + 2.0 for a, b in zip(old_order, old_order[1:])), old_order
    assert [m.trial_id for m in old.top_members(2)] == [m.trial_id for m in new.top_members(2)]


def test_the_results_room_works_on_a_storage_uri(copies):
    """An experiment at a URI (file:// here; s3:// and gs:// go through the same pyarrow
    filesystem calls): ensembles, report, leaderboard and status, with no local path given."""
    uri = f"file://{copies['uri']}"
    res = cli("results", "ensemble", uri, "--top-k", "2", "--methods", "soft,weighted")
    assert res.exit_code == 0, res.output
    assert "oof_*: out-of-fold on the train split" in res.output and "95% interval" in res.output
    table = pd.read_csv(copies["uri"] / "ensembles.csv", dtype={"members": str})
    assert list(table.loc[table["kind"] == "ensemble", "method"]) == ["soft", "weighted", "weighted_logloss"]
    assert table["method"].iloc[0] == "best_member" and table["kind"].iloc[-1] == "final"
    assert (copies["uri"] / "ensemble" / "ensemble.json").exists()
    assert (copies["uri"] / "report" / "report.md").exists() and (copies["uri"] / "report" / "cv_spread.png").exists()
    assert not list(copies["uri"].rglob("*.tmp-*"))  # every write renamed into place
    res = cli("results", "leaderboard", uri, "--top", "2")
    assert res.exit_code == 0 and "the best 2 shown" in res.output
    res = cli("sweep", "status", uri)
    assert res.exit_code == 0 and f"{N_TRIALS} trials" in res.output
    res = cli("results", "leaderboard", f"file://{copies['uri']}/nothere")
    assert res.exit_code == 1 and "leaderboard.csv" in res.output


# ---- leaderboard and report -------------------------------------------------------------------------------
def test_leaderboard_loads_and_prints(experiment):
    from results.leaderboard import format_leaderboard, load_leaderboard

    board = load_leaderboard(experiment)
    assert list(board["rank"]) == list(range(1, N_TRIALS + 1))
    assert board["trial_id"].map(type).eq(str).all()
    text = format_leaderboard(board, top=2)
    assert text.splitlines()[0] == f"{N_TRIALS} trials ({N_TRIALS} ok); the best 2 shown"
    assert len(text.splitlines()) == 4 and board["trial_id"].iloc[0] in text.splitlines()[2]
    res = cli("results", "leaderboard", experiment, "--top", "3")
    assert res.exit_code == 0 and "balanced_accuracy" in res.output and len(res.output.splitlines()) == 5
    with pytest.raises(StoreError, match="leaderboard.csv: a sweep's experiment folder must hold"):
        load_leaderboard(experiment / "trial_nothere")


def test_leaderboard_shows_failed_trials_last_with_their_error():
    from results.leaderboard import format_leaderboard
    from search.ranking import rank_rows

    board = rank_rows([
        {"trial_id": "0001", "status": "failed", "model": "lstm", "lr": 10.0, "objective": float("nan"),
         "error": "seed 0 fold 0: TrainingError: epoch 1: the training loss must stay finite"},
        {"trial_id": "0002", "status": "ok", "model": "lstm", "lr": 0.01, "objective": 0.5,
         "balanced_accuracy_mean": 0.5, "balanced_accuracy_std": 0.1, "balanced_accuracy_min": 0.4, "error": ""},
        {"trial_id": "0003", "status": "ok", "model": "knn", "n_neighbors": 3, "objective": 0.7,
         "balanced_accuracy_mean": 0.7, "balanced_accuracy_std": 0.0, "balanced_accuracy_min": 0.7, "error": ""},
    ])
    lines = format_leaderboard(board, top=None).splitlines()
    assert lines[0] == "3 trials (2 ok, 1 failed)"
    assert "0003" in lines[2] and "0.700 ± 0.000" in lines[2]
    assert "0002" in lines[3] and "lr=0.01" in lines[3]  # lr differs between the lstm trials
    assert "0001" in lines[4] and "failed" in lines[4] and "TrainingError" in lines[4]
    assert "n_neighbors" not in lines[2]  # the only knn trial: nothing varies


def test_report_files(experiment, finished):
    from results.report import FIGURES

    report = Path(finished[0].report)
    assert report == experiment / "report" / "report.md"
    text = report.read_text()
    for name in FIGURES:
        png = experiment / "report" / name
        assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({name})" in text
    assert "| class | precision | recall | f1 | support |" in text
    res = cli("results", "report", experiment)
    assert res.exit_code == 0 and "report.md" in res.output


# ---- predict -----------------------------------------------------------------------------------------
def test_predict_synthetic_clips_and_a_corrupt_file(experiment, synth_dir, finished, tmp_path):
    from results.predict import predict

    clips = sorted(synth_dir.glob("*/*.wav"))[::6]  # 8 clips, every class
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00not audio at all")
    frame = predict(experiment, [*map(str, clips), str(corrupt)], method="weighted")
    classes = json.loads((experiment / "ensemble" / "ensemble.json").read_text())["classes"]
    assert list(frame.columns) == ["path", "predicted", *[f"prob_{c}" for c in classes], "error"]
    bad = frame[frame["path"] == str(corrupt)].iloc[0]
    assert "corrupt.wav" in bad["error"] and bad["predicted"] == "" and np.isnan(bad["prob_" + classes[0]])
    good = frame[frame["path"] != str(corrupt)]
    assert len(good) == len(clips) and (good["error"] == "").all()
    probs = good[[f"prob_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert good["predicted"].isin(classes).all()

    out = tmp_path / "predictions.csv"
    folder = synth_dir / classes[0]
    res = cli("predict", experiment, folder, corrupt, "--method", "soft", "--out", out)
    assert res.exit_code == 0, res.output
    assert "1 of" in res.output and "corrupt.wav" in res.output  # reported, the rest predicted
    written = pd.read_csv(out, keep_default_na=False)
    assert len(written) == len(list(folder.glob("*.wav"))) + 1
    res = cli("predict", experiment, clips[0], "--method", "median")
    assert res.exit_code == 1 and "--method: must be one of the saved ensemble's methods" in res.output


def test_predict_needs_an_audio_feature_set(tmp_path):
    from results.predict import predict

    folder = tmp_path / "exp" / "ensemble"
    folder.mkdir(parents=True)
    (folder / "ensemble.json").write_text(json.dumps({
        "classes": ["a", "b"], "feature_set": "raw", "members": [],
        "features": {"kind": "raw", "source_type": "import"}, "methods": {"soft": {"members": [], "weights": []}}}))
    with pytest.raises(ConfigError, match="feature set 'raw': predict works on audio feature sets"):
        predict(tmp_path / "exp", [tmp_path], method="soft")
    with pytest.raises(StoreError, match="predict needs the saved ensemble"):
        predict(tmp_path, [tmp_path])


def test_predict_averages_the_segments_of_a_segmented_feature_set(synth_store, synth_dir, tmp_path):
    """A saved ensemble whose feature set cuts clips into 0.5 s segments: each file's row is
    the mean of its segments' probabilities."""
    from features import FeatureSpec, FeatureStore, extract_clip, pad_sequences
    from features.sequences import SequenceSet
    from results.deploy import DeployedMember, save_members
    from results.predict import predict
    from trainables import fit

    train = FeatureStore(synth_store).load("synth", "mfcc27", split="train", padded=True)
    knn = fit("knn", {"n_neighbors": 3}, train, None, seed=0, return_weights=True)
    folder = tmp_path / "exp" / "ensemble"
    entries = save_members([DeployedMember("t1", "knn", {"n_neighbors": 3}, "full", [0], [None], [knn.weights])],
                           str(folder))
    spec = FeatureSpec.create("mfcc27", segment_seconds=0.5)
    (folder / "ensemble.json").write_text(json.dumps({
        "classes": train.classes, "feature_set": spec.name, "members": entries,
        "features": {**spec.to_dict(), "source_type": "audio"},
        "methods": {"soft": {"members": ["t1"], "weights": [1.0]}}}))

    clip = sorted(synth_dir.glob("*/*.wav"))[0]
    frame = predict(tmp_path / "exp", [clip], method="soft")
    segments = extract_clip(str(clip), spec)
    assert len(segments) == 4  # 2 s clips
    x, lengths = pad_sequences(segments)
    ids = np.arange(4).astype(str)
    expected = knn.weights.predict_proba(SequenceSet(x, np.zeros(4), train.classes, ids, ids, lengths)).mean(axis=0)
    np.testing.assert_allclose(frame[[f"prob_{c}" for c in train.classes]].to_numpy()[0], expected)
