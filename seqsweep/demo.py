"""`seqsweep demo`: the whole tool on synthetic audio, on this machine, in a few minutes.

It makes genre-like WAV clips, extracts them into a Parquet feature store as Ray tasks,
runs a sweep over LSTM, CNN and WaveNet models, MiniRocket (through aeon) and the kNN /
random-forest baselines
(Optuna through Ray Tune, every trial scored by repeated-seed cross-validation), builds
the candidates (the rank-1 member, ensembles of the top trials, greedy selection from
every trial) and one honest final choice among them (each member deployed as its bag of
CV fold models), scores everything once on the held-out test split, writes the report,
and prints where every file is.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click

from seqsweep.errors import SeqsweepError
from seqsweep.layout import ENSEMBLE_DIR, ENSEMBLES_CSV, FOLDS, LEADERBOARD, REPORT_DIR, REPORT_FILE

__all__ = ["demo", "demo_spec", "run_demo"]

#: the demo's dataset in its store, and the feature set (a default `FeatureSpec` of this kind)
_DATASET = "synth"
_FEATURES = "mfcc27"
#: how far each clip may sit towards another genre (`features.synth.write_dataset`): hard
#: enough that members differ on test (at 0 every member scored 1.000), so the demo shows
#: what repeated seeds and the final choice buy. A random forest on each clip's mean and std
#: of mfcc27 frames (3-fold CV, 240 clips) read 0.94 at 0, 0.85 at 0.3, 0.67 at 0.6
DIFFICULTY = 0.3


def demo_spec(out: Path, *, trials: int) -> dict[str, Any]:
    """The demo's sweep: six families, 3 folds x 2 seeds, TPE, top-5 ensembles."""
    return {
        "name": "demo", "store": str(out / "store"), "dataset": _DATASET, "feature_set": _FEATURES,
        "metric": "balanced_accuracy", "objective": "mean",
        "cv": {"folds": 3, "seeds": 2},
        "search": {"num_samples": trials, "sampler": "tpe", "seed": 0},
        "models": {
            "lstm": {"num_layers": [1, 2], "units": {"low": 16, "high": 48, "step": 16},
                     "pooling": ["last", "mean"], "lr": {"low": 2e-3, "high": 1e-2, "log": True},
                     "epochs": {"low": 15, "high": 30}, "batch_size": 8},
            "cnn": {"num_blocks": [1, 2], "filters": [8, 16], "lr": {"low": 2e-3, "high": 1e-2, "log": True},
                    "epochs": {"low": 15, "high": 30}, "batch_size": 8},
            "wavenet": {"layers_per_stack": [3, 4], "residual_channels": [8, 16],
                        "lr": {"low": 2e-3, "high": 1e-2, "log": True}, "epochs": {"low": 15, "high": 30},
                        "batch_size": 8},
            "minirocket": {"n_features": [2520, 5040], "max_dilations": [16, 32]},
            "knn": {"n_neighbors": {"low": 1, "high": 9}, "weights": ["uniform", "distance"]},
            "random_forest": {"n_estimators": [100, 200], "max_depth": [None, 8]},
        },
        "resources": {"cpus": 1},
        "storage": str(out / "runs"),
        "ensemble": {"top_k": 5, "methods": ["soft", "max", "vote", "weighted"], "refit": "bag"},
    }


def run_demo(out: Path, *, classes: int = 5, clips: int = 48, seconds: float = 3.0, trials: int = 24,
             echo=click.echo) -> dict[str, str]:
    """Run the demo into ``out``; return the paths of what it wrote."""
    from features import FeatureSpec, extract_audio
    from features.synth import write_dataset
    from results.ensemble.spec import ResultsSpec
    from results.leaderboard import format_leaderboard, load_leaderboard
    from results.pipeline import finish_sweep
    from results.report import write_report
    from search.sweep import run_sweep

    started = time.perf_counter()
    phases: dict[str, float] = {}

    def lap(phase: str) -> None:  # the seconds since the previous lap, under ``phase``
        phases[phase] = time.perf_counter() - started - sum(phases.values())

    out = out.absolute()
    spec = ResultsSpec.from_dict(demo_spec(out, trials=trials), source="seqsweep demo")
    if os.path.exists(spec.experiment_path):
        raise SeqsweepError(str(out), "the demo writes into a new folder (or pass --out)", "it already holds runs/demo")

    echo(f"[1/4] synthetic audio: {classes} genres x {clips} clips x {seconds:g} s, each clip up to "
         f"{DIFFICULTY:.0%} of the way towards another genre -> {out / 'audio'}")
    write_dataset(out / "audio", classes=classes, clips=clips, seconds=seconds, seed=0, difficulty=DIFFICULTY)
    lap("synthetic audio")

    echo(f"[2/4] features: {_FEATURES} (13 MFCC + 12 chroma + centroid + rolloff) as Ray tasks -> {out / 'store'}")
    # extraction starts the local Ray (once, for the whole demo) and extracts on this process
    # while Ray comes up (features.head_start)
    summary = extract_audio(out / "audio", store=out / "store", dataset=_DATASET, spec=FeatureSpec.create(_FEATURES))
    echo("      " + str(summary).replace("\n", "\n      "))
    lap("Ray's start + extraction")

    echo(f"[3/4] sweep: {trials} trials over {', '.join(m.name for m in spec.models)}; "
         f"each scored by {spec.cv.folds}-fold CV x {spec.cv.seeds} seeds")
    outcome = run_sweep(spec, verbose=1, echo=lambda text: echo("      " + text))
    echo("      " + str(outcome).replace("\n", "\n      "))
    lap("sweep")

    echo(f"[4/4] the final choice among the rank-1 member and the ensembles (top {spec.ensemble.top_k}; "
         "greedy selection from every trial), each member its bag of CV fold models, scored once on the test split")
    finished = finish_sweep(outcome.experiment_dir, echo=lambda text: echo("      " + text), report=False)
    lap("ensembles and the test split")
    finished.report = write_report(outcome.experiment_dir)
    lap("report")

    exp = Path(outcome.experiment_dir)
    echo("")
    echo(f"Leaderboard (top {spec.ensemble.top_k}; mean ± std over every seed and fold):")
    echo(format_leaderboard(load_leaderboard(exp), top=spec.ensemble.top_k, metric=spec.metric))
    echo("")
    echo(str(finished))
    paths = {
        "audio": str(out / "audio"), "feature store": str(out / "store"),
        "leaderboard": str(exp / LEADERBOARD), "per-fold leaderboard": str(exp / FOLDS),
        "ensembles": str(exp / ENSEMBLES_CSV), "report": str(exp / REPORT_DIR / REPORT_FILE),
        "saved ensemble": str(exp / ENSEMBLE_DIR),
    }
    echo("")
    echo(f"Done in {time.perf_counter() - started:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
         + ". Files:")
    for what, path in paths.items():
        echo(f"  {what:<22} {path}")
    echo(f"Next: seqsweep predict {exp} some_clip.wav")
    return paths


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True,
              help="Folder the demo writes everything into (must not hold an earlier demo).")
@click.option("--trials", type=click.IntRange(min=2), default=24, show_default=True,
              help="Trials in the sweep.")
def demo(out: Path, trials: int) -> None:
    """Run seqsweep end to end on synthetic audio on a local Ray instance: audio -> feature
    store -> sweep (LSTM, CNN, WaveNet, MiniRocket, kNN, random forest; repeated-seed CV) ->
    ensembles and one final choice -> leaderboard CSVs and report. About 1.5 to 2 minutes on 2 cores (87 s here, 124 s the first time, while numba compiles)."""
    run_demo(out, trials=trials)
