"""What `results.pipeline.finish_sweep` hands back and writes as ``ensembles.csv``: one row
per member and per ensemble, its out-of-fold (``oof_*``) and test (``test_*``) figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from results.build import EnsembleDef
from results.deploy import TestScores
from results.ensemble import average_seeds, per_group, score
from results.experiment import Member
from seqsweep.layout import ENSEMBLES_CSV
from trainables.metrics import METRICS

__all__ = ["FinishSummary", "ensembles_table"]


@dataclass
class FinishSummary:
    """What `finish_sweep` did: the ``ensembles.csv`` table and where things went.

    ``unit`` is ``"group"`` for a segmented feature set (the headline figures are per
    source group, the unit ``predict`` answers in) and ``"clip"`` otherwise.
    """

    experiment_dir: str
    table: pd.DataFrame
    best_member: str
    best_ensemble: str
    report: str | None
    unit: str = "clip"
    n_test: int = 0
    metric: str = "balanced_accuracy"

    def headline(self, row: pd.Series) -> tuple[float, float]:
        """(out-of-fold, test) accuracy of one ``ensembles.csv`` row in the headline unit."""
        unit = "group_" if self.unit == "group" else ""
        return float(row[f"oof_{unit}accuracy"]), float(row[f"test_{unit}accuracy"])

    def agreement(self) -> str:
        """The chosen ensemble's out-of-fold and test accuracy, with the 95% interval (Wilson)
        that a test split of this size gives around the test figure."""
        from scipy.stats import binomtest

        ensembles = self.table[self.table["method"] == self.best_ensemble]
        if ensembles.empty or self.n_test == 0:
            return ""
        oof, test = self.headline(ensembles.iloc[0])
        interval = binomtest(round(test * self.n_test), self.n_test).proportion_ci(method="wilson")
        where = "inside it" if interval.low <= oof <= interval.high else (
            "above it" if oof > interval.high else "below it")
        return (f"{self.best_ensemble}: out-of-fold accuracy {oof:.3f}, test {test:.3f}; with {self.n_test} test "
                f"{'files' if self.unit == 'group' else 'clips'} the test figure's 95% interval is "
                f"{interval.low:.3f}-{interval.high:.3f} (Wilson); the out-of-fold figure lies {where}")

    def __str__(self) -> str:
        shown = self.table.copy()
        for col in shown.columns:
            if col.startswith(("oof_", "test_")):
                shown[col] = shown[col].map(lambda v: f"{v:.3f}")
        unit = "groups (source files)" if self.unit == "group" else "clips"
        text = (f"{ENSEMBLES_CSV} ({self.experiment_dir}):\n{shown.to_string(index=False)}\n"
                f"oof_*: out-of-fold on the train split; test_*: once on the held-out test split "
                f"({self.n_test} {unit})\n"
                f"best member (by CV rank): trial {self.best_member}; best ensemble (by out-of-fold "
                f"estimate): {self.best_ensemble}")
        if self.agreement():
            text += f"\n{self.agreement()}"
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
    return ["kind", "method", "form", "members", "weights",
            *[f"oof_{u}{m}" for u in units for m in METRICS],
            *[f"test_{u}{m}" for u in units for m in METRICS]]


def ensembles_table(members: Sequence[Member], defs: Sequence[EnsembleDef], scores: TestScores, *, form: str,
           groups: np.ndarray | None) -> pd.DataFrame:
    y = members[0].y
    rows = []
    for m in members:
        rows.append({"kind": "member", "method": "member", "form": form, "members": m.trial_id, "weights": "1",
                     **_oof_scores(y, average_seeds(m.oof), groups), **scores.member_metrics[m.trial_id]})
    for d in defs:
        rows.append({"kind": "ensemble", "method": d.method, "form": form, "members": ";".join(d.members),
                     "weights": _weights_text(d.weights), **_oof_scores(y, d.oof_proba, groups),
                     **scores.ensemble_metrics[d.method]})
    return pd.DataFrame(rows, columns=_columns(groups is not None))
