"""R replicas of one ``nn.LSTM`` layer as one replica-batched LSTM.

``vmap`` cannot run ``nn.LSTM`` (pytorch issues 105982 and 134606), and cuDNN / oneDNN
have no kernel for R independent weight sets, so `FusedLSTM` runs the recurrence itself:
the input projection of every step of every replica is one batched matmul, then each time
step is one more (``h @ W_hh`` for all replicas at once) and a few elementwise ops.

Padding: the recurrence runs over the padded steps too, as the CPU path of
`trainables.networks.lstm.LSTMClassifier` does with oneDNN. It is causal, so every valid step's
output is exact; the model reads each sequence's final state at its own last step and
runs the backward direction on each sequence reversed within its length, so padding never
reaches a state that is read. The fused model is told not to pack (``pack = False``).

The sequence loop has a hand-written backward (`_Recurrence`): autograd would record
about seven nodes per step and replay them one by one; this stores the activated gates and
runs one reverse loop with a single batched matmul per step, then one batched matmul for
the whole ``W_hh`` gradient.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

__all__ = ["FusedLSTM", "unsupported_lstm"]


def unsupported_lstm(layer: nn.Module) -> str | None:
    """Why ``layer`` (an ``nn.LSTM``) cannot be fused, or ``None``: one layer, one
    direction, ``batch_first``, biases, no projection (the layers the LSTM model builds)."""
    if layer.num_layers != 1 or layer.bidirectional or not layer.batch_first or not layer.bias or layer.proj_size:
        return "only single-layer, one-direction, batch_first LSTMs with biases and no projection"
    return None


class _Recurrence(torch.autograd.Function):
    """The LSTM recurrence over T steps for R replicas, given the input projections.

    Laid out (replica, time, row, unit): a step reads and writes one contiguous block per
    replica, and the ``W_hh`` gradient is one batched matmul over contiguous views. Gate
    order inside this function is (i, f, o, g): the three sigmoid gates first, so one
    ``sigmoid`` covers them. ``forward(xp, w_hh)``: ``xp`` [shape=(R, T, B, 4H)] = ``x @
    W_ih^T + b_ih + b_hh`` in that gate order, ``w_hh`` [shape=(R, 4H, H)] in that order;
    returns the hidden states [shape=(R, T, B, H)] (zero initial state).
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        with torch.autocast(xp.device.type, enabled=False):  # one dtype, xp's, throughout
            w_hh = w_hh.to(xp.dtype)
            steps, hidden = xp.shape[1], xp.shape[-1] // 4
            gates = torch.empty_like(xp)  # activated gates
            cells = xp.new_empty(*xp.shape[:-1], hidden)  # tanh(c_t)
            prev_c = torch.zeros_like(cells)  # c_{t-1}
            out = torch.empty_like(cells)
            w_t = w_hh.transpose(1, 2)
            c = None
            for t in range(steps):
                pre = xp[:, t] if t == 0 else torch.baddbmm(xp[:, t], out[:, t - 1], w_t)
                torch.sigmoid(pre[..., : 3 * hidden], out=gates[:, t, :, : 3 * hidden])
                torch.tanh(pre[..., 3 * hidden :], out=gates[:, t, :, 3 * hidden :])
                i, f, o, cand = gates[:, t].split(hidden, dim=-1)
                if c is None:
                    c = i * cand
                else:
                    prev_c[:, t].copy_(c)
                    c = torch.addcmul(f * c, i, cand)
                torch.tanh(c, out=cells[:, t])
                torch.mul(o, cells[:, t], out=out[:, t])
        ctx.save_for_backward(gates, cells, prev_c, out, w_hh)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        gates, cells, prev_c, out, w_hh = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        r, steps, b, hidden = out.shape
        grad_pre = torch.empty_like(gates)
        dh_next = dc_next = None
        for t in range(steps - 1, -1, -1):
            i, f, o, cand = gates[:, t].split(hidden, dim=-1)
            tanh_c = cells[:, t]
            dh = grad_out[:, t] if dh_next is None else grad_out[:, t] + dh_next
            d = grad_pre[:, t]
            d_i, d_f, d_o, d_cand = d.split(hidden, dim=-1)
            torch.mul(dh, tanh_c, out=d_o)
            dc = dh * o * (1.0 - tanh_c * tanh_c)
            if dc_next is not None:
                dc = dc + dc_next
            torch.mul(dc, cand, out=d_i)
            torch.mul(dc, prev_c[:, t], out=d_f)
            torch.mul(dc, i, out=d_cand)
            dc_next = dc * f
            sig = gates[:, t, :, : 3 * hidden]
            d[..., : 3 * hidden].mul_(sig * (1.0 - sig))
            d_cand.mul_(1.0 - cand * cand)
            if t > 0:
                dh_next = torch.bmm(d, w_hh)
        # dW_hh = sum over steps t >= 1 and rows of dgates_t^T h_{t-1}, per replica
        d_later = grad_pre[:, 1:].reshape(r, -1, 4 * hidden)  # (R, (T-1) B, 4H), a view
        h_earlier = out[:, :-1].reshape(r, -1, hidden)  # (R, (T-1) B, H), a view
        return grad_pre, torch.bmm(d_later.transpose(1, 2), h_earlier)


