"""Configs, the registry, metrics, batching and the training loop's promises."""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest
import torch

import trainables
import trainables.training.fit_torch as fit_torch
import trainables.training.loop as loop
from features.sequences import SequenceSet
from seqsweep.errors import ConfigError, InputError, TrainingError
from trainables import (
    CNNConfig,
    LSTMConfig,
    TrainConfig,
    WaveNetConfig,
    bucket_batches,
    build_model,
    classification_metrics,
    fit,
    get_model_spec,
    model_names,
    predict_proba,
    split_flat_config,
)

TRAIN = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "num_threads": 1, "device": "cpu"}


def _set(seed: int, n_per_class: int = 6, *, n_classes: int = 3, dim: int = 4, lengths=(2, 12)) -> SequenceSet:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(n_classes):
        for _ in range(n_per_class):
            t = int(rng.integers(*lengths, endpoint=True))
            xs.append((rng.standard_normal((t, dim)) + 2.0 * c).astype(np.float32))
            ys.append(c)
    ids = np.array([f"s{seed}-{i}" for i in range(len(xs))], dtype=object)
    return SequenceSet(xs, np.array(ys), [f"c{c}" for c in range(n_classes)], ids, ids)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pair() -> tuple[SequenceSet, SequenceSet]:
    return _set(0), _set(1, 3)


# ---------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------
def test_registry_lists_every_model():
    assert set(model_names()) == {"lstm", "cnn", "cnn1d", "wavenet", "inception_time", "knn", "random_forest",
                                  "minirocket", "multirocket_hydra"}


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ConfigError) as info:
        get_model_spec("transformer")
    assert "transformer" in str(info.value)
    for name in model_names():
        assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_build_model_returns_a_module_for_each_torch_model():
    for name in model_names():
        model = build_model(name, None, input_dim=5, n_classes=3)
        if get_model_spec(name).kind == "torch":
            assert isinstance(model, torch.nn.Module)
            assert model(torch.zeros(2, 7, 5), torch.tensor([7, 3])).shape == (2, 3)


def test_build_model_rejects_a_config_of_another_model():
    with pytest.raises(ConfigError, match="LSTMConfig"):
        build_model("lstm", CNNConfig(), input_dim=3, n_classes=2)


def test_embedding_needs_one_value_per_step():
    with pytest.raises(ConfigError, match="one id per step") as info:
        build_model("lstm", {"embedding_dim": 4}, input_dim=3, n_classes=2, vocab_size=10)
    assert info.value.where == "vocab_size" and "input_dim=3" in str(info.value)


# ---------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------
def test_split_flat_config_from_a_tune_dict():
    flat = {"model": "lstm", "lr": 3e-3, "num_layers": 2, "units_0": 32, "units_1": 16, "units_2": 8,
            "dropout": 0.2, "epochs": np.int64(5), "seeds": 3}
    name, model_config, train_config = split_flat_config(flat, ignore=("seeds",))
    assert name == "lstm"
    assert model_config == LSTMConfig(units=(32, 16), dropout=0.2)  # units_2 is past num_layers
    assert train_config == TrainConfig(lr=3e-3, epochs=5)
    assert type(train_config.epochs) is int


def test_unknown_flat_key_names_it_and_the_valid_keys():
    with pytest.raises(ConfigError) as info:
        split_flat_config({"model": "cnn", "filterz": 3})
    message = str(info.value)
    assert "filterz" in message and "num_blocks" in message and "lr" in message


def test_flat_config_needs_a_model_key():
    with pytest.raises(ConfigError, match="model"):
        split_flat_config({"lr": 1e-3})


def test_model_config_ignores_training_keys_but_not_its_own_typos():
    assert WaveNetConfig.from_flat({"model": "wavenet", "lr": 0.1, "stacks": 2}).stacks == 2
    with pytest.raises(ConfigError, match="stackz"):
        WaveNetConfig.from_flat({"stackz": 2})


@pytest.mark.parametrize("name", ["lstm", "cnn", "cnn1d", "wavenet", "knn", "random_forest"])
def test_flat_round_trip_and_no_key_clashes(name):
    config_cls = get_model_spec(name).config_cls
    config = config_cls()
    assert config_cls.from_flat(config.to_flat()) == config
    clashes = [k for k in config.to_flat() if TrainConfig.is_flat_key(k)]
    assert not clashes, f"{name} keys also belong to TrainConfig: {clashes}"
    assert split_flat_config({"model": name, **config.to_flat()})[1] == config


