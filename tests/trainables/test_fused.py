"""Fused CV fits (`trainables.fused.many`): R replicas trained as one model give each replica the
fit it would get alone.

The data are small random sets made here; the reference is always the sequential
`trainables.fit` with the same seed and rows. Without dropout a fused replica follows its
sequential twin to float tolerance (same initial weights, same batches, same Adam); with
dropout only the masks differ, and the scores agree as distributions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import trainables.fused._train as fused_train
import trainables.fused.many as fused_module
from features.sequences import SequenceSet
from seqsweep.errors import ConfigError, InputError, TrainingError
from tests.conftest import needs_cpu_bf16
from trainables import (
    TrainConfig,
    build_model,
    fit,
    make_model_config,
    predict_proba,
    seed_everything,
)
from trainables.fused._layers import ReplicaRows, unfusable_layers
from trainables.fused._optim import FlatParameters, FusedAdam, ReplicaGradScaler
from trainables.fused.many import fit_many, unfusable_reason, use_fused
from trainables.networks.fitted import feature_stats

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    # stacked parameters are views of one matrix, so autograd warns that their gradients
    # "do not obey the gradient layout contract": that is the design (trainables.fused._optim)
    pytest.mark.filterwarnings("ignore:.*gradient layout contract"),
]

TRAIN = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "device": "cpu"}

#: one small config per torch family, without dropout (so fused == sequential to rounding)
NO_DROPOUT = {
    "lstm": {"units": (8, 6), "bidirectional": True},
    "cnn": {"filters": (4, 8), "dropout": 0.0, "pooling": "max", "dense_units": 8},
    "cnn1d": {"filters": (8, 8), "dropout": 0.0},
    "wavenet": {"layers_per_stack": 3, "residual_channels": 8, "skip_channels": 8, "batch_norm": False},
    "inception_time": {"depth": 3, "filters": 4, "kernel_size": 8, "bottleneck": 4},
}


def _set(seed: int = 0, *, n: int = 54, n_classes: int = 3, dim: int = 4, separation: float = 1.0,
         groups_of: int = 1) -> SequenceSet:
    """``n`` ragged sequences (T in 2..13) whose mean shifts with the class."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        c = i % n_classes
        xs.append((rng.standard_normal((int(rng.integers(2, 14)), dim)) + separation * c).astype(np.float32))
        ys.append(c)
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    groups = np.array([f"g{i // groups_of}" for i in range(n)], dtype=object)
    return SequenceSet(xs, np.array(ys), [f"c{c}" for c in range(n_classes)], groups, ids)


