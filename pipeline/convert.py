"""ANN→SNN conversion baseline (spec §7, Sorbaro et al. 2020).

The ANN is `create_model(name, neuron=QReLU)`: each BN–spike pair becomes
BN–QReLU, whose activation floor(max(u, 0)) counts the spikes of a
threshold-1 integrate-and-fire neuron. Conversion keeps the weights:
every BN that follows a conv/FC is folded into it, each QReLU becomes an
`IFNeuron` (v ← v + I; s = H(v − 1); v ← v − s; no leak), and the image is
presented at every one of T steps (direct encoding). The logits are the last
layer's output summed over the steps; the energy counts the synaptic events
of every step, E = E_AC · Σ_t Σ_l Σ_i ψ_{l,i} s_{l,i,t}.

What the T-step IF network computes: a neuron fed a constant current I fires
min(T, floor(T·I)) times (at most once per step), so at T = 1 it spikes iff
I ≥ 1 — exactly the ANN when every QReLU activation is 0 or 1 — and as T
grows its rate approaches clip(I, 0, 1), not floor(I): QReLU counts above 1
saturate, and currents in (0, 1) fire although the ANN says 0.
"""
from __future__ import annotations

import copy
import operator
from typing import Iterable

import torch
from torch import Tensor, fx, nn

from pipeline.energy import ActivityMeter
from pipeline.neuron import Neuron, QReLU, neurons

__all__ = ["IFNeuron", "evaluate_converted", "fold_bn", "run_if_snn", "to_if_snn"]

_FOLDABLE = {nn.Conv2d: nn.BatchNorm2d, nn.Linear: nn.BatchNorm1d}
_LINEAR_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                  nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity)
_LINEAR_OPS = (operator.add, torch.flatten, "flatten", "view", "reshape")


class IFNeuron(Neuron):
    """Integrate-and-fire neuron, threshold 1, reset by subtraction, no leak (spec §7).

    Per call (one time step) with input current I: v ← v + I; s = H(v − 1);
    v ← v − s. The membrane `v` and the spike `count` since the last
    `reset()` persist across calls; reset before each new input batch.
    """

    v: Tensor | None
    count: Tensor | None

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Forget the membrane potential and the spike count (new input batch)."""
        self.v, self.count = None, None

    def fire(self, u: Tensor) -> Tensor:
        v = u if self.v is None else self.v + u
        s = (v >= 1).to(u.dtype)
        self.v = v - s
        self.count = s if self.count is None else self.count + s
        return s


class _NeuronLeafTracer(fx.Tracer):
    """Traces through containers and blocks but keeps every `Neuron` as one node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, Neuron) or super().is_leaf_module(m, qualname)


def _graph(model: nn.Module) -> fx.Graph:
    return _NeuronLeafTracer().trace(model)


def _check_convertible(model: nn.Module) -> None:
    """One-line ValueError for the first operation that is not linear or a QReLU.

    The per-step currents add up to the ANN's input current only if everything
    between two neuron layers is linear.
    """
    allowed = "QReLU, " + ", ".join(t.__name__ for t in _LINEAR_LAYERS) + ", addition and reshaping"
    for node in _graph(model).nodes:
        if node.op == "call_module":
            layer = model.get_submodule(node.target)
            ok = isinstance(layer, (QReLU, *_LINEAR_LAYERS))
            what = f"layer {node.target!r} ({type(layer).__name__})"
        elif node.op in ("call_function", "call_method"):
            ok = node.target in _LINEAR_OPS
            what = f"operation {getattr(node.target, '__name__', node.target)!r} in {node.name!r}"
        else:
            continue
        if not ok:
            raise ValueError(f"cannot convert {what} to an IF SNN; supported: {allowed}")


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


