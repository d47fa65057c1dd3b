"""Cost models and energy penalties against brute force: every spike's synapses enumerated one by one
and charged the operations docs/energy-models.md lists (Horowitz's constants written out here), on a
single-step net of ours and a spikingjelly multi-step net with a leaky layer; the penalty's value and
gradient against the autograd of an explicit Σ c·s^p / p; Ω_E[paper] = E_AC·Ω_syn."""
import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("spikingjelly")  # a peer: requirements-peers.txt (meter_nets builds its nets)
pytest.importorskip("snntorch")
pytest.importorskip("sinabs")

from meter_nets import brute_psi, jelly_case  # noqa: E402
from pipeline.anysnn import SynapticEnergy  # noqa: E402
from pipeline.cost_models import COST_MODELS, Lemaire2022, cost_model, sram_pj  # noqa: E402
from pipeline.models import create_model  # noqa: E402
from pipeline.neuron import Spike, neurons  # noqa: E402
from pipeline.penalties import batch_penalty, omega_all_firing, penalty_basis  # noqa: E402

ADD, MUL = 0.1, 3.1  # Horowitz 2014, 32-bit integer add and multiply, pJ
B = 3


def mem(nbytes):
    """One 32-bit access to an SRAM of `nbytes`: Horowitz's 64-bit figures, halved, interpolated."""
    return float(np.interp(nbytes, [0, 8192, 32768, 1048576], [0, 10, 20, 100])) * 32 / 64


def test_sram_cost_hand_values():
    assert sram_pj(8 * 1024, 64) == 10 and sram_pj(32 * 1024, 64) == 20 and sram_pj(1024 * 1024, 64) == 100
    assert sram_pj(4 * 1024, 64) == 5 and sram_pj(20 * 1024, 64) == 15  # linear between the breakpoints
    assert sram_pj(8 * 1024, 32) == 5 and sram_pj(8 * 1024, 8) == 1.25  # a narrower word: a share of 64 bits
    assert sram_pj(4 * 1024 * 1024, 64) == 100  # held at 1 MiB


def test_bad_parameters_are_one_line_errors():
    with pytest.raises(ValueError, match="one of \\[8, 32\\] bits"):
        Lemaire2022(bits=16)
    with pytest.raises(ValueError, match="unknown cost model 'loihi2'; allowed: paper, lemaire2022"):
        cost_model("loihi2")


