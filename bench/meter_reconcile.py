"""Reconciliation: our synaptic events (Σ_t Σ_l Σ_i ψ·s per example) beside the peers' counters.

For the same network and input it prints, per example, our count (ψ in the
`exact` convention, which counts only taps that read a real neuron, and in the
paper's `padded` one), spikingjelly's `op_counter.SynOpCounter`, NeuroBench's
`SynapticOperations` (Effective ACs and MACs) and sinabs' synops hooks
(`sinabs.hooks.register_synops_hooks`), and names what makes each differ:

- zero padding: `padded` also charges the taps that read zero padding (Eq. 6); every counter
  here counts real taps only, as `exact` does;
- the first layer: it reads the image, not spikes: we, spikingjelly count nothing; NeuroBench
  counts its MACs (non-zero inputs × non-zero weights); sinabs adds Σ pixel value × fan-out;
  our report gives its dense MACs (`dense_macs`), which the cost models other than `paper` price;
- pooling: a spike entering an average, max or sum pool reaches the pooled unit's synapses, so
  we charge each spike the pooled unit's fan-out; after a max pool spikingjelly and NeuroBench
  see the OR of the window (one event for several spikes); after an average pool they see
  non-binary values: spikingjelly counts nothing, NeuroBench counts MACs; sinabs rescales an
  average pool by its area (like us);
- multiplicity: a neuron that emits k spikes in a step costs k·ψ (us, sinabs); NeuroBench
  binarises the input (k counts once, and as MACs, since the input is not binary); spikingjelly
  counts nothing for non-binary input;
- zero weights: NeuroBench skips weights that are exactly zero; we, spikingjelly and sinabs
  count the architecture's synapses;
- bias: no counter charges bias additions (nor do we).

    .venv/bin/python bench/meter_reconcile.py [--batch B] [--steps T]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pipeline

from pipeline.anysnn import SynapticEnergy  # noqa: E402

try:
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel
    from sinabs import layers as sl
    from sinabs.hooks import ModelSynopsHook, conv_layer_synops_hook, linear_layer_synops_hook
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter
except ImportError as exc:
    raise SystemExit(f"bench/meter_reconcile.py: {exc.name} is missing; pip install -r requirements-peers.txt") from None

__all__ = ["jelly_net", "neurobench_counts", "ours_counts", "sinabs_counts", "sinabs_net", "spikingjelly_counts"]


def jelly_net(pool: str = "max", bias: bool = True) -> nn.Sequential:
    """spikingjelly multi-step: conv(image)-IF, conv(k3 p1)-IF, pool, flatten, linear-IF."""
    pooling = layer.MaxPool2d(2) if pool == "max" else layer.AvgPool2d(2)
    net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1, bias=bias), neuron.IFNode(),
                        layer.Conv2d(4, 6, 3, padding=1, bias=bias), neuron.IFNode(), pooling,
                        layer.Flatten(), layer.Linear(6 * 4 * 4, 10, bias=bias), neuron.IFNode())
    functional.set_step_mode(net, "m")
    with torch.no_grad():  # stronger than torch's default init, so every layer fires within a few steps
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(3)
    return net


def sinabs_net(steps: int) -> nn.Sequential:
    """sinabs: conv(image)-IAFSqueeze (multi-spike), sum pool, conv(k3 p1)-IAFSqueeze, flatten, linear."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), sl.IAFSqueeze(num_timesteps=steps),
                         sl.SumPool2d(2), nn.Conv2d(4, 6, 3, padding=1, bias=False), sl.IAFSqueeze(num_timesteps=steps),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, 10, bias=False), sl.IAFSqueeze(num_timesteps=steps))


def _clean(model: nn.Module) -> None:
    for m in model.modules():
        if hasattr(m, "reset_states") and callable(m.reset_states):
            m.reset_states()
        elif isinstance(m, neuron.BaseNode):
            m.reset()


