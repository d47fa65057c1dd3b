"""Activity penalties Ω_syn, Ω_total, Ω_balance (spec §3) and energy penalties for any cost model.

Ω = (1/p) Σ_l Σ_i w_{l,i} s_{l,i}^p with w = ψ (Ω_syn, Eqs. 13–14), w = 1
(Ω_total, Eq. 18) or w = 1/d_l (Ω_balance, Eq. 19). Since s ∈ {0, 1},
p·E_AC·E_x[Ω_syn] = E_SNN (Theorem 3.4). The power's backward is
s^{p−1}·ds/du (Remark 3.5): for p > 1 silent neurons get no gradient.

The energy penalty of a cost model (`pipeline.cost_models`) is the same sum
with w = c, the model's pJ per spike of each neuron: Ω_E = (1/p) Σ_l Σ_i
c_{l,i} s_{l,i}^p, so p·E_x[Ω_E] is the expected energy less its
spike-independent part (for binary spikes; at p = 1 also for spike counts).
For the `paper` model c = E_AC·ψ and Ω_E = E_AC·Ω_syn. Its key is
`energy_<cost model>`; `PENALTIES` keeps the paper's three, the ones the
pipeline's trade-off curves sweep.

Each layer's term is one autograd function that saves only s (for p > 1)
and w, and whose backward builds w·s^{p−1} in one fresh tensor, so the
penalty adds a few passes over the spikes to a training step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from pipeline.cost_models import COST_MODELS
from pipeline.neuron import neurons
from pipeline.synapses import Wiring

__all__ = ["ENERGY_PENALTIES", "PENALTIES", "Penalty", "attach_spike_costs", "batch_penalty", "check_penalty",
           "label", "omega", "omega_all_firing", "penalty_basis"]


@dataclass(frozen=True)
class Penalty:
    """One activity penalty: its per-neuron weights w_{l,i} and what Ω(1) sums (Sec. 3.3.2)."""

    symbol: str  # how tables and figures print it
    equation: str  # where the paper defines it
    weights: Callable[[Tensor], Tensor]  # the layer's basis (ψ, or c for energy) → w of that layer (same shape)
    all_firing: Callable[[Tensor], float]  # the layer's basis → Σ_i w_{l,i} (every neuron firing)
    cost_model: str | None = None  # an energy penalty's cost model (`pipeline.cost_models`), whose c is the basis


#: The penalties by key; the key is the penalty's name in code, params, stage names, columns and metrics.
PENALTIES: dict[str, Penalty] = {
    "syn": Penalty("Ω_syn", "Eq. 14", lambda psi: psi, lambda psi: float(psi.sum())),
    "total": Penalty("Ω_total", "Eq. 18", torch.ones_like, lambda psi: psi.numel()),
    "balance": Penalty("Ω_balance", "Eq. 19", lambda psi: torch.full_like(psi, 1 / psi.numel()), lambda psi: 1),
}
#: The energy penalties by key `energy_<cost model>`: the basis is c (pJ per spike), w = c.
ENERGY_PENALTIES: dict[str, Penalty] = {
    f"energy_{name}": Penalty(f"Ω_E[{name}]", "docs/energy-models.md", lambda c: c, lambda c: float(c.sum()), name)
    for name in COST_MODELS
}
_ALL = {**PENALTIES, **ENERGY_PENALTIES}


def label(kind: str, p: float) -> str:
    """How tables and figures name a penalty curve: "Ω_syn p=1"."""
    return f"{_ALL[kind].symbol} p={p:g}"


def check_penalty(kind: str, p: float) -> None:
    """Raise a one-line ValueError for an unknown kind or p < 1."""
    if kind not in _ALL:
        raise ValueError(f"unknown penalty {kind!r}; allowed: {', '.join(_ALL)}")
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


def _weights(basis: Tensor, kind: str, dtype: torch.dtype) -> Tensor:
    """w_{l,i} of one layer, flattened: ψ (Eq. 14), 1 (Eq. 18), 1/d_l (Eq. 19) or c (energy)."""
    return _ALL[kind].weights(basis.to(dtype)).reshape(-1)


def omega(spikes: Sequence[Tensor], basis: Sequence[Tensor], kind: str, p: float) -> Tensor:
    """Ω_kind of each example of a batch (Eqs. 14, 18, 19, or an energy penalty) → [N]; `basis` holds each
    layer's ψ (Ω_syn, Ω_total, Ω_balance) or spike costs c (`penalty_basis`). `kind` and `p` are checked where
    they enter (`RunConfig`, `SynapticEnergy`, `check_penalty`), not here: this runs every training step."""
    return sum(_PowerSum.apply(s, _weights(w, kind, s.dtype), p) for s, w in zip(spikes, basis))


def omega_all_firing(basis: Sequence[Tensor], kind: str, p: float) -> float:
    """Ω_kind(1): the penalty with every neuron firing (Sec. 3.3.2), the λ' normaliser."""
    check_penalty(kind, p)
    return sum(_ALL[kind].all_firing(w) for w in basis) / p


def attach_spike_costs(model: nn.Module, wiring: Wiring) -> None:
    """Store each cost model's c (pJ per spike, `Prices.spike_costs`) on every `Neuron` of `model` as a
    non-persistent buffer named by its penalty key (e.g. `energy_lemaire2022`)."""
    for key, penalty in ENERGY_PENALTIES.items():
        costs = COST_MODELS[penalty.cost_model].prices(wiring).spike_costs(wiring)
        for layer, m in neurons(model):
            m.register_buffer(key, costs[layer], persistent=False)


def penalty_basis(model: nn.Module, kind: str) -> list[Tensor]:
    """Each `Neuron`'s basis for penalty `kind` (a checked one): ψ, or the spike costs `attach_spike_costs` stored."""
    named = neurons(model)
    if kind in PENALTIES:
        return [m.psi for _, m in named]
    missing = [name for name, m in named if getattr(m, kind, None) is None]
    if missing:
        raise ValueError(f"no spike costs for {kind!r} on layer {missing[0]!r}: build the model with "
                         "pipeline.models.create_model or call penalties.attach_spike_costs")
    return [getattr(m, kind) for _, m in named]


def batch_penalty(model: nn.Module, kind: str, p: float) -> Tensor:
    """Batch mean of Ω_kind over the spikes of `model`'s last forward pass."""
    return omega([m.spikes for _, m in neurons(model)], penalty_basis(model, kind), kind, p).mean()
