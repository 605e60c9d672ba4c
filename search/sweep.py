"""Run a sweep: the spec becomes a Ray Tune experiment whose trials Optuna samples.

The driver reads the train split's labels, groups and lengths, makes the fold plan once,
and hands it to every trial with the data (`tune.with_parameters`). The data goes one of
two ways (``data.path``, `choose_data_path`): the padded split itself, loaded once by the
driver, through Ray's object store; or, for a split too big for the object store or the
driver, a `NodeCacheSource`, from which the first trial on each node copies the rows into
one memory-mapped file that every trial on that node reads (`features.store.node_cache`;
the driver removes those files from every node when the sweep ends). Trials reuse their
actors (no new process and no torch import per trial). The experiment lives at
``<storage>/<name>/``: Ray Tune's own state (so ``--resume`` can restore it, the Optuna
searcher included), each trial's checkpoint with its out-of-fold probabilities,
``sweep.json`` (the spec as run, `SweepSpec.save`) and the live leaderboard CSVs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from features.store import FeatureStore
from features.store.node_cache import NodeCacheSource, manifest_key, remove_on_every_node
from search.leaderboard import LiveLeaderboard
from search.metrics import SweepMetrics
from search.searcher import close_orphans, upload_journal
from search.space import TRIAL_METRIC, expand_grid, make_searcher, with_token_defaults
from search.spec import SweepSpec
from seqsweep.errors import ConfigError, StoreError
from seqsweep.layout import LEADERBOARD, PLAN_FILE, TrialStatus, read_leaderboard, trial_dirname
from seqsweep.ray_runtime import DEFAULT_DASHBOARD_HOST, ensure_ray
from seqsweep.storage import read_bytes, resolve, write_bytes_atomic
from trainables.trial.folds import fingerprint_changes, make_plan, plan_fingerprint
from trainables.trial.run import TrialSetup, cv_trial

__all__ = ["SweepOutcome", "run_sweep", "check_object_store", "choose_data_path", "trial_capacity"]



@dataclass
class SweepOutcome:
    experiment_dir: str
    trials: int
    ok: int
    pruned: int
    failed: int
    seconds: float
    dashboard_url: str | None
    best: dict[str, Any] | None

    def __str__(self) -> str:
        text = (f"sweep finished in {self.seconds:.0f} s: {self.trials} trials, {self.ok} ok, "
                f"{self.pruned} pruned, {self.failed} failed\nresults: {self.experiment_dir}/{LEADERBOARD}")
        if self.best:
            b = self.best
            text += (f"\nbest: trial {b['trial_id']} ({b['model']}) objective {b['objective']:.4f}")
        return text


def trial_capacity(cpus_per_trial: float, gpus_per_trial: float) -> tuple[int, dict[str, float]]:
    """How many trials the Ray cluster this process sees can run at once, and its resources."""
    import ray

    total = ray.cluster_resources()
    by_cpu = math.floor(total.get("CPU", 0) / cpus_per_trial + 1e-9)
    if gpus_per_trial > 0:
        by_gpu = math.floor(total.get("GPU", 0) / gpus_per_trial + 1e-9)
        return min(by_cpu, by_gpu), total
    return by_cpu, total


def _scheduler(spec: SweepSpec):
    # one time step = one (seed, fold) fit; by default a trial always gets its first seed's folds
    grace = spec.search.grace(spec.cv.folds)
    if spec.search.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr="training_iteration", metric=TRIAL_METRIC, mode="max",
                             max_t=spec.cv.fits, grace_period=grace, reduction_factor=2)
    if spec.search.scheduler == "wilcoxon":
        from search.wilcoxon import WilcoxonScheduler

        return WilcoxonScheduler(fit_metric=f"fit_{spec.metric}", p_threshold=spec.search.wilcoxon_p,
                                 min_fits=grace)
    return None


#: The share of a node's object store the train split may take: the trials' own objects
#: (results, checkpoints) need the rest.
OBJECT_STORE_SHARE = 0.8
#: ``data.path: auto`` hands the padded train split over through the object store while it
#: takes at most this share of the smallest node's store (room to spare for the trials'
#: results and for a driver that holds it too), and uses the node cache beyond.
AUTO_SHARE = 0.5


def smallest_object_store() -> float | None:
    """Bytes of the smallest object store among the cluster's alive nodes (None if unknown)."""
    import ray

    stores = [n["Resources"].get("object_store_memory", 0) for n in ray.nodes() if n.get("Alive")]
    return min((c for c in stores if c), default=None)


