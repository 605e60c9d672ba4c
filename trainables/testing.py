"""The contract every registered model keeps, written once for pytest.

As Optuna's ``optuna.testing.pytest_samplers``: `ModelContract` states what a model must
do (fit on tiny data, give probabilities that sum to 1, reproduce with the same seed,
survive a length-1 sequence and a batch of one, give a padded batch the outputs of its
sequences one by one); a test module subclasses it once per model::

    from trainables.testing import ModelContract

    class TestLSTM(ModelContract):
        model = "lstm"
        config = {"units": (8, 4)}

The data are made here, tiny and seeded. This module imports pytest: nothing in the
package imports it, so ``import trainables`` works without pytest installed.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch

from features.sequences import SequenceSet
from trainables.environment import seed_everything
from trainables.registry import build_model
from trainables.training.loop import fit
from trainables.training.predict import predict_proba
from trainables.training.result import FitResult

__all__ = ["ModelContract", "N_CLASSES", "TINY_TRAIN"]

N_CLASSES = 4
DIM = 6
VOCAB = 12
TINY_TRAIN = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "deterministic": True, "num_threads": 1, "device": "cpu"}


def _set(xs: list[np.ndarray], ys: list[int], prefix: str, vocab_size: int | None = None) -> SequenceSet:
    ids = np.array([f"{prefix}{i}" for i in range(len(xs))], dtype=object)
    return SequenceSet(xs, np.asarray(ys), [f"class{c}" for c in range(N_CLASSES)], ids, ids, vocab_size=vocab_size)


def _toy_features(seed: int, n_per_class: int, *, lengths: tuple[int, int] = (1, 25)) -> SequenceSet:
    """Sine tones of a class-specific frequency plus noise, as (T, 6) frames of odd scale."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(N_CLASSES):
        for _ in range(n_per_class):
            t = np.arange(rng.integers(*lengths, endpoint=True))[:, None]
            phase = np.arange(DIM)[None, :] * 0.7
            frames = np.sin(0.25 * (c + 1) * t + phase) + 0.3 * rng.standard_normal((len(t), DIM))
            xs.append((frames * 50.0 + 10.0 * c).astype(np.float32))
            ys.append(c)
    return _set(xs, ys, f"toy{seed}-")


