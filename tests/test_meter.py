"""pipeline/anysnn.py on networks built with our layers, spikingjelly, snntorch and sinabs:
ψ through each library's own layers equals a brute-force count; E_SNN sums ψ·s over every step
and example; Ω_syn = E_SNN / E_AC (Theorem 3.4) for T = 1 and T > 1; the penalty's gradient
reaches the peer's surrogate; bad input is refused in one line."""
import pytest
import torch
from torch import nn

pytest.importorskip("spikingjelly")  # a peer: requirements-peers.txt
pytest.importorskip("snntorch")  # a peer: requirements-peers.txt
pytest.importorskip("sinabs")  # a peer: requirements-peers.txt

from meter_nets import CASES, brute_psi, jelly_case, raw_spikes, sinabs_case  # noqa: E402
from pipeline.adapters import find_adapter, spiking_layers  # noqa: E402
from pipeline.anysnn import SynapticEnergy  # noqa: E402
from pipeline.synapses import trace_synapses  # noqa: E402

BATCH = 4


@pytest.fixture(params=list(CASES))
def case(request):
    return CASES[request.param]()


def test_every_library_is_recognised(case):
    names = [n for n, _, _ in spiking_layers(case.model)]
    assert names == list(case.brute)
    adapters = {find_adapter(m).name for _, m, _ in spiking_layers(case.model)}
    assert adapters == {case.name.split("-")[0]}


def test_psi_through_the_libraries_layers_equals_brute_force(case):
    psi = trace_synapses(case.model, case.input_shape, "exact").psi
    assert set(psi) == set(case.brute)
    for name, expected in case.brute.items():
        torch.testing.assert_close(psi[name], expected, rtol=0, atol=0, msg=name)
    assert any(float(p.sum()) > 0 for p in psi.values())


def test_energy_is_psi_times_spikes_over_all_steps_and_theorem_3_4(case):
    """E_SNN = E_AC · E_x[Σ_l Σ_t Σ_i ψ s] (Eq. 10 with the real T) = E_AC · E_x[Ω_syn] (p = 1)."""
    meter = SynapticEnergy(case.model, case.input_shape)
    x = case.make_input(BATCH)
    with meter:
        case.run(x)
        assert meter.steps() == case.steps and meter.examples() == BATCH
        report = meter.report()
        omega = meter.omega("syn", 1)
        recorded = meter.spikes()
    raw = raw_spikes(case, x)
    explicit = sum(float((s.detach().double() * meter.psi[n].double()).sum()) for n, s in raw.items()) / BATCH
    assert explicit > 0
    for name, s in raw.items():  # the meter read the same spikes, in the same [T, B, …] order
        torch.testing.assert_close(recorded[name].detach(), s.detach(), rtol=0, atol=0)
    assert report["synaptic_events"] == pytest.approx(explicit, rel=1e-12)
    assert report["energy_pj"] == pytest.approx(0.9 * explicit, rel=1e-12)
    # Theorem 3.4: the per-example Ω_syn (summed over steps) are exact integers in float32 here
    assert float(omega.detach().double().sum()) == explicit * BATCH
    assert 0.9 * float(omega.detach().double().mean()) == pytest.approx(report["energy_pj"], rel=1e-12)


@pytest.mark.parametrize("T", [1, 4])
def test_theorem_3_4_for_one_and_many_steps(T):
    case = jelly_case(T)
    meter = SynapticEnergy(case.model, case.input_shape)
    with meter:
        case.run(case.make_input(BATCH))
        for p in (1, 2):  # binary spikes: s^p = s, so p·E_AC·E_x[Ω_syn] = E_SNN for every p ≥ 1
            assert p * 0.9 * float(meter.omega("syn", p).detach().double().mean()) == pytest.approx(meter.energy_pj(),
                                                                                         rel=1e-6)
        assert meter.energy_pj() > 0


def test_multi_spike_counts_k_times_psi():
    case = sinabs_case()
    meter = SynapticEnergy(case.model, case.input_shape)
    with meter:
        case.run(case.make_input(BATCH))
        spikes = meter.spikes()
        assert max(float(s.detach().max()) for s in spikes.values()) > 1  # sinabs' MultiSpike fired k > 1
        counts = sum(float((s.detach().sum((0, 1)) * meter.psi[n]).sum()) for n, s in spikes.items())
        assert meter.report()["synaptic_events"] == pytest.approx(counts / BATCH, rel=1e-12)
        assert 0.9 * float(meter.omega("syn", 1).detach().double().mean()) == pytest.approx(meter.energy_pj(), rel=1e-9)


