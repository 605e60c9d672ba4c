"""InceptionTime (Ismail Fawaz et al. 2020, "InceptionTime: Finding AlexNet for time series
classification", Data Mining and Knowledge Discovery 34).

A stack of ``depth`` inception modules. Each module sends its input through

- a bottleneck (1x1 conv to ``bottleneck`` channels), then three convolutions with kernels
  ``k``, ``k // 2`` and ``k // 4`` ("same" padding; the paper's 40, 20, 10), and
- a max pooling (window 3, stride 1) followed by a 1x1 conv,

concatenates the four branches (``4 * filters`` channels), then batch norm and ReLU. Every
third module, a residual shortcut (1x1 conv + batch norm of the input three modules back)
is added, then ReLU. Global average pooling over the valid steps and a linear layer give
the logits. Convolutions carry no bias (batch norm follows each), as in the authors'
Keras code. The paper's InceptionTime is an ensemble of five such networks; here the
sweep's bags of fold models and its ensembles play that part.

Written with torch on purpose: no well-kept PyTorch package offers InceptionTime without
a large framework around it (tsai brings fastai, aeon's version is Keras/TensorFlow), and
the network is a few dozen lines over `trainables.networks.layers`.

Padding: a sequence in a padded batch gets exactly the logits it gets alone. Each module's
input is re-zeroed after the sequence's end (what "same" zero padding shows a sequence
run alone); the max pooling sees ``-inf`` there (what its own padding shows), so no
padded value wins a window; batch norm statistics and the global average cover valid steps
only (`MaskedBatchNorm`, `masked_pool`). Kernels longer than a sequence are fine: the
zero padding covers them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainables.configs import InceptionTimeConfig
from trainables.networks.layers import MaskedBatchNorm, SequenceClassifier, masked_pool, time_mask

__all__ = ["InceptionModule", "InceptionTimeClassifier", "build_inception_time"]


def _same_pad(kernel: int) -> tuple[int, int]:
    """Left and right zero padding that keeps the length (an even kernel: one more right,
    as Keras' ``padding="same"``)."""
    left = (kernel - 1) // 2
    return left, kernel - 1 - left


class InceptionModule(nn.Module):
    """One inception module: bottleneck -> three kernel sizes, max-pool -> 1x1; concatenated,
    batch norm, ReLU.

    ``forward(h, mask)``: ``h`` [shape=(batch, in_channels, T)], zero after each sequence's
    end; ``mask`` bool [shape=(batch, 1, T)], true at valid steps. Returns [shape=(batch,
    4 * filters, T)] (not re-zeroed after the end: the next module does that).
    """

    def __init__(self, in_channels: int, *, filters: int, kernel_size: int, bottleneck: int) -> None:
        super().__init__()
        use_bottleneck = bottleneck > 0 and in_channels > 1  # the paper: none on one channel
        self.bottleneck = nn.Conv1d(in_channels, bottleneck, 1, bias=False) if use_bottleneck else None
        width = bottleneck if use_bottleneck else in_channels
        kernels = [kernel_size // 2**i for i in range(3)]
        self.convs = nn.ModuleList(nn.Conv1d(width, filters, k, bias=False) for k in kernels)
        self._pads = [_same_pad(k) for k in kernels]
        self.pool_conv = nn.Conv1d(in_channels, filters, 1, bias=False)
        self.norm = MaskedBatchNorm(4 * filters)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # a 1x1 conv without bias keeps the zeros after the end: the long kernels see zero padding
        z = h if self.bottleneck is None else self.bottleneck(h)
        branches = [conv(F.pad(z, pad)) for conv, pad in zip(self.convs, self._pads, strict=True)]
        pooled = F.max_pool1d(h.masked_fill(~mask, float("-inf")), 3, stride=1, padding=1)
        branches.append(self.pool_conv(pooled.masked_fill(~mask, 0.0)))
        return F.relu(self.norm(torch.cat(branches, dim=1), mask))


class _Shortcut(nn.Module):
    """The residual path: 1x1 conv + batch norm, ``(h, mask)`` -> [shape=(batch, out, T)]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.norm = MaskedBatchNorm(out_channels)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(h), mask)


class InceptionTimeClassifier(SequenceClassifier):
    """``depth`` inception modules, a residual every three, global average pooling, dense.

    ``forward(x, lengths)``: ``x`` [shape=(batch, T, D)] (token ids, built with a
    ``vocab_size``, are embedded first), ``lengths`` int64 [shape=(batch,)]; returns logits
    [shape=(batch, n_classes)].
    """

    def __init__(self, config: InceptionTimeConfig, *, input_dim: int, n_classes: int,
                 vocab_size: int | None = None) -> None:
        super().__init__(input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size,
                         embedding_dim=config.embedding_dim)
        self.config = config
        out = 4 * config.filters
        self.blocks = nn.ModuleList()
        self.shortcuts = nn.ModuleDict()
        width, residual_width = self.width, self.width
        for d in range(config.depth):
            self.blocks.append(InceptionModule(width, filters=config.filters, kernel_size=config.kernel_size,
                                                 bottleneck=config.bottleneck))
            width = out
            if config.residual and d % 3 == 2:  # after modules 3, 6, ... (the authors' code)
                self.shortcuts[str(d)] = _Shortcut(residual_width, out)
                residual_width = out
        self.head = nn.Linear(out, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.embed(x, lengths).transpose(1, 2)  # (batch, width, T)
        mask = time_mask(lengths.to(h.device, torch.int64), h.shape[2])[:, None, :]
        h = h.masked_fill(~mask, 0.0)
        residual = h
        for d, module in enumerate(self.blocks):
            h = module(h, mask)
            joins = str(d) in self.shortcuts  # (nn.ModuleDict has no .get)
            if joins:
                h = F.relu(h + self.shortcuts[str(d)](residual, mask))
            h = h.masked_fill(~mask, 0.0)  # the next module sees zeros after the end
            if joins:
                residual = h
        return self.head(masked_pool(h, mask, "mean"))


def build_inception_time(config: InceptionTimeConfig, *, input_dim: int, n_classes: int,
                         vocab_size: int | None = None) -> InceptionTimeClassifier:
    """The registry's builder for ``inception_time`` (``vocab_size``: token data, see
    `SequenceClassifier`)."""
    return InceptionTimeClassifier(config, input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size)
