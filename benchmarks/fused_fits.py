"""Fused CV fits vs one fit after another: a trial's 10 fits (5 folds x 2 seeds), per family.

    python benchmarks/fused_fits.py                        # every torch family at both sizes
    python benchmarks/fused_fits.py --families lstm cnn1d --sizes japanese_vowels --epochs 3
    python benchmarks/fused_fits.py --calibrate            # + more sizes: where auto's threshold lies
    python benchmarks/fused_fits.py --sweep                # + the examples/japanese_vowels.yaml sweep,
                                                           #   train.fused false vs auto (needs the
                                                           #   sweep's train.fused key)

Sizes (the data and the models a trial of each example trains):

- ``japanese_vowels``: the real JapaneseVowels train split that aeon ships (270 clips,
  12 channels, 7-29 frames, 9 classes), imported with seqsweep's ``.ts`` importer. Models
  from the middle of examples/japanese_vowels.yaml's space: cnn1d 2 blocks x 64 filters,
  kernel 5; lstm 2 x 64 units, bidirectional; batch 16. cnn, wavenet and inception_time
  are not in that example: the registry defaults (inception_time's are the paper's: 6
  modules of 4 x 32 filters, kernels 40/20/10, bottleneck 32), batch 16.
- ``gtzan``: the shapes of examples/gtzan_lstm.yaml (no GTZAN audio here, so synthetic
  frames): 3 s mfcc27 segments (T = 130, D = 27), 10 genres, 60 clips of 6 segments (a
  clip is a group): 360 segments, a slice of GTZAN's 10 000 (both paths scale alike with N).
  lstm 2 x 64 units, batch 32, early stopping with patience 10 (the example's); the other
  families at the registry defaults, batch 32, except inception_time: 3 modules of 4 x 16
  filters, kernels 20/10/5, bottleneck 16 (the paper's network is 15x that work a step).

Each case trains the 10 fits of `trainables.trial.folds.make_plan` (5 folds x 2 seeds) twice, with
the trial's CPU share (``--threads``, default 1, as ``resources.cpus: 1``): fused
(`trainables.fused.many.fit_many`) and sequential (`trainables.fit` in a loop, as the trial
does today), after one untimed warm-up epoch of each. Printed: the forward MFLOP of one
replica's training step (what ``auto`` decides on, `trainables.fused.many.step_flops`), fits per
second of each path and their ratio, the mean validation accuracy of each (a sanity check,
not a comparison: 5 epochs), ``auto``'s choice, and the ratio of the process's CPU seconds
(``time.process_time``: with one torch thread, the work done, which a busy shared machine
disturbs less than it does the wall time); on CUDA also the GPU's mean
utilisation during each (``torch.cuda.utilization``, needs pynvml). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.sequences import SequenceSet  # noqa: E402
from trainables import fit  # noqa: E402
from trainables.fused.many import fit_many, step_flops, use_fused  # noqa: E402
from trainables.trial.folds import make_plan  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("lstm", "cnn", "cnn1d", "wavenet", "inception_time")

#: (model config, fixed training keys) per size and family; see the module docstring.
CASES: dict[str, dict[str, tuple[dict, dict]]] = {
    "japanese_vowels": {
        "lstm": ({"units": (64, 64), "bidirectional": True}, {"batch_size": 16, "lr": 3e-3}),
        "cnn": ({}, {"batch_size": 16, "lr": 3e-3}),
        "cnn1d": ({"filters": (64, 64), "kernel_size": 5}, {"batch_size": 16, "lr": 3e-3}),
        "wavenet": ({}, {"batch_size": 16, "lr": 3e-3}),
        "inception_time": ({}, {"batch_size": 16, "lr": 3e-3}),
    },
    "gtzan": {
        "lstm": ({"units": (64, 64), "dropout": 0.2}, {"batch_size": 32, "lr": 1e-3, "early_stopping_patience": 10}),
        "cnn": ({}, {"batch_size": 32, "lr": 1e-3, "early_stopping_patience": 10}),
        "cnn1d": ({}, {"batch_size": 32, "lr": 1e-3, "early_stopping_patience": 10}),
        "wavenet": ({}, {"batch_size": 32, "lr": 1e-3, "early_stopping_patience": 10}),
        "inception_time": ({"depth": 3, "filters": 16, "kernel_size": 20, "bottleneck": 16},
                           {"batch_size": 32, "lr": 1e-3, "early_stopping_patience": 10}),
    },
}


def japanese_vowels_store(root: Path) -> Path:
    """Import aeon's JapaneseVowels TRAIN/TEST files into a store at ``root`` (offline)."""
    import aeon

    from features import import_files

    source = Path(aeon.__file__).parent / "datasets" / "data" / "JapaneseVowels"
    import_files([source / "JapaneseVowels_TRAIN.ts", source / "JapaneseVowels_TEST.ts"], store=root,
                 dataset="japanese_vowels")
    return root


