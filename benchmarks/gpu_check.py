"""GPU check: sweep throughput with 1, 2 and 4 trials packed on one GPU, and proof that
LSTM trials take the cuDNN kernels in mixed precision.

For a machine with an NVIDIA GPU. Without one (``torch.cuda.is_available()`` False) it
says so and exits with status 0.

What it does, in one run:

1. writes synthetic audio (`features.synth.write_dataset`) and extracts ``mfcc27`` into a
   fresh feature store (`features.extract_audio`, in this process);
2. starts a local Ray instance that sees one GPU and runs the same small LSTM sweep
   (`search.sweep.run_sweep`, every trial the same fixed configuration) once per packing:
   ``resources: {cpus: 1, gpus: 1/k}`` for k = 1, 2, 4 trials per GPU, while a background
   thread samples ``nvidia-smi --query-gpu=utilization.gpu,memory.used`` every 0.5 s;
3. fits one LSTM with `trainables.fit` (device cuda, amp auto) under the torch profiler and
   a forward hook on every module, and reports: the fit's device, whether cuDNN is enabled,
   the ``aten::_cudnn_rnn`` calls, the dtype the LSTM layers put out (float16 = autocast
   active), the RNN kernels and the half-precision GEMM kernels that ran (by kernel name).

Printed per packing: trials at once, wall seconds of the sweep (data loading and Ray Tune
set-up included), trials per minute, mean seconds of one (seed, fold) fit, "busy" (sum of
fit seconds / wall seconds: how many fits ran at once on average), and GPU utilisation
(mean and max over the sweep's samples) and peak GPU memory. Nothing is asserted.

    python benchmarks/gpu_check.py                      # defaults: 8 trials per packing
    python benchmarks/gpu_check.py --trials 16 --epochs 40 --units 256
    python benchmarks/gpu_check.py --cpu-dry-run        # exercise the script without a GPU

``--cpu-dry-run`` tells Ray of one *logical* GPU on a CPU-only machine so the sweeps, the
table and the profiling run end to end; its numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from seqsweep.layout import FOLDS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASET = "gpucheck"
FEATURE_SET = "mfcc27"
HALF_KERNEL = re.compile(r"f16|fp16|half|bf16|h884|h1688|h16816|hgemm", re.IGNORECASE)
RNN_KERNEL = re.compile(r"rnn|lstm|cudnn", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# GPU utilisation sampling
# ---------------------------------------------------------------------------------------
@dataclass
class GpuSamples:
    util: list[float] = field(default_factory=list)
    mem_mib: list[float] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> tuple[str, str, str]:
        """(mean util %, max util %, max memory MiB) as table cells."""
        if not self.util:
            return ("n/a", "n/a", "n/a")
        mean = sum(self.util) / len(self.util)
        return (f"{mean:.0f}", f"{max(self.util):.0f}", f"{max(self.mem_mib):.0f}")


class GpuSampler:
    """Samples one GPU's utilisation and memory with nvidia-smi in a background thread."""

    def __init__(self, gpu_id: str, interval: float = 0.5) -> None:
        self.gpu_id = gpu_id
        self.interval = interval
        self.samples = GpuSamples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nvidia-smi sampler", daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        command = ["nvidia-smi", f"--id={self.gpu_id}", "--query-gpu=utilization.gpu,memory.used",
                   "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                out = subprocess.run(command, capture_output=True, text=True, timeout=5, check=True).stdout
                util, mem = (float(v) for v in out.strip().splitlines()[0].split(","))
                self.samples.util.append(util)
                self.samples.mem_mib.append(mem)
            except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
                self.samples.error = f"{type(exc).__name__}: {exc}"
                return  # no nvidia-smi (or no such GPU): stop sampling, report n/a
            self._stop.wait(self.interval)