@torch.no_grad()
def _fold_into(layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    """W ← W·γ/σ, b ← β + (b − μ)·γ/σ with σ = √(running_var + ε): layer then BN in eval mode."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = torch.zeros_like(bn.running_mean) if layer.bias is None else layer.bias
    shift = (bias - bn.running_mean) * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    layer.weight.mul_(scale.reshape(-1, *[1] * (layer.weight.dim() - 1)))
    layer.bias = nn.Parameter(shift.to(layer.weight.dtype))


def fold_bn(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of `model` with every foldable BatchNorm folded away.

    A BN is folded when its input is the output of a conv/FC that feeds
    nothing else: the layer gets weight·γ/σ and bias β + (b − μ)·γ/σ (running
    statistics, eval mode) and the BN becomes Identity. A BN whose input is
    anything else stays as it is; in eval mode it is the per-channel affine
    map u = γ(x − μ)/σ + β. In the pre-activation ResNet18 that is every
    block-input BN (main path and shortcut) and the final BN: they follow a
    residual sum or the stem conv whose output also feeds the identity
    shortcut, so no single layer can absorb them. Applied at every step of
    the IF SNN, that affine map delivers the same input current per step as
    a folded bias does, so both kinds of BN convert alike.
    """
    folded = copy.deepcopy(model).eval()
    for node in _graph(folded).nodes:
        source = node.args[0] if node.op == "call_module" else None
        if not (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1):
            continue
        bn, layer = folded.get_submodule(node.target), folded.get_submodule(source.target)
        if type(bn) is not _FOLDABLE.get(type(layer)):
            continue
        if bn.running_mean is None:
            raise ValueError(f"BatchNorm {node.target!r} keeps no running statistics; build it with "
                             "track_running_stats=True to fold it")
        _fold_into(layer, bn)
        _set_submodule(folded, node.target, nn.Identity())
    return folded


def to_if_snn(ann: nn.Module) -> nn.Module:
    """The IF SNN of a QReLU ANN: `fold_bn(ann)` with each QReLU replaced by an `IFNeuron`.

    ψ buffers are carried over (ψ is structural; folding does not change it).
    Raises a one-line ValueError, before anything is copied, for a layer or
    operation the conversion does not support (e.g. MaxPool2d, ReLU, Spike).
    """
    _check_convertible(ann)
    snn = fold_bn(ann)
    for name, qrelu in neurons(snn):
        if_neuron = IFNeuron()
        if_neuron.psi = qrelu.psi
        _set_submodule(snn, name, if_neuron)
    return snn


def _check_steps(T: int) -> None:
    if T < 1:
        raise ValueError(f"T must be >= 1 (got {T})")


@torch.no_grad()
def run_if_snn(snn: nn.Module, x: Tensor, T: int) -> tuple[Tensor, list[Tensor]]:
    """Present `x` at each of T steps (direct encoding) to the IF SNN from `to_if_snn`.

    Returns the output summed over the steps (the logits) and, per neuron
    layer in `neurons(snn)` order, each example's spike count over the T steps
    [N, *shape] — what `ActivityMeter(snn, steps=T).update` takes. The SNN is
    put in eval mode (dropout off, any kept BN as its running-stat affine map).
    """
    _check_steps(T)
    layers = neurons(snn)
    wrong = [name for name, m in layers if not isinstance(m, IFNeuron)]
    if wrong:
        raise ValueError(f"neuron layer {wrong[0]!r} is not an IFNeuron; convert the ANN with to_if_snn first")
    snn.eval()
    for _, m in layers:
        m.reset()
    logits = sum(snn(x) for _ in range(T))
    return logits, [m.count for _, m in layers]


@torch.no_grad()
def evaluate_converted(ann: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], T: int) -> dict:
    """Convert a QReLU ANN and evaluate its IF SNN for T steps on `loader` (spec §7).

    Returns test_accuracy (fraction), energy_pj (E_AC · Σ_t Σ_l Σ_i ψ s,
    mean over examples), rate_mean and rate_sum (per step),
    dead_rate and T. Bad T or an unsupported layer raise before any batch is read.
    """
    _check_steps(T)
    snn = to_if_snn(ann)
    missing = [name for name, m in neurons(snn) if m.psi is None]
    if missing:
        raise ValueError(f"neuron layer {missing[0]!r} has no psi; build the ANN with psi='padded' or 'exact'")
    device = next(snn.parameters()).device
    meter = ActivityMeter(snn, steps=T)
    correct = 0
    for x, y in loader:
        logits, counts = run_if_snn(snn, x.to(device), T)
        correct += int((logits.argmax(1).cpu() == y).sum())
        meter.update(counts)
    stats = meter.summary()
    return {
        "test_accuracy": correct / max(stats["examples"], 1),
        "energy_pj": stats["energy_pj"],
        "rate_mean": stats["rate_mean"],
        "rate_sum": stats["rate_sum"],
        "dead_rate": stats["dead_rate"],
        "T": T,
    }
