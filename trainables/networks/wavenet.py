"""WaveNet classifier: dilated causal convolutions with gated units, residual and skip paths.

The head is ReLU -> 1x1 conv -> batch norm (statistics over valid steps; optional, it
helped small data sets generalise in the seed runs) -> ReLU -> masked global pooling ->
dropout -> dense.

Causal convolutions pad on the left only, so step t sees steps <= t: the padding after a
sequence's end never reaches its valid steps, and a length-1 sequence works. The head
pools the skip sum over valid steps (masked by length) and maps it to logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainables.configs import WaveNetConfig
from trainables.networks.layers import MaskedBatchNorm, SequenceClassifier, masked_pool, time_mask

__all__ = ["WaveNetClassifier", "build_wavenet"]


class _GatedLayer(nn.Module):
    """One dilated causal conv with a tanh x sigmoid gate, a residual and a skip output."""

    def __init__(self, channels: int, skip_channels: int, *, kernel_size: int, dilation: int, last: bool) -> None:
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, dilation=dilation)
        # the last layer feeds only the skip path: no residual output that nothing reads
        self.residual = None if last else nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h`` [shape=(batch, channels, T)] -> (next residual stream, skip [shape=(batch, skip, T)])."""
        filt, gate = self.conv(F.pad(h, (self.left_pad, 0))).chunk(2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)
        if self.residual is not None:
            h = (h + self.residual(z)) * math.sqrt(0.5)
        return h, self.skip(z)


class WaveNetClassifier(SequenceClassifier):
    """``stacks`` x ``layers_per_stack`` gated layers (dilations 1, 2, 4, ...), pooled head.

    ``forward(x, lengths)``: ``x`` [shape=(batch, T, D)] (``wave``: D = 1; token ids, built
    with a ``vocab_size``, are embedded first), ``lengths`` int64 [shape=(batch,)]; returns
    logits [shape=(batch, n_classes)].
    """

    def __init__(self, config: WaveNetConfig, *, input_dim: int, n_classes: int,
                 vocab_size: int | None = None) -> None:
        super().__init__(input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size,
                         embedding_dim=config.embedding_dim)
        self.config = config
        self.input = nn.Conv1d(self.width, config.residual_channels, 1)
        dilations = [2**i for _ in range(config.stacks) for i in range(config.layers_per_stack)]
        self.layers = nn.ModuleList(
            _GatedLayer(
                config.residual_channels,
                config.skip_channels,
                kernel_size=config.kernel_size,
                dilation=d,
                last=k == len(dilations) - 1,
            )
            for k, d in enumerate(dilations)
        )
        self.post = nn.Conv1d(config.skip_channels, config.skip_channels, 1, bias=not config.batch_norm)
        self.norm = MaskedBatchNorm(config.skip_channels) if config.batch_norm else None
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.skip_channels, n_classes)

    @property
    def receptive_field(self) -> int:
        """Steps of input that one output step sees."""
        c = self.config
        return 1 + c.stacks * (c.kernel_size - 1) * (2**c.layers_per_stack - 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.input(self.embed(x, lengths).transpose(1, 2))
        skips = None
        for layer in self.layers:
            h, s = layer(h)
            skips = s if skips is None else skips + s
        mask = time_mask(lengths.to(x.device, torch.int64), skips.shape[2])[:, None, :]
        out = self.post(F.relu(skips))
        if self.norm is not None:
            out = self.norm(out, mask)
        out = F.relu(out)
        return self.head(self.dropout(masked_pool(out, mask, self.config.pooling)))


def build_wavenet(config: WaveNetConfig, *, input_dim: int, n_classes: int, vocab_size: int | None = None
                  ) -> WaveNetClassifier:
    """The registry's builder for ``wavenet`` (``vocab_size``: token data, see `SequenceClassifier`)."""
    return WaveNetClassifier(config, input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size)