def test_sequence_fields_from_count_or_list_or_scalar():
    assert LSTMConfig.from_flat({"num_layers": 3}).units == (32, 16, 16)
    assert LSTMConfig.from_flat({"units": [8, 4]}).units == (8, 4)
    assert LSTMConfig.from_flat({"units": 8, "num_layers": 2}).units == (8, 8)
    assert CNNConfig.from_flat({"filters_0": 4.0, "filters_1": 8}).filters == (4, 8)
    with pytest.raises(ConfigError, match="units_1"):
        LSTMConfig.from_flat({"num_layers": 2, "units_0": 8})


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (LSTMConfig, {"dropout": 1.0}, "lstm.dropout"),
        (LSTMConfig, {"units": (8, 0)}, "lstm.units[1]"),
        (LSTMConfig, {"embedding_dim": -1}, "lstm.embedding_dim"),
        (CNNConfig, {"pooling": "median"}, "cnn.pooling"),
        (CNNConfig, {"kernel_size": 2.5}, "cnn.kernel_size"),
        (WaveNetConfig, {"kernel_size": 1}, "wavenet.kernel_size"),
        (TrainConfig, {"optimizer": "sgd"}, "train.optimizer"),
        (TrainConfig, {"lr": 0.0}, "train.lr"),
        (TrainConfig, {"lr": float("nan")}, "train.lr"),
        (TrainConfig, {"device": "tpu"}, "train.device"),
        (TrainConfig, {"class_weighted": "yes"}, "train.class_weighted"),
        (TrainConfig, {"grad_clip": -1.0}, "train.grad_clip"),
    ],
)
def test_bad_values_name_the_field(cls, kwargs, field):
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    assert info.value.where == field


def test_configs_are_frozen_and_hashable():
    config = TrainConfig()
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]
    assert hash(config) == hash(TrainConfig())


# ---------------------------------------------------------------------------------------
# metrics and batching
# ---------------------------------------------------------------------------------------
def test_metrics_keep_absent_classes_in_place():
    y = np.array([0, 0, 2, 2])
    proba = np.array([[0.9, 0.05, 0.05, 0.0], [0.2, 0.7, 0.1, 0.0], [0.1, 0.1, 0.8, 0.0], [0.3, 0.0, 0.7, 0.0]])
    m = classification_metrics(y, proba, n_classes=4)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(0.75)  # recall 0.5 and 1.0 on the present classes
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    assert m["recall_per_class"] == [0.5, 0.0, 1.0, 0.0]
    assert m["precision_per_class"] == [1.0, 0.0, 1.0, 0.0]
    assert len(m["precision_per_class"]) == 4
    # f1 over classes present or predicted (0, 1, 2): class 3 does not count as 0
    assert m["f1_macro"] == pytest.approx((2 / 3 + 0.0 + 1.0) / 3)


