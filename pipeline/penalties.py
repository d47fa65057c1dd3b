"""Activity penalties Ω_syn, Ω_total, Ω_balance (spec §3).

Ω = (1/p) Σ_l Σ_i w_{l,i} s_{l,i}^p with w = ψ (Ω_syn, Eqs. 13–14), w = 1
(Ω_total, Eq. 18) or w = 1/d_l (Ω_balance, Eq. 19). Since s ∈ {0, 1},
p·E_AC·E_x[Ω_syn] = E_SNN (Theorem 3.4). The power's backward is
s^{p−1}·ds/du (Remark 3.5): for p > 1 silent neurons get no gradient.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from pipeline.energy import synaptic_events
from pipeline.neuron import neurons

__all__ = ["PENALTIES", "batch_penalty", "check_penalty", "omega", "omega_all_firing"]

PENALTIES = ("syn", "total", "balance")


def check_penalty(kind: str, p: float) -> None:
    """Raise a one-line ValueError for an unknown kind or p < 1."""
    if kind not in PENALTIES:
        raise ValueError(f"unknown penalty {kind!r}; allowed: {', '.join(PENALTIES)}")
    if not p >= 1:
        raise ValueError(f"penalty exponent p must be >= 1 (got {p})")


def _layer_sum(s: Tensor, psi: Tensor, kind: str) -> Tensor:
    """Σ_i w_{l,i} s_i for each example of one layer."""
    if kind == "syn":
        return synaptic_events(s, psi)
    total = s.flatten(1).sum(1)
    return total if kind == "total" else total / psi.numel()


def omega(spikes: Sequence[Tensor], psi: Sequence[Tensor], kind: str, p: float) -> Tensor:
    """Ω_kind of each example of a batch (Eqs. 14, 18, 19) → [N]."""
    check_penalty(kind, p)
    return sum(_layer_sum(s if p == 1 else s.pow(p), w, kind) for s, w in zip(spikes, psi)) / p


def omega_all_firing(psi: Sequence[Tensor], kind: str, p: float) -> float:
    """Ω_kind(1): the penalty with every neuron firing (Sec. 3.3.2), the λ' normaliser."""
    check_penalty(kind, p)
    per_layer = {"syn": lambda w: float(w.sum()), "total": lambda w: w.numel(), "balance": lambda w: 1}
    return sum(per_layer[kind](w) for w in psi) / p


def batch_penalty(model: nn.Module, kind: str, p: float) -> Tensor:
    """Batch mean of Ω_kind over the spikes of `model`'s last forward pass."""
    named = neurons(model)
    return omega([m.spikes for _, m in named], [m.psi for _, m in named], kind, p).mean()