def gtzan_like(*, clips: int = 60, segments: int = 6, steps: int = 130, dim: int = 27, genres: int = 10,
               seed: int = 0) -> SequenceSet:
    """Synthetic mfcc27-shaped segments [shape=(clips * segments, steps, dim)], a genre per
    clip (a class-dependent mean plus noise), each clip's segments one group."""
    rng = np.random.default_rng(seed)
    xs, ys, groups = [], [], []
    for clip in range(clips):
        genre = clip % genres
        centre = rng.standard_normal(dim) * 0.3 + 0.15 * genre
        for _ in range(segments):
            xs.append((centre + rng.standard_normal((steps, dim))).astype(np.float32))
            ys.append(genre)
            groups.append(f"clip{clip}")
    ids = np.array([f"{g}#{i}" for i, g in enumerate(groups)], dtype=object)
    return SequenceSet(xs, np.array(ys), [f"genre{g}" for g in range(genres)], np.array(groups, dtype=object), ids)


class _GpuSampler:
    """Mean GPU utilisation (percent) while running, sampled every 50 ms; ``None`` on CPU."""

    def __init__(self, device: str) -> None:
        self.device, self.samples, self._stop = device, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.samples.append(torch.cuda.utilization())
            except Exception:  # pynvml missing: say so rather than guess
                return

    def __enter__(self) -> _GpuSampler:
        if self.device != "cpu":
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def mean(self) -> str:
        return f"{np.mean(self.samples):.0f}%" if self.samples else "n/a"


def run_case(data: SequenceSet, family: str, size: str, *, epochs: int, threads: int, device: str,
             case: tuple[dict, dict] | None = None) -> dict:
    """Time a trial's fits of one family, fused and sequential; fits/s, ratio, GPU use.
    ``case``: (model config, training keys), default ``CASES[size][family]``."""
    config, train = case or CASES[size][family]
    tc = {**train, "epochs": epochs, "num_threads": threads, "device": device}
    plan = make_plan(data, folds=5, seeds=2, base_seed=0)
    triples = [(f.seed, f.train, f.valid) for f in plan.fits]
    # warm-up: oneDNN / cuDNN plan their kernels on the first batches of each shape
    fit_many(family, config, data, triples[:2], train_config={**tc, "epochs": 1})
    fit(family, config, data.subset(triples[0][1]), data.subset(triples[0][2]), seed=0,
        train_config={**tc, "epochs": 1})
    out = {"family": family, "size": size, "fits": len(triples),
           "auto": use_fused(family, config, tc, device, len(triples), data=data),
           "mflop": step_flops(family, config, input_dim=data.dim, n_classes=data.n_classes, vocab_size=data.vocab_size,
                               steps=max(1, round(float(np.mean(data.lengths)))), batch_size=tc["batch_size"]) / 1e6}
    with _GpuSampler(device) as gpu:
        start, cpu = time.perf_counter(), time.process_time()
        fused = fit_many(family, config, data, triples, train_config=tc)
        out["fused_s"], out["fused_cpu"], out["fused_gpu"] = time.perf_counter() - start, time.process_time() - cpu, gpu
    with _GpuSampler(device) as gpu:
        start, cpu = time.perf_counter(), time.process_time()
        sequential = [fit(family, config, data.subset(tr), data.subset(va), seed=s, train_config=tc)
                      for s, tr, va in triples]
        out["seq_s"], out["seq_cpu"], out["seq_gpu"] = time.perf_counter() - start, time.process_time() - cpu, gpu
    out["fused_acc"] = float(np.mean([r.metrics["accuracy"] for r in fused]))
    out["seq_acc"] = float(np.mean([r.metrics["accuracy"] for r in sequential]))
    out["params"] = fused[0].n_params
    return out


