"""Benchmark: our CNN7 training step against the same network in spikingjelly and snntorch.

Builds CNN7 (sigmoid surrogate, α = 0.25, i.e. slope 4) with our `Spike` layers,
rebuilds it from each peer library's own building blocks, copies our weights
into both and checks, in eval mode on the benchmark batch, that the three give
the same logits and the same spikes in every layer. It then compares
spikingjelly's synaptic-operation counter (`op_counter.SynOpCounter`) with our
Σ ψ·s on the same batch (snntorch has no such counter), and finally times one
training step of each (forward, cross-entropy, zero_grad, backward, Adam step,
plus the peer's neuron-state reset), each between two of ours in one process.
The last line gives peer time ÷ our time (above 1: ours is faster). As whole
steps vary more between neighbouring calls than the libraries differ, it also
times the spiking layers alone (the only layers that differ) and prints, in
brackets, the step ratio they account for.

    .venv/bin/python bench/peers.py [--quick] [--threads N] [--rounds R] [--width W] [--batch B] [--repeats K]

Needs the optional bench extra (spikingjelly, snntorch).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from pipeline.energy import ActivityMeter, synaptic_events
from pipeline.models import create_model
from pipeline.neuron import Spike, neurons
from timing import (bench_parser, layer_io, layers_alone_seconds, parse_bench_args, plain_step, print_ratios,
                    random_batch, sandwiched_seconds)

try:
    import snntorch
    import snntorch.surrogate
    import snntorch.utils
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, SimpleEnergyCostConfig, SynOpCounter
except ImportError as exc:
    raise SystemExit(f"bench/peers.py: {exc.name} is missing; install the bench extra: "
                     "pip install -e .[bench]") from None

__all__ = ["Agreement", "Net", "agreement", "build_nets", "synops_ours", "synops_spikingjelly",
           "train_step"]

ALPHA, U_TH = 0.25, 1.0  # our sigmoid surrogate σ'((u − u_th)/α)/α: a sigmoid of slope 1/α = 4
SPIKING = (Spike, neuron.IFNode, snntorch.Leaky)


@dataclass
class Net:
    """A network and how its library clears neuron state before each step (None: it keeps none)."""

    module: nn.Sequential
    reset: Callable[[nn.Module], None] | None = None

    def __call__(self, x: Tensor) -> Tensor:
        if self.reset is not None:
            self.reset(self.module)
        return self.module(x)


def _spikingjelly_neuron(m: Spike) -> nn.Module:
    # Single step from v = 0 (reset_net each step): v = u, s = heaviside(v − v_th) = (u ≥ v_th),
    # so it fires at u == u_th like ours; its Sigmoid(alpha) surrogate is σ'(alpha·x)·alpha.
    return neuron.IFNode(v_threshold=m.u_th, v_reset=0.0, surrogate_function=surrogate.Sigmoid(alpha=1 / m.alpha),
                         step_mode="s")


def _snntorch_neuron(m: Spike) -> nn.Module:
    # With β = 0 and mem zeroed by utils.reset each step, mem = u; snntorch fires on
    # mem − threshold > 0, i.e. only strictly above threshold (ours fires at u == u_th too),
    # and no snntorch neuron offers ≥. The two differ only on exact ties, counted in `agreement`.
    return snntorch.Leaky(beta=0.0, threshold=m.u_th, spike_grad=snntorch.surrogate.sigmoid(slope=1 / m.alpha),
                          init_hidden=True)


def _rebuilt(ours: nn.Sequential, conv: type[nn.Conv2d], batch_norm: type[nn.BatchNorm2d],
             dropout: type[nn.Module], pool: type[nn.Module], spike: Callable[[Spike], nn.Module]) -> nn.Sequential:
    """`ours` layer by layer (same names and shapes) from the given building blocks, with our weights."""
    def rebuild(m: nn.Module) -> nn.Module:
        if isinstance(m, Spike):
            return spike(m)
        if isinstance(m, nn.Conv2d):
            return conv(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                        bias=m.bias is not None)
        if isinstance(m, nn.BatchNorm2d):
            return batch_norm(m.num_features, eps=m.eps, momentum=m.momentum)
        if isinstance(m, nn.Dropout):
            return dropout(m.p)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return pool(m.output_size)
        if isinstance(m, nn.Flatten):
            return nn.Flatten(m.start_dim, m.end_dim)
        raise TypeError(f"no peer layer for {type(m).__name__}")

    peer = nn.Sequential(OrderedDict((name, rebuild(m)) for name, m in ours.named_children()))
    for name, m in ours.named_children():
        if not isinstance(m, Spike):
            peer.get_submodule(name).load_state_dict(m.state_dict())
    return peer


def build_nets(width: float) -> dict[str, Net]:
    """Our CNN7 and the same network (same weights) built with spikingjelly and with snntorch."""
    ours = create_model("cnn7", in_channels=1, input_size=32, num_classes=10, width=width,
                        surrogate="sigmoid", alpha=ALPHA, u_th=U_TH)
    jelly = _rebuilt(ours, layer.Conv2d, layer.BatchNorm2d, layer.Dropout, layer.AdaptiveAvgPool2d,
                     _spikingjelly_neuron)
    snn = _rebuilt(ours, nn.Conv2d, nn.BatchNorm2d, nn.Dropout, nn.AdaptiveAvgPool2d, _snntorch_neuron)
    # snntorch.utils.reset zeroes the mem of every Leaky alive in the process (a class-level list).
    return {"ours": Net(ours), "spikingjelly": Net(jelly, functional.reset_net),
            "snntorch": Net(snn, snntorch.utils.reset)}


def _spiking_io(net: Net, x: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Logits, and each spiking layer's input (membrane potential) and output, on `x`."""
    return layer_io(net.module, SPIKING, x, run=net)