def _toy_tokens(seed: int, n_per_class: int) -> SequenceSet:
    """A token set: ids (D = 1) drawn from class-specific distributions over VOCAB ids."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(N_CLASSES):
        p = np.full(VOCAB, 0.2 / VOCAB)
        p[3 * c : 3 * c + 3] += 0.8 / 3
        for _ in range(n_per_class):
            xs.append(rng.choice(VOCAB, size=(int(rng.integers(1, 20, endpoint=True)), 1), p=p).astype(np.float32))
            ys.append(c)
    return _set(xs, ys, f"tok{seed}-", vocab_size=VOCAB)


def _one_frame_set(data: SequenceSet) -> SequenceSet:
    """``data`` with every sequence cut to its first frame."""
    return _set([s[:1] for s in data.x], list(data.y), "one-", vocab_size=data.vocab_size)


@functools.cache
def _toy_sequences() -> dict[str, SequenceSet]:
    """Tiny ragged train/valid sets of real-valued frames and of token ids (seeded, made once)."""
    return {
        "features_train": _toy_features(1, 8),
        "features_valid": _toy_features(2, 3),
        "tokens_train": _toy_tokens(3, 8),
        "tokens_valid": _toy_tokens(4, 3),
    }


class ModelContract:
    """What every trainable must do. Subclasses set ``model``, ``config`` and ``inputs``."""

    model: str = ""
    config: dict[str, Any] = {}
    inputs: str = "features"  # or "tokens"
    torch_model: bool = True

    # ---- helpers ---------------------------------------------------------------------
    @pytest.fixture
    def data(self) -> tuple[SequenceSet, SequenceSet]:
        sets = _toy_sequences()
        return sets[f"{self.inputs}_train"], sets[f"{self.inputs}_valid"]

    def _fit(self, train: SequenceSet, valid: SequenceSet | None, *, seed: int = 0, **train_options) -> FitResult:
        return fit(self.model, self.config, train, valid, seed=seed,
                   train_config={**TINY_TRAIN, **train_options}, return_weights=True)

    def _require_torch(self) -> None:
        if not self.torch_model:
            pytest.skip(f"{self.model} is a scikit-learn baseline: no torch forward pass to check")

    # ---- the contract ----------------------------------------------------------------
    def test_fits_on_tiny_data(self, data):
        train, valid = data
        result = self._fit(train, valid)
        assert isinstance(result, FitResult)
        assert result.model == self.model
        assert result.proba.shape == (len(valid), N_CLASSES)
        assert result.n_params > 0
        assert 1 <= result.best_epoch <= result.epochs_run == len(result.history)
        assert {"accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "confusion_matrix"} <= set(result.metrics)
        assert np.asarray(result.metrics["confusion_matrix"]).sum() == len(valid)
        # the validation set is scored once, at the end: never in a per-epoch record
        if self.torch_model:
            assert all(np.isfinite(h["train_loss"]) for h in result.history)
            assert not [k for h in result.history for k in h if k.startswith("valid_")]

    def test_probabilities_sum_to_one(self, data):
        train, valid = data
        proba = self._fit(train, valid).proba
        assert proba.dtype == np.float64
        assert (proba >= 0).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)

    def test_same_seed_same_result(self, data):
        train, valid = data
        first, again = self._fit(train, valid, seed=7), self._fit(train, valid, seed=7)
        np.testing.assert_array_equal(first.proba, again.proba)  # bit for bit
        assert [h["train_loss"] for h in first.history] == [h["train_loss"] for h in again.history]

    def test_other_seed_other_result(self, data):
        if self.model == "knn":
            pytest.skip("knn has no randomness: every seed gives the same neighbours")
        train, valid = data
        assert not np.array_equal(self._fit(train, valid, seed=1).proba, self._fit(train, valid, seed=2).proba)

    def test_length_one_sequences(self, data):
        train, valid = data
        result = self._fit(_one_frame_set(train), _one_frame_set(valid))
        assert result.proba.shape == (len(valid), N_CLASSES)
        assert np.isfinite(result.proba).all()
        mixed = self._fit(train, _one_frame_set(valid))  # trained on long, scored on length 1
        assert np.isfinite(mixed.proba).all()

    def test_batch_of_one(self, data):
        train, valid = data
        result = self._fit(train.subset(np.arange(6)), valid.subset([0]), batch_size=1)
        assert result.proba.shape == (1, N_CLASSES)
        np.testing.assert_allclose(result.proba.sum(), 1.0, atol=1e-9)

    def test_padded_batch_matches_one_by_one(self, data):
        """Fitted weights: one padded batch gives each sequence what it gets alone."""
        train, valid = data
        result = self._fit(train, valid)
        together = predict_proba(self.model, self.config, result.weights, valid.to_padded(), device="cpu")
        alone = np.concatenate([
            predict_proba(self.model, self.config, result.weights, valid.subset([i]), device="cpu")
            for i in range(len(valid))
        ])
        np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
        np.testing.assert_allclose(together, result.proba, rtol=0, atol=1e-5)

    def test_ragged_and_padded_input_agree(self, data):
        train, valid = data
        ragged = self._fit(train, valid)
        padded = self._fit(train.to_padded(), valid.to_padded())
        np.testing.assert_allclose(ragged.proba, padded.proba, rtol=0, atol=1e-6)

    def test_refit_without_validation(self, data):
        train, valid = data
        result = self._fit(train, None)
        assert result.proba is None and result.metrics == {}
        assert "valid_loss" not in result.history[-1]
        proba = result.predict_proba(valid)
        assert proba.shape == (len(valid), N_CLASSES)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)

    def test_forward_padded_matches_one_by_one(self, data):
        """The raw module, fresh from the builder: padding changes no sequence's logits."""
        self._require_torch()
        _, valid = data
        seed_everything(0)
        net = build_model(self.model, self.config, input_dim=valid.dim, n_classes=N_CLASSES,
                          vocab_size=valid.vocab_size)
        net.eval()
        padded = valid.to_padded()
        with torch.no_grad():
            batch = net(torch.from_numpy(padded.x), torch.from_numpy(padded.lengths))
            alone = torch.cat([
                net(torch.from_numpy(s[None]), torch.tensor([len(s)])) for s in valid.to_ragged().x
            ])
        assert batch.shape == (len(valid), N_CLASSES)
        torch.testing.assert_close(batch, alone, rtol=0, atol=1e-5)

    def test_gradients_reach_every_parameter(self, data):
        self._require_torch()
        train, _ = data
        seed_everything(0)
        net = build_model(self.model, self.config, input_dim=train.dim, n_classes=N_CLASSES,
                          vocab_size=train.vocab_size)
        padded = train.to_padded()
        loss = net(torch.from_numpy(padded.x), torch.from_numpy(padded.lengths)).logsumexp(dim=1).mean()
        loss.backward()
        missing = [name for name, p in net.named_parameters() if p.grad is None]
        assert not missing
