"""What `results.pipeline.finish_sweep` hands back and writes as ``ensembles.csv``: one row
per deployed member, per ensemble and for the final choice, with its out-of-fold
(``oof_*``) and test (``test_*``) figures.

``estimate`` says what each out-of-fold figure is: ``cross-fitted`` (the rank-1
member's and every ensemble's: the choices behind it made on other rows), ``nested`` (the
final choice's: the choice among the candidates cross-fitted too) or ``as ranked`` (the
other members': chosen by the CV ranking on the same rows, so the best of them read high).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from results.build import EnsembleDef
from results.choice import FinalChoice
from results.deploy import TestScores
from results.ensemble import BEST_MEMBER, average_seeds, per_group, score
from results.experiment import Member
from seqsweep.layout import ENSEMBLES_CSV, TEST_LOOKS
from trainables.training.metrics import METRICS

__all__ = ["FinishSummary", "ensembles_table", "look_rows"]


@dataclass
class FinishSummary:
    """What `finish_sweep` did: the ``ensembles.csv`` table, the final choice and where things went.

    ``unit`` is ``"group"`` for a segmented feature set (the headline figures are per
    source group, the unit ``predict`` answers in) and ``"clip"`` otherwise; the headline
    figures are in the sweep's ``metric``.
    """

    experiment_dir: str
    table: pd.DataFrame
    best_member: str
    best_ensemble: str
    report: str | None
    unit: str = "clip"
    n_test: int = 0
    metric: str = "balanced_accuracy"
    final: str = ""
    per_part: list[str] = field(default_factory=list)
    n_trials: int = 0
    looks_before: int = 0

    def headline(self, row: pd.Series) -> tuple[float, float]:
        """(out-of-fold, test) ``metric`` of one ``ensembles.csv`` row in the headline unit."""
        unit = "group_" if self.unit == "group" else ""
        return float(row[f"oof_{unit}{self.metric}"]), float(row[f"test_{unit}{self.metric}"])

    def final_row(self) -> pd.Series | None:
        rows = self.table[self.table["kind"] == "final"]
        return None if rows.empty else rows.iloc[0]

    def agreement(self) -> str:
        """The final choice's out-of-fold and test ``metric``, with the 95% interval (Wilson)
        that a test split of this size gives around the test figure (exact for accuracy, a
        proportion; an approximation for the other metrics)."""
        from scipy.stats import binomtest

        row = self.final_row()
        if row is None or self.n_test == 0:
            return ""
        oof, test = self.headline(row)
        interval = binomtest(round(test * self.n_test), self.n_test).proportion_ci(method="wilson")
        where = "inside it" if interval.low <= oof <= interval.high else (
            "above it" if oof > interval.high else "below it")
        approx = "" if self.metric == "accuracy" else ", as for a proportion"
        return (f"final choice {self.final}: out-of-fold {self.metric} {oof:.3f}, test {test:.3f}; with {self.n_test} "
                f"test {'files' if self.unit == 'group' else 'clips'} the test figure's 95% interval is "
                f"{interval.low:.3f}-{interval.high:.3f} (Wilson{approx}); the out-of-fold figure lies {where}")

    def __str__(self) -> str:
        shown = self.table.copy()
        for col in shown.columns:
            if col.startswith(("oof_", "test_")):
                shown[col] = shown[col].map(lambda v: f"{v:.3f}")
        unit = "groups (source files)" if self.unit == "group" else "clips"
        text = (f"{ENSEMBLES_CSV} ({self.experiment_dir}):\n{shown.to_string(index=False)}\n"
                f"oof_*: out-of-fold on the train split (estimate says how); test_*: once on the held-out test "
                f"split ({self.n_test} {unit})\n"
                f"best member by CV rank: trial {self.best_member}, the best of {self.n_trials} finished trials, so its "
                f"leaderboard objective is a maximum of {self.n_trials} noisy figures; its row here is cross-fitted "
                f"over that choice")
        row = self.final_row()
        if row is not None:
            oof, test = self.headline(row)
            text += (f"\nwhat seqsweep hands over (predict's default): {self.final}, chosen among the rank-1 member "
                     f"and every ensemble by cross-fitted out-of-fold {self.metric}; its one out-of-fold figure, "
                     f"with the choice itself cross-fitted (the parts chose {', '.join(self.per_part)}): {oof:.3f}; "
                     f"test {test:.3f}")
        if self.agreement():
            text += f"\n{self.agreement()}"
        if self.looks_before:
            text += (f"\n{self.looks_before} earlier looks at this test split are in {TEST_LOOKS}: read these test "
                     "figures as looked at before")
        if self.report:
            text += f"\nreport: {self.report}"
        return text


def _weights_text(weights: Sequence[float]) -> str:
    return ";".join(f"{w:.6g}" for w in weights)


def _oof_scores(y: np.ndarray, proba: np.ndarray, groups: np.ndarray | None) -> dict[str, float]:
    out = {f"oof_{m}": score(y, proba, m) for m in METRICS}
    if groups is not None:
        group_y, group_proba = per_group(y, proba, groups)
        out.update({f"oof_group_{m}": score(group_y, group_proba, m) for m in METRICS})
    return out


def _columns(by_group: bool) -> list[str]:
    units = ["", "group_"] if by_group else [""]
    return ["kind", "method", "form", "members", "weights", "estimate",
            *[f"oof_{u}{m}" for u in units for m in METRICS],
            *[f"test_{u}{m}" for u in units for m in METRICS]]


def ensembles_table(members: Sequence[Member], defs: Sequence[EnsembleDef], final: FinalChoice,
                    scores: TestScores, *, form: str, groups: np.ndarray | None) -> pd.DataFrame:
    """The rows of ``ensembles.csv``: each deployed member (the rank-1 one as ``best_member``,
    its figure cross-fitted over the choice of member), each ensemble, and the final choice."""
    y = members[0].y
    by_name = {d.method: d for d in defs}
    best = by_name[BEST_MEMBER].members[0]
    rows: list[dict[str, Any]] = []
    for m in members:
        if m.trial_id == best:
            oof, method, how = by_name[BEST_MEMBER].oof_proba, BEST_MEMBER, "cross-fitted"
        else:
            oof, method, how = average_seeds(m.oof), "member", "as ranked"
        rows.append({"kind": "member", "method": method, "form": form, "members": m.trial_id, "weights": "1",
                     "estimate": how, **_oof_scores(y, oof, groups), **scores.member_metrics[m.trial_id]})
    for d in defs:
        if d.method != BEST_MEMBER:
            rows.append({"kind": "ensemble", "method": d.method, "form": form, "members": ";".join(d.members),
                         "weights": _weights_text(d.weights), "estimate": "cross-fitted",
                         **_oof_scores(y, d.oof_proba, groups), **scores.ensemble_metrics[d.method]})
    chosen = by_name[final.name]
    rows.append({"kind": "final", "method": final.name, "form": form, "members": ";".join(chosen.members),
                 "weights": _weights_text(chosen.weights), "estimate": "nested",
                 **_oof_scores(y, final.oof_proba, groups), **scores.ensemble_metrics[final.name]})
    return pd.DataFrame(rows, columns=_columns(groups is not None))


def look_rows(table: pd.DataFrame, metric: str, unit: str) -> list[dict[str, Any]]:
    """One ledger row (`results.looks.record_looks`) per test figure of ``ensembles.csv``:
    what was scored and its test ``metric`` in the headline unit."""
    column = f"test_{'group_' if unit == 'group' else ''}{metric}"
    return [{"scored": f"{row['kind']} {row['method']} ({row['members']})", "figure": row[column]}
            for _, row in table.iterrows()]
