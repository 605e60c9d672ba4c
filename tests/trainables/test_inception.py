"""InceptionTime (`trainables.networks.inception`): the model contract, the architecture the paper
describes, the fused path under bf16 and ``auto``, and one trial in a sweep on the session's
Ray. tests/trainables/test_fused.py runs its fused replicas against their sequential fits
(``NO_DROPOUT["inception_time"]``) with the other families."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from seqsweep.errors import ConfigError
from tests.conftest import needs_cpu_bf16
from trainables import InceptionTimeConfig, TrainConfig, build_model, fit
from trainables.fused.many import fit_many, use_fused
from trainables.networks.inception import InceptionModule
from trainables.networks.layers import MaskedBatchNorm
from trainables.testing import ModelContract

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:.*gradient layout contract"),  # fused stacks: see test_fused.py
]

SMALL = {"depth": 3, "filters": 4, "kernel_size": 8, "bottleneck": 4}


# ---------------------------------------------------------------------------------------
# the contract
# ---------------------------------------------------------------------------------------
class TestInceptionTime(ModelContract):
    model = "inception_time"
    config = SMALL


class TestInceptionTimeNoBottleneckDeeper(ModelContract):
    model = "inception_time"
    config = {"depth": 4, "filters": 3, "kernel_size": 5, "bottleneck": 0}  # odd kernels 5, 2, 1


class TestInceptionTimeTokens(ModelContract):
    model = "inception_time"
    config = {**SMALL, "embedding_dim": 4}
    inputs = "tokens"


# ---------------------------------------------------------------------------------------
# the architecture
# ---------------------------------------------------------------------------------------
def _convs(module: nn.Module) -> list[nn.Conv1d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv1d)]


def test_the_papers_defaults_build_the_papers_network():
    config = InceptionTimeConfig()
    assert (config.depth, config.filters, config.kernel_size, config.bottleneck) == (6, 32, 40, 32)
    net = build_model("inception_time", None, input_dim=12, n_classes=9)
    assert len(net.blocks) == 6 and sorted(net.shortcuts) == ["2", "5"]  # a residual every three modules
    first = net.blocks[0]
    assert [c.kernel_size[0] for c in first.convs] == [40, 20, 10]
    assert (first.bottleneck.in_channels, first.bottleneck.out_channels) == (12, 32)
    assert first.pool_conv.in_channels == 12 and first.norm.weight.shape == (128,)
    assert net.blocks[1].bottleneck.in_channels == 128
    assert all(c.bias is None for c in _convs(net))  # batch norm follows every conv
    assert (net.shortcuts["2"].conv.in_channels, net.shortcuts["5"].conv.in_channels) == (12, 128)
    assert net.head.in_features == 128


def test_one_channel_input_has_no_bottleneck_and_residual_can_be_off():
    net = build_model("inception_time", {"depth": 3, "residual": False}, input_dim=1, n_classes=2)
    assert net.blocks[0].bottleneck is None and net.blocks[1].bottleneck is not None
    assert len(net.shortcuts) == 0
    assert build_model("inception_time", {"bottleneck": 0}, input_dim=5, n_classes=2).blocks[2].bottleneck is None


@pytest.mark.parametrize("field, value", [("kernel_size", 3), ("depth", 0), ("filters", 0), ("bottleneck", -1)])
def test_bad_fields_name_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        InceptionTimeConfig(**{field: value})
    assert info.value.where == f"inception_time.{field}"


def test_max_pool_branch_never_picks_padding():
    """Negative inputs: a window that straddles the end must not see the zero padding."""
    torch.manual_seed(0)
    module = InceptionModule(2, filters=2, kernel_size=4, bottleneck=0).eval()
    h = -1.0 - torch.rand(1, 2, 6)
    lengths = torch.tensor([4])
    mask = (torch.arange(6) < lengths[:, None])[:, None, :]
    padded = module(h.masked_fill(~mask, 0.0), mask)[..., :4]
    alone = module(h[..., :4], torch.ones(1, 1, 4, dtype=torch.bool))
    torch.testing.assert_close(padded, alone, rtol=0, atol=1e-6)
    assert isinstance(module.norm, MaskedBatchNorm)


def test_learns_the_synthetic_audio(synth_mfcc):
    train = synth_mfcc.subset(np.arange(len(synth_mfcc)) % 3 != 0)
    valid = synth_mfcc.subset(np.arange(len(synth_mfcc)) % 3 == 0)
    result = fit("inception_time", {"depth": 3, "filters": 8, "kernel_size": 20, "bottleneck": 8}, train, valid,
                 seed=0, train_config={"lr": 3e-3, "batch_size": 8, "epochs": 12, "device": "cpu", "num_threads": 1})
    assert result.metrics["balanced_accuracy"] >= 2 / synth_mfcc.n_classes, result.history


# ---------------------------------------------------------------------------------------
# the fused path
# ---------------------------------------------------------------------------------------
def _fits(n: int, *, seeds=(0, 1), folds: int = 3):
    out = []
    for seed in seeds:
        parts = np.array_split(np.random.default_rng(100 + seed).permutation(n), folds)
        for k in range(folds):
            out.append((seed, np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k])), np.sort(parts[k])))
    return out


@pytest.fixture(scope="module")
def ragged():
    from features.sequences import SequenceSet

    rng = np.random.default_rng(0)
    xs = [(rng.standard_normal((int(rng.integers(2, 14)), 4)) + i % 3).astype(np.float32) for i in range(54)]
    ids = np.array([f"s{i}" for i in range(54)], dtype=object)
    return SequenceSet(xs, np.arange(54) % 3, ["a", "b", "c"], ids, ids)


@needs_cpu_bf16()
def test_bf16_autocast_runs_sequential_and_fused_on_cpu(ragged):
    """The mixed-precision path a GPU takes (``amp: auto`` picks bf16 there), run on CPU."""
    train = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "device": "cpu", "amp": "bf16"}
    fits = _fits(len(ragged), seeds=(0,))
    fused = fit_many("inception_time", SMALL, ragged, fits, train_config=train)
    for (seed, tr, va), fus in zip(fits, fused, strict=True):
        seq = fit("inception_time", SMALL, ragged.subset(tr), ragged.subset(va), seed=seed, train_config=train)
        assert np.isfinite(seq.proba).all() and np.isfinite(fus.proba).all()
        np.testing.assert_allclose(fus.proba, seq.proba, atol=0.1)  # bf16 rounding, 2 epochs


def test_auto_fuses_small_networks_on_cpu_only(ragged):
    """The rule benchmarks/fused_fits.py measured (trainables.fused.many.CPU_MAX_STEP_FLOPS)."""
    from features.sequences import SequenceSet
    from trainables.fused.many import CPU_MAX_STEP_FLOPS, step_flops

    jv_like = SequenceSet([np.zeros((16, 12), np.float32)] * 6, np.arange(6) % 3, ["a", "b", "c"],
                          np.arange(6).astype(str), np.arange(6).astype(str))  # JapaneseVowels' shape
    small = {"depth": 3, "filters": 16, "kernel_size": 20, "bottleneck": 16}  # 16.5 MFLOP a step: 2.7x measured
    assert use_fused("inception_time", small, {"batch_size": 16}, "cpu", 10, data=jv_like)
    assert use_fused("inception_time", SMALL, {"batch_size": 8}, "cpu", 6, data=ragged)
    paper = step_flops("inception_time", None, input_dim=12, n_classes=3, steps=16, batch_size=16)
    assert paper > CPU_MAX_STEP_FLOPS["inception_time"]  # 251 MFLOP: 1.09x measured, not worth it
    assert not use_fused("inception_time", None, {"batch_size": 16}, "cpu", 10, data=jv_like)
    assert not use_fused("inception_time", small, {"batch_size": 16}, "cuda", 10, data=jv_like)  # no GPU measurement
    assert not use_fused("inception_time", SMALL, {"batch_size": 8}, "cpu", 1, data=ragged)


# ---------------------------------------------------------------------------------------
# one trial in a sweep
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_one_trial_runs_in_a_sweep_on_local_ray(ray_session, synth_store, tmp_path):
    from search.spec import SweepSpec
    from search.sweep import run_sweep

    spec = SweepSpec.from_dict({
        "name": "inception", "store": str(synth_store), "storage": str(tmp_path / "runs"),
        "dataset": "synth", "feature_set": "mfcc27", "cv": {"folds": 2, "seeds": 1},
        "search": {"num_samples": 1, "seed": 0},
        "models": {"inception_time": {"depth": 3, "filters": [4, 8], "kernel_size": 8, "bottleneck": 8,
                                      "lr": 3e-3, "epochs": 3, "batch_size": 16}},
    }, source="test_inception")
    outcome = run_sweep(spec, echo=lambda *_: None, verbose=0)
    exp = Path(outcome.experiment_dir)
    board = pd.read_csv(exp / "leaderboard.csv")
    assert list(board["model"]) == ["inception_time"] and list(board["status"]) == ["ok"], board.to_dict("records")
    assert board.loc[0, "depth"] == 3 and board.loc[0, "filters"] in (4, 8)
    assert np.isfinite(board.loc[0, "balanced_accuracy_mean"]) and board.loc[0, "n_params"] > 0
    fits = json.loads(next(exp.glob("trial_*/checkpoint_*/fits.json")).read_text())
    assert len(fits["fits"]) == 2


def test_train_keys_go_to_the_training_config():
    from trainables import split_flat_config

    name, config, tc = split_flat_config({"model": "inception_time", "depth": 9, "filters": 16, "kernel_size": 20,
                                          "bottleneck": 0, "lr": 1e-3, "epochs": 7, "batch_size": 64})
    assert name == "inception_time" and config == InceptionTimeConfig(depth=9, filters=16, kernel_size=20, bottleneck=0)
    assert (tc.lr, tc.epochs, tc.batch_size) == (1e-3, 7, 64) and isinstance(tc, TrainConfig)