def check_object_store(nbytes: int, *, what: str, capacity: float | None = None) -> None:
    """Raise `StoreError` when ``nbytes`` (the train split as handed to the trials) exceeds
    `OBJECT_STORE_SHARE` of the smallest object store among the cluster's alive nodes
    (``capacity`` overrides it). Every node that runs a trial holds one copy."""
    capacity = smallest_object_store() if capacity is None else capacity
    if capacity and nbytes > OBJECT_STORE_SHARE * capacity:
        raise StoreError(what, f"must fit in Ray's object store with data.path: object_store, which hands it to "
                         f"every trial: the smallest node's store holds {capacity / 2**30:.2f} GiB, of which a sweep "
                         f"uses at most {OBJECT_STORE_SHARE:.0%}; set data.path: node_cache (or auto) to have each "
                         "node read it from the store into a memory-mapped file, or start Ray with more "
                         "(`ray start --object-store-memory BYTES`)", f"{nbytes / 2**30:.2f} GiB padded")


def choose_data_path(asked: str, nbytes: int, *, capacity: float | None = None) -> str:
    """``object_store`` or ``node_cache`` for a train split of ``nbytes`` padded: what the spec
    asked (``data.path``), or for ``auto`` the object store while ``nbytes`` is at most
    `AUTO_SHARE` of the smallest node's object store (``capacity`` overrides it)."""
    if asked != "auto":
        return asked
    capacity = smallest_object_store() if capacity is None else capacity
    return "object_store" if not capacity or nbytes <= AUTO_SHARE * capacity else "node_cache"


def _asks_bf16(spec: SweepSpec) -> bool:
    """Whether any trial of ``spec`` may train with ``amp: bf16`` (fixed, or a family's choice)."""
    if spec.train.fixed.get("amp") == "bf16":
        return True
    return any(key == "amp" and "bf16" in json.dumps(param.raw())
               for space in spec.models for key, param in space.all_params())


def check_precision(spec: SweepSpec) -> None:
    """Refuse ``amp: bf16`` before any trial starts when the trials' workers cannot run it.

    The probe (`trainables.environment.amp_problem`) runs as one Ray task with a trial's
    resources, so it answers for the kind of node the trials land on (a CPU without bf16
    support, or a GPU worker that has CUDA), on the local instance and on a cluster alike.
    Call it only when a trial fits on the cluster now: a task that waits for the autoscaler
    would hold the sweep back, and each fit meets the same rule where it runs anyway.
    """
    if not _asks_bf16(spec):
        return
    import ray

    from trainables.environment import amp_problem

    probe = ray.remote(amp_problem).options(num_cpus=spec.resources.cpus, num_gpus=spec.resources.gpus,
                                            name="seqsweep precision probe")
    problem = ray.get(probe.remote("bf16", spec.train.fixed.get("device", "auto")))
    if problem is not None:
        raise problem


#: The version of ``plan.json``. 2: trainables regrouped into subpackages (issue 25); Tune's
#: saved state of an older sweep names trainables' modules as they were, so it cannot resume.
PLAN_FORMAT = 2


def _check_plan(spec: SweepSpec, fingerprint: dict[str, Any], *, resume: bool) -> None:
    """Write the fold plan's fingerprint (with its `PLAN_FORMAT`) for a new sweep; on
    ``--resume`` refuse a sweep saved in an older format, or when the store or the spec no
    longer give the folds the sweep began with."""
    path = f"{spec.experiment_path}/{PLAN_FILE}"
    if resume:
        saved = read_bytes(path)
        if saved is not None:
            before = json.loads(saved)
            if before.get("format") != PLAN_FORMAT:
                raise ConfigError(
                    f"--resume of {spec.experiment_path}",
                    f"needs a sweep saved in plan format {PLAN_FORMAT}: this one was saved before trainables "
                    "was regrouped (issue 25), and Tune's saved state names modules that moved, so it cannot "
                    "resume; start a new sweep (--name); the finished trials' results in the old folder stay "
                    "readable by `seqsweep results`",
                    f"{PLAN_FILE} format {before.get('format')!r}")
            changes = fingerprint_changes(before, fingerprint)
            if changes:
                raise ConfigError("--resume", "must score new trials on the folds the sweep began with; start a "
                                  "new sweep (--name) instead", "; ".join(changes))
            return
    write_bytes_atomic(json.dumps({"format": PLAN_FORMAT, **fingerprint}, indent=2).encode(), path)


