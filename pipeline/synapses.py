"""ψ: the number of outgoing synapses of every neuron (spec §2, §9), for any PyTorch SNN.

ψ_{l,i} counts the (weight, output position) pairs of every downstream
conv/FC that neuron i's spike multiplies. `trace_synapses` derives it from the
layers themselves, in one forward pass of an input of the model's own shape in
which every recognised spiking layer (`pipeline.adapters`) emits an all-ones
leaf tensor and every conv/FC adds up an all-ones copy of itself applied to
its input ("synapse events"); the gradient of one conv/FC's events at a
spiking layer's leaf is ψ_{l→j}, the synapses of layer l in layer j, and
ψ_l = Σ_j ψ_{l→j}. A conv's output is cut from the graph, so only a neuron's
direct synapses count, over all branches it feeds. Spikes reach synapses
through BN, dropout, flatten/reshape, residual adds, concatenation and pools
(average, max and sinabs' sum pools count as sum pools: a spike entering a
window reaches every synapse of the pooled unit). Any other leaf layer on the
way is refused, by name, with a one-line `MeterError`.

Conventions for zero-padded convolutions:
- `exact`: only taps that read a real neuron count (what hardware executes).
- `padded` (paper Eq. 6): padded taps count too, each charged to the real
  neuron its position clamps to (replicate padding), so Σ_i ψ_{l,i} equals
  the consuming layers' multiply-accumulate count, and ψ is uniform for
  "appropriate" padding (stride 1, p = (k − 1)/2).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.adapters import NeuronAdapter, spiking_layers
from pipeline.fileio import one_line
from pipeline.neuron import neurons

__all__ = ["PSI_CONVENTIONS", "MeterError", "Synapses", "Wiring", "attach_psi", "check_counts", "synapse_counts",
           "trace_synapses"]

PSI_CONVENTIONS = ("padded", "exact")

_SYNAPSES = (nn.Conv2d, nn.Linear)
_POOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.LPPool2d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PASSIVE = _BATCH_NORMS + (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Flatten, nn.Unflatten,
                           nn.Identity)
_SUPPORTED = _SYNAPSES + _POOLS + _PASSIVE


class MeterError(ValueError):
    """The model, a layer or the input cannot be metered; the message is one line."""


@dataclass(frozen=True)
class Synapses:
    """One conv/FC layer as the cost models see it, per time step and example (one sample of its input).

    `spiking`: it reads spikes (else a dense input such as the image); `macs`: its multiply-accumulates
    on a dense input, zero-padded taps counted under the `padded` convention only.
    """

    kind: str  # "conv" or "linear"
    spiking: bool
    inputs: int  # input values it reads
    outputs: int  # output values (the potentials it accumulates into)
    weights: int
    biases: int  # 0 without a bias
    macs: float


@dataclass(frozen=True)
class Wiring:
    """What one probe pass finds: ψ_{l→j} of every spiking layer l in every conv/FC j it drives,
    every conv/FC reached, and which spiking layers leak (their potential decays each step)."""

    psi: dict[str, Tensor]  # spiking layer → ψ_l = Σ_j ψ_{l→j}, shaped like one neuron map
    fanout: dict[str, dict[str, Tensor]]  # spiking layer → {conv/FC j it drives → ψ_{l→j}}
    synapses: dict[str, Synapses]  # in call order
    leaky: dict[str, bool]


def _images(x: Tensor) -> Tensor:
    """`x` [*, C, H, W] as [N, C, H, W] (time and example axes folded)."""
    return x.reshape(-1, *x.shape[-3:])


def _sample_size(module: nn.Module, x: Tensor) -> int:
    """Values of one sample (one example at one step) of a conv/FC input."""
    return math.prod(x.shape[-3:]) if isinstance(module, nn.Conv2d) else x.shape[-1]


def _conv_sum(conv: nn.Conv2d, x: Tensor, kernel: Tensor, groups: int, convention: str) -> Tensor:
    """Σ over outputs of `conv`'s geometry with weights `kernel` applied to `x`, padded per `convention`."""
    pad = conv._reversed_padding_repeated_twice
    if conv.padding_mode != "zeros":  # padded taps read real neurons: both conventions agree
        x = F.pad(x, pad, mode=conv.padding_mode)
    else:
        x = F.pad(x, pad, mode="replicate" if convention == "padded" else "constant")
    return F.conv2d(x, kernel, None, conv.stride, 0, conv.dilation, groups).sum()


