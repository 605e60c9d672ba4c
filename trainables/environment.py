"""Where and how a fit runs: seeds, threads, determinism, device, precision."""

from __future__ import annotations

import contextlib
import functools
import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from seqsweep.errors import ConfigError
from trainables.configs import TrainConfig

__all__ = [
    "seed_everything",
    "resolve_device",
    "resolve_amp",
    "autocast",
    "fit_environment",
    "eval_batch",
    "cpu_bf16",
    "amp_problem",
    "cpu_name",
    "BF16_RULE",
]

#: What ``train.amp: bf16`` asks of the machine a fit runs on.
BF16_RULE = "bf16 autocast needs a CPU with bf16 support, or CUDA"


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (legacy global RNG: other code may draw from it)
    torch.manual_seed(seed)  # seeds CUDA too
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("train.device", "CUDA was asked for but torch sees no GPU", name)
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError("train.device", f"must name one of {torch.cuda.device_count()} GPUs", name)
    return device


def cpu_name() -> str:
    """This machine's processor model and its bf16-relevant instruction sets, in one line
    (from ``/proc/cpuinfo`` on Linux; the platform's name elsewhere)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    fields = {key.strip(): value.strip() for key, value in
              (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    model = fields.get("model name") or "unknown CPU"
    flags = sorted(f for f in fields.get("flags", "").split() if f in ("avx512f", "avx512_bf16", "amx_bf16"))
    return f"{model} [{', '.join(flags) or 'no avx512f, avx512_bf16 or amx_bf16'}]"


@functools.cache
def cpu_bf16() -> tuple[bool, str]:
    """Whether bf16 autocast runs on this CPU: ``(ok, what was found)``, probed once a process.

    The probe runs what the families run under ``torch.autocast("cpu", dtype=bfloat16)``: an
    LSTM step (oneDNN has no bf16 LSTM kernel without AVX-512: "could not create a
    primitive descriptor for the LSTM forward propagation primitive") and a convolution.
    """
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(2, 2, batch_first=True)(torch.zeros(1, 2, 2))
            torch.nn.Conv1d(2, 2, 3)(torch.zeros(1, 2, 4))
    except RuntimeError as exc:
        return False, f"{cpu_name()}: {str(exc).splitlines()[0]}"
    return True, cpu_name()


def resolve_amp(amp: str, device: torch.device, preferred: torch.dtype | None = None) -> torch.dtype | None:
    """The autocast dtype ``amp`` asks for on ``device`` (None: full fp32).

    Raises `ConfigError` where the device cannot run it: fp16 off CUDA, bf16 on a CPU
    without bf16 support (`cpu_bf16`). A sweep meets the same rule when its spec is checked.
    """
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.amp", "fp16 autocast needs CUDA (use 'bf16' or 'off' on CPU)", amp)
        return torch.float16
    if amp == "bf16":
        if device.type == "cpu":
            ok, found = cpu_bf16()
            if not ok:
                raise ConfigError("train.amp", f"{BF16_RULE} (use 'off' here)", f"bf16 on {found}")
        return torch.bfloat16
    if preferred is not None:  # auto on CUDA: the model's choice (LSTM: fp16 for cuDNN)
        return preferred
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def amp_problem(amp: str, device: str = "auto") -> ConfigError | None:
    """What stops a fit with ``amp`` on ``device`` (a `TrainConfig.device` name) on this
    machine, or None: `resolve_amp`'s and `resolve_device`'s rules, returned rather than
    raised so that a Ray task can hand the error back whole."""
    try:
        resolve_amp(amp, resolve_device(device))
    except ConfigError as exc:
        return exc
    return None


def autocast(device: torch.device, amp: torch.dtype | None) -> contextlib.AbstractContextManager:
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp)


@contextlib.contextmanager
def fit_environment(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Threads and determinism for one fit; the process settings come back afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        if config.deterministic:
            if device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # warn_only: a CUDA op without a deterministic kernel warns instead of failing the fit
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def eval_batch(device: torch.device, train_batch: int = 32) -> int:
    """Prediction batch size: the training one on CPU (larger batches fall out of cache and
    run slower per sequence there), at least 256 on CUDA."""
    return max(train_batch, 256) if device.type == "cuda" else train_batch