def _reporter(spec: SweepSpec):
    from ray.tune import CLIReporter

    m = spec.metric
    return CLIReporter(
        metric_columns={TRIAL_METRIC: "objective", f"{m}_mean": f"{m} mean", f"{m}_std": "std",
                        "fits_done": "fits", "status": "status"},
        parameter_columns={"model": "model"},
        max_report_frequency=15,
        sort_by_metric=True,
        metric=TRIAL_METRIC,
        mode="max",
    )


def _trial_dirname(trial: Any) -> str:
    """`seqsweep.layout.trial_dirname`: ``trial_<id>``."""
    return trial_dirname(trial.trial_id)


def _trial_name(trial: Any) -> str:
    """``<family>_<id>`` (``lstm_3f2a1_00004``): the trial's name in Tune's table and logs."""
    return f"{trial.config.get('model', 'trial')}_{trial.trial_id}"


def run_sweep(
    spec: SweepSpec,
    *,
    resume: bool = False,
    address: str | None = None,
    dashboard_host: str = DEFAULT_DASHBOARD_HOST,
    verbose: int = 1,
    echo=print,
) -> SweepOutcome:
    """Run (or with ``resume=True`` continue) the sweep ``spec`` describes."""
    started = time.perf_counter()
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    # Ray Tune's classic table (CLIReporter) shows our CV columns; the new output does not
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Save the experiment's state (trials, searcher) every second instead of every >= 10 s,
    # so a killed driver loses at most a second of bookkeeping; a save takes ~20 ms here.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    # Tune's default loggers include TensorBoard's (importing tensorboardX costs the driver
    # ~1.5 s, and each result an event write); seqsweep keeps Tune's result.json and
    # progress.csv per trial, passed below, and no TensorBoard files.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    exp = spec.experiment_path
    exists = tune.Tuner.can_restore(exp)
    if resume and not exists:
        raise ConfigError("--resume", f"needs a sweep to continue at {exp}", "no Ray Tune experiment there")
    if not resume and exists:
        raise ConfigError(f"name {spec.name!r}", f"must be new in {spec.storage_path}: an experiment exists at "
                          f"{exp}; pass --resume to continue it or --name for a new one", spec.name)

    url = ensure_ray(address, dashboard_host=dashboard_host, job_name=spec.name)
    if url:
        echo(f"Ray dashboard: {url}")

    store = FeatureStore(spec.store)
    manifest = store.manifest(spec.dataset, spec.feature_set)
    index = store.load_index(spec.dataset, spec.feature_set, split="train")  # no frames: labels, groups, lengths
    spec = with_token_defaults(spec, tokens=index.vocab_size is not None)
    store_bytes = smallest_object_store()  # one look at the cluster for both checks
    data_path = choose_data_path(spec.data.path, index.padded_nbytes, capacity=store_bytes)
    cache_name = None
    if data_path == "object_store":
        check_object_store(index.padded_nbytes, what=f"{spec.dataset}/{spec.feature_set} train split ({len(index)} "
                           f"clips x {int(index.lengths.max(initial=0))} steps x D={index.dim})", capacity=store_bytes)
        data = store.load(spec.dataset, spec.feature_set, split="train", padded=True)
    else:
        cache_name = f"{spec.name}-{hashlib.sha256(spec.experiment_path.encode()).hexdigest()[:8]}"
        data = NodeCacheSource(resolve(spec.store), spec.dataset, spec.feature_set, manifest_key(manifest), cache_name,
                               len(index))
        echo(f"train split: {index.padded_nbytes / 2**30:.2f} GiB padded, {index.frame_nbytes / 2**30:.2f} GiB of "
             "frames; each node's first trial copies it from the store into a memory-mapped file (data.path: "
             f"{spec.data.path})")
    plan = make_plan(index, folds=spec.cv.folds, seeds=spec.cv.seeds, base_seed=spec.search.seed)
    source = f"{resolve(spec.store)}/{spec.dataset}/{spec.feature_set}"
    _check_plan(spec, plan_fingerprint(index, plan, source=source), resume=resume)
    capacity, total = trial_capacity(spec.resources.cpus, spec.resources.gpus)
    if capacity >= 1:
        check_precision(spec)
    if capacity < 1:  # an autoscaling cluster with no GPU node up yet: pending trials ask for one
        echo(f"no trial fits on the cluster as it is now ({dict(total)}); trials wait for the autoscaler "
             f"to add nodes with cpus={spec.resources.cpus:g}, gpus={spec.resources.gpus:g}")
    # at most as many trials as can run now (a searcher asked for more suggests them blind);
    # with no room yet, as many as the spec allows, for the autoscaler to see the demand
    if capacity >= 1:
        concurrent = min(capacity, spec.search.max_concurrent or capacity)
    else:
        concurrent = spec.search.max_concurrent or 1
    num_samples = spec.search.num_samples
    if spec.search.sampler == "grid":
        grid = len(expand_grid(spec))
        if num_samples != grid:
            echo(f"grid sampler: {grid} grid points; running {grid} trials (num_samples was {num_samples})")
        num_samples = grid
    tokens = f" (token ids, vocabulary {index.vocab_size})" if index.vocab_size is not None else ""
    echo(f"{spec.dataset}/{spec.feature_set}: {len(index)} train clips, {index.n_classes} classes, D={index.dim}{tokens}; "
         f"{spec.cv.seeds} seeds x {spec.cv.folds} folds per trial; {num_samples} trials, "
         f"{concurrent} at once (the cluster fits {capacity} of {spec.resources.cpus:g} CPU"
         f"{f' + {spec.resources.gpus:g} GPU' if spec.resources.gpus else ''} each)")

    setup = TrialSetup(metric=spec.metric, objective=spec.objective.type, std_weight=spec.objective.std_weight,
                       train=spec.train.fixed, threads=max(1, int(spec.resources.cpus)),
                       fused=spec.fused, fuse_by_seed=spec.search.scheduler != "none")
    trainable = tune.with_resources(
        tune.with_parameters(cv_trial, data=data, plan=plan, setup=setup),
        {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus},
    )
    spec.save()  # the spec as run, beside the results (the results room reads it)
    if resume:  # the searcher, scheduler and leaderboard callback come back from the experiment
        tuner = tune.Tuner.restore(exp, trainable=trainable, resume_unfinished=True, resume_errored=True)
        echo(f"resuming {exp}")
    else:
        board = LiveLeaderboard(exp, train=spec.train.fixed, seeds=spec.cv.seeds, folds=spec.cv.folds,
                                tokens=index.vocab_size is not None)
        metrics = SweepMetrics(board, sweep=spec.name, planned_fits=num_samples * spec.cv.fits)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=make_searcher(spec), scheduler=_scheduler(spec), num_samples=num_samples,
                max_concurrent_trials=concurrent, reuse_actors=True,
                trial_dirname_creator=_trial_dirname, trial_name_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=spec.name, storage_path=spec.storage_path,
                failure_config=tune.FailureConfig(max_failures=2),  # worker crashes; not our caught errors
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                callbacks=[board, metrics, JsonLoggerCallback(), CSVLoggerCallback()], progress_reporter=_reporter(spec), verbose=verbose,
            ),
        )
    try:
        tuner.fit()
    finally:
        if cache_name is not None:  # the node caches go with the sweep, on every node
            builds = remove_on_every_node(cache_name)
            seconds = ", ".join(f"{b['seconds']:.1f} s" for b in builds)
            echo(f"node cache: built on {len(builds)} node(s) ({seconds}), removed")
    orphans = close_orphans(exp, spec.name)
    if orphans:
        echo(f"{orphans} Optuna trial(s) whose Ray trial never finished were marked FAIL")
    upload_journal(exp)

    board = read_leaderboard(exp)
    finished = board[board["status"] == TrialStatus.OK]
    pruned = int((board["status"] == TrialStatus.PRUNED).sum())
    best = finished.sort_values("rank").iloc[0].to_dict() if len(finished) else None
    return SweepOutcome(exp, len(board), len(finished), pruned, len(board) - len(finished) - pruned,
                        time.perf_counter() - started, url, best)
