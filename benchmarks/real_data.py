"""seqsweep on real data: UCR/UEA sets that ship inside aeon (the `bench` extra).

    python benchmarks/real_data.py                                  # JapaneseVowels and BasicMotions
    python benchmarks/real_data.py --datasets JapaneseVowels --trials 16

Each dataset is imported through seqsweep's own `.ts` importer with the archive's
TRAIN/TEST split, swept (Optuna through Ray Tune, every trial scored by repeated-seed
cross-validation on TRAIN only), ensembled from the top trials (each member deployed as its
bag of CV fold models) and scored once on TEST. Printed: the budget (trials, CV, minutes),
the out-of-fold and test accuracy of the best single member (rank 1 by cross-validation,
chosen without looking at TEST), of each ensemble and of the final choice (made inside a
cross-fit on TRAIN: what seqsweep hands over), and the published figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

#: Published test accuracies on JapaneseVowels (from the issue; the UEA archive's papers).
PUBLISHED = {
    "JapaneseVowels": {"FCN": 0.993, "ResNet": 0.992, "MLSTM-FCN": 1.00, "1-NN DTW": 0.949},
}


def spec_for(name: str, store: Path, runs: Path, trials: int, folds: int, seeds: int) -> dict:
    """One search space for both sets: FCN-like 1-D CNNs (no pooling between blocks, global
    average pooling, as Wang et al. 2017), bidirectional LSTMs, and a kNN baseline."""
    return {
        "name": name.lower(), "store": str(store), "dataset": name.lower(), "feature_set": "raw",
        "metric": "accuracy",
        "cv": {"folds": folds, "seeds": seeds},
        "search": {"num_samples": trials, "sampler": "tpe", "seed": 0},
        "models": {
            "cnn1d": {"num_blocks": [2, 3], "filters": [64, 128], "kernel_size": [5, 7, 8], "pool_size": 1,
                      "dropout": [0.0, 0.1], "lr": {"low": 1e-3, "high": 1e-2, "log": True},
                      "epochs": {"low": 60, "high": 120}, "batch_size": [16, 32]},
            "lstm": {"num_layers": [1, 2], "units": [32, 64], "bidirectional": True, "pooling": ["last", "mean"],
                     "lr": {"low": 2e-3, "high": 1e-2, "log": True}, "epochs": {"low": 60, "high": 120},
                     "batch_size": [16, 32]},
            "knn": {"n_neighbors": [1, 3], "weights": ["uniform", "distance"]},
        },
        "resources": {"cpus": 1},
        "storage": str(runs),
        "ensemble": {"top_k": 5, "methods": ["soft", "max", "vote", "weighted"], "refit": "bag"},
    }


def run(name: str, work: Path, trials: int, folds: int, seeds: int) -> None:
    import aeon
    import pandas as pd

    from features import import_files
    from results.ensemble.spec import ResultsSpec
    from results.pipeline import finish_sweep
    from search.sweep import run_sweep

    data = Path(aeon.__file__).parent / "datasets" / "data" / name
    summary = import_files([data / f"{name}_TRAIN.ts", data / f"{name}_TEST.ts"], store=work / "store",
                           dataset=name.lower())
    print(f"{name}: {summary}")
    spec = ResultsSpec.from_dict(spec_for(name, work / "store", work / "runs", trials, folds, seeds))
    started = time.perf_counter()
    outcome = run_sweep(spec, verbose=0, echo=print)
    summary = finish_sweep(outcome.experiment_dir, echo=lambda *_: None)
    minutes = (time.perf_counter() - started) / 60

    table = pd.read_csv(Path(outcome.experiment_dir) / "ensembles.csv", dtype={"members": str})
    board = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard.csv", dtype={"trial_id": str})
    best_id = board.loc[board["status"] == "ok"].iloc[0]
    best = table[(table["kind"] == "member") & (table["members"] == best_id["trial_id"])].iloc[0]
    n_test = summary.n_test
    print(f"\n{name}: {len(board)} trials, {folds}-fold CV x {seeds} seeds on TRAIN, "
          f"top {spec.ensemble.top_k} ensembled as bags of fold models; TEST has {n_test} series; "
          f"{minutes:.1f} minutes on this machine")
    print(f"  {'':34}{'CV mean':>9}{'OOF accuracy':>14}{'TEST accuracy':>15}")
    print(f"  {'best member (' + best_id['model'] + ', rank 1 by CV)':34}{best_id['accuracy_mean']:>9.3f}"
          f"{best['oof_accuracy']:>14.3f}{best['test_accuracy']:>15.3f}")
    for row in table[table["kind"] == "ensemble"].itertuples():
        print(f"  {'ensemble ' + row.method:34}{'':>9}{row.oof_accuracy:>14.3f}{row.test_accuracy:>15.3f}")
    final = summary.final_row()  # what seqsweep hands over: its one out-of-fold figure is nested
    if final is not None:
        print(f"  {'final choice: ' + final['method']:34}{'':>9}{final['oof_accuracy']:>14.3f}"
              f"{final['test_accuracy']:>15.3f}  <- handed over (OOF nested over the choice)")
    for method, acc in PUBLISHED.get(name, {}).items():
        print(f"  {'published ' + method:34}{'':>12}{acc:>15.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="JapaneseVowels,BasicMotions")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="seqsweep-real-"))
    for name in args.datasets.split(","):
        run(name.strip(), work, args.trials, args.folds, args.seeds)


if __name__ == "__main__":
    main()
