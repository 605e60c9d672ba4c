"""One honest final choice: which candidate seqsweep hands over, and one out-of-fold
figure for that choice.

The candidates (`results.build.make_candidates`: the rank-1 member and every ensemble
method) each have a cross-fitted out-of-fold figure. Deploying the best of them and
quoting its figure would quote a maximum of several noisy figures (a simulation at 192
rows put that bias at about +1.4 points). So the choice itself is cross-fitted, one level
up (nested cross-validation, as Varma & Simon 2006 and Cawley & Talbot 2010 recommend for
a figure of a selection procedure):

for each part (fit rows F, held rows H) of the train rows,

1. every candidate is cross-fitted on F alone (its choices made on inner parts of F);
2. the candidate with the best figure on F is the part's choice (ties: the earlier
   candidate, ``best_member`` first, the simplest);
3. that candidate, its members and weights chosen on all of F, predicts H.

The held rows' predictions make one out-of-fold figure for the procedure "choose the best
candidate, then deploy it": what seqsweep hands over. On every train row, the same rule
picks the deployed choice: the candidate with the best cross-fitted figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.splits import group_split
from results.build import Candidate, EnsembleDef
from results.ensemble import combine, cross_fit, per_group, score
from seqsweep.errors import InputError

__all__ = ["FinalChoice", "figure", "final_choice"]


def figure(y: np.ndarray, proba: np.ndarray, metric: str, groups: np.ndarray | None = None) -> float:
    """``metric`` of ``proba`` [shape=(N, C)] against ``y``: per clip, or with ``groups``
    [shape=(N,)] per group (each group's mean probability), the unit ``predict`` answers in."""
    if groups is not None:
        y, proba = per_group(y, proba, groups)
    return score(y, proba, metric)


@dataclass
class FinalChoice:
    """The deployed choice (``name``, a candidate), the held-out predictions of the choice
    procedure (``oof_proba`` [shape=(N, C)]), the choice each part made (``per_part``), and
    every candidate's cross-fitted figure on all train rows (``figures``)."""

    name: str
    oof_proba: np.ndarray
    per_part: list[str]
    figures: dict[str, float]


def final_choice(
    candidates: Sequence[Candidate],
    defs: Sequence[EnsembleDef],
    pool_oof: np.ndarray,
    y: np.ndarray,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    metric: str,
    split_groups: np.ndarray,
    score_groups: np.ndarray | None = None,
    seed: int = 0,
) -> FinalChoice:
    """Choose among ``candidates`` (whose `EnsembleDef` ``defs``, in the same order, hold
    the cross-fitted out-of-fold probabilities over ``parts``) and cross-fit the choice.

    Parameters
    ----------
    pool_oof : float [shape=(M, N, C)] the pool's out-of-fold probabilities (rank order).
    y : int [shape=(N,)] true classes.
    parts : the outer (fit rows, held rows) partition (`results.build.weight_parts`).
    metric : the sweep's metric, what the choice maximises.
    split_groups : [shape=(N,)] what must not straddle two inner parts (the CV groups).
    score_groups : [shape=(N,)] or None: score per group (a segmented feature set).
    seed : seeds the inner parts.
    """
    if [c.name for c in candidates] != [d.method for d in defs]:
        raise InputError("defs", "must be the candidates' built ensembles, in order", [d.method for d in defs])
    y = np.asarray(y, dtype=np.int64)
    split_groups = np.asarray(split_groups)

    def groups_of(rows: np.ndarray) -> np.ndarray | None:
        return None if score_groups is None else np.asarray(score_groups)[rows]

    figures = {d.method: figure(y, d.oof_proba, metric, score_groups) for d in defs}
    out = np.full(pool_oof.shape[1:], np.nan)
    per_part = []
    for fit_rows, held_rows in parts:
        inner = group_split(y[fit_rows], split_groups[fit_rows], folds=len(parts), seed=seed,
                            kfold_when_ungrouped=True)
        fit_pool, fit_y = pool_oof[:, fit_rows], y[fit_rows]
        inner_figures = [figure(fit_y, cross_fit(c.choose, c.combiner, fit_pool, fit_y, inner), metric,
                                groups_of(fit_rows)) for c in candidates]
        best = candidates[int(np.argmax(inner_figures))]  # ties: the earlier candidate
        weights = np.asarray(best.choose(fit_pool, fit_y), dtype=np.float64)
        keep = weights > 0
        out[held_rows] = combine(best.combiner, pool_oof[keep][:, held_rows], weights=weights[keep])
        per_part.append(best.name)
    if np.isnan(out).any():
        raise InputError("parts", "must hold every row out exactly once", "rows never held out")
    name = max(figures, key=lambda k: (figures[k], -list(figures).index(k)))
    return FinalChoice(name, out, per_part, figures)
