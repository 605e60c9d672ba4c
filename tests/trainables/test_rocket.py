"""The ROCKET families (`trainables.classic.rocket`): the model contract, lengths, calibration,
no-pickle saving, token refusal, and one sweep of both on the local Ray through to
``seqsweep predict``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.sequences import SequenceSet
from seqsweep.errors import ConfigError
from trainables import fit
from trainables.classic._rocket_parts import (
    fit_temperature,
    sparse_scale,
    sparse_scale_stats,
    to_length,
)
from trainables.classic.rocket import MIN_LENGTH
from trainables.testing import TINY_TRAIN, ModelContract, _toy_sequences
from trainables.training.saved import weights_from_bytes, weights_to_bytes

SMALL = {
    "minirocket": {"n_features": 168, "max_dilations": 8},
    "multirocket_hydra": {"n_kernels": 168, "max_dilations": 8, "hydra_kernels": 4, "hydra_groups": 8},
}


class TestMiniRocket(ModelContract):
    model = "minirocket"
    config = SMALL["minirocket"]
    torch_model = False


class TestMultiRocketHydra(ModelContract):
    model = "multirocket_hydra"
    config = SMALL["multirocket_hydra"]
    torch_model = False


def _fit(model: str, train: SequenceSet, valid: SequenceSet | None, **config):
    return fit(model, {**SMALL[model], **config}, train, valid, seed=3, train_config=TINY_TRAIN, return_weights=True)


# ---- lengths -----------------------------------------------------------------------------------------
def test_to_length_pads_with_the_last_frame_and_stretches_linearly():
    seq = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], dtype=np.float32)
    padded = to_length(seq, 5, mode="pad")
    np.testing.assert_array_equal(padded, [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]])
    stretched = to_length(seq, 5, mode="stretch")
    np.testing.assert_allclose(stretched[:, 0], [0, 1, 2, 3, 4])
    assert stretched.dtype == np.float32
    # a longer sequence is resampled in either mode; a length-1 one is repeated
    np.testing.assert_allclose(to_length(np.arange(9, dtype=np.float32)[:, None], 5, mode="pad")[:, 0],
                               [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(to_length(seq[:1], 4, mode="stretch"), np.repeat(seq[:1], 4, axis=0))


@pytest.mark.parametrize("lengths", ["pad", "stretch"])
@pytest.mark.parametrize("model", list(SMALL))
def test_unequal_lengths_longer_than_training_are_predicted(model, lengths):
    """Train on sequences of 1-25 steps; predict ones of 40 (longer than any seen): each
    sequence alone gives what it gets in a batch of mixed lengths."""
    train, valid = _toy_sequences()["features_train"], _toy_sequences()["features_valid"]
    result = _fit(model, train, valid, lengths=lengths)
    assert int(result.weights.state_["length"]) == max(MIN_LENGTH[model], int(train.lengths.max()))
    long = SequenceSet([np.tile(s, (40 // len(s) + 1, 1))[:40] for s in valid.x[:4]], valid.y[:4],
                       valid.classes, valid.groups[:4], valid.clip_ids[:4])
    mixed = SequenceSet([*long.x, *valid.x[4:]], valid.y, valid.classes, valid.groups, valid.clip_ids)
    together = result.predict_proba(mixed)
    np.testing.assert_allclose(together[:4], result.predict_proba(long), atol=1e-9)
    np.testing.assert_allclose(together[4:], result.proba[4:], atol=1e-9)


# ---- calibration and the Hydra scaling ------------------------------------------------------------
def test_temperature_is_recovered_from_scaled_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 2.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])
    # decision values 10x too sharp: the fitted temperature undoes it
    assert fit_temperature(logits * 10.0, y, np.arange(5)) == pytest.approx(10.0, rel=0.1)


def test_sparse_scaling_matches_aeons():
    import torch
    from aeon.classification.convolution_based._hydra import _SparseScaler

    rng = np.random.default_rng(1)
    counts = np.where(rng.random((30, 12)) < 0.4, 0.0, rng.random((30, 12)) * 5)
    theirs = _SparseScaler()
    theirs.fit(torch.tensor(counts))
    mu, sigma = sparse_scale_stats(counts)
    np.testing.assert_allclose(sparse_scale(counts, mu, sigma), theirs.transform(torch.tensor(counts)).numpy(),
                               rtol=1e-6, atol=1e-6)  # aeon takes the zero share in float32


@pytest.mark.parametrize("head", ["ridge", "logistic"])
def test_heads_give_calibrated_enough_probabilities(head):
    """On the toy data, either head's log loss on the validation rows is far below the
    uniform guess's log(4) (the validation rows chose nothing)."""
    train, valid = _toy_sequences()["features_train"], _toy_sequences()["features_valid"]
    result = _fit("minirocket", train, valid, head=head)
    assert result.metrics["log_loss"] < 0.5 * np.log(4)
    temperature = float(result.weights.state_["temperature"])
    assert (temperature != 1.0) if head == "ridge" else (temperature == 1.0)