class Tiny(nn.Module):
    """image → conv(1→2, k3 p1, bias) → a → conv(2→3, k3 s2 p1) → b → flatten → fc(12→4, bias) → c
    → out(4→2)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.a = nn.Conv2d(1, 2, 3, padding=1), Spike(surrogate="sigmoid")
        self.conv2, self.b = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False), Spike(surrogate="sigmoid")
        self.fc, self.c = nn.Linear(12, 4), Spike(surrogate="sigmoid")
        self.out = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            for m in (self.conv1, self.conv2, self.fc):  # about half the neurons fire
                m.weight.mul_(3)
                m.weight.add_(0.2)

    def forward(self, x):
        return self.out(self.c(self.fc(self.b(self.conv2(self.a(self.conv1(x)))).flatten(1))))


def tiny_facts(net):
    """By hand: each conv/FC's (spiking input, inputs, outputs, weights + biases, dense MACs), and for
    each spiking layer its neurons, whether it leaks and its ψ per conv/FC (brute force, real taps)."""
    synapses = {  # conv1 on the 4×4 image, k3 p1: real taps per axis 2+3+3+2 = 10, so 2·10·10 MACs
        "conv1": ("conv", False, 16, 32, 2 * 9 + 2, 200), "conv2": ("conv", True, 32, 12, 3 * 2 * 9, None),
        "fc": ("linear", True, 12, 4, 48 + 4, None), "out": ("linear", True, 4, 2, 8, None)}
    layers = {"a": (32, False, {"conv2": brute_psi((2, 4, 4), [[("conv", net.conv2)]])}),
              "b": (12, False, {"fc": torch.full((3, 2, 2), 4.0)}), "c": (4, False, {"out": torch.full((4,), 2.0)})}
    return synapses, layers


def jelly_facts(net):
    synapses = {  # 0: conv 1→4 k3 p1 on the 8×8 image, real taps per axis 2+3·6+2 = 22: 4·22·22 MACs
        "0": ("conv", False, 64, 4 * 64, 4 * 9, 4 * 22 * 22), "3": ("conv", True, 4 * 64, 6 * 64, 6 * 4 * 9, None),
        "8": ("linear", True, 96, 10, 960, None)}
    layers = {"2": (4 * 64, False, {"3": brute_psi((4, 8, 8), [[("conv", net[3])]])}),
              "4": (6 * 64, True, {"8": brute_psi((6, 8, 8), [[("pool", 2), ("linear", net[8])]])}),  # the LIF
              "9": (10, False, {})}
    return synapses, layers


def brute_lemaire(spikes, facts, steps):
    """Lemaire 2022 at 32 bits, per example and term, by visiting every spike and every synapse it reaches."""
    synapses, layers = facts
    terms = dict.fromkeys(("ops", "addressing", "params", "potential", "inout"), 0.0)
    fifo = mem(1000 * 4)
    for name, s in spikes.items():
        _, _, drives = layers[name]
        for (t, b, *i), k in zip(s.nonzero().tolist(), s[s != 0].tolist()):
            for _ in range(int(k)):  # each of the k spikes of a multi-spike neuron
                terms["ops"] += ADD  # reset
                terms["inout"] += fifo * (1 + len(drives))  # written out, read in by each conv/FC
                for j, psi in drives.items():
                    kind, _, _, outputs, params, _ = synapses[j]
                    if kind == "conv":
                        terms["addressing"] += 2 * (MUL + ADD)
                    synapses_reached = float(psi[tuple(i)])  # each one: an accumulate, its address, its
                    terms["ops"] += synapses_reached * ADD  # weight read, the potential read and written
                    terms["addressing"] += synapses_reached * ADD
                    terms["params"] += synapses_reached * mem(params * 4)
                    terms["potential"] += synapses_reached * 2 * mem(outputs * 4)
    per_example = {term: v / B for term, v in terms.items()}
    constant = dict.fromkeys(terms, 0.0)
    for name, (neurons_, leaky, _) in layers.items():
        constant["potential"] += 2 * neurons_ * mem(neurons_ * 4)
        constant["ops"] += leaky * neurons_ * (MUL + ADD)
    for j, (kind, spiking, inputs, outputs, params, macs) in synapses.items():
        biased = j in ("conv1", "fc")
        constant["ops"] += biased * outputs * ADD
        constant["params"] += biased * outputs * mem(params * 4)
        if not spiking:
            constant["ops"] += macs * (MUL + ADD)
            constant["params"] += macs * mem(params * 4)
            constant["inout"] += (macs if kind == "conv" else inputs) * mem(inputs * 4)
            constant["addressing"] += (inputs + outputs) * ADD
    total = {term: per_example[term] + steps * constant[term] for term in terms}
    return total, steps * sum(constant.values())


def tiny_case():
    net = Tiny()
    return net, (1, 1, 4, 4), torch.rand(B, 1, 4, 4) * 3, 1, tiny_facts(net)


def jelly_multi_step():
    case = jelly_case(3)
    with torch.no_grad():  # every spiking layer fires
        case.model[3].weight.mul_(6)
        case.model[8].weight.mul_(6)
    torch.manual_seed(7)
    return case.model, case.input_shape, case.make_input(B), 3, jelly_facts(case.model)


CASES = {"ours single-step": tiny_case, "spikingjelly multi-step with LIF": jelly_multi_step}


def _run(net, x):
    from spikingjelly.activation_based import functional

    functional.reset_net(net)  # the spikingjelly net's state; nothing in ours
    return net(x)


@pytest.mark.parametrize("case", list(CASES))
def test_lemaire2022_equals_brute_force_per_term(case):
    net, shape, x, steps, facts = CASES[case]()
    net.eval()
    meter = SynapticEnergy(net, shape, "lemaire2022", convention="exact")
    with meter, torch.no_grad():
        _run(net, x)
        report = meter.report()
        spikes = meter.spikes()
    assert all(float(s.sum()) > 0 for name, s in spikes.items() if facts[1][name][2])  # every driving layer fired
    expected, constant = brute_lemaire(spikes, facts, steps)
    assert report["energy_pj_terms"] == pytest.approx(expected, rel=1e-9)
    assert report["energy_pj"] == pytest.approx(sum(expected.values()), rel=1e-9)
    assert report["constant_pj"] == pytest.approx(constant, rel=1e-9)
    assert sum(report["energy_pj_layers"].values()) == pytest.approx(report["energy_pj"], rel=1e-12)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", ["loihi", "spinnaker2"])
def test_device_models_are_synaptic_ops_and_neuron_updates(case, name):
    net, shape, x, steps, (synapses, layers) = CASES[case]()
    net.eval()
    meter = SynapticEnergy(net, shape, name, convention="exact")
    with meter, torch.no_grad():
        _run(net, x)
        report = meter.report()
        spikes = meter.spikes()
    device = COST_MODELS[name]
    events = sum(float((s * psi).sum()) for n, s in spikes.items() for psi in layers[n][2].values()) / B
    dense = sum(f[5] for f in synapses.values() if not f[1])
    updates = sum(n for n, _, _ in layers.values())
    assert report["energy_pj_terms"]["synops"] == pytest.approx(device.synop_pj * (events + steps * dense), rel=1e-9)
    assert report["energy_pj_terms"]["neuron_updates"] == pytest.approx(device.neuron_pj * steps * updates, rel=1e-9)
    assert report["constant_pj"] == pytest.approx(steps * (device.synop_pj * dense + device.neuron_pj * updates))


def brute_spike_costs(facts):
    """c_{l,i} under lemaire2022 at 32 bits: what one spike of neuron i costs, its synapses counted by brute force."""
    synapses, layers = facts
    costs = {}
    for name, (_, _, drives) in layers.items():
        c = ADD + mem(4000) * (1 + len(drives))
        for j, psi in drives.items():
            kind, _, _, outputs, params, _ = synapses[j]
            per_synapse = 2 * ADD + mem(params * 4) + 2 * mem(outputs * 4)
            c = c + 2 * (MUL + ADD) * (kind == "conv") + psi.double() * per_synapse
        costs[name] = c
    return costs


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("p", [1, 2])
def test_energy_penalty_value_and_gradient_against_an_explicit_sum(case, p):
    net, shape, x, steps, facts = CASES[case]()
    net.train()
    weight = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).weight
    meter = SynapticEnergy(net, shape, convention="exact")
    with meter:
        torch.manual_seed(3)
        _run(net, x)
        penalty = meter.penalty("energy_lemaire2022", p)
        ours = torch.autograd.grad(penalty, weight, retain_graph=True)[0]
        spikes = meter.spikes()
        costs = brute_spike_costs(facts)
        explicit = sum((torch.as_tensor(costs[n]).float() * s.pow(p)).sum() for n, s in spikes.items()) / (p * B)
        reference = torch.autograd.grad(explicit, weight)[0]
        assert float(penalty.detach()) == pytest.approx(float(explicit.detach()), rel=1e-6)
    meter.close()
    assert reference.abs().sum() > 0
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    # binary spikes: p·E_x[Ω_E] is the energy less its spike-independent part, whatever p
    lemaire = SynapticEnergy(net, shape, "lemaire2022", convention="exact")
    with lemaire, torch.no_grad():
        torch.manual_seed(3)
        _run(net, x)
        report = lemaire.report()
    assert p * float(penalty.detach()) == pytest.approx(report["energy_pj"] - report["constant_pj"], rel=1e-6)


@pytest.mark.parametrize("p", [1, 2])
def test_paper_energy_penalty_is_e_ac_times_omega_syn(p):
    net, shape, x, _, _ = tiny_case()
    meter = SynapticEnergy(net, shape)
    with meter:
        _run(net, x)
        torch.testing.assert_close(meter.omega("energy_paper", p), 0.9 * meter.omega("syn", p))
        assert float(meter.omega("syn", 1).detach().sum()) > 0
    assert meter.omega_all_firing(2, "energy_paper") == pytest.approx(0.9 * meter.omega_all_firing(2, "syn"))


@pytest.mark.parametrize("name", list(COST_MODELS))
def test_all_firing_penalty_is_the_all_firing_energy_less_its_constant(name):
    """Ω_E(1) (the λ' normaliser) through the spike costs = the energy priced from the counts."""
    net, shape, _, _, _ = tiny_case()
    meter = SynapticEnergy(net, shape, name)
    wiring = meter.wiring
    events = {n: {j: float(w.sum()) for j, w in to.items()} for n, to in wiring.fanout.items()}
    spikes = {n: float(w.numel()) for n, w in wiring.psi.items()}
    energy = meter.prices.energy(events, spikes, 1)
    assert meter.omega_all_firing(1, f"energy_{name}") == pytest.approx(energy["energy_pj"] - energy["constant_pj"],
                                                                       rel=1e-6)
    assert energy["energy_pj"] > energy["constant_pj"]


def test_the_pipeline_trains_with_an_energy_penalty():
    """create_model carries every cost model's spike costs; batch_penalty reads them like the meter."""
    model = create_model("cnn7", in_channels=1, width=0.125)
    x = torch.rand(4, 1, 32, 32) * 2
    meter = SynapticEnergy(model, (1, 1, 32, 32))
    with meter:
        model(x)
        ours = batch_penalty(model, "energy_lemaire2022", 1)
        torch.testing.assert_close(ours, meter.penalty("energy_lemaire2022"))
        basis = penalty_basis(model, "energy_lemaire2022")
    assert float(ours.detach()) > 0
    assert omega_all_firing(basis, "energy_lemaire2022", 1) == pytest.approx(
        meter.omega_all_firing(1, "energy_lemaire2022"), rel=1e-6)
    with pytest.raises(ValueError, match="no spike costs for 'energy_loihi' on layer 'a'"):
        penalty_basis(Tiny(), "energy_loihi")
    assert [n for n, _ in neurons(model)] == list(meter.psi)
