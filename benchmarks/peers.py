"""seqsweep beside the field's first tries, aeon's ROCKET classifiers, in one run.

    python benchmarks/peers.py                       # JapaneseVowels and synthetic GTZAN-shaped audio
    python benchmarks/peers.py --sets japanese_vowels --cpus 2

Two sets, each with its own fixed train/test split:

* **JapaneseVowels** (UEA, the copy aeon ships; the archive's 270/370 split; 7-29 frames of
  12 channels). aeon's classifiers take equal lengths: each series repeats its last frame
  up to the longest (29), as the issue's figures were made.
* **Synthetic audio with the GTZAN example's shapes** (`features.synth`, GTZAN's folder
  layout): ``--audio-classes`` genres x ``--audio-clips`` clips of 30 s, cut into 3 s
  ``mfcc27`` segments (``examples/gtzan_lstm.yaml``'s feature set), the store's own split
  (a clip's segments never straddle it). Figures are per segment (the peers' unit).

Peers: aeon's ``MiniRocketClassifier`` and ``MultiRocketHydraClassifier`` (their defaults,
``n_jobs`` = ``--cpus``), fitted on the whole train split and scored once on test, for
``--seeds`` seeds each, with the seconds of fit + predict (after one untimed fit on about 30
series, which pays numba's compilation).

seqsweep: the example's sweep (``examples/japanese_vowels.yaml`` as it is;
``examples/gtzan_lstm.yaml`` with ``--audio-trials`` trials and ``--audio-cv`` CV, as its 30
trials of 5 x 3 fits would take hours here), on ``--cpus`` CPUs, its ensembles and final
choice made on the train split only. Printed: the model it hands over (its final choice),
its out-of-fold figure on the train split, its test figure, and the wall time of sweep +
ensembles + test scoring.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("MiniRocketClassifier", "MultiRocketHydraClassifier")


def equal_length(data, longest: int) -> np.ndarray:
    """A `SequenceSet` as aeon's input, float32 [shape=(N, D, longest)]: each sequence repeats
    its last frame up to ``longest`` steps."""
    from trainables.classic._rocket_parts import to_length

    return np.stack([to_length(s, longest, mode="pad").T for s in data.to_ragged().x])


def run_peers(train, test, *, metric: str, seeds: int, cpus: int) -> list[dict]:
    """aeon's classifiers on the whole train split, one test score per seed."""
    from aeon.classification import convolution_based

    from trainables.training.metrics import metric_score

    longest = max(int(train.lengths.max()), int(test.lengths.max()))
    x_train, x_test = equal_length(train, longest), equal_length(test, longest)
    rows = []
    for name in PEERS:
        # numba compiles aeon's kernels on a first call (minutes on a new machine): not timed
        every = max(1, len(x_train) // 30)
        getattr(convolution_based, name)(n_jobs=cpus, random_state=0).fit(x_train[::every], train.y[::every])
        for seed in range(seeds):
            started = time.perf_counter()
            model = getattr(convolution_based, name)(n_jobs=cpus, random_state=seed).fit(x_train, train.y)
            predicted = model.predict(x_test)
            seconds = time.perf_counter() - started
            rows.append({"model": f"aeon {name}", "run": f"seed {seed}", "test": metric_score(metric, test.y, predicted),
                         "oof": np.nan, "seconds": seconds})
            print(f"  {name} seed {seed}: test {metric} {rows[-1]['test']:.4f}, {seconds:.1f} s", flush=True)
    return rows


def run_seqsweep(spec_path: Path, *, store: Path, dataset: str, feature_set: str, runs: Path, overrides: dict
                 ) -> dict:
    """The example's sweep and finishing step; its final choice's figures and wall time."""
    import yaml

    from results.ensemble.spec import ResultsSpec
    from results.pipeline import finish_sweep
    from search.sweep import run_sweep

    raw = yaml.safe_load(spec_path.read_text())
    raw.update(store=str(store), storage=str(runs), dataset=dataset, feature_set=feature_set, **overrides)
    raw["resources"] = {**raw.get("resources", {}), "cpus": 1}
    spec = ResultsSpec.from_dict(raw, source=str(spec_path))
    started = time.perf_counter()
    outcome = run_sweep(spec, verbose=0, echo=lambda *_: None)
    summary = finish_sweep(outcome.experiment_dir, echo=lambda *_: None)
    seconds = time.perf_counter() - started
    row = summary.final_row()
    board = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard.csv", dtype={"trial_id": str})
    families = board.loc[board["status"] == "ok", "model"].value_counts().to_dict()
    members = str(row["members"]).split(";")
    chosen = board.set_index("trial_id").loc[members, "model"].tolist()
    print(f"  seqsweep {spec_path.name}: {len(board)} trials {families}; hands over {summary.final} "
          f"of {chosen}; {seconds:.0f} s", flush=True)
    return {"model": f"seqsweep {spec_path.name} -> {summary.final} ({'+'.join(sorted(set(chosen)))})",
            "run": f"{spec.search.num_samples} trials, {spec.cv.folds}x{spec.cv.seeds} CV",
            "test": float(row[f"test_{spec.metric}"]), "oof": float(row[f"oof_{spec.metric}"]),
            "seconds": seconds}


def japanese_vowels(work: Path, *, seeds: int, cpus: int) -> list[dict]:
    import aeon

    from features import FeatureStore, import_files

    data = Path(aeon.__file__).parent / "datasets" / "data" / "JapaneseVowels"
    import_files([data / "JapaneseVowels_TRAIN.ts", data / "JapaneseVowels_TEST.ts"], store=work / "store",
                 dataset="japanese_vowels")
    store = FeatureStore(work / "store")
    train, test = (store.load("japanese_vowels", "raw", split=s) for s in ("train", "test"))
    print(f"JapaneseVowels: {len(train)} train, {len(test)} test series", flush=True)
    rows = run_peers(train, test, metric="accuracy", seeds=seeds, cpus=cpus)
    rows.append(run_seqsweep(ROOT / "examples" / "japanese_vowels.yaml", store=work / "store",
                             dataset="japanese_vowels", feature_set="raw", runs=work / "runs", overrides={}))
    return [{"set": f"JapaneseVowels (accuracy, {len(test)} test)", **r} for r in rows]


def synthetic_audio(work: Path, *, seeds: int, cpus: int, classes: int, clips: int, trials: int, cv: str
                    ) -> list[dict]:
    from features import FeatureSpec, FeatureStore, extract_audio
    from features.synth import write_dataset

    write_dataset(work / "genres", classes=classes, clips=clips, seconds=30.0, seed=0)
    spec = FeatureSpec.create("mfcc27", segment_seconds=3)
    extract_audio(work / "genres", store=work / "store", dataset="gtzan", spec=spec, use_ray=False, progress=False)
    store = FeatureStore(work / "store")
    train, test = (store.load("gtzan", spec.name, split=s) for s in ("train", "test"))
    print(f"synthetic audio: {classes} classes x {clips} clips of 30 s -> {len(train)} train, {len(test)} test "
          f"segments of {int(train.lengths.max())} x {train.dim}", flush=True)
    rows = run_peers(train, test, metric="balanced_accuracy", seeds=seeds, cpus=cpus)
    folds, cv_seeds = (int(v) for v in cv.split("x"))
    rows.append(run_seqsweep(ROOT / "examples" / "gtzan_lstm.yaml", store=work / "store", dataset="gtzan",
                             feature_set=spec.name, runs=work / "runs",
                             overrides={"metric": "balanced_accuracy",
                                        "search": {"num_samples": trials, "sampler": "tpe", "seed": 0,
                                                   "scheduler": "asha"},
                                        "cv": {"folds": folds, "seeds": cv_seeds}}))
    return [{"set": f"synthetic audio (balanced accuracy per segment, {len(test)} test)", **r} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="japanese_vowels,audio")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of each aeon peer")
    parser.add_argument("--cpus", type=int, default=2, help="the peers' n_jobs and the sweep's Ray CPUs")
    parser.add_argument("--audio-classes", type=int, default=5)
    parser.add_argument("--audio-clips", type=int, default=10, help="30 s clips per class")
    parser.add_argument("--audio-trials", type=int, default=6)
    parser.add_argument("--audio-cv", default="3x1", help="folds x seeds of the audio sweep")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="seqsweep-peers-"))
    print(f"{os.cpu_count()} CPUs here, load average {os.getloadavg()[0]:.1f} at the start; work in {work}")
    from seqsweep.ray_runtime import ensure_ray

    ensure_ray(num_cpus=args.cpus, include_dashboard=False)  # the sweeps' local Ray: --cpus CPUs
    rows: list[dict] = []
    sets = [s.strip() for s in args.sets.split(",")]
    if "japanese_vowels" in sets:
        rows += japanese_vowels(work / "jv", seeds=args.seeds, cpus=args.cpus)
    if "audio" in sets:
        rows += synthetic_audio(work / "audio", seeds=args.seeds, cpus=args.cpus, classes=args.audio_classes,
                                clips=args.audio_clips, trials=args.audio_trials, cv=args.audio_cv)
    table = pd.DataFrame(rows)[["set", "model", "run", "test", "oof", "seconds"]]
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; test: once on the test split; oof: the handed-over "
          "model's out-of-fold figure on the train split; seconds: fit + predict (peers), sweep + ensembles + "
          "test scoring (seqsweep)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
