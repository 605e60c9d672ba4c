"""The Ray Tune trial: one configuration, scored by repeated-seed cross-validation.

`cv_trial` is a plain function ``(config, *, data, plan, setup)``; the sweep binds the
data, the fold plan and the settings once with `tune.with_parameters`, so they travel
through Ray's object store and no trial reads Parquet; a split too big for the object
store is bound as a `NodeCacheSource` instead, and each node's first trial copies it from
the store into one memory-mapped file that every trial on the node reads.

It reports after every (seed, fold) fit: the running objective (what ASHA compares) and
that fit's own metrics (``fit_*``, which the long leaderboard and the Wilcoxon scheduler
read). The last report carries a checkpoint with the out-of-fold probabilities
(``oof.npz``), every fit's metrics and learning curve (``fits.json``) and every fit's
weights (``fold_models/seed<s>_fold<k>.pt|.npz``): the trial's bag of fold models, which
is what an ensemble deploys, so its out-of-fold estimate describes exactly that bag.

The folds are the plan's, shared by every trial; each fit starts from the trial's own
seed, `trainables.trial.folds.init_seed` of its Ray Tune trial id and the plan seed (the same for
a resumed trial), recorded per fit as ``init_seed`` (``fits.json``, and ``fit_init_seed``
in its report, which the long leaderboard keeps).

With ``train.fused`` (``auto``: where `trainables.fused.many.use_fused` measured it faster) the
fits are trained as one stacked model by `trainables.fused.many.fit_many`, each replica exactly
as its sequential fit but for dropout's random stream; with a scheduler, one seed's folds
at a time, so it still sees results between them.

A fit that raises (a NaN loss, out of GPU memory, a bad config) ends the trial with
status `TrialStatus.FAILED` (``"failed"``), its ``error`` and a NaN objective, so Optuna marks it FAIL
(`search.searcher`) and the sweep goes on; such errors are deterministic and are not
retried. A worker that dies is retried by Ray Tune (`FailureConfig`).
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from features.sequences import SequenceSet
from features.store.node_cache import NodeCacheSource
from seqsweep.errors import ConfigError
from seqsweep.layout import (
    ERROR,
    FIT_PREFIX,
    FITS_DONE,
    FITS_FILE,
    FITS_TOTAL,
    FOLD_COLUMNS,
    FOLD_MODELS,
    MODEL,
    N_PARAMS,
    OBJECTIVE,
    OOF_FILE,
    PREDICT_COST,
    STATUS,
    TrialStatus,
)
from trainables.training.metrics import METRICS
from trainables.trial.folds import CVPlan, init_seed, summarize

__all__ = ["TrialSetup", "cv_trial", "flat_config"]


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a sweep shares besides data and folds."""

    metric: str = "balanced_accuracy"
    objective: str = "mean"
    std_weight: float = 1.0
    train: dict = field(default_factory=dict)  # fixed TrainConfig keys
    threads: int = 1  # torch threads: the trial's CPU share
    fused: str | bool = "auto"  # train the seeds x folds fits as one fused model (trainables.fused.many)
    fuse_by_seed: bool = False  # with a scheduler: fuse one seed's folds at a time, reporting between

    def objective_of(self, values: list[float]) -> float:
        s = summarize(values)
        if self.objective == "mean_minus_std":
            return s["mean"] - self.std_weight * s["std"]
        return s["mean"]