@dataclass
class Agreement:
    """How a peer's eval-mode forward pass differs from ours."""

    logits_close: bool
    max_logit_diff: float
    spike_mismatches: list[int]  # per spiking layer: neurons whose spike differs from ours

    @property
    def identical(self) -> bool:
        return self.logits_close and not any(self.spike_mismatches)


@torch.no_grad()
def agreement(nets: dict[str, Net], x: Tensor) -> tuple[dict[str, Agreement], int]:
    """Each peer's agreement with ours on `x` in eval mode, and how many of our potentials equal u_th."""
    for net in nets.values():
        net.module.eval()
    ref_logits, ref_u, ref_s = _spiking_io(nets["ours"], x)
    result = {}
    for name, net in nets.items():
        if name != "ours":
            logits, _, spikes = _spiking_io(net, x)
            result[name] = Agreement(torch.allclose(logits, ref_logits), float((logits - ref_logits).abs().max()),
                                     [int((s != r).sum()) for s, r in zip(spikes, ref_s, strict=True)])
    return result, sum(int((u == U_TH).sum()) for u in ref_u)


@torch.no_grad()
def synops_ours(net: Net, x: Tensor) -> tuple[list[int], float]:
    """Σ over the batch of ψ·s per spiking layer (eval mode, exact in float64), and our energy in pJ per example."""
    net.module.eval()
    net(x)
    spiking = neurons(net.module)
    meter = ActivityMeter(net.module)
    meter.update([m.spikes for _, m in spiking])
    return [int(synaptic_events(m.spikes.double(), m.psi).sum()) for _, m in spiking], meter.summary()["energy_pj"]


@torch.no_grad()
def synops_spikingjelly(net: Net, x: Tensor) -> tuple[list[int], int]:
    """spikingjelly's SynOps over the batch (eval mode): per spiking layer, those of
    the conv reading its spikes, and the counter's total.

    SynOpCounter counts a conv/matmul only when its input is binary: the taps
    (real ones, not zero padding) that carry a 1, times the output channels.
    conv1 reads the image, not spikes, so it counts 0, as our ψ (which lives on
    spiking layers) leaves it out too. Eval mode keeps the spikes binary:
    training-mode dropout scales them by 1/(1 − p), and the counter would skip them.
    """
    net.module.eval()
    counter = SynOpCounter()
    with DispatchCounterMode([counter]):
        net(x)
    counts = counter.get_counts()
    readers, after_spike = [], False
    for name, m in net.module.named_children():
        if isinstance(m, SPIKING):
            after_spike = True
        elif after_spike and isinstance(m, nn.Conv2d):
            readers.append(name)
            after_spike = False
    return [sum(counts.get(f"Sequential.{name}", {}).values()) for name in readers], counter.get_total()


