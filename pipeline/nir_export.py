"""Export a trained SNN as a NIR graph with its energy in every node's metadata (docs/energy-models.md).

    python -m pipeline.nir_export RUN_DIR --out graph.nir     # a finished run (metrics.json, model.pt)

The graph alternates `nir.Conv2d` (the synapses) and `nir.IF` (the neurons): everything linear
between two spiking layers becomes one convolution with a bias — a batch norm folded into the
conv/FC before it (weight·γ/σ, bias β + (b − μ)·γ/σ), a k×k average pool folded into the conv/FC
after it (kernel, stride and padding × k, each weight spread over its window / k²: the same sums),
a flatten + FC as a conv whose kernel covers the map, a 1×1 classifier + global average pool as a
conv over the whole map with weights / (H·W); dropout is the identity. So the graph holds only
nodes every NIR importer reads (snntorch's and sinabs' among them) and computes the network's
logits (float32 rounding aside) as a [classes, 1, 1] output.

A single-step spiking layer s = H(u − u_th) (ours, spikingjelly's IFNode, sinabs' IAF) is exported as
`nir.IF(r = 1, v_threshold = u_th, v_reset = 0)`: from rest, one step of dv/dt = R·I integrates
v = u and fires iff v crosses u_th, which is our neuron at T = 1 (NIR fires at v > v_th, ours at
u ≥ u_th: they differ only for a potential exactly at threshold). NIR's stateless `Threshold` is
the same function, but the SNN libraries import IF (snntorch as a Leaky, sinabs as an IAF) and
neuromorphic hardware runs IF neurons. The network must be sequential (`nn.Sequential`, nested):
ResNet18's residual adds are refused.

Metadata (`layer_metadata`): on each IF node `psi` (ψ's sum, mean, min, max), `rate` (spikes per
neuron per step on the test set) and `energy_pj` (the layer's energy per example under every
cost model); on each conv node its own (spike-independent) energy per cost model; on the graph
the totals and where they come from.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import nir
import numpy as np
import torch
from torch import Tensor, nn

from pipeline.adapters import find_adapter
from pipeline.config import RunConfig
from pipeline.convert import fold_into
from pipeline.data import INFO
from pipeline.rundir import METRICS, MODEL
from pipeline.run_energy import energy_by_cost_model, run_wiring
from pipeline.train import build_model

__all__ = ["export_run", "layer_metadata", "main", "to_nir"]

_IDENTITIES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity, nn.Flatten)


def _threshold(name: str, module: nn.Module) -> float:
    """u_th of an IF-like single-step spiking layer; a one-line ValueError for any other neuron."""
    if "LIF" not in type(module).__name__:
        for attr in ("u_th", "v_threshold", "spike_threshold"):  # ours, spikingjelly IFNode, sinabs IAF
            value = getattr(module, attr, None)
            if value is not None:
                return float(value.item() if isinstance(value, Tensor) else value)
    raise ValueError(f"cannot export spiking layer {name!r} ({type(module).__name__}) to NIR: only IF-like "
                     "neurons are exported (ours, spikingjelly IFNode, sinabs IAF)")


def _leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The layers of a sequential network in order (nested sequentials flattened; a spiking layer is a leaf)."""
    if find_adapter(model) is not None or not list(model.children()):
        return [(prefix, model)]
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"NIR export needs a sequential network; {prefix or 'the model'!r} "
                         f"({type(model).__name__}) has its own forward (e.g. a residual add)")
    return [leaf for name, child in model.named_children()
            for leaf in _leaves(child, f"{prefix}.{name}" if prefix else name)]


