"""A sweep through seqsweep (Ray Tune + Optuna + repeated-seed CV) vs a plain sequential
Optuna loop training the same configurations with the same CV on the same data.

    python benchmarks/sweep_overhead.py              # 32 small-LSTM trials, 3 folds x 2 seeds
    python benchmarks/sweep_overhead.py --trials 8

seqsweep runs first, in this process, Ray's start included (timed on its own as well).
Ray is then shut down, and the plain loop enqueues
exactly the configurations seqsweep ran into an Optuna study and trains each on the same
fold plan with the same `trainables.fit`, one after the other, torch using every core.
Printed: both wall times, their ratio with and without Ray's start, and where seqsweep's
time went: Ray's start, the first trials' actors (a new worker process importing torch),
the time until the first trial starts (loading, the fold plan, Tune's setup and its first
actors), the fits (their seconds over the trials running at once), and what is left per
trial (result handling, checkpoints, scheduling). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def make_data(root: Path) -> Path:
    from features import FeatureSpec, extract_audio
    from features.synth import write_dataset

    write_dataset(root / "audio", classes=4, clips=12, seconds=2.0, seed=0)
    extract_audio(root / "audio", store=root / "store", dataset="bench", spec=FeatureSpec.create("mfcc27"),
                  use_ray=False, progress=False)
    return root / "store"


def spec_dict(store: Path, storage: Path, trials: int, folds: int, seeds: int) -> dict:
    return {
        "name": "overhead", "store": str(store), "dataset": "bench", "feature_set": "mfcc27",
        "cv": {"folds": folds, "seeds": seeds},
        "search": {"num_samples": trials, "sampler": "random", "seed": 0},
        "models": {"lstm": {"num_layers": [1, 2], "units": {"low": 8, "high": 24, "step": 8},
                            "lr": {"low": 3e-3, "high": 3e-2, "log": True}, "epochs": {"low": 4, "high": 8},
                            "batch_size": [16]}},
        "storage": str(storage),
    }


def plain_loop(store: Path, spec, configs: list[dict], folds: int, seeds: int) -> float:
    """The plain alternative: an Optuna study asked for the same configs, trained in a loop."""
    import optuna

    from features import FeatureStore
    from search.space import SearchSpace
    from trainables import fit, split_flat_config
    from trainables.trial.folds import make_plan

    started = time.perf_counter()
    data = FeatureStore(store).load("bench", "mfcc27", split="train", padded=True)
    plan = make_plan(data, folds=folds, seeds=seeds, base_seed=0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for config in configs:  # the same space, asked for exactly the configurations seqsweep ran
        study.enqueue_trial({f"lstm/{k}": v for k, v in config.items() if k != "model"})
    space = SearchSpace(spec.models)

    def objective(trial: optuna.Trial) -> float:
        fixed = space(trial)
        flat = {"model": "lstm", **{k.split("/", 1)[-1]: v for k, v in {**trial.params, **fixed}.items()}}
        name, model_config, train_config = split_flat_config(flat)
        scores = [fit(name, model_config, data.subset(f.train), data.subset(f.valid), seed=f.seed,
                      train_config=train_config).metrics["balanced_accuracy"] for f in plan.fits]
        return sum(scores) / len(scores)

    study.optimize(objective, n_trials=len(configs))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()

    import pandas as pd

    from search.spec import SweepSpec
    from search.sweep import run_sweep
    from seqsweep.ray_runtime import ensure_ray

    work = Path(tempfile.mkdtemp(prefix="seqsweep-bench-"))
    store = make_data(work)
    spec = SweepSpec.from_dict(spec_dict(store, work / "runs", args.trials, args.folds, args.seeds))

    started = time.perf_counter()  # Ray is not running yet: its start is included
    ensure_ray()
    t_ray = time.perf_counter() - started
    called = time.time()  # the board's start_time column is on this clock (the driver's)
    outcome = run_sweep(spec, verbose=0, echo=lambda *_: None)
    t_sweep = time.perf_counter() - started

    board = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard.csv")
    folds = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard_folds.csv")
    keys = ["lr", "epochs", "batch_size", "num_layers", "units_0", "units_1"]
    configs = []
    for row in board.sort_values("trial_id").to_dict("records"):
        config = {"model": "lstm", **{k: row[k] for k in keys if k in row and pd.notna(row[k])}}
        config = {k: (int(v) if k != "lr" and not isinstance(v, str) else v) for k, v in config.items()}
        config["units_1"] = config.get("units_1") if config.get("num_layers") == 2 else None
        configs.append({k: v for k, v in config.items() if v is not None})
    import ray

    concurrency = int(ray.cluster_resources().get("CPU", 1))
    ray.shutdown()  # the plain loop runs on a machine with no Ray processes left beside it
    t_plain = plain_loop(store, spec, configs, args.folds, args.seeds)

    fit_seconds = float(folds["seconds"].sum())
    overhead = (t_sweep - fit_seconds / concurrency) / len(board)
    # a trial's own time beyond its fits (Tune's time_total_s): the first trial on each new
    # actor pays the worker's imports there
    in_trial = []
    for trial_dir in Path(outcome.experiment_dir).glob("trial_*"):
        lines = (trial_dir / "result.json").read_text().splitlines()
        last = json.loads(lines[-1])
        in_trial.append(float(last["time_total_s"]) - float(folds.loc[folds["trial_id"] == last["trial_id"],
                                                                        "seconds"].sum()))
    in_trial.sort(reverse=True)
    actor_start = sum(in_trial[:concurrency]) / concurrency
    tune_start = float(board["start_time"].min()) - called  # loading, plan, Tuner setup, the first actors
    rest = (t_sweep - t_ray - tune_start - fit_seconds / concurrency - actor_start) / len(board)
    print(f"{len(board)} trials of small LSTMs, {args.folds} folds x {args.seeds} seeds each "
          f"({len(folds)} fits), {concurrency} trials at once in seqsweep")
    print(f"plain sequential Optuna loop: {t_plain:7.1f} s")
    print(f"seqsweep (Ray start included): {t_sweep:6.1f} s")
    print(f"ratio seqsweep / plain: {t_sweep / t_plain:.2f}x ({(t_sweep - t_ray) / t_plain:.2f}x without Ray's start)")
    print(f"seqsweep per-trial overhead: {overhead:.2f} s (wall time not inside a fit, per trial)")
    print(f"the floor: the fits alone, {concurrency} at once on one thread each, take "
          f"{fit_seconds / concurrency / t_plain:.2f}x the plain loop")
    print("where seqsweep's time went:")
    print(f"  Ray's start                                 {t_ray:6.1f} s")
    print(f"  fits, {fit_seconds:.1f} s over {concurrency} trials at once            {fit_seconds / concurrency:6.1f} s")
    print(f"  until the first trial starts (loading, plan, Tune's setup, its actors) {tune_start:6.1f} s")
    print(f"  first trial on each new actor (its imports)  {actor_start:6.1f} s")
    print(f"  the rest: Tune's loop, results, checkpoints   {rest * len(board):6.1f} s = {rest:.2f} s per trial")


if __name__ == "__main__":
    main()
