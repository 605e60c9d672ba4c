"""Token data: the `examples/chords.yaml` sweep vs a bag-of-tokens random forest, one run.

    python benchmarks/tokens.py                      # 4 classes x 60 synthetic chord sequences
    python benchmarks/tokens.py --trials 6 --sequences 40

Synthetic chords (`features.synth_tokens`: Markov chains whose classes differ mostly in
which chord follows which, a little in chord frequencies) are written in the seed's pickle
format and imported through `features import` as a token feature set. The sweep is
`examples/chords.yaml` as it is (embedded LSTM and 1-D CNN, random forest on bags of
chords), pointed at this store; its ensembles are built and scored once on the held-out
test split by `results.pipeline.finish_sweep`. The plain alternative is one random forest
(300 trees) on bag-of-chords counts fitted on the same train split and scored on the same
test split; a forest on bags of chord pairs (``bag2``) is shown beside it.

Printed: the test split size and the test balanced accuracy of every ensemble (the one the
out-of-fold estimate picks marked), the best member and the forests. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "chords.yaml"


def forest(pooling: str, store: Path) -> tuple[float, float]:
    """(test balanced accuracy, seconds) of a 300-tree random forest on ``pooling`` features."""
    from features import FeatureStore
    from trainables import classification_metrics, fit

    started = time.perf_counter()
    data = FeatureStore(store)
    train, test = data.load("chords", "raw", split="train"), data.load("chords", "raw", split="test")
    result = fit("random_forest", {"n_estimators": 300, "pooling": pooling}, train, None, seed=0,
                 return_weights=True)
    proba = result.weights.predict_proba(test)
    score = classification_metrics(test.y, proba, n_classes=test.n_classes)["balanced_accuracy"]
    return float(score), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--sequences", type=int, default=60, help="sequences per class")
    parser.add_argument("--trials", type=int, default=None, help="default: the example's num_samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import pandas as pd

    from features import FeatureStore, import_files
    from features.synth_tokens import write_token_dataset
    from results.ensemble.spec import load_spec
    from results.pipeline import finish_sweep
    from search.sweep import run_sweep

    work = args.workdir or Path(tempfile.mkdtemp(prefix="seqsweep-tokens-"))
    path = write_token_dataset(work / "data", classes=args.classes, sequences=args.sequences, seed=args.seed)
    summary = import_files([path], store=work / "store", dataset="chords")
    print(summary)
    test = FeatureStore(work / "store").load("chords", "raw", split="test")

    spec = load_spec(EXAMPLE, store=str(work / "store"), storage=str(work / "runs"), num_samples=args.trials)
    started = time.perf_counter()
    outcome = run_sweep(spec, verbose=0, echo=print)
    finished = finish_sweep(outcome.experiment_dir, echo=lambda *_: None, report=False)
    minutes = (time.perf_counter() - started) / 60
    table = pd.read_csv(Path(outcome.experiment_dir) / "ensembles.csv", dtype={"members": str})
    board = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard.csv", dtype={"trial_id": str})

    bag, bag_s = forest("bag", work / "store")
    bag2, bag2_s = forest("bag2", work / "store")
    final = finished.final_row()  # what seqsweep hands over, chosen inside the cross-fit
    chosen = None if final is None else final["method"]
    members = table[table["kind"] == "member"]
    best = members.iloc[0]
    best_model = board.loc[board["trial_id"] == best["members"], "model"]
    print(f"\n{args.classes} classes x {args.sequences} synthetic chord sequences, vocabulary "
          f"{test.vocab_size} ids; sweep {EXAMPLE.name}: {len(board)} trials, "
          f"{spec.cv.folds}-fold CV x {spec.cv.seeds} seeds on train, top {spec.ensemble.top_k} ensembled, "
          f"{minutes:.1f} min")
    print(f"test split: {len(test)} sequences (never seen by the sweep)")
    print(f"  {'':46}{'TEST balanced accuracy':>24}")
    for row in table[table["kind"] == "ensemble"].itertuples():
        mark = "  <- the final choice (handed over)" if row.method == chosen else ""
        print(f"  {'sweep ensemble ' + row.method:46}{row.test_balanced_accuracy:>24.3f}{mark}")
    label = f"sweep best member ({best_model.iloc[0] if len(best_model) else '?'}, rank 1 by CV)"
    print(f"  {label:46}{best['test_balanced_accuracy']:>24.3f}")
    print(f"  {'random forest, bag of chords (plain)':46}{bag:>24.3f}   ({bag_s:.1f} s)")
    print(f"  {'random forest, bag of chords + chord pairs':46}{bag2:>24.3f}   ({bag2_s:.1f} s)")
    models = dict(zip(board["trial_id"], board["model"]))
    names = [f"{t}={models.get(t, '?')}" for t in members["members"]]
    print(f"ensemble members (the top {len(names)} trials): {', '.join(names)}")


if __name__ == "__main__":
    main()
