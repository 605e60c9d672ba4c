"""The ensemble methods, named once: each is a selector (`results.ensemble.selector`: which
trials join, with what weights) plus an aggregator (`results.ensemble.aggregator`: how
their probabilities are joined), as deephyper builds an ensemble from a selector and an
aggregator.

=================  ===============  ==========  =========================================
name               selector         aggregator  weights
=================  ===============  ==========  =========================================
soft               top_k            mean        every member counts once
max                top_k            max         every member counts once
vote               top_k            vote        every member counts once
weighted           greedy           mean        greedy's (picks with replacement / size)
weighted_logloss   logloss_top_k    mean        fitted to out-of-fold log-loss
best_member        rank_one         mean        one member (a candidate, not a method)
=================  ===============  ==========  =========================================

A spec names methods among `DEFAULT_METHODS` (its default too); `FIT_WEIGHTS_METHODS` are
built when ``ensemble.fit_weights`` is true. `combine` joins member probabilities by a
method's name (the ``combiner`` that ``ensemble.json`` saves), `cross_fit` gives an
ensemble's honest out-of-fold probabilities. `FORMS` are the ways a member is deployed
(``ensemble.refit``, `results.deploy`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from results.ensemble.aggregator import AGGREGATORS, stack
from results.ensemble.selector import SELECTORS, Selector
from seqsweep.errors import ConfigError, InputError

__all__ = ["BEST_MEMBER", "DEFAULT_METHODS", "FIT_WEIGHTS_METHODS", "FORMS", "METHODS", "RANK_ONE", "REGISTRY",
           "Method", "combine", "cross_fit", "method_named", "parse_methods", "to_build"]


@dataclass(frozen=True)
class Method:
    """One way to build a candidate: its ``name``, its ``selector`` (a key of
    `results.ensemble.selector.SELECTORS`) and ``aggregator`` (a key of
    `results.ensemble.aggregator.AGGREGATORS`); ``weighted``: the aggregator reads the
    selector's weights (else each chosen member counts once); ``fit_weights``: built only
    with ``ensemble.fit_weights`` (a spec does not name it); ``note``: one line for
    ``--help``; ``combiner``: the method whose `combine` joins its members, saved in
    ``ensemble.json`` (default: itself)."""

    name: str
    selector: str
    aggregator: str
    note: str
    weighted: bool = False
    fit_weights: bool = False
    combiner: str = ""

    def __post_init__(self) -> None:
        if self.selector not in SELECTORS:
            raise ConfigError(f"method {self.name!r}: selector", f"must be one of {list(SELECTORS)}", self.selector)
        if self.aggregator not in AGGREGATORS:
            raise ConfigError(f"method {self.name!r}: aggregator", f"must be one of {list(AGGREGATORS)}",
                              self.aggregator)
        object.__setattr__(self, "combiner", self.combiner or self.name)

    def select(self, *, k: int, metric: str, max_size: int) -> Selector:
        """Its selector, for the top ``k`` (at most the pool's size), ``metric`` and ``max_size``."""
        return SELECTORS[self.selector](k=k, metric=metric, max_size=max_size)

    def join(self, probas: np.ndarray, weights: np.ndarray | Sequence[float] | None = None) -> np.ndarray:
        """Its aggregator on member probabilities [shape=(M, N, C)] -> [shape=(N, C)], with
        ``weights`` [shape=(M,)] when ``weighted`` (then required), else equal."""
        aggregate = AGGREGATORS[self.aggregator]
        if not self.weighted:
            return aggregate(probas)
        if weights is None:
            raise ConfigError(f"method {self.name!r}", "needs the weights it was fitted with", None)
        return aggregate(probas, weights=weights)


#: every ensemble method, by name, in the order they are built and listed
REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("soft", "top_k", "mean", "mean probability"),
    Method("max", "top_k", "max", "per-class maximum"),
    Method("vote", "top_k", "vote", "hard majority, ties by mean probability"),
    Method("weighted", "greedy", "mean", "greedy selection from every finished trial, Caruana 2004", weighted=True),
    Method("weighted_logloss", "logloss_top_k", "mean", "weights fitted to out-of-fold log-loss", weighted=True,
           fit_weights=True),
)}
#: every method's name
METHODS = tuple(REGISTRY)
#: the methods a spec may name, and its default
DEFAULT_METHODS = tuple(name for name, m in REGISTRY.items() if not m.fit_weights)
#: the methods built only when ``ensemble.fit_weights`` is true
FIT_WEIGHTS_METHODS = tuple(name for name, m in REGISTRY.items() if m.fit_weights)

