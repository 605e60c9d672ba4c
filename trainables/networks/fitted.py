"""The torch network as fitted: input standardisation in front of the model."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainables.networks.layers import SequenceClassifier, time_mask

__all__ = ["Fitted", "feature_stats"]


class Fitted(nn.Module):
    """The model behind a z-scoring of its inputs (statistics in buffers, saved with it)."""

    def __init__(self, net: SequenceClassifier) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("feature_mean", torch.zeros(net.input_dim))
        self.register_buffer("feature_std", torch.ones(net.input_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.net.takes_tokens:
            mask = time_mask(lengths.to(x.device), x.shape[1])[..., None]
            x = ((x - self.feature_mean) / self.feature_std) * mask
        return self.net(x, lengths)


def feature_stats(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (1 where constant) over valid frames of ``x`` [shape=(N, T, D)]."""
    total = np.zeros(x.shape[2])
    square = np.zeros(x.shape[2])
    for i, t in enumerate(lengths):  # one slice per sequence, float64 sums
        seq = x[i, : int(t)]
        total += seq.sum(axis=0, dtype=np.float64)
        square += np.square(seq, dtype=np.float64).sum(axis=0)
    n = max(int(lengths.sum()), 1)
    mean = total / n
    std = np.sqrt(np.maximum(square / n - mean**2, 0.0))
    std[std < 1e-8 * np.maximum(np.abs(mean), 1.0)] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
