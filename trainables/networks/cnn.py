"""Convolutional classifiers: ``cnn`` (2-D, over the time x feature map) and ``cnn1d``.

Each conv block is conv ("same" padding) -> masked batch norm -> ReLU -> max pooling ->
dropout. Inputs are re-zeroed after each sequence's end before every conv, so a sequence
in a padded batch sees exactly the zero padding it would see alone; max pooling comes after
the ReLU (values >= 0), so the zeros inside a window that straddles the end change nothing.
Pooling windows never exceed the current size of an axis (ceil mode), so a length-1
sequence and a 1-wide feature axis survive any number of blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainables.configs import CNN1DConfig, CNNConfig
from trainables.networks.layers import (
    MaskedBatchNorm,
    SequenceClassifier,
    masked_pool,
    pool_lengths,
    time_mask,
)

__all__ = ["CNNClassifier", "CNN1DClassifier", "build_cnn", "build_cnn1d"]


def _head(width: int, config: CNNConfig | CNN1DConfig, n_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Dropout(config.dropout)]
    if config.dense_units > 0:
        layers += [nn.Linear(width, config.dense_units), nn.ReLU(), nn.Dropout(config.dropout)]
        width = config.dense_units
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class _ConvBlocks(SequenceClassifier):
    """Shared forward pass; subclasses set ``spatial_dims`` (1: conv over time with the
    values as channels; 2: one-channel time x value map) and the input layout."""

    spatial_dims: int = 1

    def __init__(self, config: CNNConfig | CNN1DConfig, *, input_dim: int, n_classes: int,
                 vocab_size: int | None = None) -> None:
        super().__init__(input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size,
                         embedding_dim=config.embedding_dim)
        self.config = config
        conv = nn.Conv2d if self.spatial_dims == 2 else nn.Conv1d
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        width = 1 if self.spatial_dims == 2 else self.width  # input channels
        for filters in config.filters:
            self.convs.append(conv(width, filters, config.kernel_size, bias=not config.batch_norm))
            self.norms.append(MaskedBatchNorm(filters) if config.batch_norm else nn.Identity())
            width = filters
        # "same" padding, done by hand so even kernels need no internal copy: (k-1)//2 before
        left = (config.kernel_size - 1) // 2
        self._pad = (left, config.kernel_size - 1 - left) * self.spatial_dims
        self.dropout = nn.Dropout(config.dropout)
        self.head = _head(width, config, n_classes)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _mask(self, lengths: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        m = time_mask(lengths, h.shape[2])[:, None, :]
        return m[..., None] if self.spatial_dims == 2 else m

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(x.device, torch.int64)
        h = self._layout(self.embed(x, lengths))
        pool = self.config.pool_size
        for conv, norm in zip(self.convs, self.norms, strict=True):
            mask = self._mask(lengths, h)
            h = conv(F.pad(h * mask, self._pad))
            h = norm(h, mask) if isinstance(norm, MaskedBatchNorm) else h
            h = F.relu(h)
            if pool > 1:
                kernel = tuple(min(pool, s) for s in h.shape[2:])
                if max(kernel) > 1:
                    h = h * mask  # zeros (<= any ReLU output) where a window passes the end
                    if self.spatial_dims == 2:
                        h = F.max_pool2d(h, kernel, ceil_mode=True)
                    else:
                        h = F.max_pool1d(h, kernel, ceil_mode=True)
                    lengths = pool_lengths(lengths, kernel[0])
            h = self.dropout(h)
        pooled = masked_pool(h, self._mask(lengths, h), self.config.pooling)
        return self.head(pooled)


class CNNClassifier(_ConvBlocks):
    """2-D CNN over the (time x feature) map of each sequence, seen as a one-channel image.

    ``forward(x, lengths)``: ``x`` [shape=(batch, T, D)], ``lengths`` int64 [shape=(batch,)];
    returns logits [shape=(batch, n_classes)]. Square kernels and pooling act on both axes;
    global pooling covers the valid time steps and every feature row. Token ids (D = 1,
    built with a ``vocab_size``) are embedded first: the map is then (T x embedding_dim).
    """

    spatial_dims = 2

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1)  # (batch, 1, T, D)


class CNN1DClassifier(_ConvBlocks):
    """1-D CNN over time with the D features as input channels (``wave``: D = 1; token ids,
    built with a ``vocab_size``: the ``embedding_dim`` embedded values).

    ``forward(x, lengths)``: ``x`` [shape=(batch, T, D)], ``lengths`` int64 [shape=(batch,)];
    returns logits [shape=(batch, n_classes)].
    """

    spatial_dims = 1

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)  # (batch, D, T)


def build_cnn(config: CNNConfig, *, input_dim: int, n_classes: int, vocab_size: int | None = None
              ) -> CNNClassifier:
    """The registry's builder for ``cnn`` (``vocab_size``: token data, see `SequenceClassifier`)."""
    return CNNClassifier(config, input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size)


def build_cnn1d(config: CNN1DConfig, *, input_dim: int, n_classes: int, vocab_size: int | None = None
                ) -> CNN1DClassifier:
    """The registry's builder for ``cnn1d`` (``vocab_size``: token data, see `SequenceClassifier`)."""
    return CNN1DClassifier(config, input_dim=input_dim, n_classes=n_classes, vocab_size=vocab_size)
