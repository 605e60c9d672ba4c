"""In-memory padded arrays, and the device batches sliced from them."""

from __future__ import annotations

import numpy as np
import torch

from features.sequences import SequenceSet

__all__ = ["padded_arrays", "Batches", "STEP_MULTIPLE"]


def padded_arrays(data: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
    padded = data.to_padded()
    x = np.require(padded.x, dtype=np.float32, requirements=["C", "W"])
    return x, np.asarray(padded.lengths, dtype=np.int64)


STEP_MULTIPLE = 8


class Batches:
    """Batches sliced from one in-memory padded array, each cut to its own longest sequence
    (rounded up to a multiple of 8 steps).

    On CUDA the whole array moves to the GPU once when it takes under a quarter of the free
    memory (then batches are gathered there); otherwise each batch is gathered on the CPU
    and copied. Lengths stay on the CPU (packing reads them there).
    """

    def __init__(self, x: np.ndarray, lengths: np.ndarray, y: np.ndarray | None, device: torch.device) -> None:
        self.device = device
        self.lengths = lengths
        self.x = torch.from_numpy(x)
        self.y = None if y is None else torch.from_numpy(np.array(y, dtype=np.int64))  # a copy: y may be read-only (object store)
        if device.type == "cuda" and x.nbytes < 0.25 * torch.cuda.mem_get_info(device)[0]:
            self.x = self.x.to(device)
            self.y = None if self.y is None else self.y.to(device)

    def get(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x [shape=(len(idx), T_batch, D)] on the device, lengths on the CPU, y on the device)."""
        lengths = torch.from_numpy(self.lengths[idx])
        index = torch.from_numpy(idx).to(self.x.device)
        # T rounded up to a multiple of 8: few distinct shapes, so oneDNN / cuDNN reuse their
        # kernels instead of planning one per batch (the extra steps are padding, masked)
        steps = min(-(-int(lengths.max()) // STEP_MULTIPLE) * STEP_MULTIPLE, self.x.shape[1])
        xb = self.x[:, :steps][index].to(self.device, non_blocking=True)
        yb = None if self.y is None else self.y[index].to(self.device, non_blocking=True)
        return xb, lengths, yb
