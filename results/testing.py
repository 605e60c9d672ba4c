"""The contract every ensemble method keeps, as a pytest base class (Optuna's
``optuna/testing/pytest_samplers.py`` does the same for samplers).

A method of `results.ensemble.METHODS` (`results.ensemble.methods`) combines member probabilities
[shape=(M, N, C)] into one prediction [shape=(N, C)]. Whatever the method:

* its rows are probabilities: finite, non-negative, summing to 1;
* the order of the members does not matter (their weights move with them);
* a class every member ranks first on a clip is the ensemble's class there;
* shapes other than (M, N, C) and non-finite probabilities raise `InputError`;
* one member, or members all equal, give that member's probabilities back (``vote``, whose
  rows are vote fractions, gives back its classes: ``returns_member_probabilities = False``);
* a weighted method ignores a member of weight 0, reads weights up to scale, and raises
  `ConfigError` without weights.

Subclass it once per method; pytest collects the ``test_*`` methods::

    class TestSoft(EnsembleMethodContract):
        method = "soft"

`combine` is the method under test; a subclass may override it to check another
implementation against the same contract.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from results.ensemble import combine, method_named
from seqsweep.errors import ConfigError, InputError

__all__ = ["EnsembleMethodContract"]


def random_probas(m: int, n: int, c: int, *, seed: int = 0) -> np.ndarray:
    """Member probabilities [shape=(m, n, c)], each row drawn from a flat Dirichlet."""
    return np.random.default_rng(seed).dirichlet(np.ones(c), size=(m, n))


class EnsembleMethodContract:
    """What a method of `results.ensemble.METHODS` must do; set ``method`` in a subclass."""

    method: str = ""
    #: whether one member (or equal members) comes back as its own probabilities
    returns_member_probabilities: bool = True

    @property
    def weighted(self) -> bool:
        """Whether the method takes weights (``combine(..., weights=...)``)."""
        return method_named(self.method).weighted

    def combine(self, probas: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
        """The method under test: `results.ensemble.combine` (weights only for a weighted method)."""
        return combine(self.method, probas, weights=weights if self.weighted else None)

    def weights_for(self, m: int, *, seed: int = 1) -> np.ndarray:
        return np.random.default_rng(seed).uniform(0.2, 1.0, m)

    # ---- every method ----------------------------------------------------------------------
    def test_rows_are_probabilities(self) -> None:
        probas = random_probas(4, 30, 5)
        out = np.asarray(self.combine(probas, self.weights_for(4)))
        assert out.shape == (30, 5), out.shape
        assert np.isfinite(out).all() and (out >= 0).all()
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-9)

    def test_member_order_does_not_matter(self) -> None:
        probas, weights = random_probas(5, 40, 4, seed=2), self.weights_for(5)
        order = np.array([3, 0, 4, 2, 1])
        np.testing.assert_allclose(self.combine(probas[order], weights[order]), self.combine(probas, weights),
                                   atol=1e-12)

    def test_a_class_every_member_ranks_first_wins(self) -> None:
        probas = random_probas(3, 25, 4, seed=3)
        first = np.arange(25) % 4
        probas[:, np.arange(25), first] += 2.0  # each member's clear favourite: class first[i]
        probas /= probas.sum(axis=2, keepdims=True)
        np.testing.assert_array_equal(np.argmax(self.combine(probas, self.weights_for(3)), axis=1), first)

    def test_one_member_gives_its_prediction_back(self) -> None:
        member = random_probas(1, 20, 3, seed=4)
        out = self.combine(member, [1.0])
        np.testing.assert_array_equal(np.argmax(out, axis=1), np.argmax(member[0], axis=1))
        if self.returns_member_probabilities:
            np.testing.assert_allclose(out, member[0], atol=1e-12)

    def test_equal_members_give_their_prediction_back(self) -> None:
        member = random_probas(1, 20, 3, seed=5)
        out = self.combine(np.repeat(member, 4, axis=0), self.weights_for(4))
        np.testing.assert_array_equal(np.argmax(out, axis=1), np.argmax(member[0], axis=1))
        if self.returns_member_probabilities:
            np.testing.assert_allclose(out, member[0], atol=1e-12)

    def test_bad_input_is_refused(self) -> None:
        probas = random_probas(2, 6, 3, seed=6)
        with pytest.raises(InputError, match=r"must be member probabilities of shape \(M members"):
            self.combine(probas[0], [1.0])
        probas[1, 2, 0] = np.nan
        with pytest.raises(InputError, match="probabilities must be finite"):
            self.combine(probas, self.weights_for(2))

    # ---- the weighted methods ----------------------------------------------------------------
    def test_weights_of_zero_and_scale(self) -> None:
        if not self.weighted:
            pytest.skip(f"{self.method} weighs its members equally")
        probas = random_probas(3, 15, 4, seed=7)
        np.testing.assert_allclose(self.combine(probas, [2.0, 0.0, 1.0]), self.combine(probas[[0, 2]], [2.0, 1.0]),
                                   atol=1e-12)
        np.testing.assert_allclose(self.combine(probas, [2.0, 4.0, 6.0]), self.combine(probas, [1.0, 2.0, 3.0]),
                                   atol=1e-12)
        with pytest.raises(ConfigError, match="needs the weights it was fitted with"):
            self.combine(probas, None)