def sweep_wall_times(samples: int | None) -> None:
    """examples/japanese_vowels.yaml's whole sweep with ``train.fused`` false, then auto."""
    import yaml

    from search.spec import SweepSpec
    from search.sweep import run_sweep

    work = Path(tempfile.mkdtemp(prefix="seqsweep-fused-sweep-"))
    store = japanese_vowels_store(work / "store")
    raw = yaml.safe_load((ROOT / "examples" / "japanese_vowels.yaml").read_text())
    times = {}
    for fused in (False, "auto"):
        spec_dict = {**raw, "name": f"jv_fused_{fused}".lower(), "store": str(store), "storage": str(work / "runs"),
                     "train": {**(raw.get("train") or {}), "fused": fused}}
        if samples is not None:
            spec_dict["search"] = {**raw["search"], "num_samples": samples}
        try:
            spec = SweepSpec.from_dict(spec_dict, source="examples/japanese_vowels.yaml")
        except Exception as exc:  # the spec does not know train.fused yet
            print(f"sweep: skipped, the sweep spec does not take train.fused yet ({exc})")
            return
        start = time.perf_counter()
        run_sweep(spec, verbose=0, echo=lambda *_: None)
        times[fused] = time.perf_counter() - start
        print(f"sweep examples/japanese_vowels.yaml, train.fused={fused}: {times[fused]:.0f} s "
              f"({spec.search.num_samples} trials, Ray start included)", flush=True)
    print(f"sweep wall time ratio, false / auto: {times[False] / times['auto']:.2f}x")


#: ``--calibrate``: more sizes per family, to place ``auto``'s threshold (MFLOP per step).
CALIBRATION: dict[str, list[tuple[str, dict, dict]]] = {
    "japanese_vowels": [
        ("lstm", {"units": (16,)}, {"batch_size": 16}),
        ("lstm", {"units": (32,)}, {"batch_size": 16}),
        ("lstm", {"units": (32,), "bidirectional": True}, {"batch_size": 16}),
        ("lstm", {"units": (64,)}, {"batch_size": 16}),
        ("lstm", {"units": (96, 96), "bidirectional": True}, {"batch_size": 32}),
        ("cnn1d", {"filters": (32, 32), "kernel_size": 3}, {"batch_size": 16}),
        ("cnn1d", {"filters": (128, 128, 128), "kernel_size": 5}, {"batch_size": 32}),
        ("cnn", {"filters": (8, 16)}, {"batch_size": 16}),
        ("cnn", {"filters": (32, 64)}, {"batch_size": 32}),
        ("wavenet", {"residual_channels": 32, "skip_channels": 64}, {"batch_size": 32}),
        ("inception_time", {"depth": 3, "filters": 8, "kernel_size": 20, "bottleneck": 8}, {"batch_size": 16}),
        ("inception_time", {"depth": 3, "filters": 16, "kernel_size": 20, "bottleneck": 16}, {"batch_size": 16}),
        ("inception_time", {"depth": 6, "filters": 16, "kernel_size": 40, "bottleneck": 16}, {"batch_size": 16}),
        ("inception_time", {"depth": 3, "filters": 32, "kernel_size": 20}, {"batch_size": 16}),
        ("inception_time", {"depth": 6, "filters": 32, "kernel_size": 20}, {"batch_size": 16}),
    ],
    "gtzan": [
        ("lstm", {"units": (16,)}, {"batch_size": 32}),
        ("cnn1d", {"filters": (16,)}, {"batch_size": 32}),
        ("cnn", {"filters": (4, 8)}, {"batch_size": 32}),
        ("wavenet", {"layers_per_stack": 2, "residual_channels": 8, "skip_channels": 8}, {"batch_size": 32}),
        ("inception_time", {"depth": 3, "filters": 8, "kernel_size": 20, "bottleneck": 8}, {"batch_size": 32}),
    ],
}


