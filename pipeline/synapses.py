"""ψ: the number of outgoing synapses of every neuron (spec §2, §9).

ψ_{l,i} counts the (weight, output position) pairs of every downstream
conv/FC that neuron i's spike multiplies. It is derived from the layers
themselves: one forward pass in which every spiking layer emits an all-ones
leaf tensor and every conv/FC adds up an all-ones copy of itself applied to
its input ("synapse events"); the gradient of the total with respect to a
spiking layer's leaf is exactly its ψ. Average pools count as sum pools (a
spike entering a pool reaches every synapse of the pooled unit), BN and
dropout as identities, and a conv's output is cut from the graph so only a
neuron's direct synapses count, over all branches it feeds.

Conventions for zero-padded convolutions:
- `exact`: only taps that read a real neuron count (what hardware executes).
- `padded` (paper Eq. 6): padded taps count too, each charged to the real
  neuron its position clamps to (replicate padding), so Σ_i ψ_{l,i} equals
  the consuming layers' multiply-accumulate count, and ψ is uniform for
  "appropriate" padding (stride 1, p = (k − 1)/2).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.neuron import Neuron, neurons

__all__ = ["PSI_CONVENTIONS", "attach_psi", "synapse_counts"]

PSI_CONVENTIONS = ("padded", "exact")

_PASSIVE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity)
_SUPPORTED = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.AdaptiveAvgPool2d, Neuron) + _PASSIVE


def _synapse_events(layer: nn.Module, x: Tensor, convention: str) -> Tensor:
    """Σ over outputs of an all-ones copy of `layer` applied to `x`."""
    ones = torch.ones_like(layer.weight)
    if isinstance(layer, nn.Linear):
        return F.linear(x, ones).sum()
    pad = layer._reversed_padding_repeated_twice
    if layer.padding_mode != "zeros":  # padded taps read real neurons: both conventions agree
        x = F.pad(x, pad, mode=layer.padding_mode)
    else:
        x = F.pad(x, pad, mode="replicate" if convention == "padded" else "constant")
    return F.conv2d(x, ones, None, layer.stride, 0, layer.dilation, layer.groups).sum()


def _sum_pool(pool: nn.Module, x: Tensor) -> Tensor:
    """The pool's window sums: each input reaches every pooled unit whose window holds it."""
    if isinstance(pool, nn.AvgPool2d):
        return F.avg_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode,
                            count_include_pad=True, divisor_override=1)
    out = F.adaptive_avg_pool2d(x, pool.output_size)
    areas = [  # torch's adaptive windows: [floor(j·n/m), ceil((j+1)·n/m))
        torch.tensor([math.ceil((j + 1) * n / m) - (j * n) // m for j in range(m)], dtype=x.dtype,
                     device=x.device)
        for n, m in zip(x.shape[-2:], out.shape[-2:])
    ]
    return out * areas[0][:, None] * areas[1][None, :]


def _check_supported(model: nn.Module) -> None:
    for name, m in model.named_modules():
        if not list(m.children()) and not isinstance(m, _SUPPORTED):
            allowed = ", ".join(t.__name__ for t in _SUPPORTED)
            raise ValueError(f"cannot count synapses through layer {name!r} ({type(m).__name__}); "
                             f"supported layers: {allowed}")


def synapse_counts(model: nn.Module, input_shape: tuple[int, ...],
                   convention: str = "padded") -> dict[str, Tensor]:
    """ψ of every `Neuron` of `model` for one input of `input_shape` (C, H, W).

    Returns {neuron name: ψ shaped like one example of its output}.
    """
    if convention not in PSI_CONVENTIONS:
        raise ValueError(f"unknown psi convention {convention!r}; allowed: {', '.join(PSI_CONVENTIONS)}")
    _check_supported(model)
    leaves: dict[str, Tensor] = {}
    events: list[Tensor] = []

    def on_neuron(name: str):
        def hook(module, inputs, output):
            leaves[name] = torch.ones_like(output, requires_grad=True)
            return leaves[name]
        return hook

    def on_synapses(module, inputs, output):
        if inputs[0].requires_grad:
            events.append(_synapse_events(module, inputs[0], convention))
        return output.detach()

    def on_pool(module, inputs, output):
        return _sum_pool(module, inputs[0])

    def on_passive(module, inputs, output):
        return inputs[0]

    handles = []
    for name, m in model.named_modules():
        if isinstance(m, Neuron):
            handles.append(m.register_forward_hook(on_neuron(name)))
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(on_synapses))
        elif isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            handles.append(m.register_forward_hook(on_pool))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            handles.append(m.register_forward_hook(on_passive))
    was_training = model.training
    param = next(model.parameters())
    try:
        model.eval()
        with torch.enable_grad():
            model(torch.zeros(1, *input_shape, dtype=param.dtype, device=param.device))
            total = torch.stack(events).sum() if events else None
            names = list(leaves)
            grads = (torch.autograd.grad(total, [leaves[n] for n in names], allow_unused=True)
                     if total is not None else [None] * len(names))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        for _, m in neurons(model):
            m.spikes = None
    return {n: (g if g is not None else torch.zeros_like(leaves[n]))[0].detach()
            for n, g in zip(names, grads)}


def attach_psi(model: nn.Module, input_shape: tuple[int, ...], convention: str = "padded") -> None:
    """Compute ψ once and store it as each neuron's `psi` buffer."""
    counts = synapse_counts(model, input_shape, convention)
    for name, m in neurons(model):
        m.psi = counts[name]
