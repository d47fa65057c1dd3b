"""Reconciliation: our `lemaire2022` energy beside spikingjelly's `estimate_lemaire_energy`.

For the same network, weights and input it prints, per example and per term (ops, addressing,
inout, params, potential), our energy, spikingjelly's, and every difference by cause; ours plus
the differences equals spikingjelly's (tests/test_lemaire_reconcile.py asserts it). The causes:

- conv fan-out: spikingjelly charges every input spike of a conv C_out/g·Π⌈k/s⌉ accumulates and
  C_out/g·Πk weight reads, potential reads/writes and address adds, whatever the neuron's
  position; we charge ψ_{l→j,i}, the synapses the spike really reaches (fewer at borders, and
  about C_out/g·Πk/Πs with a stride), in the `padded` convention here;
- max pool: after a max pool spikingjelly sees the OR of each window (one event for several
  spikes); we charge every spike the pooled unit's synapses (and one FIFO read each);
- average pool: after an average pool the input is not binary, so spikingjelly prices the next
  conv as a dense layer (multiply-adds, no events); we price the spikes' events through the pool;
- dense call: spikingjelly adds C_out·Πk address adds per call of a conv reading a dense input;
- dense buffer: spikingjelly sizes a multi-step conv's dense input buffer for all T steps;
- memory price: Horowitz's SRAM figures are per 64-bit access; we charge a 32-bit access half of
  one, spikingjelly all of one (its per-byte price is the 64-bit figure / 4), so every memory term
  doubles.

BatchNorm, dropout, pools, flatten and residual adds cost nothing in both; spikingjelly omits them
with a warning (strict=False). Our single-step `Spike` becomes spikingjelly's IFNode (single step
from rest: v = u, spike iff v ≥ u_th, the same spikes) so that its neuron terms count. Each example
runs alone through spikingjelly (its potential buffers are sized by the batch).

    .venv/bin/python bench/lemaire_reconcile.py [--width W] [--examples N]
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pipeline

from pipeline.anysnn import SynapticEnergy  # noqa: E402
from pipeline.cost_models import HOROWITZ_INT_PJ, Lemaire2022, sram_pj  # noqa: E402
from pipeline.models import create_model, input_shape  # noqa: E402
from pipeline.neuron import Spike  # noqa: E402

try:
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.op_counter import LemaireEnergyConfig, estimate_lemaire_energy
except ImportError as exc:
    raise SystemExit(f"bench/lemaire_reconcile.py: {exc.name} is missing; pip install -r requirements-peers.txt") from None

__all__ = ["MEMORY", "TERMS", "jelly_lif_net", "network", "reconcile"]

TERMS = ("ops", "addressing", "inout", "params", "potential")
MEMORY = ("inout", "params", "potential")
STEPS = 3  # of the spikingjelly multi-step network
ADD, MUL = HOROWITZ_INT_PJ[32]
WORD = 4  # bytes


def jelly_lif_net() -> nn.Sequential:
    """spikingjelly multi-step: conv(image, bias)-IF, conv(k3 p1, bias)-LIF, max pool, flatten, linear(bias)-IF."""
    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), neuron.IFNode(), layer.Conv2d(4, 6, 3, padding=1),
                        neuron.LIFNode(tau=2.0), layer.MaxPool2d(2), layer.Flatten(), layer.Linear(6 * 4 * 4, 10),
                        neuron.IFNode())
    functional.set_step_mode(net, "m")
    with torch.no_grad():  # every layer fires within a few steps
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(8)
    return net


def network(name: str, width: float, examples: int) -> tuple[nn.Module, tuple[int, ...], Tensor]:
    """The network `name` (eval mode), its probe shape and `examples` inputs (strong enough to fire)."""
    g = torch.Generator().manual_seed(1)
    if name == "spikingjelly multi-step":
        return jelly_lif_net().eval(), (STEPS, 1, 1, 8, 8), torch.rand(STEPS, examples, 1, 8, 8, generator=g) * 3
    torch.manual_seed(0)
    shape = input_shape(name)
    model = create_model(name, in_channels=shape[0], input_size=shape[1], width=width).eval()
    return model, (1, *shape), torch.rand(examples, *shape, generator=g) * 2


def _if_twin(model: nn.Module) -> nn.Module:
    """A copy of `model` whose `Spike` layers are spikingjelly IFNodes (single step, v_reset 0)."""
    twin = copy.deepcopy(model)
    for name, m in list(twin.named_modules()):
        if isinstance(m, Spike):
            parent, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent), child, neuron.IFNode(v_threshold=m.u_th, v_reset=0.0))
    return twin


@torch.no_grad()
def peer_terms(model: nn.Module, x: Tensor, multi_step: bool) -> dict[str, float]:
    """spikingjelly's Lemaire energy per example and term: each example alone, then averaged."""
    twin = model if multi_step else _if_twin(model)
    n = x.shape[1] if multi_step else x.shape[0]
    totals = dict.fromkeys(TERMS, 0.0)
    for b in range(n):
        functional.reset_net(twin)
        one = x[:, b:b + 1] if multi_step else x[b:b + 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Lemaire formulas do not support BatchNorm2d …"
            report = estimate_lemaire_energy(twin, one, config=LemaireEnergyConfig(strict=False))
        for term in TERMS:
            totals[term] += report.breakdown_pj[f"{term}_pj"]
    functional.reset_net(twin)
    return {term: v / n for term, v in totals.items()}


@torch.no_grad()
def _inputs(model: nn.Module, x: Tensor) -> dict[str, Tensor]:
    """The input of every conv/FC of `model` on `x` (its first call)."""
    seen: dict[str, Tensor] = {}

    def keep(name: str):
        def hook(module, inputs, output):
            seen.setdefault(name, inputs[0])
        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        functional.reset_net(model)
        model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def _zero() -> dict[str, float]:
    return dict.fromkeys(TERMS, 0.0)


def reconcile(model: nn.Module, shape: tuple[int, ...], x: Tensor) -> dict[str, dict[str, float]]:
    """Per example and term: `ours`, `spikingjelly`, and each difference by cause (ours + differences = peer)."""
    multi_step = len(shape) == 5
    meter = SynapticEnergy(model, shape, Lemaire2022())
    with meter, torch.no_grad():
        functional.reset_net(model)
        model(x)
        ours, n = meter.report(), meter.examples()
        spikes = {name: s.detach() for name, s in meter.spikes().items()}
    meter.close()
    wiring, modules = meter.wiring, dict(model.named_modules())
    inputs = _inputs(model, x)
    mem = lambda nbytes: sram_pj(nbytes, 32)  # noqa: E731
    fifo = mem(1000 * WORD)
    diffs = {cause: _zero() for cause in ("conv fan-out", "max pool", "average pool", "dense call", "dense buffer")}
    for j, syn in wiring.synapses.items():
        conv, x_j = modules[j], inputs[j]
        kernel = math.prod(conv.kernel_size) if syn.kind == "conv" else 1
        per_input = conv.out_channels // conv.groups if syn.kind == "conv" else conv.out_features
        weights, potentials = mem((syn.weights + syn.biases) * WORD), mem(syn.outputs * WORD)
        if not syn.spiking:  # a dense input: one call per example here
            diffs["dense call"]["addressing"] += (conv.out_channels * kernel if syn.kind == "conv" else 0) * ADD
            if multi_step:
                diffs["dense buffer"]["inout"] += STEPS * syn.macs * (mem(STEPS * syn.inputs * WORD) - mem(syn.inputs * WORD))
            continue
        sources = [(l, to[j]) for l, to in wiring.fanout.items() if j in to]
        events = sum(float((spikes[l] * psi).sum()) for l, psi in sources) / n  # ours: E_{l→j}
        spikes_in = sum(float(spikes[l].sum()) for l, _ in sources) / n
        ours_j = {"ops": events * ADD, "addressing": events * ADD + spikes_in * 2 * (MUL + ADD) * (syn.kind == "conv"),
                  "params": events * weights, "potential": 2 * events * potentials, "inout": spikes_in * fifo}
        binary = bool(((x_j == 0) | (x_j == 1)).all())
        if not binary:  # spikingjelly: a dense layer on the pooled values
            macs = (STEPS if multi_step else 1) * syn.macs
            peer_j = {"ops": macs * (MUL + ADD), "addressing": (syn.inputs + syn.outputs + conv.out_channels * kernel) * ADD,
                      "params": macs * weights, "potential": 0.0, "inout": macs * mem(syn.inputs * WORD)}
            cause = "average pool"
        else:
            active = float(x_j.count_nonzero()) / n
            synops = active * per_input * (math.prod(math.ceil(k / s) for k, s in zip(conv.kernel_size, conv.stride))
                                           if syn.kind == "conv" else 1)
            fan = active * per_input * kernel
            peer_j = {"ops": synops * ADD, "addressing": fan * ADD + active * 2 * (MUL + ADD) * (syn.kind == "conv"),
                      "params": fan * weights, "potential": 2 * fan * potentials, "inout": active * fifo}
            cause = "max pool" if active != spikes_in else "conv fan-out"  # only a max pool ORs binary spikes
        for term in TERMS:
            diffs[cause][term] += peer_j[term] - ours_j[term]
    counted = {term: ours["energy_pj_terms"][term] + sum(d[term] for d in diffs.values()) for term in TERMS}
    diffs["memory price"] = {term: counted[term] if term in MEMORY else 0.0 for term in TERMS}
    return {"ours": {term: ours["energy_pj_terms"][term] for term in TERMS},
            "spikingjelly": peer_terms(model, x, multi_step), **diffs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0, help="width of CNN7, VGG11, ResNet18")
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"lemaire2022 energy per example (pJ), ours vs spikingjelly {version('spikingjelly')} "
          f"estimate_lemaire_energy; width {args.width}, {args.examples} random examples, random weights")
    for name in ("cnn7", "vgg11", "resnet18", "spikingjelly multi-step"):
        model, shape, x = network(name, args.width, args.examples)
        rows = reconcile(model, shape, x)
        print(f"\n{name}\n{'':<16}" + "".join(f"{t:>16}" for t in (*TERMS, "total")))
        for row, values in rows.items():
            print(f"{row:<16}" + "".join(f"{values[t]:>16.1f}" for t in TERMS) + f"{sum(values.values()):>16.1f}")
        residual = sum(abs(sum(v[t] for r, v in rows.items() if r != "spikingjelly") - rows["spikingjelly"][t])
                       for t in TERMS)
        print(f"{'ours + differences − spikingjelly':<40}{residual:.3g} pJ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
