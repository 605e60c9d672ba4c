"""inception_time beside cnn1d on the synthetic audio, in one run, on the same folds.

    python benchmarks/inception_synth.py                  # the demo's data: 5 classes x 48 clips x 3 s
    python benchmarks/inception_synth.py --clips 12 --seconds 2 --classes 4   # the tests' data

The synthetic genre audio (`features.synth`, seeded) is written and extracted as mfcc27
(T = 130 frames of 27 values for 3 s clips) into a temporary store. On its train split,
each model is fitted on the same ``folds x seeds`` CV plan (`trainables.trial.folds.make_plan`);
printed per model: the out-of-fold balanced accuracy (mean and std over the fits, each fit
scored on its own validation fold), and the test split's balanced accuracy of the bag of
the fold models (their probabilities averaged: what a sweep deploys), scored once. The
test split chooses nothing here; the configs are fixed in advance (`MODELS`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables import classification_metrics, fit  # noqa: E402
from trainables.trial.folds import make_plan  # noqa: E402

#: name shown -> (family, model config); all share `TRAIN`. cnn1d as in tests/trainables/test_models.py.
MODELS: dict[str, tuple[str, dict]] = {
    "cnn1d 16-32": ("cnn1d", {"filters": (16, 32)}),
    "inception_time 3x16": ("inception_time", {"depth": 3, "filters": 16, "kernel_size": 20, "bottleneck": 16}),
    "inception_time paper": ("inception_time", {}),
}
TRAIN = {"lr": 3e-3, "batch_size": 16, "epochs": 20, "device": "cpu"}


def synthetic_store(root: Path, *, classes: int, clips: int, seconds: float):
    """Write the synthetic audio and extract mfcc27; (train, test) `SequenceSet`s."""
    from features import FeatureSpec, FeatureStore, extract_audio
    from features.synth import write_dataset

    write_dataset(root / "audio", classes=classes, clips=clips, seconds=seconds, seed=0)
    extract_audio(root / "audio", store=root / "store", dataset="synth", spec=FeatureSpec.create("mfcc27"),
                  use_ray=False, progress=False)
    store = FeatureStore(root / "store")
    return store.load("synth", "mfcc27", split="train"), store.load("synth", "mfcc27", split="test")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--clips", type=int, default=48, help="clips per class (default 48, the demo's)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, a trial's CPU share)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # the fits set it themselves; this is for the bag's predictions
    train, test = synthetic_store(Path(tempfile.mkdtemp(prefix="seqsweep-inception-")), classes=args.classes,
                                  clips=args.clips, seconds=args.seconds)
    plan = make_plan(train, folds=args.folds, seeds=args.seeds, base_seed=0)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {args.threads} torch thread(s); load average "
          f"{os.getloadavg()[0]:.2f}; synthetic audio mfcc27: {len(train)} train / {len(test)} test clips, "
          f"{train.n_classes} classes, T = {int(np.median(train.lengths))}; {len(plan.fits)} fits "
          f"({args.folds} folds x {args.seeds} seeds); {TRAIN}")
    print(f"{'model':<22}{'params':>9}{'OOF bal.acc':>14}{'(std)':>8}{'test bal.acc (bag)':>20}{'seconds':>9}")
    tc = {**TRAIN, "num_threads": args.threads}
    for name in args.models:
        family, config = MODELS[name]
        start = time.perf_counter()
        results = [fit(family, config, train.subset(f.train), train.subset(f.valid), seed=f.seed, train_config=tc,
                       return_weights=True) for f in plan.fits]
        seconds = time.perf_counter() - start
        oof = np.array([r.metrics["balanced_accuracy"] for r in results])
        bag = np.mean([r.predict_proba(test) for r in results], axis=0)
        score = classification_metrics(test.y, bag, n_classes=test.n_classes)["balanced_accuracy"]
        print(f"{name:<22}{results[0].n_params:>9}{oof.mean():>14.3f}{oof.std():>8.3f}{score:>20.3f}{seconds:>9.0f}",
              flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
