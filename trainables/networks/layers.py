"""Shared pieces of the torch models: the base class, the token embedding, length masks,
masked pooling and norm.

Every model takes a zero-padded batch ``x`` [shape=(batch, T, D)] with its ``lengths``
[shape=(batch,)] and must give each sequence the output it would get alone: padding never
reaches a recurrent state (LSTM: packed sequences), a convolution (inputs re-zeroed after
each sequence's end, which is what "same" zero padding shows a sequence run alone), a
batch-norm statistic or a pooled value (masked by length).

On token data (D = 1 ids in ``[0, vocab_size)``, `features.tokens`) a model built with a
``vocab_size`` and an ``embedding_dim`` > 0 first embeds the ids (`TokenEmbedding`), and
everything after sees ``embedding_dim`` real values per step instead of D.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from features.tokens import UNKNOWN_ID
from seqsweep.errors import InputError

__all__ = ["SequenceClassifier", "TokenEmbedding", "MaskedBatchNorm", "time_mask", "masked_pool", "pool_lengths"]


class TokenEmbedding(nn.Module):
    """Token ids -> learned vectors, padding -> zeros.

    ``forward(x, lengths)``: ids in ``x[..., 0]`` [shape=(batch, T, 1)], float or int;
    returns float [shape=(batch, T, dim)]. An id outside ``[0, vocab_size)`` (a value the
    training vocabulary never had) is read as `features.tokens.UNKNOWN_ID`; the steps
    after each sequence's end are zero whatever marks them.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.table = nn.Embedding(self.vocab_size, int(dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        ids = torch.round(x[..., 0]).long() if x.is_floating_point() else x[..., 0].long()
        valid = time_mask(lengths.to(ids.device, torch.int64), ids.shape[1])
        known = valid & (ids >= 0) & (ids < self.vocab_size)
        out = self.table(torch.where(known, ids, UNKNOWN_ID))
        return out * valid[..., None].to(out.dtype)


class SequenceClassifier(nn.Module):
    """Base of every torch model: ``forward(x, lengths) -> logits``.

    Parameters
    ----------
    input_dim : D, values per frame.
    n_classes : C, width of the logits.
    vocab_size : for token data, the number of ids (`SequenceSet.vocab_size`); None for
        real-valued frames.
    embedding_dim : with ``vocab_size``, the width of the `TokenEmbedding` the ids go
        through (0: none, the ids are read as numbers).

    Attributes
    ----------
    embedding : the `TokenEmbedding`, or None.
    width : values per step after the embedding (``embedding_dim``, else D): what the
        subclass's first layer takes.
    takes_tokens : the input is embedded ids (no standardisation, checked ids).
    auto_amp : the autocast dtype that ``amp="auto"`` picks on CUDA (``None``: bf16 where the
        GPU supports it, else fp16).
    """

    auto_amp: torch.dtype | None = None

    def __init__(self, *, input_dim: int, n_classes: int, vocab_size: int | None = None,
                 embedding_dim: int = 0) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.n_classes = int(n_classes)
        self.embedding: TokenEmbedding | None = None
        self.width = self.input_dim
        if vocab_size is not None and embedding_dim > 0:  # build_model checks input_dim == 1
            self.embedding = TokenEmbedding(vocab_size, embedding_dim)
            self.width = int(embedding_dim)

    @property
    def takes_tokens(self) -> bool:
        return self.embedding is not None

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x`` [shape=(batch, T, D)] as the first layer takes it [shape=(batch, T, width)]."""
        return x if self.embedding is None else self.embedding(x, lengths)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Logits [shape=(batch, n_classes)] from ``x`` [shape=(batch, T, D)] and ``lengths``."""
        raise NotImplementedError

    def check_data(self, x: np.ndarray, lengths: np.ndarray, *, where: str) -> None:
        """Raise `seqsweep.errors.InputError` if a padded numpy batch [shape=(N, T, D)] (or
        `trainables.training.padded.RaggedFrames`) cannot go in: token input needs one whole-number id
        per valid step (ids out of range are fine: they read as unknown)."""
        if self.embedding is None:
            return
        if x.shape[2] != 1:
            raise InputError(where, "token input needs D = 1 (one id per step)", f"D={x.shape[2]}")
        if isinstance(x, np.ndarray):
            ids = x[..., 0][np.arange(x.shape[1])[None, :] < lengths[:, None]]
        else:  # `trainables.training.padded.RaggedFrames`
            ids = x.valid_frames()[:, 0]
        bad = ids != np.round(ids)
        if bad.any():
            raise InputError(where, "token ids must be whole numbers", float(ids[bad][0]))


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