def _fits(data: SequenceSet, *, seeds=(0, 1), folds: int = 3) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``seeds x folds`` (seed, train rows, valid rows), each seed its own shuffle."""
    out = []
    for seed in seeds:
        parts = np.array_split(np.random.default_rng(100 + seed).permutation(len(data)), folds)
        for k in range(folds):
            train = np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k]))
            out.append((seed, train, np.sort(parts[k])))
    return out


def _sequential(name, config, data, fits, train, **kwargs):
    return [fit(name, config, data.subset(tr), data.subset(va), seed=s, train_config=train, **kwargs)
            for s, tr, va in fits]


@pytest.fixture(scope="module")
def data() -> SequenceSet:
    return _set(0)


# ---------------------------------------------------------------------------------------
# the same fit as the sequential loop
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(NO_DROPOUT))
def test_each_replica_starts_from_its_seeds_initial_weights(name, data):
    fits = _fits(data)
    run = fused_train.Run.create(name, make_model_config(name, NO_DROPOUT[name]), TrainConfig(**TRAIN),
                                 data, torch.device("cpu"), return_weights=False)
    built = [fused_train.new_replica(run, k, s, tr, va) for k, (s, tr, va) in enumerate(fits)]
    stack = fused_train.Stack(run, built[0][1], [net.state_dict() for _, net in built])
    for k, (seed, train, _) in enumerate(fits):
        seed_everything(seed)  # what `fit` does before it builds the model
        own = build_model(name, NO_DROPOUT[name], input_dim=data.dim, n_classes=data.n_classes)
        state = stack.state(k)
        for key, value in own.state_dict().items():
            torch.testing.assert_close(state[f"net.{key}"], value, rtol=0, atol=0)
        mean, _ = feature_stats(run.x[train], run.lengths[train])
        np.testing.assert_array_equal(state["feature_mean"].numpy(), mean)


@pytest.mark.parametrize("name", sorted(NO_DROPOUT))
@pytest.mark.parametrize("stopping", [None, 2])
def test_without_dropout_each_replica_follows_its_sequential_fit(name, stopping, data):
    train = {**TRAIN, "epochs": 5 if stopping else 3, "early_stopping_patience": stopping}
    fits = _fits(data)
    sequential = _sequential(name, NO_DROPOUT[name], data, fits, train, return_weights=True)
    fused = fit_many(name, NO_DROPOUT[name], data, fits, train_config=train, return_weights=True)
    assert len(fused) == len(fits)
    for seq, fus, (seed, _, valid) in zip(sequential, fused, fits, strict=True):
        assert (fus.seed, fus.model, fus.n_params, fus.inner_size) == (seed, name, seq.n_params, seq.inner_size)
        assert (fus.best_epoch, fus.epochs_run) == (seq.best_epoch, seq.epochs_run)
        assert fus.proba.shape == (len(valid), data.n_classes)
        np.testing.assert_allclose(fus.proba, seq.proba, atol=2e-4)
        assert [set(r) for r in fus.history] == [set(r) for r in seq.history]
        np.testing.assert_allclose([r["train_loss"] for r in fus.history], [r["train_loss"] for r in seq.history],
                                   rtol=1e-4)
        assert set(fus.weights) == set(seq.weights)
        assert set(fus.metrics) == set(seq.metrics)


def test_token_embedding_front_end_fuses():
    rng = np.random.default_rng(3)
    xs = [rng.integers(0, 6, size=(int(rng.integers(2, 10)), 1)).astype(np.float32) for _ in range(36)]
    y = np.array([int(x[0, 0] >= 3) for x in xs])
    ids = np.array([f"t{i}" for i in range(len(xs))], dtype=object)
    tokens = SequenceSet(xs, y, ["low", "high"], ids, ids, vocab_size=6)
    fits = _fits(tokens, seeds=(0,))
    for name, config in (("lstm", {"units": (6,), "embedding_dim": 4}), ("cnn1d", {**NO_DROPOUT["cnn1d"], "embedding_dim": 4})):
        assert unfusable_reason(name, config, input_dim=1, n_classes=2, vocab_size=6) is None
        sequential = _sequential(name, config, tokens, fits, TRAIN, return_weights=True)
        fused = fit_many(name, config, tokens, fits, train_config=TRAIN, return_weights=True)
        for seq, fus in zip(sequential, fused, strict=True):
            assert any("embedding" in key for key in fus.weights)
            np.testing.assert_allclose(fus.proba, seq.proba, atol=2e-4)


@pytest.mark.parametrize("name, config", [
    ("lstm", {"units": (16,), "dropout": 0.3}),
    ("cnn1d", {"filters": (8, 16), "dropout": 0.3}),
])
def test_with_dropout_fused_and_sequential_scores_agree_as_distributions(name, config):
    hard = _set(5, n=90, separation=0.6)  # classes overlap: accuracies spread over the fits
    fits = _fits(hard, seeds=(0, 1, 2))
    train = {**TRAIN, "epochs": 8}
    seq = np.array([r.metrics["accuracy"] for r in _sequential(name, config, hard, fits, train)])
    fus = np.array([r.metrics["accuracy"] for r in fit_many(name, config, hard, fits, train_config=train)])
    assert 0.45 < seq.mean() < 0.98  # a test with room to differ
    assert abs(fus.mean() - seq.mean()) < 0.08  # same mean over 9 fits, within sampling noise
    assert abs(fus.std() - seq.std()) < 0.08
    assert np.abs(fus - seq).max() < 0.25  # and no single fit far off


def test_a_replica_depends_only_on_its_own_fold(data):
    fits = _fits(data, seeds=(0,))
    before = fit_many("cnn1d", NO_DROPOUT["cnn1d"], data, fits, train_config=TRAIN)
    seed, train, valid = fits[2]
    changed = fits[:2] + [(seed, train[::2], np.concatenate([valid, train[1::2]]))]  # fold 2 loses half its rows
    after = fit_many("cnn1d", NO_DROPOUT["cnn1d"], data, changed, train_config=TRAIN)
    for k in (0, 1):
        np.testing.assert_allclose(after[k].proba, before[k].proba, atol=1e-6)
        assert [r["train_loss"] for r in after[k].history] == pytest.approx([r["train_loss"] for r in before[k].history])
    assert not np.allclose(after[2].history[-1]["train_loss"], before[2].history[-1]["train_loss"])


def test_chunks_give_the_unchunked_results(data):
    fits = _fits(data)
    whole = fit_many("lstm", NO_DROPOUT["lstm"], data, fits, train_config=TRAIN)
    chunked = fit_many("lstm", NO_DROPOUT["lstm"], data, fits, train_config=TRAIN, chunk_size=4)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a.proba, b.proba, atol=1e-6)
        assert a.seed == b.seed


def test_early_stopping_is_per_replica():
    noisy = _set(7, n=90, separation=0.5, groups_of=3)
    fits = _fits(noisy, seeds=(0, 1))
    train = {**TRAIN, "epochs": 12, "lr": 3e-2, "early_stopping_patience": 1}
    fused = fit_many("cnn1d", NO_DROPOUT["cnn1d"], noisy, fits, train_config=train)
    sequential = _sequential("cnn1d", NO_DROPOUT["cnn1d"], noisy, fits, train)
    runs = [r.epochs_run for r in fused]
    assert len(set(runs)) > 1  # replicas stopped at different epochs
    assert runs == [r.epochs_run for r in sequential]
    for r in fused:
        assert len(r.history) == r.epochs_run and 1 <= r.best_epoch <= r.epochs_run
        assert r.inner_size > 0 and "inner_balanced_accuracy" in r.history[-1]
        assert "valid_accuracy" not in r.history[-1]  # the validation fold is scored once, at the end


def test_a_diverging_replica_fails_the_fits_naming_its_seed(data, monkeypatch):
    build = fused_train.Run.build

    def poisoned(self, seed, fit_rows):
        net, weights = build(self, seed, fit_rows)
        if seed == 7:
            with torch.no_grad():
                next(net.net.parameters()).fill_(float("nan"))
        return net, weights

    monkeypatch.setattr(fused_train.Run, "build", poisoned)
    fits = _fits(data, seeds=(3,), folds=2) + _fits(data, seeds=(7,), folds=2)
    with pytest.raises(TrainingError, match=r"fit 2 \(seed 7\), epoch 1.*finite"):
        fit_many("cnn1d", NO_DROPOUT["cnn1d"], data, fits, train_config=TRAIN)


@pytest.mark.parametrize("name", sorted(NO_DROPOUT))
def test_returned_weights_predict_through_predict_proba(name, data):
    fits = _fits(data, seeds=(0,))
    for result, (_, _, valid) in zip(fit_many(name, NO_DROPOUT[name], data, fits, train_config=TRAIN,
                                              return_weights=True), fits, strict=True):
        assert all(v.device.type == "cpu" for v in result.weights.values())
        again = predict_proba(name, NO_DROPOUT[name], result.weights, data.subset(valid))
        np.testing.assert_allclose(again, result.proba, atol=1e-5)


def test_classic_models_and_unfusable_layers_run_one_fit_after_another(data):
    fits = _fits(data, seeds=(0,))
    fused = fit_many("knn", {"n_neighbors": 3}, data, fits, train_config=TRAIN)
    for a, b in zip(fused, _sequential("knn", {"n_neighbors": 3}, data, fits, TRAIN), strict=True):
        np.testing.assert_array_equal(a.proba, b.proba)
    assert "scikit-learn" in unfusable_reason("random_forest", None, input_dim=4, n_classes=3)
    assert unfusable_reason("wavenet", None, input_dim=4, n_classes=3) is None
    odd = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU())
    assert unfusable_layers(odd) == ["1 (LayerNorm): no fused twin for this layer type"]


@pytest.mark.parametrize("fits, where", [
    ([], "fits"),
    ([(0, np.arange(5))], "fits[0]"),
    ([(-1, np.arange(5), np.arange(5, 8))], "fits[0].seed"),
    ([(0, np.arange(5), np.arange(5, 8)), (1, np.array([0, 999]), np.arange(3))], "fits[1].train"),
    ([(0, np.arange(5), np.array([], dtype=int))], "fits[0].valid"),
])
def test_bad_fits_name_the_fit_and_field(fits, where, data):
    with pytest.raises((ConfigError, InputError)) as info:
        fit_many("cnn1d", None, data, fits, train_config=TRAIN)
    assert info.value.where == where


def test_chunk_size_is_checked(data):
    with pytest.raises(ConfigError, match="chunk_size"):
        fit_many("cnn1d", None, data, _fits(data), train_config=TRAIN, chunk_size=0)


@needs_cpu_bf16()
@pytest.mark.parametrize("name", ["lstm", "cnn1d"])
def test_bf16_autocast_runs_fused_on_cpu(name, data):
    train = {**TRAIN, "amp": "bf16"}
    fits = _fits(data, seeds=(0,))
    fused = fit_many(name, NO_DROPOUT[name], data, fits, train_config=train)
    sequential = _sequential(name, NO_DROPOUT[name], data, fits, train)
    for fus, seq in zip(fused, sequential, strict=True):
        assert np.isfinite(fus.proba).all()
        np.testing.assert_allclose(fus.proba, seq.proba, atol=0.1)  # bf16 rounding, 3 epochs


def test_out_of_memory_halves_the_chunk_then_names_the_device(data, monkeypatch):
    calls = []
    real = fused_module.fit_chunk

    def tight(run, chunk):
        calls.append(len(chunk))
        if len(chunk) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(run, chunk)

    monkeypatch.setattr(fused_module, "fit_chunk", tight)
    results = fit_many("cnn1d", NO_DROPOUT["cnn1d"], data, _fits(data, seeds=(0,)), train_config=TRAIN)
    assert calls == [3, 1, 1, 1] and [r.seed for r in results] == [0, 0, 0]

    monkeypatch.setattr(fused_module, "fit_chunk", lambda run, chunk: (_ for _ in ()).throw(
        torch.cuda.OutOfMemoryError("CUDA out of memory")))
    with pytest.raises(TrainingError, match="device cpu"):
        fit_many("cnn1d", NO_DROPOUT["cnn1d"], data, _fits(data, seeds=(0,)), train_config=TRAIN)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(NO_DROPOUT))
@pytest.mark.parametrize("amp", ["off", "auto"])
def test_cuda_fused_fits_match_sequential_ones(name, amp, data):
    train = {**TRAIN, "device": "cuda", "amp": amp}
    fits = _fits(data, seeds=(0,))
    fused = fit_many(name, NO_DROPOUT[name], data, fits, train_config=train, return_weights=True)
    sequential = _sequential(name, NO_DROPOUT[name], data, fits, train)
    for fus in fused:
        assert fus.device.startswith("cuda") and all(v.device.type == "cpu" for v in fus.weights.values())
        assert np.isfinite(fus.proba).all()
    # TF32 / fp16 kernels round differently from the sequential ones: compare the scores
    assert abs(np.mean([r.metrics["accuracy"] for r in fused]) - np.mean([r.metrics["accuracy"] for r in sequential])) < 0.15


# ---------------------------------------------------------------------------------------
# the optimiser over stacked parameters
# ---------------------------------------------------------------------------------------
def _stacked_linears(replicas: int) -> tuple[list[nn.Linear], FlatParameters]:
    from trainables.fused._layers import FusedLinear

    torch.manual_seed(0)
    layers = [nn.Linear(3, 2) for _ in range(replicas)]
    twin = FusedLinear(layers[0], replicas)
    with torch.no_grad():
        twin.weight.copy_(torch.stack([layer.weight for layer in layers]))
        twin.bias.copy_(torch.stack([layer.bias for layer in layers]))
    return layers, FlatParameters(twin)


@pytest.mark.parametrize("optimizer, decay", [("adam", 0.0), ("adam", 0.1), ("adamw", 0.1)])
def test_fused_adam_is_torch_adam_per_replica_and_skips_inactive_ones(optimizer, decay):
    layers, flat = _stacked_linears(3)
    ours = FusedAdam(flat, lr=1e-2, weight_decay=decay, decoupled=optimizer == "adamw")
    cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    theirs = [cls(layer.parameters(), lr=1e-2, weight_decay=decay) for layer in layers]
    rng = torch.Generator().manual_seed(1)
    for step in range(6):
        active = torch.tensor([True, step % 2 == 0, True])  # replica 1 sits out odd steps
        grads = torch.randn(3, 8, generator=rng)
        flat.grad.copy_(grads)
        ours.step(active)
        for r, (layer, opt) in enumerate(zip(layers, theirs, strict=True)):
            if active[r]:
                layer.weight.grad, layer.bias.grad = grads[r, :6].view(2, 3).clone(), grads[r, 6:].clone()
                opt.step()
    for r, layer in enumerate(layers):
        torch.testing.assert_close(flat.data[r], torch.cat([layer.weight.detach().reshape(-1), layer.bias.detach()]),
                                   rtol=1e-5, atol=1e-6)


def test_clipping_is_per_replica():
    layers, flat = _stacked_linears(2)
    flat.grad.copy_(torch.tensor([[3.0] * 8, [0.01] * 8]))
    flat.clip_(1.0)
    for r, layer in enumerate(layers):
        layer.weight.grad = torch.full((2, 3), [3.0, 0.01][r])
        layer.bias.grad = torch.full((2,), [3.0, 0.01][r])
        nn.utils.clip_grad_norm_(layer.parameters(), 1.0)
        torch.testing.assert_close(flat.grad[r], torch.cat([layer.weight.grad.reshape(-1), layer.bias.grad]))


def test_grad_scaler_backs_off_only_the_replica_that_overflowed():
    _, flat = _stacked_linears(2)
    scaler = ReplicaGradScaler(2, torch.device("cpu"), init_scale=8.0, growth_interval=2)
    flat.grad.copy_(torch.tensor([[8.0] * 8, [float("inf")] * 8]))
    finite = scaler.unscale_(flat)
    assert finite.tolist() == [True, False] and flat.grad[0, 0] == 1.0
    scaler.update(finite, None)
    assert scaler.scale.tolist() == [8.0, 4.0]
    flat.grad.fill_(1.0)
    scaler.update(scaler.unscale_(flat), None)
    assert scaler.scale.tolist() == [16.0, 4.0]  # two clean steps in a row: replica 0 grows


def test_fused_batch_norm_ignores_padding_rows_and_resting_replicas():
    from trainables.fused._layers import FusedMaskedBatchNorm
    from trainables.networks.layers import MaskedBatchNorm

    torch.manual_seed(0)
    norms = [MaskedBatchNorm(3) for _ in range(2)]
    rows = ReplicaRows()
    twin = FusedMaskedBatchNorm(norms[0], 2, rows)
    h = torch.randn(8, 3, 5)
    mask = torch.ones(8, 1, 5, dtype=torch.bool)
    rows.valid = torch.tensor([True] * 4 + [True, True, False, False])  # replica 1: 2 real rows
    rows.active = torch.tensor([True, False])  # replica 1 rests: its running statistics stay
    out = twin(h, mask)
    torch.testing.assert_close(out[:4], norms[0](h[:4], mask[:4]))
    torch.testing.assert_close(out[4:6], norms[1](h[4:6], mask[4:6]))
    torch.testing.assert_close(twin.running_mean[0], norms[0].running_mean)
    assert torch.equal(twin.running_mean[1], torch.zeros(3)) and twin.num_batches_tracked.tolist() == [1, 0]


# ---------------------------------------------------------------------------------------
# auto
# ---------------------------------------------------------------------------------------
def test_auto_never_fuses_what_cannot_gain(data):
    assert not use_fused("knn", None, None, "cpu", 10, data=data)
    assert not use_fused("random_forest", None, None, "cpu", 10, data=data)
    assert not use_fused("wavenet", None, None, "cpu", 1, data=data)
    assert not use_fused("wavenet", None, None, "cuda", 10, data=data)  # no GPU measurement yet: sequential


def test_auto_fuses_small_steps_on_cpu_only():
    short = _set(0, dim=12)  # JapaneseVowels-like: 12 channels, 2..13 steps
    long = SequenceSet([np.zeros((130, 27), np.float32)] * 6, np.arange(6) % 2, ["a", "b"],
                       np.arange(6).astype(str), np.arange(6).astype(str))  # GTZAN-like segments
    assert use_fused("wavenet", None, {"batch_size": 16}, "cpu", 10, data=short)
    assert use_fused("lstm", {"units": (16,)}, {"batch_size": 16}, "cpu", 10, data=short)
    assert not use_fused("lstm", {"units": (16,)}, {"batch_size": 16}, "cpu", 10, data=long)  # 130 steps
    assert not use_fused("lstm", {"units": (96, 96), "bidirectional": True}, {"batch_size": 32}, "cpu", 10, data=short)
    assert not use_fused("cnn", None, {"batch_size": 32}, "cpu", 10, data=long)
    big = fused_module.step_flops("cnn", None, input_dim=27, n_classes=2, steps=130, batch_size=32)
    assert big > fused_module.CPU_MAX_STEP_FLOPS["cnn"]