@torch.no_grad()
def ours_counts(model: nn.Module, probe_shape: tuple[int, ...], x: Tensor, convention: str = "exact") -> dict[str, float]:
    """Our synaptic events per example (Σ over steps) per spiking layer, their total, and the dense MACs."""
    model.eval()
    meter = SynapticEnergy(model, probe_shape, convention=convention)
    try:
        with meter:
            _clean(model)
            model(x)
            report = meter.report()
            return {**meter.synaptic_events(), "total": report["synaptic_events"], "dense_macs": report["dense_macs"]}
    finally:
        meter.close()


@torch.no_grad()
def spikingjelly_counts(model: nn.Sequential, x: Tensor, batch: int) -> dict[str, float]:
    """spikingjelly's SynOpCounter per synapse layer (index in the Sequential) and total, per example."""
    model.eval()
    _clean(model)
    counter = SynOpCounter()
    with DispatchCounterMode([counter]):
        model(x)
    counts = counter.get_counts()
    per = {name: sum(c.values()) / batch for name, c in counts.items()}
    return {**{k.split(".")[-1]: v for k, v in per.items() if "." in k}, "total": counter.get_total() / batch}


@torch.no_grad()
def neurobench_counts(model: nn.Module, x: Tensor, batch: int) -> dict[str, float]:
    """NeuroBench's SynapticOperations per example: Effective_ACs, Effective_MACs, Dense."""
    _clean(model)
    wrapped = TorchModel(model)
    wrapped.register_hooks()
    try:
        preds = wrapped(x)
        metric = SynapticOperations()
        return dict(metric(wrapped, preds, (torch.zeros(batch), torch.zeros(batch))))
    finally:
        wrapped.cleanup_hooks()


@torch.no_grad()
def sinabs_counts(model: nn.Sequential, x: Tensor, steps: int) -> dict[str, float]:
    """sinabs' synops hooks: per synapse layer (index) synops per time step, ×T = per example."""
    model.eval()
    _clean(model)
    handles = []
    for m in model:  # what sinabs.hooks.register_synops_hooks registers, but removable
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_layer_synops_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_layer_synops_hook))
    handles.append(model.register_forward_hook(ModelSynopsHook()))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    per_step = {str(i): float(v) for i, v in model.hook_data["synops_per_timestep"].items()}
    return {**{k: v * steps for k, v in per_step.items()}, "total": float(model.hook_data["total_synops_per_timestep"]) * steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    B, T = args.batch, args.steps
    x = torch.rand(T, B, 1, 8, 8) * 3
    print(f"per example, T = {T}, batch {B}; our sums run over the {T} steps")
    print("| network | ours exact | ours padded | spikingjelly SynOpCounter | NeuroBench Effective ACs | "
          "NeuroBench Effective MACs | our dense MACs (first layer) |")
    print("|---|---|---|---|---|---|---|")
    for pool in ("max", "avg"):
        net = jelly_net(pool)
        exact = ours_counts(net, (T, 1, 1, 8, 8), x, "exact")
        padded = ours_counts(net, (T, 1, 1, 8, 8), x, "padded")
        jelly = spikingjelly_counts(net, x, B)
        nb = neurobench_counts(net, x, B)
        print(f"| spikingjelly, {pool} pool | {exact['total']:.2f} | {padded['total']:.2f} | {jelly['total']:.2f} | "
              f"{nb['Effective_ACs']:.2f} | {nb['Effective_MACs']:.2f} | {exact['dense_macs']:.2f} |")
    net = sinabs_net(T)
    xs = (torch.rand(B, 1, 1, 8, 8) * 6).expand(B, T, 1, 8, 8).reshape(B * T, 1, 8, 8)
    exact = ours_counts(net, (T, 1, 8, 8), xs, "exact")
    sin = sinabs_counts(net, xs, T)
    nb = neurobench_counts(net, xs, B)
    print(f"| sinabs, sum pool, multi-spike | {exact['total']:.2f} | – | sinabs hooks {sin['total']:.2f} "
          f"(first layer {sin['0']:.2f}; others {sin['total'] - sin['0']:.2f}) | {nb['Effective_ACs']:.2f} | "
          f"{nb['Effective_MACs']:.2f} | {exact['dense_macs']:.2f} |")


if __name__ == "__main__":
    main()
