"""The optimiser of a fused model: every replica's parameters in one matrix, Adam row by row.

`FlatParameters` lays all parameters of a fused model (each [shape=(R, ...)]) side by side
in one matrix [shape=(R, P)] and makes each parameter, and its gradient, a view of it. So
replica r's whole parameter vector is row r; gradient clipping is one norm per row, and
Adam / AdamW (elementwise, so exact on stacked parameters) is a dozen ops on one matrix,
whatever the number of layers and replicas, where the sequential loop runs them per
parameter tensor per fit.

Each replica keeps its own Adam step count, and a step can leave replicas out (``active``):
one whose epoch has run out of batches, or whose fp16 gradients overflowed, is not moved
and its Adam state does not change, exactly as if its own optimiser had not stepped.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

__all__ = ["FlatParameters", "FusedAdam", "ReplicaGradScaler"]

# autograd accumulates into the gradient views we hand it (in place), and says that
# views with the matrix's row stride "may impair performance": they are what we want
warnings.filterwarnings("ignore", message=".*do not obey the gradient layout contract.*")


class FlatParameters:
    """All parameters of ``module`` (each [shape=(R, ...)]) as views of one matrix.

    Attributes
    ----------
    data : [shape=(R, P)], row r = replica r's parameters, in ``module.parameters()`` order.
    grad : [shape=(R, P)], their gradients (zeroed, never ``None``, by `zero_grad`).
    """

    def __init__(self, module: nn.Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]
        replicas = self.params[0].shape[0]
        self.sizes = [p[0].numel() for p in self.params]
        first = self.params[0]
        self.data = torch.empty(replicas, sum(self.sizes), dtype=first.dtype, device=first.device)
        start = 0
        for p, n in zip(self.params, self.sizes, strict=True):
            self.data[:, start : start + n].copy_(p.detach().reshape(replicas, n))
            start += n
        self._bind(self.data)

    def _bind(self, data: torch.Tensor) -> None:
        """Point every parameter and its gradient at columns of ``data`` and a fresh grad."""
        self.data = data
        self.grad = torch.zeros_like(data)
        replicas, start = data.shape[0], 0
        for p, n in zip(self.params, self.sizes, strict=True):
            shape = (replicas, *p.shape[1:])
            p.data = data[:, start : start + n].view(shape)
            p.grad = self.grad[:, start : start + n].view(shape)
            start += n

    def zero_grad(self) -> None:
        self.grad.zero_()

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only replicas ``rows`` (int positions), in that order."""
        self._bind(self.data[rows].clone())

    def clip_(self, max_norm: float) -> None:
        """``nn.utils.clip_grad_norm_`` on each replica's gradient on its own."""
        norms = torch.linalg.vector_norm(self.grad, dim=1, keepdim=True)
        self.grad.mul_(torch.clamp(max_norm / (norms + 1e-6), max=1.0))


class FusedAdam:
    """``torch.optim.Adam`` (or AdamW with ``decoupled=True``) on each row of a `FlatParameters`.

    The arithmetic is torch's single-tensor Adam, per row with that row's step count.
    """

    def __init__(
        self, flat: FlatParameters, *, lr: float, weight_decay: float, decoupled: bool,
        betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
    ) -> None:
        self.flat = flat
        self.lr, self.weight_decay, self.decoupled = lr, weight_decay, decoupled
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.exp_avg = torch.zeros_like(flat.data)
        self.exp_avg_sq = torch.zeros_like(flat.data)
        self.steps = torch.zeros(flat.data.shape[0], 1, dtype=torch.float64, device=flat.data.device)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep the state of replicas ``rows`` only (after `FlatParameters.keep`)."""
        self.exp_avg, self.exp_avg_sq, self.steps = self.exp_avg[rows], self.exp_avg_sq[rows], self.steps[rows]

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """One step for the replicas where ``active`` [shape=(R,)] is true (``None``: all)."""
        param, grad = self.flat.data, self.flat.grad
        steps = self.steps + 1 if active is None else self.steps + active[:, None].to(self.steps.dtype)
        new_param = param
        if self.weight_decay:
            if self.decoupled:
                new_param = param * (1.0 - self.lr * self.weight_decay)
            else:
                grad = grad.add(param, alpha=self.weight_decay)
        exp_avg = torch.lerp(self.exp_avg, grad, 1.0 - self.beta1)
        exp_avg_sq = torch.addcmul(self.exp_avg_sq * self.beta2, grad, grad, value=1.0 - self.beta2)
        # bias corrections per replica, in float64 as torch computes them from its Python step
        safe = steps.clamp_min(1.0)
        step_size = (self.lr / (1.0 - self.beta1**safe)).to(param.dtype)
        correction2_sqrt = torch.sqrt(1.0 - self.beta2**safe).to(param.dtype)
        denom = (exp_avg_sq.sqrt() / correction2_sqrt).add_(self.eps)
        new_param = new_param - step_size * exp_avg / denom
        if active is None:
            self.exp_avg, self.exp_avg_sq = exp_avg, exp_avg_sq
            param.copy_(new_param)
        else:
            keep = active[:, None]
            self.exp_avg = torch.where(keep, exp_avg, self.exp_avg)
            self.exp_avg_sq = torch.where(keep, exp_avg_sq, self.exp_avg_sq)
            param.copy_(torch.where(keep, new_param, param))
        self.steps = steps


class ReplicaGradScaler:
    """``torch.amp.GradScaler``'s dynamic loss scale, one per replica (fp16 autocast only).

    `scale_` multiplies each replica's loss by its scale; `unscale_` divides its gradient
    back and says which replicas overflowed (those skip the step, as GradScaler skips
    ``optimizer.step``); `update` halves an overflowed replica's scale and doubles one
    after ``growth_interval`` clean steps.
    """

    def __init__(self, replicas: int, device: torch.device, *, init_scale: float = 2.0**16,
                 growth_interval: int = 2000) -> None:
        self.scale = torch.full((replicas,), init_scale, dtype=torch.float32, device=device)
        self.clean = torch.zeros(replicas, dtype=torch.int64, device=device)
        self.growth_interval = growth_interval

    def keep(self, rows: torch.Tensor) -> None:
        self.scale, self.clean = self.scale[rows], self.clean[rows]

    def scale_(self, losses: torch.Tensor) -> torch.Tensor:
        """``losses`` [shape=(R,)] times each replica's scale."""
        return losses * self.scale

    @torch.no_grad()
    def unscale_(self, flat: FlatParameters) -> torch.Tensor:
        """Divide each replica's gradient by its scale; bool [shape=(R,)] true where finite."""
        flat.grad.mul_(self.scale.reciprocal()[:, None])
        return torch.isfinite(flat.grad).all(dim=1)

    @torch.no_grad()
    def update(self, finite: torch.Tensor, active: torch.Tensor | None) -> None:
        """Move the scales of the replicas that stepped (``active``; ``None``: all)."""
        stepped = torch.ones_like(finite) if active is None else active
        overflow = stepped & ~finite
        clean = torch.where(overflow, torch.zeros_like(self.clean), self.clean + stepped.long())
        grow = clean >= self.growth_interval
        scale = torch.where(overflow, self.scale * 0.5, self.scale)
        self.scale = torch.where(grow & torch.isfinite(scale * 2.0), scale * 2.0, scale)
        self.clean = torch.where(grow, torch.zeros_like(clean), clean)

