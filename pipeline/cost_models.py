"""Energy cost models by name: what each operation of an SNN costs, in pJ (docs/energy-models.md).

A cost model prices a network's wiring (`pipeline.synapses.Wiring`). Every model here is affine in
the spikes. Per example, over its T steps, with E_{l→j} = E_x[Σ_t Σ_i ψ_{l→j,i} s_{l,i,t}] the synaptic
events of spiking layer l in conv/FC j and S_l = E_x[Σ_t Σ_i s_{l,i,t}] the spikes of l,

    E = Σ_term [ Σ_{l,j} a_{term,j} E_{l→j} + Σ_l b_{term,l} S_l + T Σ_layer k_{term,layer} ],

so one spike of neuron i of layer l costs c_{l,i} = Σ_term (Σ_j a_{term,j} ψ_{l→j,i} + b_{term,l}) and
E = Σ_l Σ_i c_{l,i} E_x[Σ_t s_{l,i,t}] + T Σ k. The k-terms (neuron updates, biases, dense layers
reading the image) do not depend on the spikes: reported, never penalised. Each constant below
names its source; docs/energy-models.md tabulates them.

- `paper`: E_AC = 0.9 pJ per synaptic event (Eq. 10, Horowitz ISSCC 2014: a 32-bit float add);
  layers reading the image cost nothing. Exactly E_SNN.
- `lemaire2022`: Lemaire et al., "An analytical estimation of spiking neural networks energy
  efficiency", ICONIP 2022 (arXiv:2210.13107): per layer, the synaptic accumulates, weight and bias
  reads, membrane-potential reads and writes, input/output spike reads and writes (a FIFO of
  `fifo_words` words) and the address computation of each event, at Horowitz's 45 nm integer
  costs for `bits`-wide words and an SRAM access cost that grows with the memory read.
- `loihi`, `spinnaker`, `spinnaker2`: a device's energy per synaptic operation and per neuron
  update, as keras-spiking's `ModelEnergy` lists them (keras_spiking/model_energy.py).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Protocol

import torch
from torch import Tensor

from pipeline.energy import E_AC_PJ
from pipeline.synapses import Wiring

__all__ = ["COST_MODELS", "CostModel", "Device", "HOROWITZ_INT_PJ", "Lemaire2022", "Prices", "SRAM_64BIT_PJ",
           "SynapticOps", "cost_model", "sram_pj"]

#: Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm: integer (add, multiply) in pJ by width.
HOROWITZ_INT_PJ: dict[int, tuple[float, float]] = {8: (0.03, 0.2), 32: (0.1, 3.1)}
#: Horowitz 2014: one 64-bit SRAM (cache) access in pJ by memory size in bytes (8 KiB, 32 KiB, 1 MiB),
#: from (0, 0) as spikingjelly's `LemaireEnergyCostConfig` interpolates them.
SRAM_64BIT_PJ: tuple[tuple[float, float], ...] = ((0.0, 0.0), (8 * 1024.0, 10.0), (32 * 1024.0, 20.0),
                                                  (1024 * 1024.0, 100.0))


def sram_pj(size_bytes: float, bits: int) -> float:
    """One `bits`-wide access to an SRAM of `size_bytes`: Horowitz's 64-bit figure interpolated
    linearly in the size (held at 1 MiB above it), scaled by bits / 64."""
    size = min(max(size_bytes, 0.0), SRAM_64BIT_PJ[-1][0])
    for (x0, y0), (x1, y1) in zip(SRAM_64BIT_PJ, SRAM_64BIT_PJ[1:]):
        if size <= x1:
            return (y0 + (y1 - y0) * (size - x0) / (x1 - x0)) * bits / 64
    raise AssertionError("unreachable: the size is clamped to the last breakpoint")


def _table() -> dict[str, dict[str, float]]:
    return defaultdict(lambda: defaultdict(float))


@dataclass(frozen=True)
class Prices:
    """A cost model applied to one network: pJ per synaptic event in each conv/FC (`per_event`),
    per spike of each spiking layer (`per_spike`) and per step and example of any layer
    (`per_step`, the spike-independent terms), each by term."""

    per_event: Mapping[str, Mapping[str, float]]  # term → conv/FC j → a_{term,j}
    per_spike: Mapping[str, Mapping[str, float]]  # term → spiking layer l → b_{term,l}
    per_step: Mapping[str, Mapping[str, float]]  # term → layer → k_{term,layer}

    def spike_costs(self, wiring: Wiring) -> dict[str, Tensor]:
        """c_{l,i}: pJ per spike of each neuron of each spiking layer, shaped like ψ_l."""
        costs = {}
        for layer, psi in wiring.psi.items():
            c = torch.zeros_like(psi, dtype=torch.float64)
            for term in self.per_event:
                for j, psi_to in wiring.fanout[layer].items():
                    c += self.per_event[term].get(j, 0.0) * psi_to.double()
            c += sum(b.get(layer, 0.0) for b in self.per_spike.values())
            costs[layer] = c.to(psi.dtype)
        return costs

    def energy(self, events: Mapping[str, Mapping[str, float]], spikes: Mapping[str, float],
               steps: int) -> dict:
        """Energy per example in pJ from its synaptic events E_{l→j} ({l: {j: events}}), spikes S_l and
        T = `steps`: the total, the spike-independent part, and the total per term and per layer
        (events and spikes charged to the spiking layer that emitted them)."""
        terms: dict[str, float] = defaultdict(float)
        layers: dict[str, float] = defaultdict(float)
        for term, price in self.per_event.items():
            for layer, to in events.items():
                for j, e in to.items():
                    terms[term] += price.get(j, 0.0) * e
                    layers[layer] += price.get(j, 0.0) * e
        for term, price in self.per_spike.items():
            for layer, s in spikes.items():
                terms[term] += price.get(layer, 0.0) * s
                layers[layer] += price.get(layer, 0.0) * s
        constant = 0.0
        for term, price in self.per_step.items():
            for layer, k in price.items():
                terms[term] += steps * k
                layers[layer] += steps * k
                constant += steps * k
        return {"energy_pj": sum(terms.values()), "constant_pj": constant, "energy_pj_terms": dict(terms),
                "energy_pj_layers": dict(layers)}


class CostModel(Protocol):
    """Prices the operations of a network; `source` says where its constants come from."""

    source: str

    def prices(self, wiring: Wiring) -> Prices:
        """The prices of every term for this wiring."""


@dataclass(frozen=True)
class SynapticOps:
    """The paper's metric: `ac_pj` per synaptic event (Eq. 10), nothing else."""

    ac_pj: float = E_AC_PJ
    source: str = "Suetake et al. 2023, Eq. 10; E_AC: Horowitz ISSCC 2014 (32-bit float add, 45 nm)"

    def prices(self, wiring: Wiring) -> Prices:
        return Prices({"synaptic_ops": {j: self.ac_pj for j, syn in wiring.synapses.items() if syn.spiking}}, {}, {})


