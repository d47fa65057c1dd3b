"""The SNN energy metric and activity statistics (spec §2, Def. 3.2).

E_SNN(l) = T · E_AC · E_x[Σ_i ψ_{l,i} s_{l,i}] (Eq. 10), E_SNN = Σ_l E_SNN(l)
(Eq. 11), FLOPs(l) = Σ_i ψ_{l,i} (Eq. 7), R(l) = E_x[Σ_i s_{l,i} / d_l]
(Eq. 8), rate_sum = Σ_l R(l) (Eq. 9), rate_mean = all spikes / all neurons,
dead rate = share of neurons that never fire on the evaluated data.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from pipeline.neuron import neurons

__all__ = ["E_AC_PJ", "ActivityMeter", "energy_pj", "flops", "synaptic_events"]

E_AC_PJ = 0.9  # energy of one accumulate, pJ (Horowitz 2014)


def synaptic_events(s: Tensor, psi: Tensor) -> Tensor:
    """Σ_i ψ_i s_i for each example of a batch `s` [N, *psi.shape] → [N]."""
    return s.flatten(1) @ psi.reshape(-1).to(s.dtype)


def energy_pj(spikes: Sequence[Tensor], psi: Sequence[Tensor], T: int = 1) -> Tensor:
    """E_SNN(l) in pJ for each layer (Eq. 10), E_x being the batch mean; `.sum()` gives Eq. 11."""
    return torch.stack([T * E_AC_PJ * synaptic_events(s, w).mean() for s, w in zip(spikes, psi)])


def flops(psi: Sequence[Tensor]) -> list[float]:
    """FLOPs(l) = Σ_i ψ_{l,i} (Eq. 7): synaptic operations of layer l when every neuron fires."""
    return [float(w.sum()) for w in psi]


class ActivityMeter:
    """Streams energy and firing statistics of a model's neurons over batches.

    `update` takes, per layer, each example's spike count over `steps` time
    steps (the spikes themselves for a single-step SNN), so the energy sums
    the synaptic events of every step (T · E_x[Σ ψ s] for T steps) while the
    rates are per step. Only per-layer sums and a per-neuron "ever fired"
    mask are kept, never the spikes.
    """

    def __init__(self, model: nn.Module, steps: int = 1) -> None:
        named = neurons(model)
        self.names = [n for n, _ in named]
        self.psi = [m.psi for _, m in named]
        self.steps = steps
        self.examples = 0
        device = self.psi[0].device if self.psi else None
        self.events = torch.zeros(len(named), dtype=torch.float64, device=device)
        self.spike_totals = torch.zeros(len(named), dtype=torch.float64, device=device)
        self.fired = [torch.zeros(w.numel(), dtype=torch.bool, device=w.device) for w in self.psi]

    @torch.no_grad()
    def update(self, spikes: Sequence[Tensor]) -> None:
        """Add one batch: `spikes[l]` is [N, *shape of layer l]."""
        flat = [s.detach().flatten(1) for s in spikes]
        # in float64: integer sums stay exact (float32 is exact only below 2^24 per example and layer)
        self.events += torch.stack([synaptic_events(s.double(), w).sum() for s, w in zip(flat, self.psi)])
        self.spike_totals += torch.stack([s.sum().double() for s in flat])
        for mask, s in zip(self.fired, flat):
            mask |= s.amax(0) > 0
        self.examples += flat[0].shape[0]

    def summary(self) -> dict:
        """Energy (pJ, Eqs. 10–11), rates (Eqs. 8–9, rate_mean) and dead rate so far."""
        n = max(self.examples, 1)
        layer_energy = E_AC_PJ * self.events.cpu() / n
        sizes = torch.tensor([w.numel() for w in self.psi], dtype=torch.float64)
        spike_totals = self.spike_totals.cpu()
        rates = spike_totals / (n * self.steps * sizes)
        return {
            "energy_pj": float(layer_energy.sum()),
            "energy_pj_layers": dict(zip(self.names, layer_energy.tolist())),
            "rate_layers": dict(zip(self.names, rates.tolist())),
            "rate_sum": float(rates.sum()),
            "rate_mean": float(spike_totals.sum() / (n * self.steps * sizes.sum())),
            "dead_rate": float(sum(int((~m).sum()) for m in self.fired) / sizes.sum()),
            "examples": self.examples,
        }
