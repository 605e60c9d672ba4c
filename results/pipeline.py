"""What runs after a sweep: the candidates (the rank-1 member and every ensemble), one
honest final choice among them, each member deployed (as its bag of CV fold models, or
refit), one test scoring recorded in the ledger, the saved choice, and the report.

`finish_sweep` is what ``seqsweep sweep run`` calls at the end of a sweep and what
``seqsweep results ensemble DIR`` runs on a finished one. In order:

1. the pool: every trial with status ``ok``, best CV rank first;
2. the candidates are built on its out-of-fold probabilities (each trial's averaged over
   its CV seeds: the out-of-fold estimate of its bag of fold models), each cross-fitted
   (`results.build.build_ensembles`): the rank-1 member, the top ``top_k``'s soft / max /
   vote, greedy selection over the whole library (``weighted``);
3. the final choice (`results.choice.final_choice`): the candidate with the best
   cross-fitted figure, with one out-of-fold figure for that choice, cross-fitted one
   level up; never the test split;
4. every member of a candidate is deployed (``ensemble.refit``: ``bag``, its CV fold
   models; or ``full``, refit on the whole train split from the seeds its CV fits started
   from) and every member and candidate is scored once on the held-out test split; each
   figure is a row of the ledger ``test_looks.csv`` (`results.looks`), and a rerun says
   how many looks came before and keeps the earlier ``ensembles.csv``;
5. ``ensembles.csv`` (`results.summary`), ``ensemble/`` (weights, ``ensemble.json``,
   ``test_predictions.npz``) and the report are written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from features.store import FeatureStore
from results.build import EnsembleDef, build_ensembles, pool_probabilities, weight_parts
from results.choice import final_choice
from results.deploy import TestScores, deploy_and_predict, load_split, score_on_test
from results.ensemble import BEST_MEMBER, DEFAULT_METHODS, parse_methods
from results.ensemble.spec import EnsembleSpec, ResultsSpec
from results.experiment import Experiment, Member, load_experiment
from results.looks import Looks, command_line, keep_earlier_table, read_looks, record_looks
from results.report import write_report
from results.summary import FinishSummary, ensembles_table, look_rows
from search.spec import ResourceSpec
from seqsweep import storage
from seqsweep.errors import StoreError
from seqsweep.layout import ENSEMBLE_DIR, ENSEMBLE_JSON, ENSEMBLES_CSV, TEST_PREDICTIONS
from seqsweep.validation import config_error

__all__ = ["finish_sweep"]

_FORMAT = 3  # 3: best.final, and each method's combiner (best_member is soft over one member)


def _feature_info(spec: ResultsSpec) -> dict[str, Any]:
    manifest = FeatureStore(spec.store).manifest(spec.dataset, spec.feature_set)
    keep = ("kind", "params", "beat_sync", "segment_seconds", "source_type", "dim", "classes", "param_hash",
            "feature_set", "dataset")
    return {k: manifest.get(k) for k in keep}


def _check_train(train_ids: np.ndarray, member: Member, spec: ResultsSpec) -> None:
    if list(np.asarray(train_ids, dtype=str)) != list(member.clip_ids):
        raise StoreError(f"{spec.store}/{spec.dataset}/{spec.feature_set}",
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
        "store": exp.spec.store, "dataset": exp.spec.dataset, "feature_set": exp.spec.feature_set,
        "features": _feature_info(exp.spec), "best": best, "members": entries,
        "methods": {d.method: {"combiner": d.combiner, "members": d.members, "weights": d.weights} for d in defs},
    }
    storage.write_bytes_atomic(json.dumps(info, indent=2).encode(), storage.join(folder, ENSEMBLE_JSON))
    wanted = {f for e in entries for f in e["files"]}
    for name in storage.list_names(folder):
        if name.endswith((".pt", ".npz")) and name != TEST_PREDICTIONS and name not in wanted:
            storage.remove(storage.join(folder, name))


def _deploy_on_ray(members: Sequence[Member], *, form: str, test: Any, train: Any, folder: str,
                   resources: ResourceSpec, echo: Callable[[str], Any]
                   ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """`deploy_and_predict` for every member as Ray tasks with the sweep's per-trial
    resources, all at once; the driver waits with a progress bar and keeps the answers in
    rank order."""
    import ray
    from tqdm.auto import tqdm

    from seqsweep.ray_runtime import ensure_ray

    ensure_ray()
    task = ray.remote(deploy_and_predict)
    settings = {"num_cpus": resources.cpus, "num_gpus": resources.gpus, "max_retries": 2}
    test_ref = ray.put(test)
    train_ref = ray.put(train) if train is not None else None
    # each task named for the dashboard: "deploy lstm trial 3f2a1_00004 (bag)"
    refs = {task.options(**settings, name=f"deploy {m.model} trial {m.trial_id} ({form})").remote(
                m, form=form, test=test_ref, folder=folder, train=train_ref): m
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


def _ensemble_settings(conf: EnsembleSpec, **overrides: Any) -> EnsembleSpec:
    """The spec's ``ensemble`` section with a Python caller's ``overrides`` (None: the spec's),
    checked by the section's own fields."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return conf
    try:
        return EnsembleSpec.model_validate({**conf.model_dump(), **overrides})
    except ValidationError as exc:
        raise config_error(exc, model=EnsembleSpec) from None


def finish_sweep(
    experiment_dir: str,
    *,
    top_k: int | None = None,
    methods: str | Sequence[str] | None = None,
    echo: Callable[[str], Any] = print,
    fit_weights: bool | None = None,
    refit: str | None = None,
    max_size: int | None = None,
    report: bool = True,
    command: str | None = None,
) -> FinishSummary:
    """The candidates of a finished sweep, one honest final choice, deployed and scored once
    on test.

    Parameters
    ----------
    experiment_dir : the sweep's ``<storage>/<name>`` folder.
    top_k, methods, fit_weights, refit, max_size : override the spec's ``ensemble`` section
        (defaults: 5, soft/max/vote/weighted, false, ``bag``, 25).
    echo : where progress lines go.
    report : also write the report (`results.report.write_report`).
    command : what the ledger records as the command (default: this process's command line).

    Writes ``ensembles.csv`` (the earlier one kept as ``ensembles_run<n>.csv``), appends to
    ``test_looks.csv``, writes ``ensemble/`` and (with ``report``) ``report/``; returns a
    `FinishSummary`.
    """
    exp = load_experiment(experiment_dir)
    cv, base = exp.spec.cv, exp.spec.search.seed
    conf = _ensemble_settings(exp.spec.ensemble, top_k=top_k, max_size=max_size, fit_weights=fit_weights,
                              refit=refit)
    top_k, max_size, fit_weights, form = conf.top_k, conf.max_size, conf.fit_weights, conf.refit
    chosen = parse_methods(methods) or tuple(conf.methods or DEFAULT_METHODS)

    pool = exp.top_members(None)  # every finished trial: the library the candidates choose from
    if len(pool) < top_k:
        echo(f"top_k is {top_k} but only {len(pool)} trials finished ok: using those {len(pool)}")
    parts = weight_parts(pool, folds=cv.folds, seed=base)
    defs, candidates = build_ensembles(pool, chosen, top_k=top_k, metric=exp.metric, fit_weights=fit_weights,
                                       parts=parts, max_size=max_size)
    groups = pool[0].groups if _segmented(pool) else None
    final = final_choice(candidates, defs, pool_probabilities(pool), pool[0].y, parts, metric=exp.metric,
                         split_groups=pool[0].groups, score_groups=groups, seed=base)
    used = {t for d in defs for t in d.members}
    members = [m for m in pool if m.trial_id in used]  # rank order
    echo(f"final choice: {final.name} (best cross-fitted out-of-fold {exp.metric} of {len(defs)} candidates; "
         f"the parts chose {', '.join(final.per_part)})")

    looks = Looks(read_looks(exp.path))
    if looks.runs:
        echo(str(looks))
        kept = keep_earlier_table(exp.path, looks.runs)
        if kept:
            echo(f"the earlier {ENSEMBLES_CSV} is kept as {kept}")
    train = None
    if form == "bag":
        echo(f"deploying {len(members)} members as their bags of CV fold models, as Ray tasks")
    else:
        train = load_split(exp.spec, "train")
        _check_train(train.clip_ids, members[0], exp.spec)
        echo(f"refitting {len(members)} members on {len(train)} train clips ({cv.seeds} seeds each, the ones "
             "their CV fits started from), as Ray tasks")
    test = load_split(exp.spec, "test")
    if len(test) == 0:
        echo("the test split is empty: test_* columns are NaN")
    folder = storage.join(exp.path, ENSEMBLE_DIR)
    entries, member_proba = _deploy_on_ray(members, form=form, test=test, train=train, folder=folder,
                                           resources=exp.spec.resources, echo=echo)
    scores = score_on_test(member_proba, {d.method: (d.combiner, d.members, d.weights) for d in defs
                                          if d.method != BEST_MEMBER}, test, by_group=groups is not None)
    rank_one = pool[0].trial_id  # best_member is that member: its one scoring serves both rows
    scores.ensemble_proba[BEST_MEMBER] = scores.member_proba[rank_one]
    scores.ensemble_metrics[BEST_MEMBER] = scores.member_metrics[rank_one]

    table = ensembles_table(members, defs, final, scores, form=form, groups=groups)
    storage.write_csv_atomic(table, storage.join(exp.path, ENSEMBLES_CSV))
    unit = "group" if groups is not None else "clip"
    n_test = len(set(np.asarray(test.groups, dtype=str).tolist())) if groups is not None else len(test)
    settings = json.dumps({"top_k": top_k, "methods": list(chosen), "fit_weights": fit_weights, "refit": form,
                           "max_size": max_size}, sort_keys=True)
    record_looks(exp.path, look_rows(table, exp.metric, unit), run=looks.runs + 1, command=command or command_line(),
                 settings=settings, metric=exp.metric, n_test=n_test, unit=unit)
    ensembles = [d for d in defs if d.method != BEST_MEMBER]
    best_ensemble = max(ensembles, key=lambda d: final.figures[d.method]).method if ensembles else BEST_MEMBER
    _save(exp, folder, entries, defs, members, scores, list(test.classes),
          best={"member": rank_one, "ensemble": best_ensemble, "final": final.name})

    report_path = write_report(exp.path) if report else None
    return FinishSummary(exp.path, table, rank_one, best_ensemble, report_path, unit=unit, n_test=n_test,
                         metric=exp.metric, final=final.name, per_part=final.per_part, n_trials=len(pool),
                         looks_before=looks.rows)
