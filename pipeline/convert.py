"""ANN→SNN conversion baseline (spec §7, Sorbaro et al. 2020).

The ANN is `create_model(name, neuron=QReLU)`: each BN–spike pair becomes
BN–QReLU, whose activation floor(max(u, 0)) counts the spikes of a
threshold-1 integrate-and-fire neuron in one step. Conversion keeps the
weights: every BN that follows a conv/FC is folded into it (any other BN
stays, as its running-stat affine map) and each QReLU becomes an
integrate-and-fire neuron of a named kind (`CONVERSION_NEURONS`), both with
threshold θ = 1, reset by subtraction, no leak and no negative spikes:

- `multi` (`MultiSpikeIF`, the default; the neuron of Sorbaro et al. and of
  sinabs' `MultiSpike`): v ← v + I; k = ⌊max(v, 0)/θ⌋ spikes; v ← v − k·θ.
- `single` (`IFNeuron`): at most one spike per step, s = H(v − θ); v ← v − s.

The static image is presented over T steps by a named encoding (`ENCODINGS`):

- `spread` (the default): every constant input of the network is divided
  by T — the image (x/T at each step), each conv/FC bias (after BN folding)
  and the constant part β − γμ/σ of every BN kept as an affine map — so each
  neuron's input summed over the T steps is W·(spikes of the layer below,
  summed over the steps) + b, with b counted once: for the first layer
  exactly the ANN's pre-activation u.
- `repeat`: the image and every bias enter at every step (direct encoding),
  so the summed input is T·u for the first layer.

The logits are the last layer's output summed over the steps (under
`spread` its bias enters once). The energy counts every synaptic event of
every step with multiplicity: a neuron that emits k spikes in a step costs
k·ψ, E = E_AC · Σ_t Σ_l Σ_i ψ_{l,i} k_{l,i,t}.

What the T-step network computes:

- At T = 1 the two encodings coincide. The multi-spike network then computes
  exactly what the QReLU ANN with the folded weights computes (v = u, k =
  ⌊max(u, 0)⌋, bit for bit); the single-spike network is the paper's
  single-step SNN H(u − 1) with the same weights.
- Multi-spike, `spread`: a neuron fed a constant input ends the T steps
  with ⌊max(u, 0)⌋ spikes (the ANN's activation, delivered late); deeper
  layers receive time-varying input and can differ from the ANN (a neuron
  that fires early on input that later turns negative cannot take the
  spike back), so T > 1 only delays and quantises.
- Multi-spike, `repeat`: a first-layer neuron fires ⌊T·u⌋ times; the
  network approaches the QReLU ANN with every threshold at 1/T (a finer
  quantised ReLU), with about T times the spikes.
- Single-spike: at most T spikes per neuron; under `repeat` a neuron with a
  constant input fires min(T, ⌊T·u⌋) times, so its rate approaches
  clip(u, 0, 1), not ⌊u⌋ (QReLU counts above 1 saturate).
"""
from __future__ import annotations

import copy
import operator
from typing import Iterable, Sequence

import torch
from torch import Tensor, fx, nn
from torch.func import functional_call

from pipeline.energy import ActivityMeter
from pipeline.neuron import Neuron, QReLU, neurons

__all__ = ["CONVERSION_NEURONS", "ENCODINGS", "IFNeuron", "MultiSpikeIF", "check_conversion", "evaluate_ann",
           "evaluate_converted", "fold_bn", "fold_into", "run_if_snn", "to_if_snn"]

_FOLDABLE = {nn.Conv2d: nn.BatchNorm2d, nn.Linear: nn.BatchNorm1d}
_LINEAR_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                  nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity)
_LINEAR_OPS = (operator.add, torch.flatten, "flatten", "view", "reshape")


