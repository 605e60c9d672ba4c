"""Horizontally fused layers: R replicas of one layer, each with its own weights, run as one.

A *fused model* is a copy of one replica's model in which every layer that holds weights
is swapped for its fused twin: same attribute path, same parameter and buffer names, each
tensor with a leading replica axis R. Everything else in the model (its own ``forward``,
masks, pooling, dropout, activations) runs unchanged on a batch whose rows are the R
replicas' batches one after another: rows ``[r*B, (r+1)*B)`` are replica r's. That is
sound because every model treats rows independently except inside its weighted layers and
its batch norm (the contract of `trainables.networks.layers`), and those are exactly what is
swapped (HFTA's horizontal fusion, Wang et al., MLSys 2021).

So a new model, or a model that gains a front-end (an ``nn.Embedding`` for token ids),
fuses with no change here as long as its weighted layers are of a kind listed in
`FUSABLE`; a layer of any other kind makes `unfusable_layers` name it, and the fused path
is not used for that model.

The fused twins:

- `FusedLinear`: one batched matmul (``baddbmm``) for all replicas.
- `FusedConv`: ``nn.Conv1d`` / ``nn.Conv2d`` as one grouped convolution (groups = R).
- `FusedMaskedBatchNorm`: statistics per replica over its own valid positions, and over
  its *real* rows only (`ReplicaRows.valid`: the rows that pad a short batch count for
  nothing); running statistics move only for the replicas that trained on the step.
- `FusedEmbedding`: one lookup in the R tables laid end to end.
- `FusedLSTM` (`trainables.fused._lstm`): ``vmap`` cannot run ``nn.LSTM`` (pytorch issues
  105982, 134606), so it is a replica-batched LSTM cell: one batched matmul per step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainables.networks.layers import MaskedBatchNorm

__all__ = [
    "ReplicaRows",
    "FusedLinear",
    "FusedConv",
    "FusedMaskedBatchNorm",
    "FusedEmbedding",
    "FUSABLE",
    "fuse_model",
    "unfusable_layers",
]


@dataclass
class ReplicaRows:
    """What the fused layers need to know about the current batch, shared by all of them.

    Attributes
    ----------
    valid : bool [shape=(R * B,)]: the rows that are real training rows. A replica whose
        batch is shorter than the others' (the last batch of an epoch), or that has no
        batch on this step, is padded with copies of rows; those carry no loss weight and
        batch norm leaves them out. ``None``: every row is real.
    active : bool [shape=(R,)]: the replicas that train on this step (their batch norm
        running statistics move). ``None``: all of them.
    """

    valid: torch.Tensor | None = None
    active: torch.Tensor | None = None


def _stacked(tensor: torch.Tensor, replicas: int) -> nn.Parameter:
    """A parameter [shape=(replicas, *tensor.shape)] (values are loaded afterwards)."""
    return nn.Parameter(tensor.detach().unsqueeze(0).repeat(replicas, *([1] * tensor.dim())))


def _by_replica(x: torch.Tensor, replicas: int) -> torch.Tensor:
    """``x`` [shape=(R * B, *rest)] viewed as [shape=(R, B, *rest)]."""
    return x.reshape(replicas, x.shape[0] // replicas, *x.shape[1:])


class FusedLinear(nn.Module):
    """R ``nn.Linear`` layers: ``x`` [shape=(R * B, ..., in)] -> [shape=(R * B, ..., out)].

    ``weight`` [shape=(R, out, in)], ``bias`` [shape=(R, out)] or ``None``.
    """

    def __init__(self, layer: nn.Linear, replicas: int) -> None:
        super().__init__()
        self.weight = _stacked(layer.weight, replicas)
        self.bias = None if layer.bias is None else _stacked(layer.bias, replicas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.weight.shape[0]
        rows = x.reshape(r, -1, x.shape[-1])  # (R, B * ..., in)
        w = self.weight.transpose(1, 2)
        out = torch.bmm(rows, w) if self.bias is None else torch.baddbmm(self.bias[:, None, :], rows, w)
        return out.reshape(*x.shape[:-1], out.shape[-1])


class FusedConv(nn.Module):
    """R ``nn.Conv1d`` or ``nn.Conv2d`` layers as one grouped convolution.

    ``x`` [shape=(R * B, C, *S)] -> [shape=(R * B, O, *S')]; ``weight``
    [shape=(R, O, C / groups, *kernel)]. Replica r's channels become group r of a
    convolution over [shape=(B, R * C, *S)], so each replica sees only its own rows and
    weights.
    """

    def __init__(self, layer: nn.Conv1d | nn.Conv2d, replicas: int) -> None:
        super().__init__()
        self.weight = _stacked(layer.weight, replicas)
        self.bias = None if layer.bias is None else _stacked(layer.bias, replicas)
        self.stride, self.padding, self.dilation = layer.stride, layer.padding, layer.dilation
        self.groups = layer.groups
        self.conv = F.conv2d if isinstance(layer, nn.Conv2d) else F.conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, out_channels = self.weight.shape[:2]
        rows = x.shape[0] // r
        spatial = x.shape[2:]
        # (R * B, C, *S) -> (B, R * C, *S): replica r's channels are group r
        grouped = x.reshape(r, rows, -1, *spatial).transpose(0, 1).reshape(rows, -1, *spatial)
        out = self.conv(
            grouped,
            self.weight.reshape(r * out_channels, *self.weight.shape[2:]),
            None if self.bias is None else self.bias.reshape(-1),
            self.stride, self.padding, self.dilation, r * self.groups,
        )
        spatial = out.shape[2:]
        return out.reshape(rows, r, out_channels, *spatial).transpose(0, 1).reshape(r * rows, out_channels, *spatial)


class FusedMaskedBatchNorm(MaskedBatchNorm):
    """R `trainables.networks.layers.MaskedBatchNorm` layers, each with its replica's statistics.

    The arithmetic is `MaskedBatchNorm`'s, per replica: ``h`` [shape=(R * B, C, *S)],
    ``mask`` bool broadcastable to [shape=(R * B, 1, *S)]. In training, a replica's mean and
    variance cover its valid positions on its real rows (``rows.valid``); its running
    statistics move only when it is active (``rows.active``). ``weight``, ``bias``,
    ``running_mean``, ``running_var`` [shape=(R, C)], ``num_batches_tracked`` [shape=(R,)].
    It subclasses `MaskedBatchNorm` so that a model's ``isinstance`` checks still hold.
    """

    def __init__(self, layer: MaskedBatchNorm, replicas: int, rows: ReplicaRows) -> None:
        super().__init__(layer.weight.shape[0], momentum=layer.momentum, eps=layer.eps)
        self.rows = rows
        self.weight = _stacked(layer.weight, replicas)
        self.bias = _stacked(layer.bias, replicas)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, getattr(layer, name).detach().unsqueeze(0).repeat_interleave(replicas, 0))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        r = self.weight.shape[0]
        extra = h.dim() - 2  # spatial axes
        shape = (r, 1, -1) + (1,) * extra
        hf = _by_replica(h.float(), r)  # (R, B, C, *S)
        if self.training:
            m = mask.to(torch.float32).expand(h.shape[0], 1, *h.shape[2:])
            if self.rows.valid is not None:
                m = m * self.rows.valid.to(torch.float32).view(-1, *([1] * (extra + 1)))
            m = _by_replica(m, r)
            dims = (1,) + tuple(range(3, 3 + extra))
            n = m.sum(dim=dims).clamp_min(1.0)  # (R, 1)
            mean = (hf * m).sum(dim=dims) / n  # (R, C)
            var = (((hf - mean.view(shape)) ** 2) * m).sum(dim=dims) / n
            with torch.no_grad():
                unbiased = var * (n / (n - 1.0).clamp_min(1.0))
                moved_mean = torch.lerp(self.running_mean, mean.detach(), self.momentum)
                moved_var = torch.lerp(self.running_var, unbiased.detach(), self.momentum)
                active = self.rows.active
                if active is None:
                    self.running_mean.copy_(moved_mean)
                    self.running_var.copy_(moved_var)
                    self.num_batches_tracked += 1
                else:
                    self.running_mean.copy_(torch.where(active[:, None], moved_mean, self.running_mean))
                    self.running_var.copy_(torch.where(active[:, None], moved_var, self.running_var))
                    self.num_batches_tracked += active.long()
        else:
            mean, var = self.running_mean, self.running_var
        out = (hf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.reshape(h.shape).to(h.dtype)


class FusedEmbedding(nn.Module):
    """R ``nn.Embedding`` tables: ids [shape=(R * B, ...)] -> [shape=(R * B, ..., E)].

    ``weight`` [shape=(R, V, E)]; replica r's ids are looked up in table r by offsetting
    them by ``r * V`` into the tables laid end to end. ``padding_idx`` is honoured (its rows
    get no gradient), one lookup per replica then.
    """

    def __init__(self, layer: nn.Embedding, replicas: int) -> None:
        super().__init__()
        self.weight = _stacked(layer.weight, replicas)
        self.padding_idx = layer.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        r, vocab = self.weight.shape[:2]
        by_replica = _by_replica(ids, r)
        if self.padding_idx is not None:
            return torch.cat([F.embedding(by_replica[k], self.weight[k], self.padding_idx) for k in range(r)])
        offsets = torch.arange(r, device=ids.device).view(r, *([1] * (ids.dim())))
        out = F.embedding(by_replica + offsets * vocab, self.weight.reshape(r * vocab, -1))
        return out.reshape(*ids.shape, -1)


def _lstm_twin(layer: nn.Module, replicas: int, rows: ReplicaRows) -> nn.Module:
    from trainables.fused._lstm import FusedLSTM

    return FusedLSTM(layer, replicas)


def _supported_lstm(layer: nn.Module) -> str | None:
    from trainables.fused._lstm import unsupported_lstm

    return unsupported_lstm(layer)


def _supported_conv(layer: nn.Module) -> str | None:
    if layer.padding_mode != "zeros":
        return f"padding_mode={layer.padding_mode!r}"
    return None


def _supported_embedding(layer: nn.Module) -> str | None:
    if layer.max_norm is not None or layer.sparse:
        return "max_norm or sparse gradients"
    return None


FUSABLE: dict[type[nn.Module], tuple[Callable[[nn.Module, int, ReplicaRows], nn.Module], Callable[[nn.Module], str | None]]] = {
    nn.Linear: (lambda layer, r, rows: FusedLinear(layer, r), lambda layer: None),
    nn.Conv1d: (lambda layer, r, rows: FusedConv(layer, r), _supported_conv),
    nn.Conv2d: (lambda layer, r, rows: FusedConv(layer, r), _supported_conv),
    MaskedBatchNorm: (FusedMaskedBatchNorm, lambda layer: None),
    nn.Embedding: (lambda layer, r, rows: FusedEmbedding(layer, r), _supported_embedding),
    nn.LSTM: (_lstm_twin, _supported_lstm),
}
"""Layer type (exact) -> (its fused twin's builder ``(layer, R, rows)``, a check that
returns why a layer of that type cannot be fused, or ``None``)."""


def _weighted(module: nn.Module) -> bool:
    """Whether ``module`` itself (not its children) holds parameters or buffers."""
    return bool(module._parameters) or any(b is not None for b in module._buffers.values())


def unfusable_layers(model: nn.Module) -> list[str]:
    """``"path (Type): why"`` for each layer of ``model`` that `fuse_model` cannot fuse.

    A layer is fusable when its exact type is in `FUSABLE` and its options are supported;
    a layer that holds no weights and no buffers needs nothing (it runs row by row). Empty
    list: the whole model fuses.
    """
    problems = []
    for path, module in model.named_modules():
        if not _weighted(module):
            continue
        entry = FUSABLE.get(type(module))
        why = "no fused twin for this layer type" if entry is None else entry[1](module)
        if why is not None:
            problems.append(f"{path or '<model>'} ({type(module).__name__}): {why}")
    return problems


def fuse_model(model: nn.Module, replicas: int, rows: ReplicaRows) -> nn.Module:
    """A copy of ``model`` with each weighted layer swapped for its fused twin of ``replicas``.

    The copy has ``model``'s state-dict keys, each tensor with a leading replica axis;
    load the replicas' stacked states into it. ``model`` itself is left as it was. Raises
    ``ValueError`` if `unfusable_layers` names a layer (check first).
    """
    problems = unfusable_layers(model)
    if problems:
        raise ValueError(f"cannot fuse: {problems}")
    fused = copy.deepcopy(model)
    swaps = [(path, module) for path, module in fused.named_modules() if _weighted(module)]
    for path, module in swaps:
        twin = FUSABLE[type(module)][0](module, replicas, rows)
        if not path:
            return twin  # the model is one layer
        parent_path, _, name = path.rpartition(".")
        setattr(fused.get_submodule(parent_path), name, twin)
    return fused
