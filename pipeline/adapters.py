"""Neuron adapters: recognise the spiking layers of any PyTorch SNN and read their spikes.

A spiking layer is recognised by type. Its adapter says how to take the spike
tensor out of the layer's output (snntorch returns (spk, mem) tuples), how to
put another tensor in its place (to derive ψ), how the output's axes are laid
out in time and examples, how to clear the layer's state, and whether its
potential leaks (a decay each step, which the `lemaire2022` cost model prices). Every adapter
turns a layer output into the canonical time-major view [T, B, *neuron shape]
(a view, no copy), with T = 1 for a layer called once per time step.

Built in (each only if its package imports):
- ours: `pipeline.neuron.Neuron` (single step, one call per step; `QReLU` counts spikes);
- spikingjelly: `activation_based.neuron.BaseNode` subclasses (IF, LIF, ParametricLIF, …),
  step_mode "s" ([B, …] per call) or "m" ([T, B, …]);
- snntorch: `SpikingNeuron` subclasses (Leaky, Synaptic, …), one call per step;
- sinabs: `layers.StatefulLayer`s that spike (IAF, LIF, …: [B, T, …], multi-spike),
  and their Squeeze variants ([B·T, …]).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import Tensor, nn

from pipeline.neuron import Neuron

__all__ = ["ADAPTERS", "NeuronAdapter", "find_adapter", "register_adapter", "spiking_layers"]


def _first(output: Any) -> Tensor:
    return output[0] if isinstance(output, tuple) else output


def _replace_first(output: Any, new: Tensor) -> Any:
    return (new, *output[1:]) if isinstance(output, tuple) else new


def _one_step(module: nn.Module, s: Tensor) -> Tensor:
    return s.unsqueeze(0)


def _nothing(module: nn.Module) -> None:
    return None


@dataclass(frozen=True)
class NeuronAdapter:
    """How to meter one family of spiking layers.

    `classes` imports the family's base classes lazily (an empty tuple when the
    package is missing); `time_major(module, spikes)` returns the view
    [T, B, *neuron shape]; `reset(module)` clears the layer's state;
    `leaky(module)` says whether its potential decays each step (LIF) or not (IF).
    """

    name: str
    classes: Callable[[], tuple[type, ...]]
    time_major: Callable[[nn.Module, Tensor], Tensor] = _one_step
    reset: Callable[[nn.Module], None] = _nothing
    spikes: Callable[[Any], Tensor] = _first
    replace: Callable[[Any, Tensor], Any] = _replace_first
    accepts: Callable[[nn.Module], bool] = field(default=lambda module: True)
    leaky: Callable[[nn.Module], bool] = field(default=lambda module: False)


def _import(module: str, *names: str) -> tuple[type, ...]:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return ()
    return tuple(getattr(mod, n) for n in names)


def _ours_reset(module: nn.Module) -> None:
    module.spikes = None


def _jelly_time_major(module: nn.Module, s: Tensor) -> Tensor:
    return s if module.step_mode == "m" else s.unsqueeze(0)


def _snntorch_reset(module: nn.Module) -> None:
    for attr in ("reset_mem", "reset_hidden_states"):
        fn = getattr(module, attr, None)
        if callable(fn):
            try:
                fn()
            except (TypeError, AttributeError):  # some keep no state before their first call
                pass
            return


def _sinabs_time_major(module: nn.Module, s: Tensor) -> Tensor:
    squeeze = _import("sinabs.layers", "SqueezeMixin")
    if squeeze and isinstance(module, squeeze):  # [(B·T), …]
        s = s.unflatten(0, (module.batch_size, module.num_timesteps))
    return s.transpose(0, 1)  # [B, T, …] → [T, B, …]


ADAPTERS: list[NeuronAdapter] = [
    NeuronAdapter("ours", lambda: (Neuron,), reset=_ours_reset),  # single step: no potential kept
    NeuronAdapter("spikingjelly", lambda: _import("spikingjelly.activation_based.neuron", "BaseNode"),
                  time_major=_jelly_time_major, reset=lambda m: m.reset(),
                  leaky=lambda m: "LIF" in type(m).__name__),  # LIFNode, ParametricLIFNode, CUBALIFNode, …
    NeuronAdapter("snntorch", lambda: _import("snntorch", "SpikingNeuron"), reset=_snntorch_reset,
                  leaky=lambda m: hasattr(m, "beta")),  # Leaky, Synaptic, RLeaky, …: a decay rate β
    NeuronAdapter("sinabs", lambda: _import("sinabs.layers", "StatefulLayer"), time_major=_sinabs_time_major,
                  reset=lambda m: m.reset_states(), accepts=lambda m: bool(getattr(m, "does_spike", False)),
                  leaky=lambda m: not isinstance(m, _import("sinabs.layers", "IAF"))),  # LIF, not IAF (τ = ∞)
]


def register_adapter(adapter: NeuronAdapter) -> None:
    """Add an adapter; it is tried before the built-in ones."""
    ADAPTERS.insert(0, adapter)


def find_adapter(module: nn.Module) -> NeuronAdapter | None:
    """The first adapter whose classes include `module`'s type (and that accepts it), else None."""
    for adapter in ADAPTERS:
        classes = adapter.classes()
        if classes and isinstance(module, classes) and adapter.accepts(module):
            return adapter
    return None


def spiking_layers(model: nn.Module) -> list[tuple[str, nn.Module, NeuronAdapter]]:
    """Every recognised spiking layer of `model` (name, module, adapter), outermost first;
    the submodules of a spiking layer (e.g. a surrogate function) are not searched."""
    found: list[tuple[str, nn.Module, NeuronAdapter]] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in inside):
            continue
        adapter = find_adapter(module)
        if adapter is not None:
            found.append((name, module, adapter))
            inside.append(name)
    return found