def train_step(net: Net, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
    """One training step: (reset,) forward, cross-entropy, zero_grad, backward, Adam step."""
    net.module.train()
    plain_step(net, optimizer, x, y)


def neuron_seconds(nets: dict[str, Net], x: Tensor, repeats: int) -> dict[str, float]:
    """Median seconds, per library, of its spiking layers alone: forward and backward on the
    membrane potentials `x` produces in our net (train mode)."""
    nets["ours"].module.train()
    _, potentials, _ = _spiking_io(nets["ours"], x)
    layers = {name: [m for m in net.module.modules() if isinstance(m, SPIKING)] for name, net in nets.items()}
    # on the whole net: snntorch.utils.reset looks at a module's children only
    resets = {name: partial(net.reset, net.module) for name, net in nets.items() if net.reset is not None}
    return layers_alone_seconds(layers, potentials, repeats, resets)


def _print_agreement(nets: dict[str, Net], x: Tensor) -> None:
    result, ties = agreement(nets, x)
    layers = len(neurons(nets["ours"].module))
    for name, a in result.items():
        if a.identical:
            print(f"eval check: {name} agrees with ours (logits allclose, max |diff| {a.max_logit_diff:.2e};"
                  f" spikes identical in all {layers} spiking layers)")
        else:
            print(f"eval check: {name} DIFFERS from ours: logits allclose {a.logits_close},"
                  f" max |diff| {a.max_logit_diff:.2e}; spike mismatches per layer {a.spike_mismatches}")
    print(f"potentials exactly at threshold: {ties} (ours and spikingjelly fire there, snntorch does not)")


def _print_synops(nets: dict[str, Net], x: Tensor) -> None:
    ours, energy = synops_ours(nets["ours"], x)
    jelly, total = synops_spikingjelly(nets["spikingjelly"], x)
    e_ac = SimpleEnergyCostConfig().e_ac_pj
    print(f"synaptic operations over the batch of {len(x)} (eval mode): ours sum psi*s {sum(ours)},"
          f" spikingjelly SynOpCounter {total}, ratio {total / sum(ours):.6f}")
    print("  per layer (our spiking layer = spikingjelly layer reading it): "
          + ", ".join(f"{o}={j}" for o, j in zip(ours, jelly, strict=True)))
    print(f"energy per example: ours {energy:.1f} pJ (E_AC {e_ac} pJ in both),"
          f" spikingjelly {e_ac * total / len(x):.1f} pJ")
    print("snntorch: no energy or synaptic-operation counter in the package")


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=20, quick_rounds=4,
                          repeats=(20, "the spiking layers alone"))
    args = parse_bench_args(parser)
    torch.manual_seed(0)
    nets = build_nets(args.width)
    x, y = random_batch(args.batch)
    print(f"cnn7 width {args.width}, batch {args.batch}, sigmoid surrogate slope {1 / ALPHA:g}, threshold {U_TH}")
    _print_agreement(nets, x)
    _print_synops(nets, x)
    steps = {}
    for name, net in nets.items():
        optimizer = torch.optim.Adam(net.module.parameters(), 1e-3)
        steps[name] = partial(train_step, net, optimizer, x, y)
    alone = neuron_seconds(nets, x, args.repeats)
    pairs = sandwiched_seconds(steps.pop("ours"), steps, args.rounds)
    print(f"spiking layers alone, forward + backward (median of {args.repeats}): "
          + ", ".join(f"{name} {s * 1e3:.1f} ms" for name, s in alone.items()))
    print_ratios("training step time, peer / ours (above 1: ours is faster)", pairs, "ours",
                 {name: alone[name] - alone["ours"] for name in steps})


if __name__ == "__main__":
    main()