def _input_shapes(model: nn.Module, input_shape: Sequence[int], leaves: list[tuple[str, nn.Module]]
                  ) -> dict[str, tuple[int, ...]]:
    """Each layer's input shape for one example (a forward pass of zeros; the neurons' state is reset)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module, inputs, output):
            shapes[name] = tuple(inputs[0].shape[1:])
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        for _, m in leaves:
            adapter = find_adapter(m)
            if adapter is not None:
                adapter.reset(m)
    return shapes


def _conv(weight: Tensor, bias: Tensor | None, stride: tuple[int, int], padding: tuple[int, int]) -> nn.Conv2d:
    """A conv with these weights [C_out, C_in, kH, kW], bias, stride and padding."""
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[-2:]), stride, padding,
                     bias=bias is not None).to(weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


def _as_conv(layer: nn.Conv2d | nn.Linear, shape: tuple[int, ...]) -> nn.Conv2d:
    """A copy of `layer` as a conv on its input map `shape` ((C, H, W); a vector (F,) is (F, 1, 1)): an FC
    becomes a conv whose kernel covers the map it reads."""
    if isinstance(layer, nn.Conv2d):
        return copy.deepcopy(layer)
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
    return _conv(layer.weight.reshape(layer.out_features, c, h, w), layer.bias, (1, 1), (0, 0))


def _after_pool(conv: nn.Conv2d, k: int) -> nn.Conv2d:
    """conv ∘ avg_pool(k) (stride k) as one conv: each tap spread over its k×k window / k², stride, padding × k."""
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
        raise ValueError("NIR export folds an average pool only into a conv without groups, dilation or "
                         "non-zero padding")
    weight = conv.weight.repeat_interleave(k, 2).repeat_interleave(k, 3) / k ** 2
    (sh, sw), (ph, pw) = conv.stride, conv.padding
    return _conv(weight, conv.bias, (sh * k, sw * k), (ph * k, pw * k))


def _before_gap(conv: nn.Conv2d, shape: tuple[int, ...]) -> nn.Conv2d:
    """global_avg_pool ∘ conv(1×1) on a map of `shape` as one conv covering the map: weights / (H·W)."""
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0) or conv.groups != 1:
        raise ValueError("NIR export folds a global average pool only after a 1×1 conv of stride 1 without padding")
    h, w = shape[-2:]
    return _conv(conv.weight.expand(-1, -1, h, w) / (h * w), conv.bias, (1, 1), (0, 0))


def _pool_size(name: str, pool: nn.AvgPool2d) -> int:
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    if pool.kernel_size not in (k, (k, k)) or pool.stride not in (k, (k, k)) or pool.padding not in (0, (0, 0)):
        raise ValueError(f"NIR export folds square average pools of stride = kernel without padding only ({name!r})")
    return k


def _stage(layers: list[tuple[str, nn.Module]], shapes: Mapping[str, tuple[int, ...]]) -> tuple[str, nn.Conv2d]:
    """The layers between two spiking layers — [avg pool] [flatten] conv/FC [batch norm] [global avg pool] —
    as one conv with a bias, named after its conv/FC."""
    pool, name, conv, map_shape = 1, None, None, None
    for layer_name, m in layers:
        if map_shape is None:
            map_shape = shapes[layer_name]  # the map the stage reads, before any flatten
        if isinstance(m, _IDENTITIES):
            continue
        if isinstance(m, nn.AvgPool2d) and conv is None:
            pool *= _pool_size(layer_name, m)
        elif isinstance(m, (nn.Conv2d, nn.Linear)) and conv is None:
            read = shapes[layer_name] if isinstance(m, nn.Conv2d) else _pooled(map_shape, pool)
            name, conv = layer_name, _as_conv(m, read)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and conv is not None:
            fold_into(conv, m)
        elif isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)) and conv is not None:
            conv = _before_gap(conv, shapes[layer_name])
        else:
            raise ValueError(f"NIR export cannot fold layer {layer_name!r} ({type(m).__name__}) there; between two "
                             "spiking layers it takes [avg pool] [flatten] conv/FC [batch norm] [global avg pool]")
    if conv is None:
        raise ValueError("NIR export needs a conv or FC between two spiking layers")
    return name, _after_pool(conv, pool) if pool > 1 else conv


def _pooled(shape: tuple[int, ...], k: int) -> tuple[int, ...]:
    return shape if len(shape) != 3 else (shape[0], shape[1] // k, shape[2] // k)


def _nir_conv(conv: nn.Conv2d, map_shape: tuple[int, ...], metadata: dict) -> nir.Conv2d:
    hw = tuple(map_shape[-2:]) if len(map_shape) == 3 else (1, 1)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    return nir.Conv2d(input_shape=hw, weight=conv.weight.detach().float().numpy(), stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                      bias=bias.detach().float().numpy(), metadata=metadata)


def _map(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return shape if len(shape) == 3 else (shape[0], 1, 1)


def _key(name: str) -> str:
    return name.replace(".", "_")  # node names become module attributes in the importers


def to_nir(model: nn.Module, input_shape: Sequence[int], metadata: Mapping[str, dict] | None = None,
           graph_metadata: dict | None = None) -> nir.NIRGraph:
    """`model` (sequential, eval mode, single step) with inputs of `input_shape` (C, H, W) as a NIR graph
    of Conv2d and IF nodes; `metadata[layer]` goes on the node of that spiking layer or conv/FC."""
    metadata = metadata or {}
    leaves = _leaves(model)
    shapes = _input_shapes(model, input_shape, leaves)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(input_shape))}
    edges, previous, pending, stage_input = [], "input", [], tuple(input_shape)
    for name, m in leaves + [("", None)]:  # the end closes the last stage
        if m is not None and find_adapter(m) is None:
            pending.append((name, m))
            continue
        if pending or m is not None:
            conv_name, conv = _stage(pending, shapes)
            nodes[_key(conv_name)] = _nir_conv(conv, _map(stage_input), dict(metadata.get(conv_name, {})))
            edges.append((previous, _key(conv_name)))
            with torch.no_grad():
                stage_input = tuple(conv(torch.zeros(1, *_map(stage_input), dtype=conv.weight.dtype)).shape[1:])
            previous, pending = _key(conv_name), []
        if m is None:
            nodes["output"] = nir.Output(output_type=np.array(stage_input))
            edges.append((previous, "output"))
            break
        shape = stage_input
        nodes[_key(name)] = nir.IF(r=np.ones(shape, np.float32), v_reset=np.zeros(shape, np.float32),
                                   v_threshold=np.full(shape, _threshold(name, m), np.float32),
                                   metadata=dict(metadata.get(name, {})))
        edges.append((previous, _key(name)))
        previous = _key(name)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph_metadata or {}))


def layer_metadata(psi: Mapping[str, Tensor], rates: Mapping[str, float],
                   energies: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """Per layer: for a spiking layer its ψ summary, firing rate and energy per cost model; for any other
    layer its energy per cost model. `energies` maps each cost model to a report with `energy_pj_layers`
    (`run_energy.energy_by_cost_model`, or `SynapticEnergy.report()` per cost model)."""
    layers = {layer for report in energies.values() for layer in report["energy_pj_layers"]} | set(psi)
    meta = {layer: {"energy_pj": {name: float(report["energy_pj_layers"].get(layer, 0.0))
                                  for name, report in energies.items()}} for layer in layers}
    for layer, w in psi.items():
        meta[layer]["psi"] = {"sum": float(w.sum()), "mean": float(w.mean()), "min": float(w.min()),
                              "max": float(w.max())}
        meta[layer]["rate"] = float(rates[layer])
    return meta


def export_run(run_dir: Path | str) -> nir.NIRGraph:
    """The finished run in `run_dir` (metrics.json, model.pt) as a NIR graph with its energy metadata."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / METRICS).read_text())
    cfg = RunConfig.from_dict(metrics["config"])
    model = build_model(cfg)
    model.load_state_dict(torch.load(run_dir / MODEL, weights_only=True, map_location="cpu"))
    model.eval()
    energies = energy_by_cost_model(metrics, run_wiring(metrics["config"]))
    psi = {name: m.psi for name, m in model.named_modules() if getattr(m, "psi", None) is not None}
    info = INFO[cfg.dataset]
    graph_metadata = {"source": str(run_dir), "model": cfg.model, "dataset": cfg.dataset, "psi_convention": cfg.psi,
                      "test_accuracy": float(metrics["test_accuracy"]),
                      "energy_pj": {name: float(r["energy_pj"]) for name, r in energies.items()},
                      "constant_pj": {name: float(r["constant_pj"]) for name, r in energies.items()}}
    return to_nir(model, (info.in_channels, info.input_size, info.input_size),
                  layer_metadata(psi, metrics["rate_layers"], energies), graph_metadata)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.nir_export RUN_DIR --out graph.nir`."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.nir_export", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished run's directory (metrics.json, model.pt)")
    parser.add_argument("--out", required=True, help="the NIR file to write")
    args = parser.parse_args(argv)
    try:
        graph = export_run(args.run_dir)
    except (OSError, ValueError, KeyError) as err:
        parser.exit(2, f"error: {type(err).__name__}: {err}\n")
    nir.write(args.out, graph)
    print(f"{args.out}: {len(graph.nodes)} nodes; energy per example "
          + ", ".join(f"{k} {v:,.0f} pJ" for k, v in graph.metadata["energy_pj"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