def _synapse_events(layer: nn.Module, x: Tensor, convention: str) -> Tensor:
    """Σ over outputs of an all-ones copy of `layer` applied to `x`."""
    ones = torch.ones_like(layer.weight)
    if isinstance(layer, nn.Linear):
        return F.linear(x, ones).sum()
    return _conv_sum(layer, x, ones, layer.groups, convention)


def _macs(layer: nn.Module, x: Tensor, convention: str) -> float:
    """Multiply-accumulates of `layer` on one sample of `x` (its taps on one input channel, times the
    weights per tap position)."""
    if isinstance(layer, nn.Linear):
        return float(layer.in_features * layer.out_features)
    taps = _conv_sum(layer, x.new_ones(1, 1, *x.shape[-2:]), x.new_ones(1, 1, *layer.kernel_size), 1, convention)
    return float(taps) * layer.out_channels * (layer.in_channels // layer.groups)


def _window_sums(pool: nn.Module, x: Tensor, like: Tensor) -> Tensor:
    """Each pooled unit's window sum of `x` (a spike reaches every pooled unit whose window holds it),
    shaped like the pool's output `like`."""
    flat = _images(x)
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        out = F.adaptive_avg_pool2d(flat, pool.output_size)
        areas = [  # torch's adaptive windows: [floor(j·n/m), ceil((j+1)·n/m))
            torch.tensor([math.ceil((j + 1) * n / m) - (j * n) // m for j in range(m)], dtype=x.dtype,
                         device=x.device)
            for n, m in zip(flat.shape[-2:], out.shape[-2:])
        ]
        out = out * areas[0][:, None] * areas[1][None, :]
    else:  # average, max, or sinabs' SumPool2d (an LPPool2d of norm 1): window sums
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


def check_counts(name: str, module: nn.Module, s: Tensor) -> None:
    """Refuse (one line) a spiking layer's output that is not a spike count (non-integer or negative)."""
    s = s.detach()
    non_integer = s.is_floating_point() and (not bool(torch.isfinite(s).all()) or not torch.equal(s, s.floor()))
    if non_integer or bool((s < 0).any()):
        raise MeterError(f"spiking layer {name!r} ({type(module).__name__}) output is not a spike count "
                         "(non-integer or negative values)")


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise MeterError(f"input shape {shape} must be a non-empty tuple of ints >= 1 "
                         "(time steps and examples included)")
    return shape


def _recognised_layers(model: nn.Module, convention: str) -> list[tuple[str, nn.Module, NeuronAdapter]]:
    """The spiking layers of `model`, after refusing (one line) an unknown convention, a model without
    spiking layers and any layer ψ cannot be derived through."""
    if convention not in PSI_CONVENTIONS:
        raise MeterError(f"unknown psi convention {convention!r}; allowed: {', '.join(PSI_CONVENTIONS)}")
    layers = spiking_layers(model)
    if not layers:
        raise MeterError(f"no recognisable spiking layer in {type(model).__name__} "
                         "(ours, spikingjelly BaseNode, snntorch SpikingNeuron, sinabs IAF/LIF)")
    _check_layers(model, [name for name, _, _ in layers])
    return layers


def _per_neuron(name: str, module: nn.Module, adapter: NeuronAdapter, leaves: list[Tensor],
                grads: Sequence[Tensor | None]) -> Tensor:
    """The one ψ every step and example of layer `name` shares (from the gradients at its leaves)."""
    maps = [adapter.time_major(module, g if g is not None else torch.zeros_like(leaf)).detach()
            for leaf, g in zip(leaves, grads)]
    one = maps[0][0, 0]
    if not all(bool((g == one).all()) for g in maps):
        raise MeterError(f"spiking layer {name!r} ({type(module).__name__}) drives different synapses at "
                         "different time steps or examples; ψ must be one per neuron")
    return one.clone()


def trace_synapses(model: nn.Module, input_shape: Sequence[int], convention: str = "padded",
                   check_spikes: bool = True) -> Wiring:
    """ψ_{l→j} of every spiking layer of `model` in every conv/FC it drives, and the conv/FC layers'
    sizes, for a model input of `input_shape` (the whole input, time and example axes included,
    e.g. (T, 1, C, H, W) for a spikingjelly multi-step net, (1, C, H, W) for a single-step one).

    One forward pass of zeros, read at step 0, example 0 (and checked equal elsewhere); the
    model's train/eval mode and its neurons' state are restored. `check_spikes` refuses a spiking
    layer whose output on that pass is not a spike count (ψ itself does not depend on the values).
    """
    layers = _recognised_layers(model, convention)
    shape = _check_shape(input_shape)
    leaves: dict[str, list[Tensor]] = {name: [] for name, _, _ in layers}
    events: dict[str, list[Tensor]] = {}
    found: dict[str, Synapses] = {}
    module_names = {id(m): n for n, m in model.named_modules()}

    def on_spiking(name: str, module: nn.Module, adapter: NeuronAdapter):
        def hook(_, inputs, output):
            s = adapter.spikes(output)
            if check_spikes:
                check_counts(name, module, s)
            leaf = torch.ones_like(s, requires_grad=True)
            leaves[name].append(leaf)
            return adapter.replace(output, leaf)
        return hook

    def on_synapses(module, inputs, output):
        x, name = inputs[0], module_names[id(module)]
        samples = x.numel() // _sample_size(module, x)
        if name not in found:
            found[name] = Synapses("conv" if isinstance(module, nn.Conv2d) else "linear", x.requires_grad,
                                   _sample_size(module, x), output.numel() // samples, module.weight.numel(),
                                   0 if module.bias is None else module.bias.numel(), _macs(module, x, convention))
        if x.requires_grad:
            folded = _images(x) if isinstance(module, nn.Conv2d) else x
            events.setdefault(name, []).append(_synapse_events(module, folded, convention))
        return output.detach()

    def on_pool(module, inputs, output):
        return _window_sums(module, inputs[0], output)

    def on_passive(module, inputs, output):
        return inputs[0]

    handles = [m.register_forward_hook(on_spiking(name, m, adapter)) for name, m, adapter in layers]
    for m in model.modules():
        if isinstance(m, _SYNAPSES):
            handles.append(m.register_forward_hook(on_synapses))
        elif isinstance(m, _POOLS):
            handles.append(m.register_forward_hook(on_pool))
        elif isinstance(m, _BATCH_NORMS):
            handles.append(m.register_forward_hook(on_passive))
    param = next(model.parameters(), None)
    dtype, device = (param.dtype, param.device) if param is not None else (torch.float32, None)
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            try:
                model(torch.zeros(shape, dtype=dtype, device=device))
            except MeterError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the user's forward is the shape's
                raise MeterError(f"input shape {shape} does not fit the model: {type(exc).__name__}: "
                                 f"{one_line(exc)}") from None
            called = [name for name, ls in leaves.items() if ls]
            if not called:
                raise MeterError(f"no spiking layer of the model was called on an input of shape {shape}")
            flat = [leaf for name in called for leaf in leaves[name]]
            grads = {j: torch.autograd.grad(torch.stack(e).sum(), flat, allow_unused=True, retain_graph=True)
                     for j, e in events.items()}
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        for _, m, adapter in layers:
            adapter.reset(m)
    psi: dict[str, Tensor] = {}
    fanout: dict[str, dict[str, Tensor]] = {}
    for name, m, adapter in layers:
        if name not in called:
            raise MeterError(f"spiking layer {name!r} was not called on an input of shape {shape}")
        first = sum(len(leaves[n]) for n in called[:called.index(name)])
        span = slice(first, first + len(leaves[name]))
        fanout[name] = {j: _per_neuron(name, m, adapter, leaves[name], g[span]) for j, g in grads.items()
                        if any(x is not None for x in g[span])}
        psi[name] = sum(fanout[name].values(), _per_neuron(name, m, adapter, leaves[name][:1], [None]))
    leaky = {name: adapter.leaky(m) for name, m, adapter in layers}
    return Wiring(psi, fanout, found, leaky)


def synapse_counts(model: nn.Module, input_shape: tuple[int, ...], convention: str = "padded") -> dict[str, Tensor]:
    """ψ of every spiking layer of a single-step `model` for one image of `input_shape` (C, H, W):
    {layer name: ψ shaped like one example of its output} (`trace_synapses` with one example, its
    outputs unchecked: the pipeline's own layers, spikes or counts by construction)."""
    return trace_synapses(model, (1, *input_shape), convention, check_spikes=False).psi


def attach_psi(model: nn.Module, input_shape: tuple[int, ...], convention: str = "padded") -> Wiring:
    """Compute ψ once, store it as each `Neuron`'s `psi` buffer, and return the wiring it came from."""
    wiring = trace_synapses(model, (1, *input_shape), convention, check_spikes=False)
    psi = wiring.psi
    for name, m in neurons(model):
        m.psi = psi[name]
    return wiring