def _row(r: dict, device: str) -> str:
    line = (f"{r['size']:<16}{r['family']:<9}{r['params']:>8}{r['mflop']:>8.1f}{r['fits'] / r['seq_s']:>12.3f}"
            f"{r['fits'] / r['fused_s']:>14.3f}{r['seq_s'] / r['fused_s']:>7.2f}x"
            f"{r['seq_acc']:>9.3f}{r['fused_acc']:>11.3f}{'fused' if r['auto'] else 'seq':>7}"
            f"{r['seq_cpu'] / r['fused_cpu']:>9.2f}x")
    if device != "cpu":
        line += f"{r['seq_gpu'].mean:>9}{r['fused_gpu'].mean:>11}"
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--sizes", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--epochs", type=int, default=5, help="epochs per fit (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads: the trial's CPU share (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--calibrate", action="store_true", help="also the extra sizes that place auto's threshold")
    parser.add_argument("--sweep", action="store_true", help="also time examples/japanese_vowels.yaml's sweep")
    parser.add_argument("--sweep-samples", type=int, default=None, help="trials in that sweep (default: the YAML's)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    where = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"CPU, {args.threads} torch thread(s)"
    print(f"torch {torch.__version__}, {where}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; "
          f"{args.epochs} epochs per fit; 10 fits (5 folds x 2 seeds) per case")
    sets = {}
    if "japanese_vowels" in args.sizes:
        from features import FeatureStore

        store = japanese_vowels_store(Path(tempfile.mkdtemp(prefix="seqsweep-jv-")))
        sets["japanese_vowels"] = FeatureStore(store).load("japanese_vowels", "raw", split="train", padded=True)
    if "gtzan" in args.sizes:
        sets["gtzan"] = gtzan_like()
    header = (f"{'size':<16}{'family':<9}{'params':>8}{'MFLOP':>8}{'seq fits/s':>12}{'fused fits/s':>14}"
              f"{'ratio':>8}{'seq acc':>9}{'fused acc':>11}{'auto':>7}{'cpu ratio':>10}")
    print(header + (f"{'seq GPU':>9}{'fused GPU':>11}" if device != "cpu" else ""))
    for size, data in sets.items():
        for family in args.families:
            print(_row(run_case(data, family, size, epochs=args.epochs, threads=args.threads, device=device), device),
                  flush=True)
    if args.calibrate:
        print("calibration (MFLOP: forward FLOPs of one replica's training step; lr 1e-3):")
        for size, data in sets.items():
            for family, config, train in CALIBRATION[size]:
                if family in args.families:
                    r = run_case(data, family, size, epochs=args.epochs, threads=args.threads, device=device,
                                 case=(config, {"lr": 1e-3, **train}))
                    print(_row(r, device) + f"  {config}", flush=True)
    if device == "cpu" and not torch.cuda.is_available():
        print("GPU: none on this machine; no GPU figures were measured")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.sweep:
        sweep_wall_times(args.sweep_samples)


if __name__ == "__main__":
    main()