def physical_gpu_id() -> str:
    """The GPU Ray's GPU 0 is: the first of CUDA_VISIBLE_DEVICES if set, else index 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return visible or "0"


# ---------------------------------------------------------------------------------------
# data and sweeps
# ---------------------------------------------------------------------------------------
def make_store(work: Path, args: argparse.Namespace) -> Path:
    from features import FeatureSpec, extract_audio
    from features.synth import write_dataset

    write_dataset(work / "audio", classes=args.classes, clips=args.clips, seconds=args.seconds, seed=0)
    summary = extract_audio(work / "audio", store=work / "store", dataset=DATASET,
                            spec=FeatureSpec.create(FEATURE_SET), use_ray=False, progress=False)
    if summary.failed:
        raise SystemExit(f"feature extraction failed for {summary.failed} clips: {summary}")
    return work / "store"


def sweep_spec(store: Path, storage: Path, *, name: str, gpus: float, args: argparse.Namespace) -> dict:
    """One fixed LSTM configuration, so every packing trains exactly the same trials."""
    return {
        "name": name, "store": str(store), "dataset": DATASET, "feature_set": FEATURE_SET,
        "cv": {"folds": args.folds, "seeds": args.seeds},
        "search": {"num_samples": args.trials, "sampler": "random", "seed": 0},
        "models": {"lstm": {"num_layers": 2, "units": args.units, "lr": 3.0e-3,
                            "epochs": args.epochs, "batch_size": args.batch_size}},
        "train": {"device": "auto", "amp": "auto", "early_stopping_patience": None},
        "resources": {"cpus": args.cpus_per_trial, "gpus": gpus},
        "storage": str(storage),
    }


@dataclass
class SweepRow:
    per_gpu: int
    gpus: float
    at_once: int
    trials: int
    ok: int
    wall_s: float
    fit_s_mean: float
    fit_s_sum: float
    samples: GpuSamples
    errors: list[str]

    def cells(self) -> list[str]:
        util_mean, util_max, mem_max = self.samples.summary()
        per_min = 60.0 * self.ok / self.wall_s if self.wall_s > 0 else float("nan")
        return [str(self.per_gpu), f"{self.gpus:g}", str(self.at_once), f"{self.ok}/{self.trials}",
                f"{self.wall_s:.1f}", f"{per_min:.2f}", f"{self.fit_s_mean:.2f}",
                f"{self.fit_s_sum / self.wall_s:.2f}", util_mean, util_max, mem_max]


def run_packing(store: Path, storage: Path, per_gpu: int, args: argparse.Namespace) -> SweepRow:
    import pandas as pd

    from search.spec import SweepSpec
    from search.sweep import run_sweep, trial_capacity
    from seqsweep.layout import read_leaderboard

    gpus = 1.0 / per_gpu
    spec = SweepSpec.from_dict(sweep_spec(store, storage, name=f"pack{per_gpu}", gpus=gpus, args=args))
    at_once, _ = trial_capacity(spec.resources.cpus, spec.resources.gpus)
    started = time.perf_counter()
    with GpuSampler(physical_gpu_id()) as sampler:
        outcome = run_sweep(spec, verbose=0, echo=lambda *_: None)
    wall = time.perf_counter() - started
    board = read_leaderboard(outcome.experiment_dir)
    folds_path = Path(outcome.experiment_dir) / FOLDS
    folds = pd.read_csv(folds_path) if folds_path.exists() else pd.DataFrame({"seconds": []})
    seconds = pd.to_numeric(folds["seconds"], errors="coerce").dropna()
    errors = [f"trial {r['trial_id']}: {r['error']}" for _, r in board.iterrows()
              if r["status"] != "ok" and isinstance(r.get("error"), str)]
    return SweepRow(per_gpu=per_gpu, gpus=gpus, at_once=min(at_once, args.trials), trials=outcome.trials,
                    ok=outcome.ok, wall_s=wall, fit_s_mean=float(seconds.mean()) if len(seconds) else float("nan"),
                    fit_s_sum=float(seconds.sum()), samples=sampler.samples, errors=errors)


# ---------------------------------------------------------------------------------------
# the cuDNN / mixed-precision proof
# ---------------------------------------------------------------------------------------
@dataclass
class PathCheck:
    device: str
    cudnn_enabled: bool
    cudnn_version: int | None
    expected_amp: str
    cudnn_rnn_calls: int
    lstm_dtypes: dict[str, int]
    linear_dtypes: dict[str, int]
    rnn_kernels: list[tuple[str, int]]
    gemm_kernels: int
    half_gemm_kernels: int
    half_gemm_names: list[str]

    @property
    def uses_cudnn(self) -> bool:
        return self.device.startswith("cuda") and self.cudnn_rnn_calls > 0

    @property
    def uses_fp16(self) -> bool:
        return self.device.startswith("cuda") and set(self.lstm_dtypes) == {"torch.float16"}


def check_paths(store: Path, device: str, args: argparse.Namespace) -> PathCheck:
    import numpy as np
    import torch
    from torch.autograd import DeviceType
    from torch.nn.utils.rnn import PackedSequence
    from torch.profiler import ProfilerActivity, profile

    from features import FeatureStore
    from trainables import LSTMConfig, fit
    from trainables.networks.lstm import LSTMClassifier

    data = FeatureStore(store).load(DATASET, FEATURE_SET, split="train", padded=True)
    index = np.arange(len(data))
    train, valid = data.subset(index[0::2]), data.subset(index[1::2])

    dtypes: dict[str, collections.Counter] = {"LSTM": collections.Counter(), "Linear": collections.Counter()}

    def record_dtype(module: torch.nn.Module, _inputs: object, output: object) -> None:
        kind = type(module).__name__
        if kind not in dtypes:
            return
        out = output[0] if isinstance(output, tuple) else output
        out = out.data if isinstance(out, PackedSequence) else out
        if isinstance(out, torch.Tensor):
            dtypes[kind][str(out.dtype)] += 1

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    handle = torch.nn.modules.module.register_module_forward_hook(record_dtype)
    try:
        with profile(activities=activities) as prof:
            result = fit("lstm", LSTMConfig(units=(args.units, args.units)), train, valid, seed=0,
                         train_config={"epochs": 1, "batch_size": args.batch_size, "device": device,
                                       "amp": "auto", "early_stopping_patience": None})
            if device == "cuda":
                torch.cuda.synchronize()
    finally:
        handle.remove()

    events = prof.key_averages()
    kernels = [(e.key, e.count) for e in events if e.device_type == DeviceType.CUDA]
    gemms = [(k, n) for k, n in kernels if "gemm" in k.lower()]
    half_gemms = [(k, n) for k, n in gemms if HALF_KERNEL.search(k)]
    expected = LSTMClassifier.auto_amp if device == "cuda" else None
    return PathCheck(
        device=result.device,
        cudnn_enabled=bool(torch.backends.cudnn.enabled),
        cudnn_version=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        expected_amp=str(expected) if expected is not None else "off (CPU)",
        cudnn_rnn_calls=sum(e.count for e in events if e.key == "aten::_cudnn_rnn"),
        lstm_dtypes=dict(dtypes["LSTM"]),
        linear_dtypes=dict(dtypes["Linear"]),
        rnn_kernels=sorted(((k, n) for k, n in kernels if RNN_KERNEL.search(k)), key=lambda kn: -kn[1])[:5],
        gemm_kernels=sum(n for _, n in gemms),
        half_gemm_kernels=sum(n for _, n in half_gemms),
        half_gemm_names=[k for k, _ in sorted(half_gemms, key=lambda kn: -kn[1])[:3]],
    )


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------
def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def short(name: str, limit: int = 90) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


def print_paths(check: PathCheck) -> None:
    print("\nOne LSTM fit (1 epoch, amp=auto) under the torch profiler:")
    lines = [
        ("device of the fit", check.device),
        ("cuDNN enabled / version", f"{check.cudnn_enabled} / {check.cudnn_version}"),
        ("autocast dtype amp=auto picks", check.expected_amp),
        ("aten::_cudnn_rnn calls", str(check.cudnn_rnn_calls)),
        ("LSTM layer outputs", ", ".join(f"{k} x{v}" for k, v in check.lstm_dtypes.items()) or "none"),
        ("Linear layer outputs", ", ".join(f"{k} x{v}" for k, v in check.linear_dtypes.items()) or "none"),
        ("GEMM kernels, half precision", f"{check.half_gemm_kernels} of {check.gemm_kernels} launches"),
    ]
    for label, value in lines:
        print(f"  {label:<31}{value}")
    for name, count in check.rnn_kernels:
        print(f"  {'RNN kernel':<31}{short(name)} x{count}")
    for name in check.half_gemm_names:
        print(f"  {'half GEMM kernel':<31}{short(name)}")
    if check.device.startswith("cuda"):
        print(f"  cuDNN LSTM path: {'yes' if check.uses_cudnn else 'NO'}; "
              f"fp16 autocast in the LSTM: {'yes' if check.uses_fp16 else 'NO'}")
    else:
        print("  (CPU dry run: no cuDNN and no autocast to see here)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-gpu", type=int, nargs="+", default=[1, 2, 4], metavar="K",
                        help="trials packed on one GPU, one sweep each (gpus per trial = 1/K; default 1 2 4)")
    parser.add_argument("--trials", type=int, default=8, help="LSTM trials per sweep (default 8)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per fit (default 30)")
    parser.add_argument("--units", type=int, default=128, help="units of each of the 2 LSTM layers (default 128)")
    parser.add_argument("--batch-size", type=int, default=16, help="default 16")
    parser.add_argument("--folds", type=int, default=2, help="CV folds per trial (default 2)")
    parser.add_argument("--seeds", type=int, default=1, help="CV seeds per trial (default 1)")
    parser.add_argument("--classes", type=int, default=4, help="synthetic classes (default 4)")
    parser.add_argument("--clips", type=int, default=50, help="synthetic clips per class (default 50)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per clip (default 3)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs Ray may use (default: all)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep audio, store and sweeps here (default: a temporary folder, removed)")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="no GPU needed: Ray is told of one logical GPU, fits run on the CPU "
                             "(tests the script; its numbers mean nothing)")
    args = parser.parse_args(argv)
    if any(k < 1 for k in args.per_gpu):
        parser.error("--per-gpu values must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.cpu_dry_run:
        print(f"gpu_check: no CUDA GPU here (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda or 'none'}: torch.cuda.is_available() is False). Nothing to "
              "measure; run it on a machine with an NVIDIA GPU (--cpu-dry-run exercises it on CPU).")
        return 0

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import optuna
    import ray

    from seqsweep.ray_runtime import init_local_ray

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one "study created" line per sweep

    device = "cuda" if torch.cuda.is_available() and not args.cpu_dry_run else "cpu"
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="gpuchk-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        store = make_store(work, args)
        print(f"data: {args.classes} classes x {args.clips} clips x {args.seconds:g} s synthetic audio -> "
              f"{FEATURE_SET} store in {time.perf_counter() - started:.1f} s")
        if device == "cuda":
            props = torch.cuda.get_device_properties(0)
            print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB; torch {torch.__version__} "
                  f"(CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}); Ray {ray.__version__}")
        else:
            print(f"CPU dry run: torch {torch.__version__}, Ray {ray.__version__}; one logical GPU, fits on CPU")

        # a fresh local instance (never an existing cluster) that sees exactly one GPU
        init_local_ray(num_cpus=args.num_cpus, num_gpus=1, include_dashboard=False,
                       log_to_driver=False, _temp_dir=str(work / "ray"))
        print(f"sweeps: {args.trials} trials each of one LSTM (2 x {args.units} units, {args.epochs} epochs, "
              f"batch {args.batch_size}), {args.folds} folds x {args.seeds} seeds, "
              f"{args.cpus_per_trial:g} CPU per trial; Ray sees {ray.cluster_resources().get('CPU', 0):g} CPUs, 1 GPU")
        rows: list[SweepRow] = []
        for per_gpu in args.per_gpu:
            row = run_packing(store, work / "runs", per_gpu, args)
            rows.append(row)
            print(f"  {per_gpu} per GPU: {row.ok}/{row.trials} trials ok in {row.wall_s:.1f} s", flush=True)
        ray.shutdown()

        print()
        print_table(["trials/GPU", "GPU/trial", "at once", "ok", "wall s", "trials/min", "fit s",
                     "busy", "util %", "util max", "mem MiB"], [r.cells() for r in rows])
        print("(fit s: mean seconds of one (seed, fold) fit; busy: fit seconds / wall seconds; "
              "util: nvidia-smi samples over the whole sweep)")
        for row in rows:
            if row.samples.error:
                print(f"  {row.per_gpu}/GPU: GPU sampling stopped: {row.samples.error}")
            for error in row.errors[:3]:
                print(f"  {row.per_gpu}/GPU failed {error}")

        print_paths(check_paths(store, device, args))
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
