"""Length-aware batches (bucketing) from an in-memory padded array."""

from __future__ import annotations

import numpy as np

__all__ = ["bucket_batches"]


def bucket_batches(
    lengths: np.ndarray, batch_size: int, *, rng: np.random.Generator | None = None, jitter: float = 0.1
) -> list[np.ndarray]:
    """Split ``range(N)`` into batches of similar-length sequences.

    Parameters
    ----------
    lengths : int [shape=(N,)] sequence lengths.
    batch_size : at most this many indices per batch (every batch full but the last).
    rng : for training: sort by length times a random factor in ``[1 - jitter, 1 + jitter]``
        (so near-equal lengths mix differently each epoch), then shuffle the batch order.
        ``None`` (prediction): longest first, no randomness.
    jitter : the relative width of that random factor.

    Returns
    -------
    list of int64 index arrays; the caller slices each batch to its own longest sequence,
    so short batches cost little. One sort and one shuffle per epoch, no per-item Python.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    if rng is None:
        order = np.argsort(-lengths, kind="stable")
    else:
        order = np.argsort(lengths * rng.uniform(1.0 - jitter, 1.0 + jitter, size=len(lengths)), kind="stable")
    batches = [order[i : i + batch_size].astype(np.int64) for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
