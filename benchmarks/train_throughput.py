"""Training and prediction throughput (sequences per second) of every model, on this machine.

Each model trains through `trainables.fit` (length-bucketed batches, packed LSTM, masked
convolutions) on a fixed synthetic set of ragged mfcc-like sequences; the plain
alternative beside it is the textbook loop: random batches padded to the longest sequence
in the set, an unpacked ``nn.LSTM`` read at its last step. A CUDA section (only where a GPU
is present) compares the cuDNN LSTM with the native one and autocast with fp32.

    python benchmarks/train_throughput.py                       # every model, ~1 minute on 2 cores
    python benchmarks/train_throughput.py --models lstm cnn1d --epochs 3 --threads 2

Printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.sequences import SequenceSet  # noqa: E402
from trainables import fit, model_names, predict_proba  # noqa: E402

# small configs of each model (the defaults of the registry are small too)
CONFIGS: dict[str, dict] = {
    "lstm": {"units": (32, 16)},
    "cnn": {"filters": (16, 32)},
    "cnn1d": {"filters": (16, 32)},
    "wavenet": {"layers_per_stack": 4, "residual_channels": 16, "skip_channels": 32},
    "knn": {},
    "random_forest": {"n_estimators": 100},
}


def synthetic_set(*, n: int, dim: int, n_classes: int, min_len: int, max_len: int, seed: int = 0) -> SequenceSet:
    """``n`` ragged float32 sequences [shape=(T_i, dim)], lengths uniform in [min_len, max_len]."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len, size=n, endpoint=True)
    y = np.arange(n) % n_classes
    xs = [(rng.standard_normal((int(t), dim)) + 0.5 * c).astype(np.float32) for t, c in zip(lengths, y, strict=True)]
    ids = np.array([f"clip{i}" for i in range(n)], dtype=object)
    return SequenceSet(xs, y, [f"class{c}" for c in range(n_classes)], ids, ids)


def measure(model: str, data: SequenceSet, *, epochs: int, batch_size: int, threads: int | None,
            device: str = "cpu", amp: str = "off") -> tuple[float, float, int]:
    """(train sequences/s, predict sequences/s, n_params) after a one-epoch warm-up.

    The warm-up runs the same data, so oneDNN / cuDNN have planned most batch shapes, as they
    have after the first epochs of a real fit.
    """
    train = {"epochs": 1, "batch_size": batch_size, "num_threads": threads, "device": device, "amp": amp}
    fit(model, CONFIGS[model], data, None, seed=1, train_config=train)
    result = fit(model, CONFIGS[model], data, None, seed=0, train_config={**train, "epochs": epochs},
                 return_weights=True)
    predict_s = float("inf")
    for _ in range(3):  # best of three: one short call is at the mercy of a busy machine
        start = time.perf_counter()
        predict_proba(model, CONFIGS[model], result.weights, data, device=device, amp=amp)
        predict_s = min(predict_s, time.perf_counter() - start)
    train_s = result.seconds if result.history[-1]["train_loss"] is None else result.history[-1]["seconds"]
    return len(data) * epochs / train_s, len(data) / predict_s, result.n_params


def plain_lstm(data: SequenceSet, *, epochs: int, batch_size: int, device: str = "cpu") -> float:
    """Train sequences/s of the textbook loop: random batches, padded to the set's T_max, unpacked."""
    torch.manual_seed(0)
    padded = data.to_padded()
    x, y = torch.from_numpy(padded.x), torch.from_numpy(padded.y)
    lstm1 = nn.LSTM(data.dim, 32, batch_first=True).to(device)
    lstm2 = nn.LSTM(32, 16, batch_first=True).to(device)
    head = nn.Linear(16, data.n_classes).to(device)
    params = [*lstm1.parameters(), *lstm2.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    start = time.perf_counter()
    for epoch in range(epochs + 1):  # epoch 0 is the warm-up
        if epoch == 1:
            start = time.perf_counter()
        for idx in torch.randperm(len(y)).split(batch_size):
            xb, yb = x[idx].to(device), y[idx].to(device)
            out, _ = lstm1(xb)
            out, _ = lstm2(out)
            loss = nn.functional.cross_entropy(head(out[:, -1]), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    if device != "cpu":
        torch.cuda.synchronize()
    return len(y) * epochs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(model_names()), choices=list(model_names()))
    parser.add_argument("--n", type=int, default=256, help="sequences in the set")
    parser.add_argument("--dim", type=int, default=27, help="values per frame (mfcc27: 27)")
    parser.add_argument("--min-len", type=int, default=20)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)

    data = synthetic_set(n=args.n, dim=args.dim, n_classes=args.classes, min_len=args.min_len, max_len=args.max_len)
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} CPU threads; {args.n} sequences of D={args.dim}, "
          f"T in [{args.min_len}, {args.max_len}], batch {args.batch_size}, {args.epochs} epochs")
    print(f"{'model':<16}{'params':>10}{'train seq/s':>14}{'predict seq/s':>16}")
    for model in args.models:
        train_rate, predict_rate, n_params = measure(
            model, data, epochs=args.epochs, batch_size=args.batch_size, threads=args.threads
        )
        print(f"{model:<16}{n_params:>10}{train_rate:>14.1f}{predict_rate:>16.1f}")
    if "lstm" in args.models:
        with _threads(args.threads):
            rate = plain_lstm(data, epochs=args.epochs, batch_size=args.batch_size)
        print(f"{'plain lstm':<16}{'':>10}{rate:>14.1f}{'':>16}  (random batches padded to T_max, unpacked)")

    if not torch.cuda.is_available():
        print("CUDA: no GPU here; the cuDNN and autocast comparisons were skipped")
        return
    print(f"CUDA: {torch.cuda.get_device_name(0)}")
    print(f"{'model':<16}{'variant':<22}{'train seq/s':>14}{'predict seq/s':>16}")
    for model in [m for m in args.models if m in ("lstm", "cnn", "cnn1d", "wavenet")]:
        variants = [("fp32", "off", True), ("autocast", "auto", True)]
        if model == "lstm":
            variants.append(("fp32, cuDNN off", "off", False))
        for name, amp, cudnn in variants:
            with torch.backends.cudnn.flags(enabled=cudnn):
                train_rate, predict_rate, _ = measure(
                    model, data, epochs=args.epochs, batch_size=args.batch_size, threads=args.threads,
                    device="cuda", amp=amp,
                )
            print(f"{model:<16}{name:<22}{train_rate:>14.1f}{predict_rate:>16.1f}")
    print(f"{'plain lstm':<16}{'fp32, cuDNN':<22}{plain_lstm(data, epochs=args.epochs, batch_size=args.batch_size, device='cuda'):>14.1f}")


@contextlib.contextmanager
def _threads(n: int | None):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":
    main()