def _gate_order(hidden: int, device: torch.device) -> torch.Tensor:
    """Row index that takes PyTorch's gate blocks (i, f, g, o) to (i, f, o, g)."""
    blocks = torch.arange(4 * hidden, device=device).view(4, hidden)
    return blocks[[0, 1, 3, 2]].reshape(-1)


class FusedLSTM(nn.Module):
    """R single-layer, batch-first ``nn.LSTM`` layers with ``nn.LSTM``'s parameter names.

    ``forward(x)``: ``x`` [shape=(R * B, T, in)], replica r's rows at ``[r*B, (r+1)*B)``;
    returns ``(out, (h_n, None))``: ``out`` [shape=(R * B, T, H)], exact at every valid
    step; ``h_n`` [shape=(1, R * B, H)] is the state after step T, the padded end (the model
    reads ``out`` at each sequence's last step instead); the cell state is not returned.
    Parameters: ``weight_ih_l0`` [shape=(R, 4H, in)], ``weight_hh_l0`` [shape=(R, 4H, H)],
    ``bias_ih_l0``, ``bias_hh_l0`` [shape=(R, 4H)], gate blocks in PyTorch's order.
    """

    def __init__(self, layer: nn.LSTM, replicas: int) -> None:
        super().__init__()
        self.hidden_size = layer.hidden_size
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            value = getattr(layer, name).detach()
            setattr(self, name, nn.Parameter(value.unsqueeze(0).repeat(replicas, *([1] * value.dim()))))

    def forward(self, x: torch.Tensor, hx: object = None) -> tuple[torch.Tensor, tuple[torch.Tensor, None]]:
        if isinstance(x, PackedSequence) or hx is not None:
            raise TypeError("FusedLSTM takes a padded batch and no initial state (the fused model does not pack)")
        r = self.weight_ih_l0.shape[0]
        rows, steps, _ = x.shape
        hidden = self.hidden_size
        order = _gate_order(hidden, x.device)
        w_ih = self.weight_ih_l0[:, order]  # (R, 4H, in), gates (i, f, o, g)
        w_hh = self.weight_hh_l0[:, order]
        bias = (self.bias_ih_l0 + self.bias_hh_l0)[:, order]
        # (R * B, T, in) -> (R, T * B, in): time-major within each replica
        x_tm = x.reshape(r, rows // r, steps, x.shape[-1]).transpose(1, 2).reshape(r, -1, x.shape[-1])
        xp = torch.baddbmm(bias[:, None, :], x_tm, w_ih.transpose(1, 2)).view(r, steps, rows // r, 4 * hidden)
        out = _Recurrence.apply(xp, w_hh)  # (R, T, B, H)
        out = out.transpose(1, 2).reshape(rows, steps, hidden)
        return out, (out[:, -1][None], None)
