"""Fold-paired Wilcoxon pruning vs ASHA vs no scheduler, on the same sweep, in one run; and
the Wilcoxon rule's false-stop rate in a simulation, before and after its correction.

    python benchmarks/pruning.py                 # both parts; 16 trials, 3 folds x 2 seeds, synthetic genres
    python benchmarks/pruning.py --trials 24
    python benchmarks/pruning.py --only simulation   # seconds, no Ray

**Simulation** (`search.wilcoxon.simulate_stops`): 15 fits a trial (the spec's default 5
folds x 3 seeds), first look after 5. How often a configuration exactly as good as the
incumbent's true level is stopped, against one finished trial and against the best of 10,
BEFORE (p < 0.1 at every look, the rule `search.wilcoxon` had until it spent the level
over looks and candidates; written out here) and AFTER (`search.wilcoxon.stops`), beside
the nominal 0.1; then how often, and after how many fits on average, configurations 1 and 2
noise sds worse are stopped (what the correction costs).

The three sweeps share everything (data, search space, sampler seed, fold plan), so the
sampler proposes the same first configurations; they differ only in which trials a
scheduler stops. Printed per scheduler: trials pruned, (seed, fold) fits run, wall time
(Ray's start paid once, before all three), and the best objective among finished trials
(the CV mean a user reads). Nothing is asserted.

What to expect: a scheduler saves fits only on configurations that are clearly worse, and
the best objective can only drop if it stops a configuration that would have won.
ASHA compares a trial's running mean with other trials' at the same step; the Wilcoxon
scheduler compares it fold by fold with the best finished trial, so it stops only trials
it has paired evidence against (4 fits at least at p < 0.1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def make_data(root: Path) -> Path:
    from features import FeatureSpec, extract_audio
    from features.synth import write_dataset

    write_dataset(root / "audio", classes=4, clips=16, seconds=2.0, seed=1)
    extract_audio(root / "audio", store=root / "store", dataset="bench", spec=FeatureSpec.create("mfcc27"),
                  use_ray=False, progress=False)
    return root / "store"


def spec_dict(store: Path, storage: Path, *, name: str, scheduler: str, trials: int) -> dict:
    return {
        "name": name, "store": str(store), "dataset": "bench", "feature_set": "mfcc27",
        "cv": {"folds": 3, "seeds": 2},
        "search": {"num_samples": trials, "sampler": "random", "seed": 0, "scheduler": scheduler,
                   "max_concurrent": 2},
        # a wide space: some configurations are hopeless (tiny lr, one epoch), some good
        "models": {"lstm": {"num_layers": [1, 2], "units": {"low": 8, "high": 32, "step": 8},
                            "lr": {"low": 1e-4, "high": 3e-2, "log": True}, "epochs": {"low": 2, "high": 12},
                            "batch_size": [16]},
                   "knn": {"n_neighbors": {"low": 1, "high": 40}}},
        "storage": str(storage),
    }


SIM_FITS, SIM_FIRST_LOOK, SIM_ALPHA, SIM_NOISE = 15, 5, 0.1, 0.03


def simulation(reps: int) -> None:
    """Print the false-stop rates before and after, and what the correction costs."""
    import pandas as pd

    from search.wilcoxon import one_sided_p, simulate_stops, stops

    def before(diffs) -> bool:  # the old rule: the uncorrected threshold at every look
        return one_sided_p(diffs) < SIM_ALPHA

    def after(candidates: int):
        return lambda diffs: stops(diffs, p_threshold=SIM_ALPHA, looks=SIM_FITS - SIM_FIRST_LOOK,
                                   candidates=candidates) is not None

    rows = []
    for shift, n in ((0.0, reps), (-SIM_NOISE, reps // 3), (-2 * SIM_NOISE, reps // 3)):
        for candidates in (1, 10):
            common = dict(candidates=candidates, fits=SIM_FITS, min_fits=SIM_FIRST_LOOK, shift=shift, reps=n,
                          seed=candidates, noise_sd=SIM_NOISE)
            old, new = simulate_stops(before, **common), simulate_stops(after(candidates), **common)
            rows.append({"config vs incumbent": "equal" if shift == 0 else f"{shift / SIM_NOISE:.0f} noise sd",
                         "incumbent": "1 trial" if candidates == 1 else f"best of {candidates}", "configs": n,
                         "stopped BEFORE": old.stopped, "stopped AFTER": new.stopped,
                         "fits BEFORE": old.mean_fits, "fits AFTER": new.mean_fits})
    table = pd.DataFrame(rows).set_index(["config vs incumbent", "incumbent"])
    print(f"simulation: {SIM_FITS} fits a trial, first look after {SIM_FIRST_LOOK}, per-fit noise sd {SIM_NOISE}; "
          f"nominal false-stop rate {SIM_ALPHA}")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--reps", type=int, default=1000, help="simulated configurations per row (equal ones)")
    parser.add_argument("--only", choices=["simulation", "sweeps"], default=None)
    args = parser.parse_args()
    if args.only != "sweeps":
        simulation(args.reps)
    if args.only == "simulation":
        return

    import os

    import pandas as pd

    from search.spec import SweepSpec
    from search.sweep import run_sweep
    from seqsweep.ray_runtime import ensure_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="seqsweep-prune-"))
    store = make_data(work)
    ensure_ray(None)  # started once, before any timing
    rows = []
    for scheduler in ("none", "asha", "wilcoxon"):
        spec = SweepSpec.from_dict(spec_dict(store, work / "runs", name=scheduler, scheduler=scheduler,
                                             trials=args.trials))
        started = time.perf_counter()
        outcome = run_sweep(spec, verbose=0, echo=lambda *_: None)
        seconds = time.perf_counter() - started
        board = pd.read_csv(Path(outcome.experiment_dir) / "leaderboard.csv")
        fits = len(pd.read_csv(Path(outcome.experiment_dir) / "leaderboard_folds.csv"))
        best = board.loc[board["status"] == "ok", "objective"].max()
        rows.append({"scheduler": scheduler, "trials": len(board), "pruned": int((board["status"] == "pruned").sum()),
                     "fits run": fits, "wall s": round(seconds, 1), "best objective": round(float(best), 4)})
    table = pd.DataFrame(rows).set_index("scheduler")
    base = table.loc["none"]
    table["fits vs none"] = (table["fits run"] / base["fits run"]).map(lambda v: f"{v:.2f}x")
    table["wall vs none"] = (table["wall s"] / base["wall s"]).map(lambda v: f"{v:.2f}x")
    print(f"{args.trials} trials (LSTM and kNN on synthetic genres, 64 clips, 3 folds x 2 seeds = 6 fits a trial), "
          "2 at once, the same sampler seed for all three")
    print(table.to_string())


if __name__ == "__main__":
    main()
