"""Each model keeps the contract (`trainables.testing.ModelContract`), and learns the synthetic audio.

The contract is written once in the package; each model (and each notable configuration)
subclasses it here. The learn-the-audio tests read the session fixtures ``synth_mfcc`` /
``synth_wave`` from ``tests/conftest.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from features.sequences import SequenceSet
from trainables import TrainConfig, fit
from trainables.testing import ModelContract

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------
# the contract, once per model
# ---------------------------------------------------------------------------------------
class TestLSTM(ModelContract):
    model = "lstm"
    config = {"units": (8, 4), "dropout": 0.1}


class TestLSTMBidirectionalMean(ModelContract):
    model = "lstm"
    config = {"units": (6,), "bidirectional": True, "pooling": "mean"}


class TestLSTMEmbedding(ModelContract):
    model = "lstm"
    config = {"units": (8,), "embedding_dim": 4}
    inputs = "tokens"


class TestCNNTokens(ModelContract):
    model = "cnn"
    config = {"filters": (4,), "embedding_dim": 4}
    inputs = "tokens"


class TestCNN1DTokens(ModelContract):
    model = "cnn1d"
    config = {"filters": (4, 8), "kernel_size": 3, "embedding_dim": 4}
    inputs = "tokens"


class TestWaveNetTokens(ModelContract):
    model = "wavenet"
    config = {"layers_per_stack": 2, "residual_channels": 4, "skip_channels": 8, "embedding_dim": 4}
    inputs = "tokens"


class TestKNNBag(ModelContract):
    model = "knn"
    config = {"n_neighbors": 3}  # pooling "auto": a bag of tokens on token data
    inputs = "tokens"
    torch_model = False


class TestRandomForestBag2(ModelContract):
    model = "random_forest"
    config = {"n_estimators": 10, "pooling": "bag2"}
    inputs = "tokens"
    torch_model = False


class TestCNN(ModelContract):
    model = "cnn"
    config = {"filters": (4, 8), "dense_units": 8, "dropout": 0.1}


class TestCNNMaxPool(ModelContract):
    model = "cnn"
    config = {"filters": (4, 4, 4), "kernel_size": 2, "pool_size": 3, "pooling": "max", "batch_norm": False}


class TestCNN1D(ModelContract):
    model = "cnn1d"
    config = {"filters": (4, 8), "kernel_size": 3}


class TestWaveNet(ModelContract):
    model = "wavenet"
    config = {"stacks": 2, "layers_per_stack": 2, "residual_channels": 4, "skip_channels": 8}


class TestKNN(ModelContract):
    model = "knn"
    config = {"n_neighbors": 3}
    torch_model = False


class TestRandomForest(ModelContract):
    model = "random_forest"
    config = {"n_estimators": 10}
    torch_model = False


# ---------------------------------------------------------------------------------------
# every model learns the synthetic audio well above chance, in a few seconds
# ---------------------------------------------------------------------------------------
def _fixture(request: pytest.FixtureRequest, name: str) -> SequenceSet:
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        pytest.skip(f"tests/conftest.py does not provide the {name!r} fixture yet")


def _split_thirds(data: SequenceSet) -> tuple[SequenceSet, SequenceSet]:
    """Stratified: every third clip of each class (in order) is validation."""
    rank = np.empty(len(data), dtype=np.int64)
    for c in range(data.n_classes):
        members = np.flatnonzero(data.y == c)
        rank[members] = np.arange(len(members))
    valid = rank % 3 == 0
    return data.subset(~valid), data.subset(valid)


_FAST = {"lr": 3e-3, "batch_size": 8, "num_threads": 1, "device": "cpu"}

LEARNS = [
    pytest.param("synth_mfcc", "lstm", {"units": (32,), "pooling": "mean"}, {"epochs": 20}, id="lstm-mfcc"),
    pytest.param("synth_mfcc", "cnn", {"filters": (16, 32), "dropout": 0.0}, {"epochs": 20}, id="cnn-mfcc"),
    pytest.param("synth_mfcc", "cnn1d", {"filters": (16, 32)}, {"epochs": 20}, id="cnn1d-mfcc"),
    pytest.param("synth_mfcc", "wavenet", {}, {"epochs": 20}, id="wavenet-mfcc"),
    pytest.param("synth_mfcc", "knn", {}, {}, id="knn-mfcc"),
    pytest.param("synth_mfcc", "random_forest", {}, {}, id="random_forest-mfcc"),
    pytest.param(
        "synth_wave", "cnn1d", {"filters": (16, 32, 32), "kernel_size": 9, "pool_size": 4}, {"epochs": 15},
        id="cnn1d-wave",
    ),
    pytest.param(
        "synth_wave", "wavenet", {"layers_per_stack": 6, "residual_channels": 8, "skip_channels": 16},
        {"epochs": 20, "lr": 1e-2}, id="wavenet-wave",
    ),
]


@pytest.mark.parametrize(("source", "model", "config", "train"), LEARNS)
def test_learns_the_synthetic_audio(request, source, model, config, train):
    data = _fixture(request, source)
    train_set, valid_set = _split_thirds(data)
    result = fit(model, config, train_set, valid_set, seed=0, train_config=TrainConfig(**{**_FAST, **train}))
    chance = 1.0 / data.n_classes
    assert result.metrics["balanced_accuracy"] >= 2 * chance, (model, source, result.history)