class IFNeuron(Neuron):
    """Integrate-and-fire neuron, threshold 1, reset by subtraction, at most one spike per step (spec §7).

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

    def _spikes(self, v: Tensor) -> Tensor:
        return (v >= 1).to(v.dtype)

    def fire(self, u: Tensor) -> Tensor:
        v = u if self.v is None else self.v + u
        s = self._spikes(v)
        self.v = v - s
        self.count = s if self.count is None else self.count + s
        return s


class MultiSpikeIF(IFNeuron):
    """Multi-spike integrate-and-fire neuron, threshold θ = 1, reset by subtraction, no leak (spec §7).

    Per step: v ← v + I; k = ⌊max(v, 0)/θ⌋ spikes (no negative spikes);
    v ← v − k·θ. The output is the spike count k of the step, so one call
    with v = 0 computes exactly QReLU(I) = floor(max(I, 0)), and every
    spike counts toward the energy (k·ψ synaptic events).
    """

    def _spikes(self, v: Tensor) -> Tensor:
        return v.clamp(min=0).floor()  # θ = 1: the same operations as QReLU, so T = 1 is bit-exact


CONVERSION_NEURONS: dict[str, type[IFNeuron]] = {"multi": MultiSpikeIF, "single": IFNeuron}
ENCODINGS = ("spread", "repeat")  # how the static image (and the constant inputs) are presented over T steps


def _check_neuron(neuron: str) -> None:
    if neuron not in CONVERSION_NEURONS:
        raise ValueError(f"unknown conversion neuron {neuron!r}; allowed: {', '.join(CONVERSION_NEURONS)}")


def _check_encoding(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")


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
def fold_into(layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
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
        fold_into(layer, bn)
        _set_submodule(folded, node.target, nn.Identity())
    return folded


def to_if_snn(ann: nn.Module, *, neuron: str = "multi") -> nn.Module:
    """The IF SNN of a QReLU ANN: `fold_bn(ann)` with each QReLU replaced by an IF neuron.

    `neuron` names the kind in `CONVERSION_NEURONS`: "multi" (`MultiSpikeIF`,
    ⌊v⌋ spikes per step, the default) or "single" (`IFNeuron`, at most one).
    ψ buffers are carried over (ψ is structural; folding does not change it).
    Raises a one-line ValueError, before anything is copied, for an unknown
    neuron or a layer or operation the conversion does not support (e.g.
    MaxPool2d, ReLU, Spike).
    """
    _check_neuron(neuron)
    _check_convertible(ann)
    snn = fold_bn(ann)
    for name, qrelu in neurons(snn):
        if_neuron = CONVERSION_NEURONS[neuron]()
        if_neuron.psi = qrelu.psi
        _set_submodule(snn, name, if_neuron)
    return snn


def _check_steps(T: int) -> None:
    if T < 1:
        raise ValueError(f"T must be >= 1 (got {T})")


def check_conversion(steps: Sequence[int], neuron: str, encoding: str) -> None:
    """One-line ValueError for a T < 1 among `steps`, an unknown neuron or an unknown encoding."""
    for T in steps:
        _check_steps(T)
    _check_neuron(neuron)
    _check_encoding(encoding)


def _spread_constants(snn: nn.Module, T: int) -> dict[str, Tensor]:
    """Every constant input of `snn` divided by T, as `functional_call` overrides.

    Each conv/FC bias b becomes b/T; each BN (kept as the affine map
    γ(x − μ)/σ + β) gets μ/T and β/T, so its shift β − γμ/σ becomes
    (β − γμ/σ)/T while its gain γ/σ stays.
    """
    overrides = {}
    for name, m in snn.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            overrides[prefix + "bias"] = m.bias / T
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.running_mean is None:
                raise ValueError(f"BatchNorm {name!r} keeps no running statistics; cannot spread its shift over steps")
            overrides[prefix + "running_mean"] = m.running_mean / T
            if m.bias is not None:
                overrides[prefix + "bias"] = m.bias / T
    return overrides


@torch.no_grad()
def run_if_snn(snn: nn.Module, x: Tensor, T: int, *, encoding: str = "spread") -> tuple[Tensor, list[Tensor]]:
    """Present the image `x` over T steps to the IF SNN from `to_if_snn`.

    `encoding` (one of `ENCODINGS`): "spread" feeds x/T at each step with
    every bias and every kept BN's shift divided by T (the SNN itself is not
    changed), so each neuron's input summed over the steps counts each
    constant once; "repeat" feeds x and the biases at every step.

    Returns the output summed over the steps (the logits) and, per neuron
    layer in `neurons(snn)` order, each example's spike count over the T steps
    [N, *shape] — what `ActivityMeter(snn, steps=T).update` takes. The SNN is
    put in eval mode (dropout off, any kept BN as its running-stat affine map).
    """
    _check_steps(T)
    _check_encoding(encoding)
    layers = neurons(snn)
    wrong = [name for name, m in layers if not isinstance(m, IFNeuron)]
    if wrong:
        raise ValueError(f"neuron layer {wrong[0]!r} is not an IFNeuron; convert the ANN with to_if_snn first")
    snn.eval()
    for _, m in layers:
        m.reset()
    if encoding == "spread":
        overrides, step_input = _spread_constants(snn, T), x / T
        logits = sum(functional_call(snn, overrides, (step_input,)) for _ in range(T))
    else:
        logits = sum(snn(x) for _ in range(T))
    return logits, [m.count for _, m in layers]


def _check_psi(model: nn.Module, what: str) -> None:
    missing = [name for name, m in neurons(model) if m.psi is None]
    if missing:
        raise ValueError(f"neuron layer {missing[0]!r} has no psi; build the {what} with psi='padded' or 'exact'")


@torch.no_grad()
def evaluate_ann(ann: nn.Module, loader: Iterable[tuple[Tensor, Tensor]]) -> dict:
    """The QReLU ANN's own test accuracy and synaptic-operation energy on `loader` (eval mode).

    Returns ann_test_accuracy (fraction) and ann_energy_pj = E_AC · Σ_l Σ_i
    ψ_{l,i} a_{l,i}, mean over examples, where a = floor(max(u, 0)) is each
    QReLU's activation: the spikes of one step counted with multiplicity,
    i.e. what the multi-spike SNN spends at T = 1. The ANN's train/eval mode
    is restored afterwards.
    """
    _check_psi(ann, "ANN")
    device = next(ann.parameters()).device
    was_training = ann.training
    ann.eval()
    meter = ActivityMeter(ann, steps=1)
    correct = 0
    try:
        for x, y in loader:
            logits = ann(x.to(device))
            correct += int((logits.argmax(1).cpu() == y).sum())
            meter.update([m.spikes for _, m in neurons(ann)])
    finally:
        ann.train(was_training)
    stats = meter.summary()
    return {"ann_test_accuracy": correct / max(stats["examples"], 1), "ann_energy_pj": stats["energy_pj"]}


@torch.no_grad()
def evaluate_converted(ann: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], T: int, *,
                       neuron: str = "multi", encoding: str = "spread") -> dict:
    """Convert a QReLU ANN and evaluate its IF SNN for T steps on `loader` (spec §7).

    `neuron` names the IF neuron (`CONVERSION_NEURONS`), `encoding` how the
    image is presented over the steps (`ENCODINGS`). Returns test_accuracy
    (fraction), energy_pj (E_AC · Σ_t Σ_l Σ_i ψ k with k the spikes of a
    neuron in a step, mean over examples) and energy_pj_layers (per layer), rate_mean,
    rate_sum and rate_layers (spikes per neuron per step), dead_rate, T, neuron and
    encoding (the per-layer values re-score the point under every cost model:
    `pipeline.run_energy`).
    Bad T, an unknown neuron or encoding, or an unsupported layer raise
    before any batch is read. The ANN's own accuracy and energy: `evaluate_ann`.
    """
    _check_steps(T)
    _check_neuron(neuron)
    _check_encoding(encoding)
    snn = to_if_snn(ann, neuron=neuron)
    _check_psi(snn, "ANN")
    device = next(snn.parameters()).device
    meter = ActivityMeter(snn, steps=T)
    correct = 0
    for x, y in loader:
        logits, counts = run_if_snn(snn, x.to(device), T, encoding=encoding)
        correct += int((logits.argmax(1).cpu() == y).sum())
        meter.update(counts)
    stats = meter.summary()
    return {
        "test_accuracy": correct / max(stats["examples"], 1),
        "energy_pj": stats["energy_pj"],
        "energy_pj_layers": stats["energy_pj_layers"],
        "rate_mean": stats["rate_mean"],
        "rate_sum": stats["rate_sum"],
        "rate_layers": stats["rate_layers"],
        "dead_rate": stats["dead_rate"],
        "T": T,
        "neuron": neuron,
        "encoding": encoding,
    }