def _summary(setup: TrialSetup, fits: list[dict[str, Any]], total: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in METRICS:
        for stat, value in summarize([f[m] for f in fits]).items():
            out[f"{m}_{stat}"] = value
    out[OBJECTIVE] = setup.objective_of([f[setup.metric] for f in fits]) if fits else float("nan")
    out[FITS_DONE] = len(fits)
    out[FITS_TOTAL] = total
    out[N_PARAMS] = int(fits[-1][N_PARAMS]) if fits else 0
    out.update(_costs(fits, total))
    return out


def _costs(fits: list[dict[str, Any]], total: int) -> dict[str, float]:
    """What the trial's bag costs: seconds per fit and in all, and prediction seconds per
    1,000 clips of the bag, which predicts each clip with every one of its ``total`` fold
    models of one architecture: the fastest fit's validation prediction per clip (a
    worker's first prediction pays one-off warm-up, which a deployed model pays once),
    times ``total``. While the trial runs, over the fits so far. NaN before the first fit."""
    if not fits:
        return {"fit_seconds_mean": float("nan"), "fit_seconds_total": float("nan"),
                PREDICT_COST: float("nan")}
    per_clip = min(f["predict_seconds"] / max(f["valid_size"], 1) for f in fits)
    return {"fit_seconds_mean": float(np.mean([f["seconds"] for f in fits])),
            "fit_seconds_total": float(np.sum([f["seconds"] for f in fits])),
            PREDICT_COST: 1000.0 * per_clip * total}


def _fit_groups(plan: CVPlan, setup: TrialSetup, *, fused: bool) -> list[list[int]]:
    """Which of ``plan.fits`` are trained together: one at a time when not fused; fused,
    all at once, or one seed's folds at a time when a scheduler reads results as they come."""
    if not fused:
        return [[k] for k in range(len(plan))]
    if not setup.fuse_by_seed:
        return [list(range(len(plan)))]
    return [[k for k, f in enumerate(plan.fits) if f.seed_index == s] for s in range(len(plan.seeds))]


def flat_config(config: Mapping[str, Any], train: Mapping[str, Any]) -> dict[str, Any]:
    """Tune's nested trial config -> the flat dict of one model family (+ fixed training keys)."""
    family = config[MODEL]
    inner = config.get(family, {})
    if not isinstance(inner, Mapping):
        raise ConfigError(f"trial config {family!r}", "must be a mapping of hyperparameters", inner)
    return {MODEL: family, **dict(train), **dict(inner)}


def cv_trial(config: dict[str, Any], *, data: SequenceSet | NodeCacheSource, plan: CVPlan,
             setup: TrialSetup) -> None:
    """Fit ``config`` on every (seed, fold) of ``plan``; report to Ray Tune as it goes.

    ``data`` is the train split itself (through the object store), or for a split too big
    for it a `NodeCacheSource`: the rows are then this node's memory-mapped cache, built by
    the first trial on the node (`features.store.node_cache`)."""
    import logging

    from ray import tune

    # one "Checkpoint successfully created" line per trial drowns the progress table
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)

    from trainables import fit, split_flat_config
    from trainables.fused.many import fit_many, use_fused
    from trainables.training.saved import weights_to_bytes

    fits: list[dict[str, Any]] = []
    histories: list[list[dict[str, Any]]] = []
    family = config.get(MODEL, "?")

    def fail(message: str) -> None:
        tune.report({**_summary(setup, fits, len(plan)), STATUS: TrialStatus.FAILED, ERROR: message,
                     MODEL: family, OBJECTIVE: float("nan")})

    cache: dict[str, Any] | None = None
    if isinstance(data, NodeCacheSource):
        import ray

        node = ray.get_runtime_context().get_node_id()
        try:
            data, info = data.open(node=node)
        except Exception as exc:  # the store is unreachable, changed, or the node's disk is full
            fail(f"node cache: {type(exc).__name__}: {exc}")
            return
        cache = {"node": node, "path": info.path, "built": info.built, "build_seconds": info.seconds}

    try:
        name, model_config, train_config = split_flat_config(flat_config(config, setup.train))
        train_config = replace(train_config, num_threads=setup.threads)
        fused = setup.fused is True or (setup.fused == "auto" and use_fused(
            name, model_config, train_config, train_config.device, len(plan), data=data))
    except Exception as exc:  # a config the spec let through but the model refuses
        fail(f"{type(exc).__name__}: {exc}")
        return

    trial_id = str(tune.get_context().get_trial_id())
    starts = {seed: init_seed(trial_id, seed) for seed in plan.seeds}  # plan seed -> this trial's init seed
    oof = np.full((len(plan.seeds), plan.n_rows, data.n_classes), np.nan, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, FOLD_MODELS))
        for group in _fit_groups(plan, setup, fused=fused):
            cv_fits = [plan.fits[k] for k in group]
            try:
                if fused:  # the group's fits as one stacked model (trainables.fused.many)
                    results = fit_many(name, model_config, data, [(starts[f.seed], f.train, f.valid) for f in cv_fits],
                                       train_config=train_config, return_weights=True)
                else:
                    results = [fit(name, model_config, data.subset(f.train), data.subset(f.valid), seed=starts[f.seed],
                                   train_config=train_config, return_weights=True) for f in cv_fits]
            except Exception as exc:  # deterministic: a NaN loss, OOM, a model error. Not retried.
                where = (f"seed {cv_fits[0].seed} fold {cv_fits[0].fold}" if len(cv_fits) == 1 else
                         f"fused fits of seeds {sorted({f.seed for f in cv_fits})}")
                detail = "" if exc.__class__.__module__.startswith(("features", "trainables")) else \
                    "\n" + "".join(traceback.format_exception(exc)[-3:])
                fail(f"{where}: {type(exc).__name__}: {exc}{detail}")
                return
            for cv_fit, result in zip(cv_fits, results):
                oof[cv_fit.seed_index, cv_fit.valid] = result.proba.astype(np.float32)
                # the fold model is part of what is deployed (a member is its bag of fold models)
                suffix, blob = weights_to_bytes(result.weights)
                model_file = f"{FOLD_MODELS}/seed{cv_fit.seed}_fold{cv_fit.fold}{suffix}"
                with open(os.path.join(tmp, model_file), "wb") as fh:
                    fh.write(blob)
                scalars = result.scalars()
                fits.append({"seed": cv_fit.seed, "fold": cv_fit.fold, "init_seed": starts[cv_fit.seed], **scalars,
                             "inner_size": result.inner_size, "valid_size": len(cv_fit.valid), "file": model_file,
                             "fused": fused})
                histories.append(result.history)
                # this fit's own keys (the long board's columns), each as fit_<key>
                report = {**_summary(setup, fits, len(plan)), STATUS: TrialStatus.RUNNING, ERROR: "", MODEL: name,
                          **{f"{FIT_PREFIX}{k}": fits[-1][k] for k in FOLD_COLUMNS if k not in ("trial_id", MODEL)}}
                if len(fits) < len(plan):
                    tune.report(report)
        report[STATUS] = TrialStatus.OK
        np.savez_compressed(os.path.join(tmp, OOF_FILE), proba=oof, y=data.y,
                            clip_ids=np.asarray(data.clip_ids, dtype=str),
                            groups=np.asarray(data.groups, dtype=str),
                            seeds=np.asarray(plan.seeds), classes=np.asarray(data.classes, dtype=str))
        with open(os.path.join(tmp, FITS_FILE), "w") as fh:
            json.dump({"model": name, "config": {**model_config.to_flat(), **train_config.to_flat()},
                       "fused": fused, "trial_id": trial_id, "node_cache": cache,
                       "init_seeds": [starts[seed] for seed in plan.seeds], "fits": fits, "histories": histories}, fh, default=_json_default)
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(tmp))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