# ---- saving --------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["ridge", "logistic"])
@pytest.mark.parametrize("model", list(SMALL))
def test_saved_without_pickle_and_reloaded_bit_for_bit(model, head):
    train, valid = _toy_sequences()["features_train"], _toy_sequences()["features_valid"]
    result = _fit(model, train, None, head=head)
    suffix, blob = weights_to_bytes(result.weights)
    assert suffix == ".npz"
    with np.load(__import__("io").BytesIO(blob), allow_pickle=False) as saved:  # plain arrays only
        assert all(saved[k].dtype != object for k in saved.files)
    flat = {**SMALL[model], "head": head, **TINY_TRAIN}
    loaded = weights_from_bytes(suffix, blob, model=model, flat_config=flat, seed=3, where="test.npz")
    np.testing.assert_array_equal(loaded.predict_proba(valid), result.predict_proba(valid))
    assert loaded.n_params == result.n_params > 0


# ---- tokens --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", list(SMALL))
def test_token_data_are_refused(model):
    tokens = _toy_sequences()["tokens_train"]
    with pytest.raises(ConfigError, match="token feature set"):
        fit(model, SMALL[model], tokens, None, seed=0, train_config=TINY_TRAIN)


def test_a_token_sweep_refuses_a_rocket_family_at_the_door():
    from search.space import with_token_defaults
    from search.spec import SweepSpec

    spec = SweepSpec.from_dict({"name": "t", "store": "/tmp/none", "dataset": "d", "feature_set": "chords",
                                "models": {"knn": {}, "minirocket": {}}}, source="test")
    assert with_token_defaults(spec, tokens=False) is spec
    with pytest.raises(ConfigError, match=r"models\.minirocket.*token"):
        with_token_defaults(spec, tokens=True)


def test_bad_fields_name_the_field():
    from trainables import make_model_config

    with pytest.raises(ConfigError, match=r"minirocket\.n_features"):
        make_model_config("minirocket", {"n_features": 10})
    with pytest.raises(ConfigError, match=r"multirocket_hydra\.alpha"):
        make_model_config("multirocket_hydra", {"alpha": 0})


# ---- a sweep of both, deployed as bags and predicted on audio ------------------------------------
@pytest.mark.slow
def test_both_families_sweep_deploy_and_predict_audio(ray_session, synth_store, synth_dir, tmp_path):
    from results.pipeline import finish_sweep
    from results.predict import predict
    from search.spec import SweepSpec
    from search.sweep import run_sweep

    spec = SweepSpec.from_dict({
        "name": "rocket", "store": str(synth_store), "storage": str(tmp_path / "runs"),
        "dataset": "synth", "feature_set": "mfcc27", "cv": {"folds": 2, "seeds": 1},
        "search": {"num_samples": 2, "sampler": "grid", "seed": 0},
        "models": {name: dict(config) for name, config in SMALL.items()},
        "ensemble": {"top_k": 2, "methods": ["soft"], "refit": "bag"},
    }, source="test_rocket")
    outcome = run_sweep(spec, echo=lambda *_: None, verbose=0)
    exp = Path(outcome.experiment_dir)
    board = pd.read_csv(exp / "leaderboard.csv")
    assert sorted(board["model"]) == sorted(SMALL) and set(board["status"]) == {"ok"}, board.to_dict("records")
    assert np.isfinite(board["balanced_accuracy_mean"]).all() and (board["n_params"] > 0).all()
    fits = json.loads(next(exp.glob("trial_*/checkpoint_*/fits.json")).read_text())
    assert [f["file"].endswith(".npz") for f in fits["fits"]] == [True, True]
    finish_sweep(str(exp), echo=lambda *_: None)
    saved = sorted(p.name for p in (exp / "ensemble").glob("*_fold*.npz"))
    assert len(saved) == 4  # 2 members x 2 fold models, plain arrays
    clips = sorted(Path(synth_dir).rglob("*.wav"))[:3]
    frame = predict(exp, [str(c) for c in clips], method="soft")
    assert list(frame["error"]) == ["", "", ""], frame.to_dict("records")
    classes = [c.removeprefix("prob_") for c in frame.filter(like="prob_").columns]
    assert len(frame) == 3 and len(classes) >= 2 and frame["predicted"].isin(classes).all()
    np.testing.assert_allclose(frame.filter(like="prob_").sum(axis=1), 1.0, atol=1e-9)