@dataclass(frozen=True)
class Device:
    """A device's `synop_pj` per synaptic operation and `neuron_pj` per neuron update (every neuron of
    every spiking layer, every step). A layer reading a dense input (the image) pays one synaptic
    operation per multiply-accumulate."""

    synop_pj: float
    neuron_pj: float
    source: str

    def prices(self, wiring: Wiring) -> Prices:
        synops = {j: self.synop_pj for j, syn in wiring.synapses.items() if syn.spiking}
        dense = {j: self.synop_pj * syn.macs for j, syn in wiring.synapses.items() if not syn.spiking}
        updates = {layer: self.neuron_pj * psi.numel() for layer, psi in wiring.psi.items()}
        return Prices({"synops": synops}, {}, {"synops": dense, "neuron_updates": updates})


@dataclass(frozen=True)
class Lemaire2022:
    """Lemaire et al. 2022's analytical model with `bits`-wide words (8 or 32) and spike FIFOs of
    `fifo_words` words (1000: their experiments, as spikingjelly's estimator sets it).

    Terms (pJ), with add/mul the integer costs and mem(M) = `sram_pj` of a memory of M bytes:
    - per synaptic event in conv/FC j reading spikes: `ops` one accumulate (add), `addressing` one
      weight address (add), `params` one weight read (mem of j's weights and biases), `potential`
      one read and one write of the output potential (2·mem of j's outputs);
    - per spike of layer l: `ops` its reset (add), `inout` its write to the output FIFO and one read
      from the input FIFO of each conv/FC it drives (mem of the FIFO), `addressing` two
      multiply-adds per conv it drives (the first output the spike reaches);
    - per step: each neuron's potential read and written (2·mem of the layer's neurons) and, if it
      leaks, one multiply-add (`ops`, `potential`); a bias added to each output (`ops`) and read
      (`params`); a conv/FC reading a dense input (the image): its multiply-adds (`ops`), one weight
      read per multiply-add (`params`), its input read once per multiply-add for a conv, once for a
      linear layer (`inout`, mem of the input), one address add per input and per output
      (`addressing`). Pools, batch norms (folded into the neurons' thresholds at T = 1), residual
      adds and dropout cost nothing.
    """

    bits: int = 32
    fifo_words: int = 1000
    source: str = ("Lemaire et al., ICONIP 2022 (arXiv:2210.13107); Horowitz ISSCC 2014 (45 nm integer add "
                   "and multiply, SRAM access by size)")

    def __post_init__(self) -> None:
        if self.bits not in HOROWITZ_INT_PJ:
            raise ValueError(f"lemaire2022 word width must be one of {sorted(HOROWITZ_INT_PJ)} bits "
                             f"(Horowitz's integer costs); got {self.bits}")
        if self.fifo_words < 1:
            raise ValueError(f"lemaire2022 FIFO size must be >= 1 word; got {self.fifo_words}")

    def prices(self, wiring: Wiring) -> Prices:
        add, mul = HOROWITZ_INT_PJ[self.bits]
        byte = self.bits / 8
        mem = lambda words: sram_pj(words * byte, self.bits)  # noqa: E731 - one access to a memory of `words`
        fifo = mem(self.fifo_words)
        per_event, per_spike, per_step = _table(), _table(), _table()
        for j, syn in wiring.synapses.items():
            weights = mem(syn.weights + syn.biases)
            if syn.spiking:
                per_event["ops"][j] = add
                per_event["addressing"][j] = add
                per_event["params"][j] = weights
                per_event["potential"][j] = 2 * mem(syn.outputs)
            else:
                per_step["ops"][j] += syn.macs * (mul + add)
                per_step["params"][j] += syn.macs * weights
                per_step["inout"][j] += (syn.macs if syn.kind == "conv" else syn.inputs) * mem(syn.inputs)
                per_step["addressing"][j] += (syn.inputs + syn.outputs) * add
            if syn.biases:
                per_step["ops"][j] += syn.outputs * add
                per_step["params"][j] += syn.outputs * weights
        for layer, psi in wiring.psi.items():
            neurons = psi.numel()
            per_step["potential"][layer] = 2 * neurons * mem(neurons)
            if wiring.leaky[layer]:
                per_step["ops"][layer] = neurons * (mul + add)
            drives = wiring.fanout[layer]
            per_spike["ops"][layer] = add
            per_spike["inout"][layer] = fifo * (1 + len(drives))
            per_spike["addressing"][layer] = 2 * (mul + add) * sum(wiring.synapses[j].kind == "conv" for j in drives)
        return Prices(per_event, per_spike, per_step)


