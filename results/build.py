"""Which members each ensemble method gets, with what weights, and its honest out-of-fold
estimate.

Every method starts from the sweep's finished trials in rank order (the pool). ``soft``,
``max`` and ``vote`` weigh the ``top_k`` best equally; ``weighted`` keeps the ones
`results.ensemble.greedy_selection` picks; ``weighted_logloss`` (with
``ensemble.fit_weights``) fits weights by `results.ensemble.fit_logloss_weights`. The
out-of-fold estimate of each ensemble is cross-fitted (`results.ensemble.cross_fit`) over
`weight_parts`: no ensemble is scored on the rows that chose its members or weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

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

__all__ = ["EnsembleDef", "build_ensembles", "parse_methods", "weight_parts"]


@dataclass
class EnsembleDef:
    """One ensemble: its method, members (trial ids, in rank order), weights summing to 1,
    and out-of-fold probabilities [shape=(N_train, C)]."""

    method: str
    members: list[str]
    weights: list[float]
    oof_proba: np.ndarray


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
    """The parts over which weighted methods are cross-fitted: ``folds`` stratified,
    group-aware folds of the train rows (scikit-learn's `StratifiedGroupKFold`, seeded)."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = members[0].y, members[0].groups
    n_groups = len(set(groups.tolist()))
    splitter = StratifiedGroupKFold(n_splits=max(2, min(folds, n_groups)), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the "least populated class" warning
        return [(a.astype(np.int64), b.astype(np.int64)) for a, b in splitter.split(np.zeros(len(y)), y, groups)]


def build_ensembles(
    pool: Sequence[Member],
    methods: Sequence[str],
    *,
    top_k: int,
    metric: str,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    fit_weights: bool = False,
    max_size: int = 25,
) -> list[EnsembleDef]:
    """Each method's members, weights and out-of-fold probabilities.

    ``pool`` holds every finished trial, best CV rank first; the deployed ensembles use its
    first ``top_k``. ``soft``, ``max`` and ``vote`` weigh them equally; ``weighted`` keeps
    the ones `greedy_selection` picked (weights = times picked / ensemble size);
    ``weighted_logloss`` (added when ``fit_weights``) uses `fit_logloss_weights`.

    The out-of-fold probabilities are cross-fitted over ``parts`` (`cross_fit`): on each
    part, the top ``top_k`` trials are chosen by their ``metric`` on the other parts' rows
    (an approximation of the CV ranking, which uses every row) and the weights are fitted
    there too, so no ensemble's estimate is scored on the rows that chose its members.
    """
    pool_oof = np.stack([average_seeds(m.oof) for m in pool])  # (M_pool, N, C)
    y = pool[0].y
    k = min(top_k, len(pool))
    ids = [m.trial_id for m in pool[:k]]
    fitters: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "weighted": lambda p, t: greedy_selection(p, t, metric, max_size=max_size),
        "weighted_logloss": lambda p, t: fit_logloss_weights(p, t),
    }

    def choose(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        def weights(p: np.ndarray, t: np.ndarray) -> np.ndarray:
            chosen = top_k_weights(p, t, k=k, metric=metric)
            if method in fitters:
                inside = chosen > 0
                chosen[inside] = fitters[method](p[inside], t)
            return chosen
        return weights

    todo = list(methods) + (["weighted_logloss"] if fit_weights and "weighted_logloss" not in methods else [])
    out = []
    for method in todo:
        if method not in ("soft", "max", "vote") and method not in fitters:
            raise ConfigError("methods", f"must be among {list(METHODS)}", method)
        weights = fitters[method](pool_oof[:k], y) if method in fitters else np.full(k, 1.0 / k)
        keep = weights > 0
        proba = cross_fit(choose(method), method, pool_oof, y, parts)
        out.append(EnsembleDef(method, [t for t, kept in zip(ids, keep) if kept],
                               [float(w) for w in weights[keep] / weights[keep].sum()], proba))
    return out
