"""Activity penalties Ω_syn, Ω_total, Ω_balance (spec §3).

Ω = (1/p) Σ_l Σ_i w_{l,i} s_{l,i}^p with w = ψ (Ω_syn, Eqs. 13–14), w = 1
(Ω_total, Eq. 18) or w = 1/d_l (Ω_balance, Eq. 19). Since s ∈ {0, 1},
p·E_AC·E_x[Ω_syn] = E_SNN (Theorem 3.4). The power's backward is
s^{p−1}·ds/du (Remark 3.5): for p > 1 silent neurons get no gradient.

Each layer's term is one autograd function that saves only s (for p > 1)
and w, and whose backward builds w·s^{p−1} in one fresh tensor, so the
penalty adds a few passes over the spikes to a training step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from pipeline.neuron import neurons

__all__ = ["PENALTIES", "Penalty", "batch_penalty", "check_penalty", "label", "omega", "omega_all_firing"]


@dataclass(frozen=True)
class Penalty:
    """One activity penalty: its per-neuron weights w_{l,i} and what Ω(1) sums (Sec. 3.3.2)."""

    symbol: str  # how tables and figures print it
    equation: str  # where the paper defines it
    weights: Callable[[Tensor], Tensor]  # ψ of one layer → w of that layer (same shape)
    all_firing: Callable[[Tensor], float]  # ψ of one layer → Σ_i w_{l,i} (every neuron firing)


#: The penalties by key; the key is the penalty's name in code, params, stage names, columns and metrics.
PENALTIES: dict[str, Penalty] = {
    "syn": Penalty("Ω_syn", "Eq. 14", lambda psi: psi, lambda psi: float(psi.sum())),
    "total": Penalty("Ω_total", "Eq. 18", torch.ones_like, lambda psi: psi.numel()),
    "balance": Penalty("Ω_balance", "Eq. 19", lambda psi: torch.full_like(psi, 1 / psi.numel()), lambda psi: 1),
}


def label(kind: str, p: float) -> str:
    """How tables and figures name a penalty curve: "Ω_syn p=1"."""
    return f"{PENALTIES[kind].symbol} p={p:g}"


def check_penalty(kind: str, p: float) -> None:
    """Raise a one-line ValueError for an unknown kind or p < 1."""
    if kind not in PENALTIES:
        raise ValueError(f"unknown penalty {kind!r}; allowed: {', '.join(PENALTIES)}")
    if not p >= 1:
        raise ValueError(f"penalty exponent p must be >= 1 (got {p})")


class _PowerSum(torch.autograd.Function):
    """(1/p) Σ_i w_i s_i^p for each example of `s` [N, ...]; `w` is [D], D = one example's size."""

    @staticmethod
    def forward(ctx, s: Tensor, w: Tensor, p: float) -> Tensor:
        flat = s.flatten(1)
        ctx.p, ctx.shape = p, s.shape
        ctx.save_for_backward(None if p == 1 else flat, w)
        powered = flat if p == 1 else flat.square() if p == 2 else flat.pow(p)
        return powered @ w / p

    @staticmethod
    def backward(ctx, grad: Tensor):
        flat, w = ctx.saved_tensors
        if ctx.p == 1:  # ∂/∂s_i = w_i
            ds = torch.outer(grad, w)
        else:  # ∂/∂s_i = w_i s_i^{p−1}
            ds = (flat if ctx.p == 2 else flat.pow(ctx.p - 1)).mul(w).mul_(grad[:, None])
        return ds.view(ctx.shape), None, None


def _weights(psi: Tensor, kind: str, dtype: torch.dtype) -> Tensor:
    """w_{l,i} of one layer, flattened: ψ (Eq. 14), 1 (Eq. 18) or 1/d_l (Eq. 19)."""
    return PENALTIES[kind].weights(psi.to(dtype)).reshape(-1)


def omega(spikes: Sequence[Tensor], psi: Sequence[Tensor], kind: str, p: float) -> Tensor:
    """Ω_kind of each example of a batch (Eqs. 14, 18, 19) → [N]."""
    check_penalty(kind, p)
    return sum(_PowerSum.apply(s, _weights(w, kind, s.dtype), p) for s, w in zip(spikes, psi))


def omega_all_firing(psi: Sequence[Tensor], kind: str, p: float) -> float:
    """Ω_kind(1): the penalty with every neuron firing (Sec. 3.3.2), the λ' normaliser."""
    check_penalty(kind, p)
    return sum(PENALTIES[kind].all_firing(w) for w in psi) / p


def batch_penalty(model: nn.Module, kind: str, p: float) -> Tensor:
    """Batch mean of Ω_kind over the spikes of `model`'s last forward pass."""
    named = neurons(model)
    return omega([m.spikes for _, m in named], [m.psi for _, m in named], kind, p).mean()