def test_penalty_gradient_reaches_the_peer_surrogate(case):
    """∂ penalty/∂W of the first conv equals the autograd of an explicit Σ ψ·s / B, and is non-zero."""
    meter = SynapticEnergy(case.model, case.input_shape)
    case.model.train()
    x = case.make_input(BATCH)
    weight = case.model.get_submodule(case.first_conv).weight
    torch.manual_seed(5)
    with meter:
        case.run(x)
        ours = torch.autograd.grad(meter.penalty(), weight)[0]
    meter.close()
    torch.manual_seed(5)
    raw = raw_spikes(case, x)
    explicit = sum((s * meter.psi[n]).sum() for n, s in raw.items()) / BATCH
    reference = torch.autograd.grad(explicit, weight)[0]
    assert reference.abs().sum() > 0
    torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("convention", ["exact", "padded"])
def test_first_layer_macs_at_every_step(convention):
    case = jelly_case(2)
    meter = SynapticEnergy(case.model, case.input_shape, convention=convention)
    with meter:
        case.run(case.make_input(BATCH))
        r = meter.report()
    # conv 1→4, k3 p1 on 8×8, the image presented at both steps: real taps 4 · 1 · (3·8 − 2)² per image,
    # or with the padded taps 4 · 1 · 9 · 8 · 8
    assert r["dense_macs"] == 2 * 4 * (22 ** 2 if convention == "exact" else 9 * 64)
    assert r["energy_pj"] == pytest.approx(0.9 * r["synaptic_events"]) and r["constant_pj"] == 0  # the paper's metric


def test_padded_convention_counts_padded_taps():
    case = jelly_case(1)
    exact, padded = (trace_synapses(case.model, case.input_shape, c).psi for c in ("exact", "padded"))
    conv = case.model[3]  # 4→6, k3 p1 on 8×8: every output reads 9 taps per input channel
    assert float(padded["2"].sum()) == 6 * 4 * 9 * 8 * 8
    assert float(exact["2"].sum()) == 6 * 4 * 22 ** 2 < float(padded["2"].sum())
    torch.testing.assert_close(padded["4"], exact["4"])  # no padding behind the second layer
    assert conv.padding == (1, 1)


def test_brute_force_oracle_matches_the_uniform_formula():
    conv = nn.Conv2d(2, 3, 3, padding=0, bias=False)  # interior neurons: Eq. 6 without padding
    psi = brute_psi((2, 8, 8), [[("conv", conv)]])
    assert float(psi[0, 3, 3]) == 3 * 9 and float(psi[0, 0, 0]) == 3


def test_single_step_loop_equals_multi_step():
    """spikingjelly step by step (step_mode "s", state kept between calls) meters like multi-step."""
    from spikingjelly.activation_based import functional

    case = jelly_case(3)
    case.model.eval()  # BN statistics of T·B examples at once or B per step would differ in training
    x = case.make_input(BATCH)
    meter = SynapticEnergy(case.model, case.input_shape)
    with meter:
        case.run(x)
        multi, omega_multi = meter.report(), meter.omega().detach()
    meter.close()
    functional.set_step_mode(case.model, "s")
    single = SynapticEnergy(case.model, (1, 1, 8, 8))
    functional.reset_net(case.model)
    with single:
        for t in range(3):
            case.model(x[t])
        assert single.steps() == 3
        assert single.report()["synaptic_events"] == pytest.approx(multi["synaptic_events"], rel=1e-12)
        torch.testing.assert_close(single.omega().detach(), omega_multi)


@pytest.mark.parametrize("kind", ["IAF", "LIF"])
def test_sinabs_batch_time_layout(kind):
    """sinabs IAF/LIF take [B, T, …]: the meter reads them as T steps of B examples."""
    from sinabs import layers as sl

    torch.manual_seed(0)
    neuron = sl.IAF() if kind == "IAF" else sl.LIF(tau_mem=torch.tensor(5.0))
    model = nn.Sequential(nn.Linear(6, 5, bias=False), neuron, nn.Linear(5, 3, bias=False))
    meter = SynapticEnergy(model, (1, 4, 6))
    assert torch.equal(meter.psi["1"], torch.full((5,), 3.0))
    x = torch.rand(BATCH, 4, 6) * 20
    with meter:
        neuron.reset_states()
        model(x)
        s = meter.spikes()["1"]
        assert s.shape == (4, BATCH, 5) and float(s.detach().sum()) > 0
        assert meter.report()["synaptic_events"] == pytest.approx(3 * float(s.detach().sum()) / BATCH)
