"""What runs after a sweep: ensembles of the top trials, refits, one test scoring, the
saved ensemble, and the report.

`finish_sweep` is what ``seqsweep sweep run`` calls at the end of a sweep and what
``seqsweep results ensemble DIR`` runs on a finished one. In order:

1. the ``top_k`` best trials with status ``ok`` (fewer if fewer finished; it says so);
2. each ensemble method is built on the members' out-of-fold probabilities (each member's
   averaged over its CV seeds) and gets its cross-validated estimate (``oof_*``) from them;
   for ``weighted`` the greedy selection chooses its weights on those same probabilities,
   so its ``oof_*`` is optimistic, and its ``test_*`` is the honest number;
3. every member is refit on the whole train split (``refit_seeds`` seeds, averaged);
4. every member and every ensemble is scored once on the held-out test split;
5. ``ensembles.csv``, ``ensemble/`` (weights, ``ensemble.json``, ``test_predictions.npz``)
   and the report are written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.errors import ConfigError, StoreError
from features.store import FeatureStore
from results.ensemble import (
    METHODS,
    average_seeds,
    combine,
    fit_logloss_weights,
    greedy_selection,
    score,
)
from results.experiment import Experiment, Member, load_experiment
from results.refit import (
    TEST_METRICS,
    TestScores,
    load_split,
    refit_member,
    save_refits,
    score_on_test,
)
from search.leaderboard import write_csv_atomic

__all__ = ["EnsembleDef", "FinishSummary", "build_ensembles", "finish_sweep", "parse_methods",
           "ENSEMBLES_CSV", "ENSEMBLE_DIR", "ENSEMBLE_JSON", "TEST_PREDICTIONS", "DEFAULT_METHODS"]

ENSEMBLES_CSV = "ensembles.csv"
ENSEMBLE_DIR = "ensemble"
ENSEMBLE_JSON = "ensemble.json"
TEST_PREDICTIONS = "test_predictions.npz"
DEFAULT_METHODS = ("soft", "max", "vote", "weighted")
OOF_METRICS = ("accuracy", "balanced_accuracy", "f1_macro")
COLUMNS = ["kind", "method", "members", "weights", *[f"oof_{m}" for m in OOF_METRICS],
           *[f"test_{m}" for m in TEST_METRICS]]
_FORMAT = 1


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
        raise ConfigError("methods", f"must name at least one of {list(DEFAULT_METHODS)}", methods)
    for m in items:
        if m not in METHODS:
            raise ConfigError("methods", f"must be among {list(METHODS)}", m)
    return tuple(dict.fromkeys(items))


def build_ensembles(
    members: Sequence[Member],
    methods: Sequence[str],
    *,
    metric: str,
    fit_weights: bool = False,
    max_size: int = 25,
) -> list[EnsembleDef]:
    """Each method's members, weights and out-of-fold probabilities.

    ``soft``, ``max`` and ``vote`` use every member with equal weight; ``weighted`` keeps
    the members `greedy_selection` picked (weights = times picked / ensemble size);
    ``weighted_logloss`` (added when ``fit_weights``) uses `fit_logloss_weights`.
    """
    ids = [m.trial_id for m in members]
    oof = np.stack([average_seeds(m.oof) for m in members])  # (M, N, C)
    y = members[0].y
    todo = list(methods) + (["weighted_logloss"] if fit_weights and "weighted_logloss" not in methods else [])
    out = []
    for method in todo:
        if method in ("soft", "max", "vote"):
            weights = np.full(len(ids), 1.0 / len(ids))
        elif method == "weighted":
            weights = greedy_selection(oof, y, metric, max_size=max_size)
        elif method == "weighted_logloss":
            weights = fit_logloss_weights(oof, y)
        else:
            raise ConfigError("methods", f"must be among {list(METHODS)}", method)
        keep = weights > 0 if method.startswith("weighted") else np.ones(len(ids), dtype=bool)
        kept = weights[keep] / weights[keep].sum()
        proba = combine(method, oof[keep], weights=kept)
        out.append(EnsembleDef(method, [t for t, k in zip(ids, keep) if k], [float(w) for w in kept], proba))
    return out


@dataclass
class FinishSummary:
    """What `finish_sweep` did: the ``ensembles.csv`` table and where things went."""

    experiment_dir: str
    table: pd.DataFrame
    best_member: str
    best_ensemble: str
    report: str | None

    def __str__(self) -> str:
        shown = self.table.copy()
        for col in shown.columns:
            if col.startswith(("oof_", "test_")):
                shown[col] = shown[col].map(lambda v: f"{v:.3f}")
        text = (f"{ENSEMBLES_CSV} ({self.experiment_dir}):\n{shown.to_string(index=False)}\n"
                f"best member (by CV rank): trial {self.best_member}; best ensemble (by out-of-fold "
                f"estimate): {self.best_ensemble}")
        if self.report:
            text += f"\nreport: {self.report}"
        return text


def _weights_text(weights: Sequence[float]) -> str:
    return ";".join(f"{w:.6g}" for w in weights)


def _oof_scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {f"oof_{m}": score(y, proba, m) for m in OOF_METRICS}


def _table(members: Sequence[Member], defs: Sequence[EnsembleDef], scores: TestScores) -> pd.DataFrame:
    y = members[0].y
    rows = []
    for m in members:
        rows.append({"kind": "member", "method": "member", "members": m.trial_id, "weights": "1",
                     **_oof_scores(y, average_seeds(m.oof)), **scores.member_metrics[m.trial_id]})
    for d in defs:
        rows.append({"kind": "ensemble", "method": d.method, "members": ";".join(d.members),
                     "weights": _weights_text(d.weights), **_oof_scores(y, d.oof_proba),
                     **scores.ensemble_metrics[d.method]})
    return pd.DataFrame(rows, columns=COLUMNS)


def _feature_info(spec: dict[str, Any]) -> dict[str, Any]:
    manifest = FeatureStore(spec["store"]).manifest(spec["dataset"], spec["feature_set"])
    keep = ("kind", "params", "beat_sync", "segment_seconds", "source_type", "dim", "classes", "param_hash",
            "feature_set", "dataset")
    return {k: manifest.get(k) for k in keep}


def _check_train(train_ids: np.ndarray, member: Member, spec: dict[str, Any]) -> None:
    if list(np.asarray(train_ids, dtype=str)) != list(member.clip_ids):
        raise StoreError(f"{spec['store']}/{spec['dataset']}/{spec['feature_set']}",
                         f"the train split must be the one the sweep ran on (trial {member.trial_id}'s "
                         "out-of-fold rows); the store changed since: run a new sweep",
                         f"{len(train_ids)} train clips now, {len(member.clip_ids)} then")


def _save(exp: Experiment, folder: str, refits: list, defs: Sequence[EnsembleDef], members: Sequence[Member],
          scores: TestScores, classes: list[str], *, best: dict[str, str]) -> None:
    """Weights, then ``test_predictions.npz``, then ``ensemble.json`` (the commit point); old
    weight files no entry names are removed last."""
    entries = save_refits(refits, folder)
    by_id = {m.trial_id: m for m in members}
    for e in entries:
        e["rank"] = by_id[e["trial_id"]].rank
    methods = [d.method for d in defs]
    tmp = os.path.join(folder, f"{TEST_PREDICTIONS}.tmp.npz")
    np.savez_compressed(
        tmp, y=scores.y, clip_ids=scores.clip_ids, classes=np.asarray(classes, dtype=str),
        member_ids=np.asarray([m.trial_id for m in members], dtype=str),
        member_proba=np.stack([scores.member_proba[m.trial_id] for m in members]).astype(np.float32),
        methods=np.asarray(methods, dtype=str),
        ensemble_proba=np.stack([scores.ensemble_proba[m] for m in methods]).astype(np.float32))
    os.replace(tmp, os.path.join(folder, TEST_PREDICTIONS))
    info = {
        "format": _FORMAT, "experiment": exp.path, "metric": exp.metric, "classes": classes,
        "store": exp.spec["store"], "dataset": exp.spec["dataset"], "feature_set": exp.spec["feature_set"],
        "features": _feature_info(exp.spec), "best": best, "members": entries,
        "methods": {d.method: {"members": d.members, "weights": d.weights} for d in defs},
    }
    path = os.path.join(folder, ENSEMBLE_JSON)
    with open(f"{path}.tmp", "w") as fh:
        json.dump(info, fh, indent=2)
    os.replace(f"{path}.tmp", path)
    wanted = {f for e in entries for f in e["files"]}
    for name in os.listdir(folder):
        if name.endswith((".pt", ".npz")) and name != TEST_PREDICTIONS and name not in wanted:
            os.remove(os.path.join(folder, name))


def finish_sweep(
    experiment_dir: str,
    *,
    top_k: int | None = None,
    methods: str | Sequence[str] | None = None,
    echo: Callable[[str], Any] = print,
    fit_weights: bool | None = None,
    refit_seeds: int | None = None,
    report: bool = True,
) -> FinishSummary:
    """Ensembles of the top trials of a finished sweep, refit and scored once on test.

    Parameters
    ----------
    experiment_dir : the sweep's ``<storage>/<name>`` folder.
    top_k, methods, fit_weights, refit_seeds : override the spec's ``ensemble`` section
        (defaults: 5, soft/max/vote/weighted, false, 1).
    echo : where progress lines go.
    report : also write the report (`results.report.write_report`).

    Writes ``ensembles.csv``, ``ensemble/`` and (with ``report``) ``report/``; returns a
    `FinishSummary`.
    """
    exp = load_experiment(experiment_dir)
    conf = exp.ensemble_spec
    top_k = int(top_k if top_k is not None else conf.get("top_k", 5))
    if top_k < 1:
        raise ConfigError("top_k", "must be >= 1", top_k)
    chosen = parse_methods(methods) or tuple(conf.get("methods") or DEFAULT_METHODS)
    fit_weights = bool(conf.get("fit_weights", False) if fit_weights is None else fit_weights)
    refit_seeds = int(refit_seeds if refit_seeds is not None else conf.get("refit_seeds", 1))
    if refit_seeds < 1:
        raise ConfigError("refit_seeds", "must be >= 1", refit_seeds)

    members = exp.top_members(top_k, echo=echo)
    defs = build_ensembles(members, chosen, metric=exp.metric, fit_weights=fit_weights)
    train = load_split(exp.spec, "train")
    _check_train(train.clip_ids, members[0], exp.spec)
    base = int((exp.spec.get("search") or {}).get("seed", 0))
    seeds = [base + s for s in range(refit_seeds)]
    echo(f"refitting {len(members)} members on {len(train)} train clips ({refit_seeds} seed"
         f"{'s' if refit_seeds > 1 else ''} each)")
    refits = []
    for m in members:
        r = refit_member(m, train, seeds=seeds)
        echo(f"  trial {m.trial_id} ({m.model}, rank {m.rank}) refit in {r.seconds:.1f} s")
        refits.append(r)
    test = load_split(exp.spec, "test")
    if len(test) == 0:
        echo("the test split is empty: test_* columns are NaN")
    scores = score_on_test(refits, {d.method: (d.members, d.weights) for d in defs}, test)

    table = _table(members, defs, scores)
    write_csv_atomic(table, os.path.join(exp.path, ENSEMBLES_CSV))
    oof_scores = [score(members[0].y, d.oof_proba, exp.metric) for d in defs]
    best_ensemble = defs[int(np.argmax(oof_scores))].method  # by out-of-fold estimate: test stays unseen
    _save(exp, os.path.join(exp.path, ENSEMBLE_DIR), refits, defs, members, scores, list(train.classes),
          best={"member": members[0].trial_id, "ensemble": best_ensemble})

    report_path = None
    if report:
        from results.report import write_report

        report_path = write_report(exp.path)
    return FinishSummary(exp.path, table, members[0].trial_id, best_ensemble, report_path)