#: The cost models by name; the name is what configs, metrics and docs call them.
COST_MODELS: dict[str, CostModel] = {
    "paper": SynapticOps(),
    "lemaire2022": Lemaire2022(),
    # keras-spiking ModelEnergy.devices (nengo/keras-spiking, keras_spiking/model_energy.py):
    "loihi": Device(23.6 + 3.5, 81.0, "Davies et al., IEEE Micro 2018 (Loihi), as keras-spiking lists it: "
                                      "23.6 pJ synaptic op + 3.5 pJ, 81 pJ neuron update"),
    "spinnaker": Device(13300.0, 26000.0, "Höppner et al., IEEE TCAS-I 2019, as keras-spiking lists it "
                                          "(SpiNNaker 1: 13.3 nJ synaptic op, 26 nJ neuron update)"),
    "spinnaker2": Device(450.0, 2190.0, "Höppner et al., IEEE TCAS-I 2019, as keras-spiking lists it "
                                        "(SpiNNaker 2: 450 pJ synaptic op, 2.19 nJ neuron update)"),
}


def cost_model(name: str) -> CostModel:
    """The registered cost model `name`; a one-line ValueError naming the choices otherwise."""
    if name not in COST_MODELS:
        raise ValueError(f"unknown cost model {name!r}; allowed: {', '.join(COST_MODELS)}")
    return COST_MODELS[name]
