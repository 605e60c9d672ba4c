"""Ensembles of a sweep's trials: pure numpy on class-probability arrays, and the one
registry of ensemble methods.

* `results.ensemble.methods`: every method by name (`REGISTRY`, `METHODS`), each a
  selector plus an aggregator; `combine` and `cross_fit` apply one; the deploy `FORMS`.
* `results.ensemble.selector`: which trials join, with what weights (`TopK`, `Greedy`,
  `LoglossTopK`; `greedy_selection`, Caruana et al. 2004; `fit_logloss_weights`), and the
  figures they choose by (`score`, `batch_scores`).
* `results.ensemble.aggregator`: how members' probabilities are joined (`soft_vote`,
  `max_blend`, `hard_vote`), and the means over CV seeds and over a group's clips.
* `results.ensemble.spec`: the spec's ``ensemble`` section (`EnsembleSpec`), checked
  against the registry, and the sweep spec as the results room reads it (`ResultsSpec`).

Shapes: one member's probabilities are ``(N, C)``; M members stacked are ``(M, N, C)``.
"""

from results.ensemble.aggregator import (
    TIE_EPSILON,
    average_seeds,
    hard_vote,
    max_blend,
    per_group,
    soft_vote,
)
from results.ensemble.methods import (
    BEST_MEMBER,
    DEFAULT_METHODS,
    FIT_WEIGHTS_METHODS,
    FORMS,
    METHODS,
    REGISTRY,
    Method,
    combine,
    cross_fit,
    method_named,
    parse_methods,
)
from results.ensemble.selector import (
    batch_scores,
    fit_logloss_weights,
    greedy_selection,
    score,
    top_k_weights,
)

__all__ = [
    "BEST_MEMBER",
    "DEFAULT_METHODS",
    "FIT_WEIGHTS_METHODS",
    "FORMS",
    "METHODS",
    "REGISTRY",
    "TIE_EPSILON",
    "Method",
    "average_seeds",
    "batch_scores",
    "combine",
    "cross_fit",
    "fit_logloss_weights",
    "greedy_selection",
    "hard_vote",
    "max_blend",
    "method_named",
    "parse_methods",
    "per_group",
    "score",
    "soft_vote",
    "top_k_weights",
]
