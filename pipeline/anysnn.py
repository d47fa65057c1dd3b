"""The energy meter and the penalties for any PyTorch SNN (spec §2–§3, docs/own-snn.md).

    meter = SynapticEnergy(model, input_shape)   # ψ of every spiking layer, hooks attached
    logits = model(x)                             # spikes recorded (multi-step or step by step)
    loss = ce + lam * meter.penalty()             # Ω_syn, batch mean, differentiable
    meter.energy_pj()                             # E_SNN per example (Eq. 10 with the real T)
    meter.reset()                                 # before the next batch (or use `with meter:`)

ψ is derived through the model's own layers by `pipeline.synapses.trace_synapses`.
`cost` names a cost model of `pipeline.cost_models` (default `paper`: the paper's
E_SNN); `report()` gives its energy per term and per layer, and
`penalty("energy_<cost model>")` its differentiable energy penalty.

Per example x, with s_{l,i,t} ∈ ℕ the spike count of neuron i of layer l at
step t (k > 1 for multi-spike neurons, each spike an event),
    Ω_syn(x) = (1/p) Σ_l Σ_t Σ_i ψ_{l,i} s_{l,i,t}^p                  (Eqs. 13–14, summed over steps)
    E_SNN    = E_AC · E_x[Σ_l Σ_t Σ_i ψ_{l,i} s_{l,i,t}]               (Eqs. 10–11; = T·E_AC·E_x[mean_t …])
so p·E_AC·E_x[Ω_syn] = E_SNN for binary spikes and any p, and for counts with
p = 1 (Theorem 3.4). E_x is the mean over the recorded examples; a batch's
penalty is the mean of Ω over its examples (Ω is not divided by T).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from pipeline.adapters import NeuronAdapter, spiking_layers
from pipeline.cost_models import CostModel, cost_model
from pipeline.penalties import ENERGY_PENALTIES, PENALTIES, check_penalty, omega, omega_all_firing
from pipeline.synapses import MeterError, check_counts, trace_synapses

__all__ = ["MeterError", "SynapticEnergy"]


class SynapticEnergy:
    """Energy meter and penalties of any PyTorch SNN (Eqs. 10–14, Theorem 3.4, any cost model).

    Attaches ψ to every recognised spiking layer of `model` for inputs of
    `input_shape` (see `pipeline.synapses.trace_synapses`), then records, through
    forward hooks, the spikes of every call of those layers until `reset()`: one
    call per step (ours, snntorch, spikingjelly single-step) or all steps at
    once (spikingjelly multi-step [T, B, …], sinabs [B, T, …] or [B·T, …]).
    The recorded spikes stay in the autograd graph, so `penalty()` is
    differentiable and the surrogate gradients of the model's neurons apply.
    `cost` is a registered cost model's name or a `CostModel`.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], cost: str | CostModel = "paper",
                 convention: str = "padded") -> None:
        self.wiring = trace_synapses(model, input_shape, convention)
        self.layers = spiking_layers(model)
        self.model, self.convention = model, convention
        self.cost = cost_model(cost) if isinstance(cost, str) else cost
        self.prices = self.cost.prices(self.wiring)
        self.names = [name for name, _, _ in self.layers]
        self.psi: dict[str, Tensor] = self.wiring.psi
        self._costs: dict[str, dict[str, Tensor]] = {}  # energy penalty key → c per layer
        self._records: dict[str, list[Tensor]] = {name: [] for name in self.names}
        self._checked: set[str] = set()
        self._version = 0
        self._cache: dict[str, tuple[int, Tensor]] = {}
        self._handles = [m.register_forward_hook(self._recorder(name, m, adapter))
                         for name, m, adapter in self.layers]

    # recording -------------------------------------------------------------------------------
    def _recorder(self, name: str, module: nn.Module, adapter: NeuronAdapter):
        records = self._records[name]

        def hook(_, inputs, output):
            s = adapter.spikes(output)
            if name not in self._checked:  # the first batch only: a full check costs passes
                check_counts(name, module, s)
                self._checked.add(name)
            records.append(adapter.time_major(module, s))
            self._version += 1
        return hook

    def reset(self) -> None:
        """Forget the recorded spikes (call before each batch)."""
        for records in self._records.values():
            records.clear()
        self._version += 1

    def close(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> "SynapticEnergy":
        self.reset()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.reset()

    def spikes(self) -> dict[str, Tensor]:
        """Recorded spikes of each layer, time-major [T, B, *neuron shape] (steps concatenated)."""
        return {name: (r[0] if len(r) == 1 else torch.cat(r)) for name, r in self._records.items() if r}

    def steps(self) -> int:
        """T: the number of recorded time steps (the same in every layer)."""
        counts = {sum(r.shape[0] for r in records) for records in self._records.values() if records}
        if not counts:
            raise MeterError("no spikes recorded: run the model between reset() and reading the meter")
        if len(counts) != 1:
            raise MeterError(f"layers recorded different numbers of time steps {sorted(counts)}")
        return counts.pop()

    def examples(self) -> int:
        """B: the number of examples recorded."""
        self.steps()
        return next(r[0].shape[1] for r in self._records.values() if r)

    # the penalties ---------------------------------------------------------------------------
    def _per_example(self, name: str) -> Tensor:
        """Σ_t s_{l,·,t} for each example: [B, *neuron shape] (counts summed over the steps)."""
        records = self._records[name]
        total = records[0].sum(0)
        for r in records[1:]:
            total = total + r.sum(0)
        return total

    def _events(self, name: str) -> Tensor:
        """Σ_t Σ_i ψ_{l,i} s_{l,i,t} of each example for layer `name` → [B] (differentiable), the
        detached values kept until the next recorded call so a readout after the penalty is free."""
        value = omega([self._per_example(name)], [self.psi[name]], "syn", 1.0)
        self._cache[name] = (self._version, value.detach())
        return value

    def _events_detached(self, name: str) -> Tensor:
        version, value = self._cache.get(name, (-1, None))
        if version != self._version:
            with torch.no_grad():
                value = self._events(name)
        return value

    def _recorded(self) -> list[str]:
        self.steps()
        return [n for n in self.names if self._records[n]]

    def _basis(self, kind: str) -> dict[str, Tensor]:
        """Each layer's ψ, or for an energy penalty its cost model's c (pJ per spike)."""
        if kind in PENALTIES:
            return self.psi
        if kind not in self._costs:
            model = cost_model(ENERGY_PENALTIES[kind].cost_model)
            self._costs[kind] = model.prices(self.wiring).spike_costs(self.wiring)
        return self._costs[kind]

    def omega(self, kind: str = "syn", p: float = 1.0) -> Tensor:
        """Ω_kind of each recorded example, summed over steps (Eqs. 13–14, 18, 19, or `energy_<cost
        model>`) → [B]. For p = 1 the steps are summed first (one pass); for p > 1 each step's s^p counts.
        """
        check_penalty(kind, p)
        names = self._recorded()
        if kind == "syn" and p == 1:
            return sum(self._events(n) for n in names)
        basis = [self._basis(kind)[n] for n in names]
        if p == 1:
            return omega([self._per_example(n) for n in names], basis, kind, p)
        recorded = self.spikes()
        spikes = [recorded[n] for n in names]  # [T, B, *n] → [B, T·n] against the basis repeated T times
        return omega([s.transpose(0, 1) for s in spikes],
                     [w.expand(s.shape[0], *w.shape) for w, s in zip(basis, spikes)], kind, p)

    def penalty(self, kind: str = "syn", p: float = 1.0) -> Tensor:
        """The batch's penalty: the mean of Ω_kind over its examples (differentiable)."""
        return self.omega(kind, p).mean()

    def omega_all_firing(self, steps: int, kind: str = "syn", p: float = 1.0) -> float:
        """Ω_kind(1) with every neuron firing once at each of `steps` steps (Sec. 3.3.2's normaliser)."""
        if not isinstance(steps, int) or steps < 1:
            raise MeterError(f"time steps T must be an int >= 1 (got {steps!r})")
        check_penalty(kind, p)
        return steps * omega_all_firing(list(self._basis(kind).values()), kind, p)

    # the energy ------------------------------------------------------------------------------
    @torch.no_grad()
    def synaptic_events(self) -> dict[str, float]:
        """Per layer, E_x[Σ_t Σ_i ψ_{l,i} s_{l,i,t}]: synaptic events per example (multiplicity k counts k).

        Each example's sum is taken in the spikes' dtype (exact in float32 up to 2^24 events per
        example and layer), the mean over examples in float64; Ω_syn uses the same numbers.
        """
        b = self.examples()
        return {n: float(self._events_detached(n).double().sum()) / b for n in self._recorded()}

    @torch.no_grad()
    def _counts(self) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """E_{l→j} per example ({l: {j: events}}) and, if the cost model prices spikes, S_l per example."""
        b, totals = self.examples(), self.synaptic_events()
        events: dict[str, dict[str, float]] = {}
        for n, total in totals.items():
            drives = self.wiring.fanout[n]
            if len(drives) == 1:  # all its events are in the one conv/FC it drives
                events[n] = {j: total for j in drives}
            else:
                s = self._per_example(n)
                events[n] = {j: float(omega([s], [w], "syn", 1.0).double().sum()) / b for j, w in drives.items()}
        spikes = ({n: float(self._per_example(n).double().sum()) / b for n in self._recorded()}
                  if self.prices.per_spike else {})
        return events, spikes

    @torch.no_grad()
    def report(self) -> dict[str, Any]:
        """Energy per example under the cost model (`energy_pj`, E_SNN for `paper`), its spike-independent
        part (`constant_pj`), per term and per layer, and the counts it came from."""
        events, _ = self._counts()
        b, steps = self.examples(), self.steps()
        spikes = {n: float(self._per_example(n).double().sum()) / b for n in self._recorded()}
        dense = sum(syn.macs for syn in self.wiring.synapses.values() if not syn.spiking)
        return {**self.prices.energy(events, spikes, steps), "steps": steps, "examples": b,
                "synaptic_events": sum(sum(to.values()) for to in events.values()),
                "spikes": sum(spikes.values()), "dense_macs": steps * dense}

    @torch.no_grad()
    def energy_pj(self) -> float:
        """Energy per example in pJ under the cost model (the paper's E_SNN by default).

        Reads only what the cost model needs; right after `penalty()` the events are already known.
        """
        return self.prices.energy(*self._counts(), self.steps())["energy_pj"]
