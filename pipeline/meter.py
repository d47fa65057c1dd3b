"""The energy meter and the synaptic penalty for any PyTorch SNN (spec §2–§3).

    meter = SynapticEnergy(model, input_shape)   # ψ of every spiking layer, hooks attached
    logits = model(x)                             # spikes recorded (multi-step or step by step)
    loss = ce + lam * meter.penalty()             # Ω_syn, batch mean, differentiable
    meter.energy_pj()                             # E_SNN per example (Eq. 10 with the real T)
    meter.reset()                                 # before the next batch (or use `with meter:`)

ψ (synapses driven by each neuron) is derived through the model's own layers
with the autograd probe of `pipeline.synapses`: one forward pass of an input of
`input_shape` in which every spiking layer emits an all-ones leaf and every
conv/FC adds up an all-ones copy of itself applied to its input; the gradient
at a leaf is ψ. Spikes reach synapses through BN, dropout, flatten/reshape,
residual adds, concatenation and pools (average, max and sinabs' sum pools
count as sum pools: a spike entering a window reaches every synapse of the
pooled unit). Any other leaf layer on the way is refused, by name.

Per example x, with s_{l,i,t} ∈ ℕ the spike count of neuron i of layer l at
step t (k > 1 for multi-spike neurons, each spike an event),
    Ω_syn(x) = (1/p) Σ_l Σ_t Σ_i ψ_{l,i} s_{l,i,t}^p                  (Eqs. 13–14, summed over steps)
    E_SNN    = E_AC · E_x[Σ_l Σ_t Σ_i ψ_{l,i} s_{l,i,t}]               (Eqs. 10–11; = T·E_AC·E_x[mean_t …])
so p·E_AC·E_x[Ω_syn] = E_SNN for binary spikes and any p, and for counts with
p = 1 (Theorem 3.4). E_x is the mean over the recorded examples; a batch's
penalty is the mean of Ω_syn over its examples (Ω is not divided by T).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.adapters import NeuronAdapter, spiking_layers
from pipeline.fileio import one_line
from pipeline.penalties import check_penalty, omega
from pipeline.synapses import PSI_CONVENTIONS, _sum_pool, _synapse_events

__all__ = ["CostModel", "MeterError", "SynapticEnergy", "derive_psi"]


class MeterError(ValueError):
    """The model, a layer or the input cannot be metered; the message is one line."""


@dataclass(frozen=True)
class CostModel:
    """Energy per operation, in pJ (Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm).

    - `ac_pj`: one synaptic event, an accumulate: 0.9 pJ, a 32-bit float add (the paper's E_AC).
    - `mac_pj`: one multiply-accumulate of a layer that reads non-spiking input (the first layer
      reading the image): 32-bit float mult 3.7 pJ + add 0.9 pJ = 4.6 pJ. None (default, the
      paper's metric): such layers cost nothing.
    - `weight_read_pj`: memory access per synaptic event (one weight fetched), e.g. 5 pJ for a
      32-bit read from an 8 KB SRAM (Horowitz: 10 pJ per 64-bit word); default 0.
    - `spike_io_pj`: memory access per emitted spike (its activation written/read); default 0.
    The default is exactly the paper's metric: E = 0.9 pJ × synaptic events.
    """

    ac_pj: float = 0.9
    mac_pj: float | None = None
    weight_read_pj: float = 0.0
    spike_io_pj: float = 0.0


PAPER = CostModel()

_SYNAPSES = (nn.Conv2d, nn.Linear)
_POOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.LPPool2d)
_PASSIVE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
            nn.Dropout3d, nn.Flatten, nn.Unflatten, nn.Identity)
_SUPPORTED = _SYNAPSES + _POOLS + _PASSIVE


def _images(x: Tensor) -> Tensor:
    """`x` [*, C, H, W] as [N, C, H, W] (time and example axes folded)."""
    return x.reshape(-1, *x.shape[-3:])


def _window_sums(pool: nn.Module, x: Tensor, like: Tensor) -> Tensor:
    """Each pooled unit's window sum of `x`, shaped like the pool's output `like`."""
    flat = _images(x)
    if isinstance(pool, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        out = _sum_pool(pool, flat)
    else:  # max pool or sinabs' SumPool2d (an LPPool2d of norm 1): window sums
        out = F.avg_pool2d(flat, pool.kernel_size, pool.stride, getattr(pool, "padding", 0), pool.ceil_mode,
                           count_include_pad=True, divisor_override=1)
    return out.reshape(like.shape)


def _peer_passive() -> tuple[type, ...]:
    """Peer layers a spike passes unchanged in eval mode: sinabs' time (un)flattening and
    spikingjelly's dropouts (their mask is shared over steps, identity in eval)."""
    found: list[type] = []
    for module, names in (("sinabs.layers", ("FlattenTime", "UnflattenTime")),
                          ("spikingjelly.activation_based.layer", ("Dropout", "Dropout2d"))):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        found += [getattr(mod, n) for n in names if hasattr(mod, n)]
    return tuple(found)


def _check_layers(model: nn.Module, spiking: Sequence[str]) -> None:
    """Refuse (one line, naming it) any leaf layer ψ cannot be derived through."""
    for name, m in model.named_modules():
        if name in spiking or any(name.startswith(s + ".") for s in spiking if s):
            continue
        problem = None
        if not list(m.children()) and not isinstance(m, _SUPPORTED + _peer_passive()):
            problem = "not a layer a spike can be counted through (conv2d, linear, pools, BN, dropout, reshapes)"
        elif isinstance(m, nn.MaxPool2d) and (m.dilation not in (1, (1, 1)) or m.return_indices):
            problem = "max pool with dilation or indices"
        elif isinstance(m, nn.LPPool2d) and m.norm_type != 1:
            problem = f"LP pool of norm {m.norm_type} (only norm 1, a sum pool, is linear)"
        if problem:
            raise MeterError(f"cannot count synapses through layer {name!r} ({type(m).__name__}): {problem}")


def _check_counts(name: str, module: nn.Module, s: Tensor) -> None:
    s = s.detach()
    non_integer = s.is_floating_point() and (not bool(torch.isfinite(s).all()) or not torch.equal(s, s.floor()))
    if non_integer or bool((s < 0).any()):
        raise MeterError(f"spiking layer {name!r} ({type(module).__name__}) output is not a spike count "
                         "(non-integer or negative values)")


@dataclass
class _Probe:
    """What one probe pass finds: ψ per spiking layer (neuron shape), and the dense layers' MACs per sample."""

    psi: dict[str, Tensor]
    dense_macs: dict[str, float]  # synapse layers reached by no spike: MACs per folded input sample


def _probe(model: nn.Module, input_shape: tuple[int, ...], layers: list[tuple[str, nn.Module, NeuronAdapter]],
           convention: str) -> _Probe:
    """One forward pass of zeros shaped `input_shape` in which every spiking layer emits an all-ones
    leaf and every conv/FC adds up an all-ones copy of itself applied to its input (pipeline.synapses);
    ψ is the gradient of that sum at each leaf, read at step 0, example 0 (and checked equal elsewhere)."""
    leaves: dict[str, list[Tensor]] = {name: [] for name, _, _ in layers}
    events: list[Tensor] = []
    dense: dict[str, float] = {}
    module_names = {id(m): n for n, m in model.named_modules()}

    def on_spiking(name: str, module: nn.Module, adapter: NeuronAdapter):
        def hook(_, inputs, output):
            s = adapter.spikes(output)
            _check_counts(name, module, s)
            leaf = torch.ones_like(s, requires_grad=True)
            leaves[name].append(leaf)
            return adapter.replace(output, leaf)
        return hook

    def on_synapses(module, inputs, output):
        x = inputs[0]
        folded = _images(x) if isinstance(module, nn.Conv2d) else x
        if x.requires_grad:
            events.append(_synapse_events(module, folded, convention))
        else:  # reached by no spike (e.g. reads the image): its dense MACs per folded sample
            samples = x.numel() // (math.prod(x.shape[-3:]) if isinstance(module, nn.Conv2d) else x.shape[-1])
            macs = _synapse_events(module, torch.ones_like(folded), "exact")
            dense[module_names[id(module)]] = float(macs) / samples
        return output.detach()

    def on_pool(module, inputs, output):
        return _window_sums(module, inputs[0], output)

    def on_passive(module, inputs, output):
        return inputs[0]

    handles = []
    for name, m, adapter in layers:
        handles.append(m.register_forward_hook(on_spiking(name, m, adapter)))
    for m in model.modules():
        if isinstance(m, _SYNAPSES):
            handles.append(m.register_forward_hook(on_synapses))
        elif isinstance(m, _POOLS):
            handles.append(m.register_forward_hook(on_pool))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            handles.append(m.register_forward_hook(on_passive))
    param = next(model.parameters(), None)
    dtype, device = (param.dtype, param.device) if param is not None else (torch.float32, None)
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            try:
                model(torch.zeros(input_shape, dtype=dtype, device=device))
            except MeterError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is the shape's
                raise MeterError(f"input shape {tuple(input_shape)} does not fit the model: {type(exc).__name__}: {one_line(exc)}") from None
            flat = [(name, leaf) for name, ls in leaves.items() for leaf in ls]
            if not flat:
                raise MeterError("no spiking layer of the model was called on an input of shape "
                                 f"{tuple(input_shape)}")
            total = torch.stack(events).sum() if events else None
            grads = (torch.autograd.grad(total, [leaf for _, leaf in flat], allow_unused=True)
                     if total is not None else [None] * len(flat))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        for _, m, adapter in layers:
            adapter.reset(m)
    adapters = {name: (m, adapter) for name, m, adapter in layers}
    psi: dict[str, Tensor] = {}
    for (name, leaf), grad in zip(flat, grads):
        m, adapter = adapters[name]
        g = adapter.time_major(m, grad if grad is not None else torch.zeros_like(leaf)).detach()
        one = g[0, 0]
        if not (g == one).all() or (name in psi and not torch.equal(psi[name], one)):
            raise MeterError(f"spiking layer {name!r} ({type(m).__name__}) drives different synapses at "
                             "different time steps or examples; ψ must be one per neuron")
        psi[name] = one.clone()
    for name, _, _ in layers:
        if name not in psi:
            raise MeterError(f"spiking layer {name!r} was not called on an input of shape {tuple(input_shape)}")
    return _Probe(psi, dense)


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise MeterError(f"input shape {shape} must be a non-empty tuple of ints >= 1 "
                         "(time steps and examples included)")
    return shape


def _prepare(model: nn.Module, input_shape: Sequence[int], convention: str
             ) -> tuple[list[tuple[str, nn.Module, NeuronAdapter]], _Probe]:
    """Check everything that can be checked before any work, then probe ψ."""
    if convention not in PSI_CONVENTIONS:
        raise MeterError(f"unknown psi convention {convention!r}; allowed: {', '.join(PSI_CONVENTIONS)}")
    shape = _check_shape(input_shape)
    layers = spiking_layers(model)
    if not layers:
        raise MeterError(f"no recognisable spiking layer in {type(model).__name__} "
                         "(ours, spikingjelly BaseNode, snntorch SpikingNeuron, sinabs IAF/LIF)")
    _check_layers(model, [name for name, _, _ in layers])
    return layers, _probe(model, shape, layers, convention)


def derive_psi(model: nn.Module, input_shape: Sequence[int], convention: str = "padded") -> dict[str, Tensor]:
    """ψ of every spiking layer of `model` ({name: ψ shaped like one neuron map}) for a model
    input of `input_shape` (the whole input, time and example axes included, e.g. (T, 1, C, H, W)
    for a spikingjelly multi-step net, (1, C, H, W) for a single-step one)."""
    return _prepare(model, input_shape, convention)[1].psi


class SynapticEnergy:
    """Energy meter and synaptic penalty of any PyTorch SNN (Eqs. 10–14, Theorem 3.4).

    Attaches ψ to every recognised spiking layer of `model` for inputs of
    `input_shape` (see `derive_psi`), then records, through forward hooks, the
    spikes of every call of those layers until `reset()`: one call per step
    (ours, snntorch, spikingjelly single-step) or all steps at once
    (spikingjelly multi-step [T, B, …], sinabs [B, T, …] or [B·T, …]).
    The recorded spikes stay in the autograd graph, so `penalty()` is
    differentiable and the surrogate gradients of the model's neurons apply.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], cost: CostModel = PAPER,
                 convention: str = "padded") -> None:
        self.layers, probe = _prepare(model, input_shape, convention)
        self.model, self.cost, self.convention = model, cost, convention
        self.names = [name for name, _, _ in self.layers]
        self.psi: dict[str, Tensor] = probe.psi
        self.dense_macs = probe.dense_macs
        self._records: dict[str, list[Tensor]] = {name: [] for name in self.names}
        self._checked: set[str] = set()
        self._dense_macs_total = 0.0
        self._version = 0
        self._cache: dict[str, tuple[int, Tensor]] = {}
        self._handles = [m.register_forward_hook(self._recorder(name, m, adapter))
                         for name, m, adapter in self.layers]
        if cost.mac_pj is not None:
            named = dict(model.named_modules())
            self._handles += [named[n].register_forward_hook(self._dense_counter(n)) for n in self.dense_macs]

    # recording -------------------------------------------------------------------------------
    def _recorder(self, name: str, module: nn.Module, adapter: NeuronAdapter):
        records = self._records[name]

        def hook(_, inputs, output):
            s = adapter.spikes(output)
            if name not in self._checked:  # the first batch only: a full check costs passes
                _check_counts(name, module, s)
                self._checked.add(name)
            records.append(adapter.time_major(module, s))
            self._version += 1
        return hook

    def _dense_counter(self, name: str):
        def hook(module, inputs, output):
            x = inputs[0]
            per = math.prod(x.shape[-3:]) if isinstance(module, nn.Conv2d) else x.shape[-1]
            self._dense_macs_total += self.dense_macs[name] * (x.numel() // per)
        return hook

    def reset(self) -> None:
        """Forget the recorded spikes (call before each batch)."""
        for records in self._records.values():
            records.clear()
        self._dense_macs_total = 0.0
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

    # the metric and the penalty --------------------------------------------------------------
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

    def omega(self, kind: str = "syn", p: float = 1.0) -> Tensor:
        """Ω_kind of each recorded example, summed over steps (Eqs. 13–14, 18, 19) → [B].

        For p = 1 the steps are summed first (one pass); for p > 1 each step's s^p counts.
        """
        check_penalty(kind, p)
        names = self._recorded()
        if kind == "syn" and p == 1:
            return sum(self._events(n) for n in names)
        psi = [self.psi[n] for n in names]
        if p == 1:
            return omega([self._per_example(n) for n in names], psi, kind, p)
        recorded = self.spikes()
        spikes = [recorded[n] for n in names]  # [T, B, *n] → [B, T·n] against ψ repeated T times
        return omega([s.transpose(0, 1) for s in spikes],
                     [w.expand(s.shape[0], *w.shape) for w, s in zip(psi, spikes)], kind, p)

    def penalty(self, kind: str = "syn", p: float = 1.0) -> Tensor:
        """The batch's penalty: the mean of Ω_kind over its examples (differentiable)."""
        return self.omega(kind, p).mean()

    def omega_all_firing(self, steps: int, kind: str = "syn", p: float = 1.0) -> float:
        """Ω_kind(1) with every neuron firing once at each of `steps` steps (Sec. 3.3.2's normaliser)."""
        if not isinstance(steps, int) or steps < 1:
            raise MeterError(f"time steps T must be an int >= 1 (got {steps!r})")
        check_penalty(kind, p)
        per_layer = {"syn": lambda w: float(w.sum()), "total": lambda w: w.numel(), "balance": lambda w: 1}
        return steps * sum(per_layer[kind](w) for w in self.psi.values()) / p

    @torch.no_grad()
    def synaptic_events(self) -> dict[str, float]:
        """Per layer, E_x[Σ_t Σ_i ψ_{l,i} s_{l,i,t}]: synaptic events per example (multiplicity k counts k).

        Each example's sum is taken in the spikes' dtype (exact in float32 up to 2^24 events per
        example and layer), the mean over examples in float64; Ω_syn uses the same numbers.
        """
        b = self.examples()
        return {n: float(self._events_detached(n).double().sum()) / b for n in self._recorded()}

    @torch.no_grad()
    def report(self) -> dict[str, Any]:
        """Energy per example in pJ under `cost` and its parts; `energy_pj` is E_SNN (Eqs. 10–11)."""
        b, events = self.examples(), self.synaptic_events()
        spikes = sum(float(self._per_example(n).double().sum()) for n in self._recorded()) / b
        parts = {"synaptic_events": sum(events.values()), "spikes": spikes, "dense_macs": self._dense_per_example(b)}
        return {"energy_pj": self._energy(parts), "energy_pj_layers": {n: self.cost.ac_pj * e for n, e in events.items()},
                "steps": self.steps(), "examples": b, **parts}

    def _dense_per_example(self, b: int) -> float:
        return self._dense_macs_total / b if self.cost.mac_pj is not None else 0.0

    def _energy(self, parts: dict[str, float]) -> float:
        c = self.cost
        return ((c.ac_pj + c.weight_read_pj) * parts["synaptic_events"] + c.spike_io_pj * parts["spikes"]
                + (c.mac_pj or 0.0) * parts["dense_macs"])

    @torch.no_grad()
    def energy_pj(self) -> float:
        """E_SNN per example in pJ under the cost model (the paper's metric by default: E_AC × events).

        Reads only what the cost model needs; right after `penalty()` the events are already known.
        """
        b = self.examples()
        spikes = (sum(float(self._per_example(n).double().sum()) for n in self._recorded()) / b
                  if self.cost.spike_io_pj else 0.0)
        return self._energy({"synaptic_events": sum(self.synaptic_events().values()), "spikes": spikes,
                             "dense_macs": self._dense_per_example(b)})
