"""The candidates for what seqsweep hands over, their members and weights, and each one's
honest out-of-fold estimate.

Every candidate starts from the sweep's finished trials in rank order (the pool, the
library):

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
from results.ensemble import (
    METHODS,
    average_seeds,
    cross_fit,
    fit_logloss_weights,
    greedy_selection,
    top_k_weights,
)
from results.experiment import Member
from search.spec import ENSEMBLE_METHODS
from seqsweep.errors import ConfigError

__all__ = ["BEST_MEMBER", "Candidate", "EnsembleDef", "build_ensembles", "make_candidates", "parse_methods",
           "pool_probabilities", "weight_parts"]

#: The candidate that is the rank-1 member alone.
BEST_MEMBER = "best_member"

#: (pool probabilities on some rows [shape=(M, n, C)], their classes [shape=(n,)]) -> weights [shape=(M,)]
Chooser = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """One candidate for the final choice: its ``name`` (``best_member`` or an ensemble
    method), the ``combiner`` of `results.ensemble.combine` that joins its members, how it
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


def parse_methods(methods: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"soft,max"`` or ``["soft", "max"]`` -> a checked tuple (None stays None)."""
    if methods is None:
        return None
    items = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    items = [m for m in items if m]
    if not items:
        raise ConfigError("methods", f"must name at least one of {list(ENSEMBLE_METHODS)}", methods)
    for m in items:
        if m not in METHODS:
            raise ConfigError("methods", f"must be among {list(METHODS)}", m)
    return tuple(dict.fromkeys(items))


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
    """``best_member`` and one candidate per method (plus ``weighted_logloss`` with
    ``fit_weights``) over the pool's out-of-fold probabilities [shape=(M, N, C)], best CV
    rank first."""
    m = pool_oof.shape[0]
    k = min(top_k, m)

    def top(count: int) -> np.ndarray:
        weights = np.zeros(m)
        weights[:count] = 1.0 / count
        return weights

    def greedy(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        return greedy_selection(p, t, metric, max_size=max_size)

    def logloss_top_k(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        chosen = top_k_weights(p, t, k=k, metric=metric)
        inside = chosen > 0
        chosen[inside] = fit_logloss_weights(p[inside], t)
        return chosen

    def equal_top_k(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        return top_k_weights(p, t, k=k, metric=metric)

    def rank_one(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        return top_k_weights(p, t, k=1, metric=metric)

    out = [Candidate(BEST_MEMBER, "soft", rank_one, top(1))]
    todo = list(methods) + (["weighted_logloss"] if fit_weights and "weighted_logloss" not in methods else [])
    for method in todo:
        if method in ("soft", "max", "vote"):
            out.append(Candidate(method, method, equal_top_k, top(k)))
        elif method == "weighted":
            out.append(Candidate(method, method, greedy, greedy(pool_oof, y)))
        elif method == "weighted_logloss":
            deployed = top(k)
            deployed[:k] = fit_logloss_weights(pool_oof[:k], y)
            out.append(Candidate(method, method, logloss_top_k, deployed))
        else:
            raise ConfigError("methods", f"must be among {list(METHODS)}", method)
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
