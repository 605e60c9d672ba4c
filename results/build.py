"""The candidates for what seqsweep hands over, their members and weights, and each one's
honest out-of-fold estimate.

Every candidate starts from the sweep's finished trials in rank order (the pool, the
library); its selector and aggregator are named in `results.ensemble.methods`:

* ``best_member``: the rank-1 trial by the CV objective, alone;
* ``soft``, ``max`` and ``vote``: the ``top_k`` best, weighed equally;
* ``weighted``: greedy selection with replacement (`results.ensemble.greedy_selection`,
  Caruana et al. 2004) over the whole library, at most ``max_size`` picks: two families
  that are each good on a different part of the rows can both join, even when one of them
  fills the top k;
* ``weighted_logloss`` (with ``ensemble.fit_weights``): the top ``top_k``, weights fitted by
  `results.ensemble.fit_logloss_weights`.

The out-of-fold estimate of each candidate is cross-fitted (`results.ensemble.cross_fit`)
over `weight_parts`: on each part the choice (which trial is rank 1, which are the top k,
greedy's picks, the weights) is made on the other parts' rows, so no figure is scored on
the rows that made its choices; the rank-1 member's figure is cross-fitted over the choice
of member like the others. On those other parts a trial's standing is its ``metric`` on
their pooled out-of-fold rows, an approximation of the CV ranking (which uses every row).
`results.choice` then picks one candidate, inside a second cross-fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from features.splits import group_split
from results.ensemble.aggregator import average_seeds
from results.ensemble.methods import RANK_ONE, cross_fit, to_build
from results.experiment import Member

__all__ = ["Candidate", "EnsembleDef", "build_ensembles", "make_candidates", "pool_probabilities", "weight_parts"]

#: (pool probabilities on some rows [shape=(M, n, C)], their classes [shape=(n,)]) -> weights [shape=(M,)]
Chooser = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """One candidate for the final choice: its ``name`` (``best_member`` or an ensemble
    method), the ``combiner`` of `results.ensemble.methods.combine` that joins its members, how it
    ``choose``s its members and weights from rows of the pool, and the weights it gets on
    every train row (``deployed``, [shape=(M,)], the ranking by the CV objective where the
    choice is a ranking)."""

    name: str
    combiner: str
    choose: Chooser
    deployed: np.ndarray


@dataclass
class EnsembleDef:
    """One candidate as built: its name (``method``), combiner, members (trial ids, in rank
    order), weights summing to 1, and cross-fitted out-of-fold probabilities
    [shape=(N_train, C)]."""

    method: str
    members: list[str]
    weights: list[float]
    oof_proba: np.ndarray
    combiner: str = ""

    def __post_init__(self) -> None:
        self.combiner = self.combiner or self.method




def weight_parts(members: Sequence[Member], *, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The parts over which every candidate is cross-fitted: ``folds`` stratified, group-aware
    (fit rows, held rows) pairs of the train rows (`features.splits.group_split`; fewer parts
    when there are fewer groups, at least 2)."""
    return group_split(members[0].y, members[0].groups, folds=folds, seed=seed, kfold_when_ungrouped=True)


def pool_probabilities(pool: Sequence[Member]) -> np.ndarray:
    """Each trial's out-of-fold probabilities, averaged over its CV seeds [shape=(M, N, C)]."""
    return np.stack([average_seeds(m.oof) for m in pool])


def make_candidates(pool_oof: np.ndarray, y: np.ndarray, methods: Sequence[str], *, top_k: int, metric: str,
                    fit_weights: bool = False, max_size: int = 25) -> list[Candidate]:
    """``best_member`` and one candidate per method (plus the `FIT_WEIGHTS_METHODS` with
    ``fit_weights``) over the pool's out-of-fold probabilities [shape=(M, N, C)], best CV
    rank first: each method's selector (`results.ensemble.methods`) chooses its members."""
    k = min(top_k, pool_oof.shape[0])
    out = []
    for method in (RANK_ONE, *to_build(methods, fit_weights=fit_weights)):
        selector = method.select(k=k, metric=metric, max_size=max_size)
        out.append(Candidate(method.name, method.combiner, selector.choose, selector.deploy(pool_oof, y)))
    return out


def build_ensembles(
    pool: Sequence[Member],
    methods: Sequence[str],
    *,
    top_k: int,
    metric: str,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    fit_weights: bool = False,
    max_size: int = 25,
) -> tuple[list[EnsembleDef], list[Candidate]]:
    """Each candidate's members, weights and cross-fitted out-of-fold probabilities, and
    the candidates themselves (for `results.choice.final_choice`).

    ``pool`` holds every finished trial, best CV rank first. The first `EnsembleDef` is
    ``best_member``, then one per method (see the module).
    """
    pool_oof = pool_probabilities(pool)
    y = pool[0].y
    candidates = make_candidates(pool_oof, y, methods, top_k=top_k, metric=metric, fit_weights=fit_weights,
                                 max_size=max_size)
    defs = []
    for c in candidates:
        keep = c.deployed > 0
        proba = cross_fit(c.choose, c.combiner, pool_oof, y, parts)
        defs.append(EnsembleDef(c.name, [m.trial_id for m, kept in zip(pool, keep) if kept],
                                [float(w) for w in c.deployed[keep] / c.deployed[keep].sum()], proba, c.combiner))
    return defs, candidates