def test_bucket_batches_cover_each_index_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=103)
    batches = bucket_batches(lengths, 10, rng=np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert sorted(len(b) for b in batches)[1:] == [10] * 10
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.3 * np.ptp(lengths)  # much tighter than random batches
    again = bucket_batches(lengths, 10, rng=np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    ordered = np.concatenate(bucket_batches(lengths, 10))
    assert (np.diff(lengths[ordered]) <= 0).all()


# ---------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------
def test_on_epoch_reports_every_epoch(pair):
    train, valid = pair
    records = []
    result = fit("cnn1d", {"filters": (4,)}, train, valid, seed=0, train_config=TRAIN, on_epoch=records.append)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records == result.history
    assert {"train_loss", "seconds"} <= set(records[0])
    assert not [k for r in records for k in r if k.startswith(("valid_", "inner_"))]


def test_early_stopping_keeps_the_best_inner_epoch(pair):
    train, valid = pair
    config = TrainConfig(**{**TRAIN, "epochs": 25, "lr": 0.05, "early_stopping_patience": 2, "monitor": "loss"})
    result = fit("lstm", {"units": (8,)}, train, valid, seed=0, train_config=config, return_weights=True)
    losses = [h["inner_loss"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmin(losses))
    assert result.epochs_run <= min(25, result.best_epoch + 2)
    assert 0 < result.inner_size < len(train)
    np.testing.assert_allclose(result.predict_proba(valid), result.proba, atol=1e-6)


def test_early_stopping_never_looks_at_the_validation_fold(pair):
    """The chosen epoch and weights are the same whatever the validation rows hold: the
    fold that is scored chooses nothing."""
    train, valid = pair
    config = TrainConfig(**{**TRAIN, "epochs": 12, "lr": 0.05, "early_stopping_patience": 2,
                            "deterministic": True})
    flipped = valid.subset(np.arange(len(valid)))
    flipped.y = np.roll(valid.y, 1)  # different labels: a different validation score per epoch
    results = [fit("cnn1d", {"filters": (4,)}, train, v, seed=3, train_config=config, return_weights=True)
               for v in (valid, flipped)]
    assert results[0].best_epoch == results[1].best_epoch
    assert results[0].epochs_run == results[1].epochs_run
    for key, value in results[0].weights.items():
        torch.testing.assert_close(value, results[1].weights[key], rtol=0, atol=0)
    np.testing.assert_allclose(results[0].proba, results[1].proba, rtol=0, atol=0)


def test_nan_loss_raises_training_error_naming_the_epoch(pair, monkeypatch):
    train, valid = pair
    calls = {"n": 0}
    real = torch.nn.functional.cross_entropy

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 3 else loss  # epoch 2 (3 batches per epoch)

    monkeypatch.setattr(fit_torch, "F", types.SimpleNamespace(cross_entropy=poisoned))
    with pytest.raises(TrainingError) as info:
        fit("cnn1d", {"filters": (4,)}, train, valid, seed=0, train_config=TRAIN)
    assert info.value.where == "epoch 2"
    assert "finite" in info.value.rule
    pickle.loads(pickle.dumps(info.value))  # travels back from a Ray worker intact


def test_fit_restores_the_process_settings(pair):
    train, valid = pair
    threads = torch.get_num_threads()
    fit("lstm", {"units": (4,)}, train, valid, seed=0,
        train_config={**TRAIN, "deterministic": True, "num_threads": threads + 1, "epochs": 1})
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_class_weights_are_balanced():
    weights = fit_torch.balanced_class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    np.testing.assert_allclose(weights, [6 / 9, 6 / 3, 6 / 6, 0.0])


def test_class_weighting_lifts_the_minority_class():
    rng = np.random.default_rng(0)
    n_major, n_minor = 60, 6
    xs = [(rng.standard_normal((5, 2)) + [0.7, 0.0]).astype(np.float32) for _ in range(n_major)]
    xs += [(rng.standard_normal((5, 2)) - [0.7, 0.0]).astype(np.float32) for _ in range(n_minor)]
    y = np.array([0] * n_major + [1] * n_minor)
    ids = np.arange(len(y)).astype(str)
    data = SequenceSet(xs, y, ["major", "minor"], ids, ids)
    recalls = {}
    for weighted in (True, False):
        config = {**TRAIN, "epochs": 15, "class_weighted": weighted}
        result = fit("cnn1d", {"filters": (4,), "pool_size": 1}, data, data, seed=0, train_config=config)
        recalls[weighted] = result.metrics["recall_per_class"][1]
    assert recalls[True] > recalls[False]


def test_flat_dicts_are_accepted_and_the_result_pickles(pair):
    train, valid = pair
    result = fit("wavenet", {"layers_per_stack": 2, "residual_channels": 4, "skip_channels": 4}, train, valid,
                 seed=3, train_config={"epochs": 1, "num_threads": 1}, return_weights=True)
    assert result.config == WaveNetConfig(layers_per_stack=2, residual_channels=4, skip_channels=4)
    clone = pickle.loads(pickle.dumps(result))
    np.testing.assert_array_equal(clone.proba, result.proba)
    assert set(result.scalars()) >= {"accuracy", "balanced_accuracy", "f1_macro", "n_params", "seconds"}


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda s: SequenceSet([s.x[0][:0]] + list(s.x[1:]), s.y, s.classes, s.groups, s.clip_ids), "train clip"),
        (lambda s: SequenceSet([np.full_like(s.x[0], np.nan)] + list(s.x[1:]), s.y, s.classes, s.groups, s.clip_ids),
         "train clip"),
    ],
    ids=["empty-sequence", "nan-values"],
)
def test_bad_training_data_is_an_input_error(pair, mutate, where):
    train, valid = pair
    with pytest.raises(InputError) as info:
        fit("knn", None, mutate(train), valid, seed=0)
    assert info.value.where.startswith(where)


def test_mismatched_validation_set_is_an_input_error(pair):
    train, _ = pair
    with pytest.raises(InputError, match="D = 4"):
        fit("lstm", None, train, _set(1, dim=5), seed=0, train_config=TRAIN)
    with pytest.raises(InputError, match="classes"):
        fit("lstm", None, train, _set(1, n_classes=4), seed=0, train_config=TRAIN)


def test_token_ids_must_be_whole_numbers():
    xs = [np.array([[1.0], [2.5]], dtype=np.float32), np.array([[3.0]], dtype=np.float32)]
    data = SequenceSet(xs, np.array([0, 1]), ["a", "b"], np.array(["a", "b"]), np.array(["a", "b"]), vocab_size=5)
    with pytest.raises(InputError, match="whole numbers") as info:
        fit("lstm", {"embedding_dim": 2}, data, None, seed=0, train_config=TRAIN)
    assert info.value.value == 2.5


def test_bad_seed_and_missing_gpu_are_config_errors(pair):
    train, valid = pair
    with pytest.raises(ConfigError, match="seed"):
        fit("knn", None, train, valid, seed=-1)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="GPU"):
            fit("lstm", None, train, valid, seed=0, train_config={"device": "cuda"})


