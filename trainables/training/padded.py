"""In-memory padded arrays, ragged frames padded one batch at a time, and the device
batches sliced from either."""

from __future__ import annotations

import numpy as np
import torch

from features.sequences import SequenceSet

__all__ = ["padded_arrays", "Batches", "RaggedFrames", "STEP_MULTIPLE"]


class RaggedFrames:
    """N sequences ``float32[T_i, D]`` (views, e.g. of a node's memory-mapped cache,
    `features.store.node_cache`) that stand in for their padded ``float32[N, T_max, D]``
    array where a fit reads one: ``shape``, ``x[rows]`` (a subset, still views),
    ``x[i, :t]`` (one sequence's first steps) and `pad` (one batch, zeros after each end).
    Nothing is padded, or copied, beyond the batch in hand."""

    def __init__(self, seqs: list[np.ndarray], dim: int) -> None:
        self.seqs = seqs
        self.lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        self.shape = (len(seqs), int(self.lengths.max()) if len(seqs) else 0, dim)

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, key: np.ndarray | tuple[int, slice]) -> RaggedFrames | np.ndarray:
        if isinstance(key, tuple):
            row, steps = key
            return self.seqs[int(row)][steps]
        return RaggedFrames([self.seqs[i] for i in np.asarray(key).tolist()], self.shape[2])

    def pad(self, idx: np.ndarray, steps: int) -> np.ndarray:
        """Rows ``idx`` as zeros ``float32[len(idx), steps, D]`` with each one's first ``steps`` frames."""
        out = np.zeros((len(idx), steps, self.shape[2]), dtype=np.float32)
        for j, i in enumerate(idx.tolist()):
            seq = self.seqs[i][:steps]
            out[j, :len(seq)] = seq
        return out

    def valid_frames(self) -> np.ndarray:
        """Every sequence's frames end to end, ``float32[sum T_i, D]`` (a copy: for checks of small sets)."""
        return np.concatenate(self.seqs) if self.seqs else np.zeros((0, self.shape[2]), np.float32)


def padded_arrays(data: SequenceSet) -> tuple[np.ndarray | RaggedFrames, np.ndarray]:
    """``(x, lengths)`` of ``data`` for a fit: a padded set's own array, or for a ragged set
    its `RaggedFrames` (padded per batch by `Batches`, never as a whole)."""
    if not data.padded:
        return RaggedFrames(list(data.x), data.dim), np.asarray(data.lengths, dtype=np.int64)
    x = np.require(data.x, dtype=np.float32, requirements=["C", "W"])
    return x, np.asarray(data.lengths, dtype=np.int64)


STEP_MULTIPLE = 8


class Batches:
    """Batches sliced from one in-memory padded array (or padded one at a time from
    `RaggedFrames`), each cut to its own longest sequence (rounded up to a multiple of 8 steps).

    On CUDA the whole array moves to the GPU once when it takes under a quarter of the free
    memory (then batches are gathered there); otherwise each batch is gathered on the CPU
    and copied. Lengths stay on the CPU (packing reads them there).
    """

    def __init__(self, x: np.ndarray | RaggedFrames, lengths: np.ndarray, y: np.ndarray | None,
                 device: torch.device) -> None:
        self.device = device
        self.lengths = lengths
        self.ragged = x if isinstance(x, RaggedFrames) else None
        self.x = torch.from_numpy(x) if self.ragged is None else None
        self.y = None if y is None else torch.from_numpy(np.array(y, dtype=np.int64))  # a copy: y may be read-only (object store)
        if self.x is not None and device.type == "cuda" and x.nbytes < 0.25 * torch.cuda.mem_get_info(device)[0]:
            self.x = self.x.to(device)
            self.y = None if self.y is None else self.y.to(device)

    def get(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x [shape=(len(idx), T_batch, D)] on the device, lengths on the CPU, y on the device)."""
        lengths = torch.from_numpy(self.lengths[idx])
        # T rounded up to a multiple of 8: few distinct shapes, so oneDNN / cuDNN reuse their
        # kernels instead of planning one per batch (the extra steps are padding, masked)
        steps = -(-int(lengths.max()) // STEP_MULTIPLE) * STEP_MULTIPLE
        if self.ragged is not None:  # padded here, to the same multiple of 8 steps (at most T_max)
            steps = min(steps, self.ragged.shape[1])
            xb = torch.from_numpy(self.ragged.pad(idx, steps)).to(self.device, non_blocking=True)
            index = torch.from_numpy(idx)
        else:
            steps = min(steps, self.x.shape[1])
            index = torch.from_numpy(idx).to(self.x.device)
            xb = self.x[:, :steps][index].to(self.device, non_blocking=True)
        yb = None if self.y is None else self.y[index.to(self.y.device)].to(self.device, non_blocking=True)
        return xb, lengths, yb
