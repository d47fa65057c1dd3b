"""A finished run's energy under every cost model, from what its metrics.json stores (docs/energy-models.md).

Every registered cost model is affine in two per-layer counts (`pipeline.cost_models`): the synaptic
events E_l = E_x[Σ_t Σ_i ψ_{l,i} s_{l,i,t}] and the spikes S_l = E_x[Σ_t Σ_i s_{l,i,t}] of each
spiking layer, when each layer drives one conv/FC (true of every registered model). A run's
metrics hold both, named for the paper's symbols: `energy_pj_layers` is E_SNN(l) = E_AC·E_l
(Eq. 10) and `rate_layers` is R(l) = S_l / (T·d_l) (Eq. 8), with T = `metrics["T"]` (1 for a
trained single-step run) and d_l the layer's neurons. The architecture's part (ψ, sizes, biases,
the image-reading layer) comes from the run's config: `run_wiring`.

    energy_by_cost_model(metrics, run_wiring(metrics["config"]))["lemaire2022"]["energy_pj"]
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

from pipeline.config import RunConfig
from pipeline.convert import to_if_snn
from pipeline.cost_models import COST_MODELS, CostModel
from pipeline.data import INFO
from pipeline.energy import E_AC_PJ
from pipeline.synapses import Wiring, trace_synapses
from pipeline.train import build_model

__all__ = ["energy_by_cost_model", "run_wiring"]


@functools.lru_cache(maxsize=64)
def _wiring(model: str, dataset: str, width: float, psi: str, neuron: str, converted: bool) -> Wiring:
    cfg = RunConfig(model=model, dataset=dataset, width=width, psi=psi, neuron=neuron, device="cpu")
    net = build_model(cfg)
    if converted:  # the IF SNN of spec §7: batch norms folded into the convs' biases
        net = to_if_snn(net.eval())
    info = INFO[dataset]
    return trace_synapses(net, (1, info.in_channels, info.input_size, info.input_size), psi, check_spikes=False)


def run_wiring(config: Mapping[str, Any], converted: bool = False) -> Wiring:
    """The wiring of a run's network, built from its config (`metrics["config"]`) on the CPU; `converted`:
    of the IF SNN its QReLU ANN converts to (spec §7), whose convs carry the folded batch norms as biases.
    Runs that share an architecture share one result."""
    cfg = RunConfig.from_dict(config)
    return _wiring(cfg.model, cfg.dataset, cfg.width, cfg.psi, cfg.neuron, converted)


def energy_by_cost_model(metrics: Mapping[str, Any], wiring: Wiring,
                         models: Mapping[str, CostModel] = COST_MODELS) -> dict[str, dict[str, Any]]:
    """Energy per example under each of `models` (every registered one by default) of the run whose
    `metrics` (with `energy_pj_layers`, `rate_layers` and, for T > 1, `T`) came from the network of
    `wiring`: {cost model: {energy_pj, constant_pj, energy_pj_terms, energy_pj_layers}}."""
    steps = int(metrics.get("T", 1))
    energy, rates = metrics["energy_pj_layers"], metrics["rate_layers"]
    if set(energy) != set(wiring.psi) or set(rates) != set(wiring.psi):
        raise ValueError(f"the metrics name layers {sorted(energy)} but the wiring has {sorted(wiring.psi)}; "
                         "pass the wiring of the run's own config (run_wiring(metrics['config']))")
    shared = [layer for layer, drives in wiring.fanout.items() if len(drives) > 1]
    if shared:
        raise ValueError(f"layer {shared[0]!r} drives {len(wiring.fanout[shared[0]])} conv/FC layers, so its "
                         "events per layer do not say what each costs; meter the network with pipeline.anysnn")
    events = {layer: {j: energy[layer] / E_AC_PJ for j in drives} for layer, drives in wiring.fanout.items()}
    spikes = {layer: rates[layer] * steps * psi.numel() for layer, psi in wiring.psi.items()}
    return {name: model.prices(wiring).energy(events, spikes, steps) for name, model in models.items()}