#: The candidate that is the rank-1 member alone.
BEST_MEMBER = "best_member"
#: How `BEST_MEMBER` is chosen and joined: ``soft`` over one member.
RANK_ONE = Method(BEST_MEMBER, "rank_one", "mean", "the rank-1 trial alone", combiner="soft")

#: How a member is deployed (``ensemble.refit``): ``bag``, its CV fold models; ``full``, refit
#: on the whole train split.
FORMS = ("bag", "full")


def method_named(name: str, *, where: str = "method", rule: str = "must be one of") -> Method:
    """The method called ``name``; else `ConfigError` naming ``where``, ``rule`` and every method."""
    if name not in REGISTRY:
        raise ConfigError(where, f"{rule} {list(METHODS)}", name)
    return REGISTRY[name]


def parse_methods(methods: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"soft,max"`` or ``["soft", "max"]`` -> a checked tuple (None stays None)."""
    if methods is None:
        return None
    items = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    items = [m for m in items if m]
    if not items:
        raise ConfigError("methods", f"must name at least one of {list(DEFAULT_METHODS)}", methods)
    for m in items:
        method_named(m, where="methods", rule="must be among")
    return tuple(dict.fromkeys(items))


def to_build(methods: Sequence[str], *, fit_weights: bool) -> list[Method]:
    """The methods asked for, in order, then (with ``fit_weights``) the `FIT_WEIGHTS_METHODS`
    not among them; an unknown name raises `ConfigError`."""
    extra = [m for m in FIT_WEIGHTS_METHODS if fit_weights and m not in methods]
    return [method_named(m, where="methods", rule="must be among") for m in (*methods, *extra)]


def combine(method: str, probas: np.ndarray, *, weights: np.ndarray | Sequence[float] | None = None
            ) -> np.ndarray:
    """Apply ensemble ``method`` to member probabilities [shape=(M, N, C)] -> [shape=(N, C)].

    ``soft``, ``max`` and ``vote`` use every member equally; ``weighted`` and
    ``weighted_logloss`` are the mean with the given ``weights`` (see `Method.join`).
    """
    return method_named(method).join(probas, weights)


def cross_fit(
    choose: Callable[[np.ndarray, np.ndarray], np.ndarray],
    method: str,
    oof_probas: np.ndarray,
    y: np.ndarray,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold probabilities of an ensemble whose choices never saw the rows they score
    [shape=(M, N, C)] -> [shape=(N, C)].

    For each ``(fit_rows, held_rows)`` in ``parts`` (a partition of the N rows),
    ``choose(oof_probas[:, fit_rows], y[fit_rows])`` returns weights over the M candidates
    (zero = not a member: the members' choice and, for the weighted methods, their
    weights), and ``method`` combines the chosen candidates on the ``held_rows``. The
    deployed ensemble makes the same choices on every row; this estimate is of that
    procedure, as a CV estimate is of a refit.
    """
    arr = stack(oof_probas, "oof_probas")
    y = np.asarray(y, dtype=np.int64)
    out = np.full(arr.shape[1:], np.nan)
    for fit_rows, held_rows in parts:
        weights = np.asarray(choose(arr[:, fit_rows], y[fit_rows]), dtype=np.float64)
        keep = weights > 0
        out[held_rows] = combine(method, arr[keep][:, held_rows], weights=weights[keep])
    if np.isnan(out).any():
        raise InputError("parts", "must hold every row out exactly once", f"{int(np.isnan(out[:, 0]).sum())} rows never held out")
    return out