def test_weights_of_another_shape_are_an_input_error(pair):
    train, valid = pair
    result = fit("lstm", {"units": (4,)}, train, None, seed=0, train_config={**TRAIN, "epochs": 1},
                 return_weights=True)
    with pytest.raises(InputError, match="weights"):
        predict_proba("lstm", {"units": (5,)}, result.weights, valid)


def test_public_names_resolve():
    for name in trainables.__all__:
        assert getattr(trainables, name) is not None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_cuda_fit_with_and_without_autocast(pair, amp):
    train, valid = pair
    result = fit("lstm", {"units": (8, 4)}, train, valid, seed=0,
                 train_config={"epochs": 2, "device": "cuda", "amp": amp}, return_weights=True)
    assert result.device.startswith("cuda")
    np.testing.assert_allclose(result.proba.sum(axis=1), 1.0, atol=1e-6)
    assert all(v.device.type == "cpu" for v in result.weights.values())


@pytest.mark.parametrize("config", [{"units": (6, 5)}, {"units": (6, 5), "bidirectional": True, "pooling": "mean"},
                                    {"units": (4,), "bidirectional": True}])
def test_lstm_packed_and_padded_paths_agree(config):
    """CUDA runs packed batches, CPU padded ones: the same weights give the same logits."""
    data = _set(5, 4, lengths=(1, 15)).to_padded()
    torch.manual_seed(0)
    net = build_model("lstm", config, input_dim=data.dim, n_classes=data.n_classes).eval()
    x, lengths = torch.from_numpy(data.x), torch.from_numpy(data.lengths)
    with torch.no_grad():
        net.pack = True
        packed = net(x, lengths)
        net.pack = False
        padded = net(x, lengths)
    torch.testing.assert_close(packed, padded, rtol=0, atol=1e-5)


def test_cuda_out_of_memory_becomes_a_training_error(pair, monkeypatch):
    train, valid = pair

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "fit_torch", out_of_memory)
    with pytest.raises(TrainingError) as info:
        fit("lstm", None, train, valid, seed=0, train_config=TRAIN)
    assert info.value.where == "device cpu"
    assert "GPU memory" in info.value.rule and "batch_size=8" in info.value.value


def test_token_padding_marker_never_reaches_the_embedding():
    """Whatever value marks padding in a token batch, the LSTM reads only valid ids."""
    torch.manual_seed(0)
    net = build_model("lstm", {"units": (4,), "embedding_dim": 3}, input_dim=1, n_classes=2, vocab_size=6).eval()
    x = torch.tensor([[[1.0], [5.0], [0.0]], [[2.0], [0.0], [0.0]]])
    marked = x.clone()
    marked[1, 1:] = -1.0
    lengths = torch.tensor([3, 1])
    with torch.no_grad():
        torch.testing.assert_close(net(marked, lengths), net(x, lengths))


# ---------------------------------------------------------------------------------------
# the inner early-stopping split
# ---------------------------------------------------------------------------------------
def test_inner_split_is_group_aware_stratified_and_keeps_every_class():
    from trainables.training.inner import inner_split

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    groups = np.array([f"track{i // 4}" for i in range(len(y))], dtype=object)  # 4 segments a track
    fit_rows, stop_rows = inner_split(y, groups, fraction=0.25, seed=int(rng.integers(100)))
    assert sorted(np.concatenate([fit_rows, stop_rows]).tolist()) == list(range(len(y)))
    assert not set(groups[fit_rows]) & set(groups[stop_rows])
    assert 0.15 < len(stop_rows) / len(y) < 0.35
    assert set(y[stop_rows]) == {0, 1, 2} and set(y[fit_rows]) == {0, 1, 2}
    # a class with one group only keeps it for training
    y2 = np.array([0] * 10 + [1] * 2)
    g2 = np.array([f"a{i}" for i in range(10)] + ["b", "b"], dtype=object)
    fit2, stop2 = inner_split(y2, g2, fraction=0.5, seed=1)
    assert set(y2[fit2]) == {0, 1} and 1 not in set(y2[stop2]) and len(stop2) > 0


def test_inner_split_differs_by_seed_and_needs_two_groups():
    from trainables.training.inner import inner_split

    y = np.repeat([0, 1], 20)
    groups = np.arange(40).astype(str)
    splits = {tuple(inner_split(y, groups, fraction=0.2, seed=s)[1]) for s in range(5)}
    assert len(splits) > 1
    with pytest.raises(InputError, match="at least 2 groups"):
        inner_split(np.array([0, 1]), np.array(["g", "g"]), fraction=0.2, seed=0)


def test_inner_fraction_is_checked():
    with pytest.raises(ConfigError, match="inner_fraction"):
        TrainConfig(inner_fraction=0.7)
