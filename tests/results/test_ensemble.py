"""Ensemble maths on hand-made probability arrays: every expected value worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from results.ensemble import (
    METHODS,
    average_seeds,
    combine,
    fit_logloss_weights,
    greedy_selection,
    hard_vote,
    max_blend,
    soft_vote,
)
from results.testing import EnsembleMethodContract
from seqsweep.errors import ConfigError, InputError


def two_class(p1: list[float]) -> np.ndarray:
    """Probabilities [shape=(N, 2)] from P(class 1) per clip."""
    p = np.asarray(p1, dtype=float)
    return np.stack([1 - p, p], axis=1)


def test_greedy_selection_hand_worked():
    y = np.array([0, 0, 0, 1, 1, 1])
    a = two_class([0.1, 0.2, 0.1, 0.4, 0.9, 0.8])  # wrong only on clip 3: 5/6
    b = two_class([0.2, 0.6, 0.3, 0.9, 0.45, 0.7])  # wrong on clips 1 and 4: 4/6, sure on clip 3
    c = two_class([0.9, 0.9, 0.9, 0.1, 0.1, 0.1])  # always wrong
    probas = np.stack([a, b, c])
    # step 1: a alone is best (5/6); step 2: a+b averages to [.15 .4 .2 .65 .675 .75]: 6/6.
    # Nothing beats a perfect score, so the ensemble is cut back to size 2.
    assert greedy_selection(probas, y, "accuracy").tolist() == [0.5, 0.5, 0.0]
    assert greedy_selection(probas, y, "balanced_accuracy", max_size=1).tolist() == [1.0, 0.0, 0.0]
    assert greedy_selection(probas[[2, 1, 0]], y, "accuracy").tolist() == [0.0, 0.5, 0.5]  # not by position


def test_greedy_selection_picks_a_member_again():
    """With replacement: a twice plus b is right on both clips; a+b and a alone are not."""
    y = np.array([1, 0])
    a = two_class([0.45, 0.2])  # right on clip 1 only
    b = two_class([1.0, 1.0])  # right on clip 0 only, and certain everywhere
    # size 1: a and b tie at 1/2; a has the lower log-loss. size 2: a+a and a+b tie at 1/2
    # (a+b = [.725, .6]); a+a has the lower log-loss. size 3: a+a+b = [.633, .467]: 2/2.
    weights = greedy_selection(np.stack([a, b]), y, "balanced_accuracy", max_size=6)
    np.testing.assert_allclose(weights, [2 / 3, 1 / 3])


def test_hard_vote_majority_and_ties():
    # 4 members, 3 classes, 2 clips.
    probas = np.array([
        [[0.6, 0.4, 0.0], [0.4, 0.3, 0.3]],
        [[0.5, 0.4, 0.1], [0.4, 0.3, 0.3]],
        [[0.1, 0.9, 0.0], [0.4, 0.3, 0.3]],
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    ])
    out = hard_vote(probas)
    # clip 0: 2 votes each for classes 0 and 1; the mean probability (0.3 vs 0.675) breaks the tie
    assert out[0].argmax() == 1
    np.testing.assert_allclose(out[0], [0.5, 0.5, 0.0], atol=1e-5)
    # clip 1: 3 votes for class 0 beat one certain vote for class 2, though class 2's mean
    # probability (0.475) is the higher
    assert out[1].argmax() == 0
    np.testing.assert_allclose(out[1], [0.75, 0.0, 0.25], atol=1e-5)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # a tie in votes and in mean probability goes to the lower class index
    even = np.array([[[0.6, 0.4]], [[0.4, 0.6]]])
    assert hard_vote(even)[0].argmax() == 0


def test_soft_vote_and_max_blend():
    probas = np.array([
        [[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]],
        [[0.1, 0.3, 0.6], [0.2, 0.6, 0.2]],
    ])
    np.testing.assert_allclose(soft_vote(probas), [[0.4, 0.25, 0.35], [0.2, 0.4, 0.4]])
    np.testing.assert_allclose(soft_vote(probas, weights=[3, 1]), [[0.55, 0.225, 0.225], [0.2, 0.3, 0.5]])
    # per-class maxima [.7 .3 .6] and [.2 .6 .6], renormalised to sum to 1
    np.testing.assert_allclose(max_blend(probas), [[0.7 / 1.6, 0.3 / 1.6, 0.6 / 1.6], [0.2 / 1.4, 0.6 / 1.4, 0.6 / 1.4]])
    np.testing.assert_allclose(combine("weighted", probas, weights=[0, 1]), probas[1])
    with pytest.raises(ConfigError, match="method: must be one of"):
        combine("median", probas)
    with pytest.raises(ConfigError, match="weights: must be 2 finite non-negative"):
        soft_vote(probas, weights=[1, -1])
    with pytest.raises(InputError, match=r"probas: must be member probabilities of shape \(M members"):
        soft_vote(probas[0])


def test_average_seeds_and_logloss_weights():
    oof = np.array([[[0.8, 0.2], [0.4, 0.6]], [[0.6, 0.4], [0.2, 0.8]]], dtype=np.float32)
    np.testing.assert_allclose(average_seeds(oof), [[0.7, 0.3], [0.3, 0.7]], rtol=1e-6)
    with pytest.raises(InputError, match="every train clip must be validated once per seed"):
        average_seeds(np.full((1, 2, 2), np.nan))

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    good = np.full((60, 3), 0.1)
    good[np.arange(60), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 60)
    weights = fit_logloss_weights(np.stack([noise, good]), y)
    assert weights.shape == (2,) and weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
    assert weights[1] > 0.9


# ---- the contract every method keeps (results.testing) -------------------------------------------
class TestSoft(EnsembleMethodContract):
    method = "soft"


class TestMax(EnsembleMethodContract):
    method = "max"


class TestVote(EnsembleMethodContract):
    method = "vote"
    returns_member_probabilities = False  # vote fractions, not the members' probabilities


class TestWeighted(EnsembleMethodContract):
    method = "weighted"


class TestWeightedLogloss(EnsembleMethodContract):
    method = "weighted_logloss"


def test_every_method_keeps_the_contract():
    tested = {c.method for c in EnsembleMethodContract.__subclasses__() if c.__name__.startswith("Test")}
    assert tested == set(METHODS)


class _FirstMember(EnsembleMethodContract):  # broken on purpose: not collected
    method = "soft"

    def combine(self, probas, weights=None):
        return np.asarray(probas)[0]


class _Unnormalised(EnsembleMethodContract):
    method = "max"

    def combine(self, probas, weights=None):
        return np.asarray(probas).max(axis=0)


class _VoteAsMember(EnsembleMethodContract):
    method = "vote"  # claims to give one member's probabilities back, which vote does not


def test_the_contract_fails_a_broken_method():
    with pytest.raises(AssertionError):
        _FirstMember().test_member_order_does_not_matter()
    with pytest.raises(AssertionError):
        _Unnormalised().test_rows_are_probabilities()
    with pytest.raises(AssertionError):
        _VoteAsMember().test_one_member_gives_its_prediction_back()


def test_batch_scores_are_scikit_learns_scores():
    """The numpy scores the greedy loop uses equal scikit-learn's, with classes missing from
    the truth or from the predictions."""
    import warnings

    from results.ensemble import batch_scores
    from trainables.training.metrics import METRICS, metric_score

    rng = np.random.default_rng(5)
    for _ in range(60):
        c, n = int(rng.integers(2, 6)), int(rng.integers(4, 40))
        y, preds = rng.integers(0, c, n), rng.integers(0, c + 1, (3, n))
        for metric in METRICS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = [metric_score(metric, y, p) for p in preds]
            np.testing.assert_allclose(batch_scores(y, preds, metric), expected, atol=1e-12)
