"""What runs after a sweep: ensembles of the top trials, each member deployed (as its bag
of CV fold models, or refit), one test scoring, the saved ensemble, and the report.

`finish_sweep` is what ``seqsweep sweep run`` calls at the end of a sweep and what
``seqsweep results ensemble DIR`` runs on a finished one. In order:

1. the ``top_k`` best trials with status ``ok`` (fewer if fewer finished; it says so);
2. each ensemble method is built on the members' out-of-fold probabilities (each member's
   averaged over its CV seeds: the out-of-fold estimate of its bag of fold models); its
   out-of-fold estimate (``oof_*``) is cross-fitted (`results.ensemble.cross_fit`): on each
   part of the train rows, the members (top-k of every finished trial) and the weighted
   methods' weights are chosen on the other parts, so no ``oof_*`` of an ensemble is scored
   on the rows that made its choices;
3. the best ensemble is chosen on those out-of-fold figures (per group for segmented
   feature sets), never on test;
4. every member is deployed (``ensemble.refit``: ``bag``, its CV fold models; or ``full``,
   refit on the whole train split with its CV seeds) and every member and every ensemble
   is scored once on the held-out test split;
5. ``ensembles.csv``, ``ensemble/`` (weights, ``ensemble.json``, ``test_predictions.npz``)
   and the report are written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.store import FeatureStore
from results.deploy import (
    FORMS,
    TestScores,
    deploy_and_predict,
    load_split,
    score_on_test,
)
from results.ensemble import (
    METHODS,
    average_seeds,
    cross_fit,
    fit_logloss_weights,
    greedy_selection,
    per_group,
    score,
    top_k_weights,
)
from results.experiment import Experiment, Member, load_experiment
from search.leaderboard import write_csv_atomic
from search.spec import ENSEMBLE_METHODS
from seqsweep import storage
from seqsweep.errors import ConfigError, StoreError
from seqsweep.layout import ENSEMBLE_DIR, ENSEMBLE_JSON, ENSEMBLES_CSV, TEST_PREDICTIONS
from trainables.metrics import METRICS

__all__ = ["EnsembleDef", "FinishSummary", "build_ensembles", "finish_sweep", "parse_methods"]

_FORMAT = 2


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


def _table(members: Sequence[Member], defs: Sequence[EnsembleDef], scores: TestScores, *, form: str,
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


def _save(exp: Experiment, folder: str, entries: list[dict[str, Any]], defs: Sequence[EnsembleDef],
          members: Sequence[Member], scores: TestScores, classes: list[str], *, best: dict[str, str]) -> None:
    """The members' weights are written (by their tasks); then ``test_predictions.npz``, then
    ``ensemble.json`` (the commit point); old weight files no entry names are removed last."""
    import io

    by_id = {m.trial_id: m for m in members}
    for e in entries:
        e["rank"] = by_id[e["trial_id"]].rank
    methods = [d.method for d in defs]
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, y=scores.y, clip_ids=scores.clip_ids, classes=np.asarray(classes, dtype=str),
        member_ids=np.asarray([m.trial_id for m in members], dtype=str),
        member_proba=np.stack([scores.member_proba[m.trial_id] for m in members]).astype(np.float32),
        methods=np.asarray(methods, dtype=str),
        ensemble_proba=np.stack([scores.ensemble_proba[m] for m in methods]).astype(np.float32))
    storage.write_bytes_atomic(buffer.getvalue(), storage.join(folder, TEST_PREDICTIONS))
    info = {
        "format": _FORMAT, "experiment": exp.path, "metric": exp.metric, "classes": classes,
        "store": exp.spec["store"], "dataset": exp.spec["dataset"], "feature_set": exp.spec["feature_set"],
        "features": _feature_info(exp.spec), "best": best, "members": entries,
        "methods": {d.method: {"members": d.members, "weights": d.weights} for d in defs},
    }
    storage.write_bytes_atomic(json.dumps(info, indent=2).encode(), storage.join(folder, ENSEMBLE_JSON))
    wanted = {f for e in entries for f in e["files"]}
    for name in storage.list_names(folder):
        if name.endswith((".pt", ".npz")) and name != TEST_PREDICTIONS and name not in wanted:
            storage.remove(storage.join(folder, name))


def _deploy_on_ray(members: Sequence[Member], *, form: str, test: Any, train: Any, seeds: list[int],
                   folder: str, resources: dict[str, Any], echo: Callable[[str], Any]
                   ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """`deploy_and_predict` for every member as Ray tasks with the sweep's per-trial
    resources, all at once; the driver waits with a progress bar and keeps the answers in
    rank order."""
    import ray
    from tqdm.auto import tqdm

    from seqsweep.ray_runtime import ensure_ray

    ensure_ray()
    cpus, gpus = float(resources.get("cpus", 1.0)), float(resources.get("gpus", 0.0))
    task = ray.remote(deploy_and_predict).options(num_cpus=cpus, num_gpus=gpus, max_retries=2)
    test_ref = ray.put(test)
    train_ref = ray.put(train) if train is not None else None
    refs = {task.remote(m, form=form, test=test_ref, folder=folder, train=train_ref, seeds=seeds): m
            for m in members}
    done: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
    pending = list(refs)
    what = "bags of fold models" if form == "bag" else "refits"
    with tqdm(total=len(pending), desc=f"members on test ({what})", unit="member", leave=False) as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            member = refs[ready[0]]
            entry, proba, seconds = ray.get(ready[0])
            done[member.trial_id] = (entry, proba)
            bar.update(1)
            echo(f"  trial {member.trial_id} ({member.model}, rank {member.rank}) deployed and predicted "
                 f"in {seconds:.1f} s")
    entries = [done[m.trial_id][0] for m in members]
    return entries, {m.trial_id: done[m.trial_id][1] for m in members}


def _segmented(members: Sequence[Member]) -> bool:
    """Whether some group holds several clips (segments of one source file)."""
    groups = members[0].groups
    return len(set(groups.tolist())) < len(groups)


def finish_sweep(
    experiment_dir: str,
    *,
    top_k: int | None = None,
    methods: str | Sequence[str] | None = None,
    echo: Callable[[str], Any] = print,
    fit_weights: bool | None = None,
    refit: str | None = None,
    report: bool = True,
) -> FinishSummary:
    """Ensembles of the top trials of a finished sweep, deployed and scored once on test.

    Parameters
    ----------
    experiment_dir : the sweep's ``<storage>/<name>`` folder.
    top_k, methods, fit_weights, refit : override the spec's ``ensemble`` section
        (defaults: 5, soft/max/vote/weighted, false, ``bag``).
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
    chosen = parse_methods(methods) or tuple(conf.get("methods") or ENSEMBLE_METHODS)
    fit_weights = bool(conf.get("fit_weights", False) if fit_weights is None else fit_weights)
    form = str(refit if refit is not None else conf.get("refit", "bag"))
    if form not in FORMS:
        raise ConfigError("refit", f"must be one of {list(FORMS)}", form)
    cv = exp.spec.get("cv") or {}
    base = int((exp.spec.get("search") or {}).get("seed", 0))

    pool = exp.top_members(None)  # every finished trial: the cross-fitted estimates choose among them
    if len(pool) < top_k:
        echo(f"top_k is {top_k} but only {len(pool)} trials finished ok: using those {len(pool)}")
    members = pool[:top_k]
    defs = build_ensembles(pool, chosen, top_k=top_k, metric=exp.metric, fit_weights=fit_weights,
                           parts=weight_parts(pool, folds=int(cv.get("folds", 5)), seed=base))
    groups = members[0].groups if _segmented(members) else None
    train, seeds = None, [base + s for s in range(int(cv.get("seeds", 1)))]
    if form == "bag":
        echo(f"deploying {len(members)} members as their bags of CV fold models, as Ray tasks")
    else:
        train = load_split(exp.spec, "train")
        _check_train(train.clip_ids, members[0], exp.spec)
        echo(f"refitting {len(members)} members on {len(train)} train clips ({len(seeds)} seeds each), as Ray tasks")
    test = load_split(exp.spec, "test")
    if len(test) == 0:
        echo("the test split is empty: test_* columns are NaN")
    folder = storage.join(exp.path, ENSEMBLE_DIR)
    entries, member_proba = _deploy_on_ray(members, form=form, test=test, train=train, seeds=seeds, folder=folder,
                                           resources=exp.spec.get("resources") or {}, echo=echo)
    scores = score_on_test(member_proba, {d.method: (d.members, d.weights) for d in defs}, test,
                           by_group=groups is not None)

    table = _table(members, defs, scores, form=form, groups=groups)
    write_csv_atomic(table, storage.join(exp.path, ENSEMBLES_CSV))
    # chosen on the out-of-fold estimates (per group when segmented): the test split stays unseen
    y = members[0].y
    oof_figures = [score(*(per_group(y, d.oof_proba, groups) if groups is not None else (y, d.oof_proba)),
                         exp.metric) for d in defs]
    best_ensemble = defs[int(np.argmax(oof_figures))].method
    _save(exp, folder, entries, defs, members, scores, list(test.classes),
          best={"member": members[0].trial_id, "ensemble": best_ensemble})

    report_path = None
    if report:
        from results.report import write_report

        report_path = write_report(exp.path)
    n_test = len(set(np.asarray(test.groups, dtype=str).tolist())) if groups is not None else len(test)
    return FinishSummary(exp.path, table, members[0].trial_id, best_ensemble, report_path,
                         unit="group" if groups is not None else "clip", n_test=n_test)
