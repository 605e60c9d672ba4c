"""Shared pieces of the torch models: the base class, length masks, masked pooling and norm.

Every model takes a zero-padded batch ``x`` [shape=(batch, T, D)] with its ``lengths``
[shape=(batch,)] and must give each sequence the output it would get alone: padding never
reaches a recurrent state (LSTM: packed sequences), a convolution (inputs re-zeroed after
each sequence's end, which is what "same" zero padding shows a sequence run alone), a
batch-norm statistic or a pooled value (masked by length).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SequenceClassifier", "MaskedBatchNorm", "time_mask", "masked_pool", "pool_lengths"]


class SequenceClassifier(nn.Module):
    """Base of every torch model: ``forward(x, lengths) -> logits``.

    Attributes
    ----------
    input_dim : D, values per frame.
    n_classes : C, width of the logits.
    takes_tokens : the frames are integer token ids (no standardisation, checked ids).
    auto_amp : the autocast dtype that ``amp="auto"`` picks on CUDA (``None``: bf16 where the
        GPU supports it, else fp16).
    """

    takes_tokens: bool = False
    auto_amp: torch.dtype | None = None

    def __init__(self, *, input_dim: int, n_classes: int) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.n_classes = int(n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Logits [shape=(batch, n_classes)] from ``x`` [shape=(batch, T, D)] and ``lengths``."""
        raise NotImplementedError

    def check_data(self, x: object, lengths: object, *, where: str) -> None:
        """Raise `features.errors.InputError` if a padded numpy batch cannot go in (default: no check)."""


def time_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """True at valid steps: bool [shape=(batch, steps)] from ``lengths`` [shape=(batch,)]."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def pool_lengths(lengths: torch.Tensor, kernel: int) -> torch.Tensor:
    """Lengths after a ceil-mode pooling with window and stride ``kernel``."""
    return torch.div(lengths + (kernel - 1), kernel, rounding_mode="floor")


def masked_pool(h: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean or max of ``h`` [shape=(batch, C, *S)] over the positions where ``mask`` is true.

    ``mask`` [shape=(batch, 1, *S) or broadcastable to it] marks valid positions; the result
    has shape (batch, C). Sums run in float32 under autocast.
    """
    dims = tuple(range(2, h.dim()))
    if how == "max":
        return h.masked_fill(~mask, float("-inf")).amax(dim=dims)
    m = mask.to(torch.float32)
    total = (h.float() * m).sum(dim=dims)
    count = m.expand(h.shape[0], 1, *h.shape[2:]).sum(dim=dims).clamp_min(1.0)
    return total / count


class MaskedBatchNorm(nn.Module):
    """Batch normalisation whose training statistics cover valid positions only.

    Same parameters, buffers and state-dict keys as `torch.nn.BatchNorm1d/2d`; in eval mode
    it uses the running statistics, so a padded batch and its sequences one by one agree.
    ``forward(h, mask)``: ``h`` [shape=(batch, C, *S)], ``mask`` bool broadcastable to
    (batch, 1, *S).
    """

    def __init__(self, channels: int, *, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (h.dim() - 2)
        hf = h.float()
        if self.training:
            dims = (0,) + tuple(range(2, h.dim()))
            m = mask.to(torch.float32).expand(h.shape[0], 1, *h.shape[2:])
            n = m.sum().clamp_min(1.0)
            mean = (hf * m).sum(dim=dims) / n
            var = (((hf - mean.view(shape)) ** 2) * m).sum(dim=dims) / n
            with torch.no_grad():
                unbiased = var * (n / (n - 1.0).clamp_min(1.0))
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        out = (hf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(h.dtype)
