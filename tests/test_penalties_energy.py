"""Penalties and energy: hand-worked values, brute force, Theorem 3.4, Remark 3.5, streaming."""
import itertools

import pytest
import torch

from pipeline.config import RunConfig
from pipeline.energy import E_AC_PJ, ActivityMeter, energy_pj, flops
from pipeline.models import create_model
from pipeline.neuron import Spike, neurons, spike_fn, surrogate_grad
from pipeline.penalties import batch_penalty, check_penalty, omega, omega_all_firing


def random_layers(seed=0, n=5):
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4, 4), (6,), (2, 3, 5)]
    psi = [torch.randint(0, 50, s, generator=g).float() for s in shapes]
    spikes = [torch.bernoulli(torch.full((n, *s), 0.3), generator=g) for s in shapes]
    return spikes, psi


def test_hand_worked_example():
    # layer 1: ψ = [2, 3], layer 2: ψ = [4]; example spikes [1, 0] and [1]
    psi = [torch.tensor([2.0, 3.0]), torch.tensor([4.0])]
    spikes = [torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0]])]
    assert omega(spikes, psi, "syn", 1).item() == 6.0  # 2·1 + 3·0 + 4·1
    assert omega(spikes, psi, "total", 2).item() == 1.0  # (1 + 0 + 1) / 2
    assert omega(spikes, psi, "balance", 1).item() == 1.5  # 1/2 + 1/1
    assert omega_all_firing(psi, "syn", 1) == 9.0
    assert omega_all_firing(psi, "total", 1) == 3.0
    assert omega_all_firing(psi, "balance", 2) == 1.0
    assert energy_pj(spikes, psi).tolist() == pytest.approx([2 * E_AC_PJ, 4 * E_AC_PJ])
    assert flops(psi) == [5.0, 4.0]


@pytest.mark.parametrize("kind", ["syn", "total", "balance"])
@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
def test_omega_matches_element_loop(kind, p):
    g = torch.Generator().manual_seed(1)
    psi = [torch.randint(0, 9, (2, 3), generator=g).float(), torch.randint(0, 9, (4,), generator=g).float()]
    spikes = [torch.rand(3, 2, 3, generator=g), torch.rand(3, 4, generator=g)]  # non-binary: p matters
    got = omega(spikes, psi, kind, p)
    for n in range(3):
        expected = 0.0
        for s, w in zip(spikes, psi):
            for idx in itertools.product(*map(range, w.shape)):
                weight = {"syn": w[idx].item(), "total": 1.0, "balance": 1 / w.numel()}[kind]
                expected += weight * s[n][idx].item() ** p / p
        assert got[n].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", ["syn", "total", "balance"])
@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
def test_omega_gradient_matches_finite_differences(kind, p):
    g = torch.Generator().manual_seed(2)
    psi = [torch.randint(0, 9, (2, 3), generator=g).double(), torch.randint(0, 9, (4,), generator=g).double()]
    spikes = [(torch.rand(3, 2, 3, generator=g, dtype=torch.float64) + 0.1).requires_grad_(),
              (torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.1).requires_grad_()]
    weights = torch.rand(3, generator=g, dtype=torch.float64)  # unequal per-example upstream gradients
    assert torch.autograd.gradcheck(lambda a, b: omega([a, b], psi, kind, p) * weights, spikes)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_theorem_3_4(p, dtype):
    spikes, psi = random_layers(seed=p)
    spikes, psi = [s.to(dtype) for s in spikes], [w.to(dtype) for w in psi]
    lhs = p * E_AC_PJ * omega(spikes, psi, "syn", p).mean()
    rhs = energy_pj(spikes, psi).sum()
    assert lhs.dtype == rhs.dtype == dtype
    torch.testing.assert_close(lhs, rhs)


@pytest.mark.parametrize("p", [1, 2])
def test_remark_3_5_gradient(p):
    torch.manual_seed(0)
    u = (torch.randn(4, 3, 5) + 1).requires_grad_()
    psi = torch.randint(1, 20, (3, 5)).float()
    s = spike_fn(u, "s3nn", 0.25, 0.6, 1.0)
    omega([s], [psi], "syn", p).sum().backward()
    expected = psi * surrogate_grad(u.detach(), "s3nn", 0.25, 0.6, 1.0)
    if p == 2:
        expected = torch.where(s.detach() == 1, expected, torch.zeros_like(expected))
        assert (u.grad[s == 0] == 0).all() and (s == 0).any()
    torch.testing.assert_close(u.grad, expected)


def test_bad_penalty_input_is_refused_where_it_enters():
    psi = [torch.ones(2)]
    with pytest.raises(ValueError, match="unknown penalty 'l1'; allowed: syn, total, balance"):
        check_penalty("l1", 1)
    with pytest.raises(ValueError, match=r"p must be >= 1 \(got 0.5\)"):
        omega_all_firing(psi, "syn", 0.5)
    with pytest.raises(ValueError, match="config key 'penalty' must be one of none, syn, total, balance"):
        RunConfig(penalty="l1")


def test_meter_streams_what_one_big_batch_gives():
    spikes, psi = random_layers(seed=3, n=12)
    model = torch.nn.Sequential(*(Spike() for _ in psi))
    for (_, m), w in zip(neurons(model), psi):
        m.psi = w
    meter = ActivityMeter(model)
    for chunk in (slice(0, 5), slice(5, 7), slice(7, 12)):
        meter.update([s[chunk] for s in spikes])
    got = meter.summary()
    assert got["examples"] == 12
    assert got["energy_pj"] == pytest.approx(float(energy_pj(spikes, psi).sum()), rel=1e-6)
    rates = [float(s.mean()) for s in spikes]  # R(l) = E_x[Σ_i s / d_l]
    assert list(got["rate_layers"].values()) == pytest.approx(rates)
    assert got["rate_sum"] == pytest.approx(sum(rates))
    total_neurons = sum(w.numel() for w in psi)
    assert got["rate_mean"] == pytest.approx(sum(float(s.sum()) for s in spikes) / (12 * total_neurons))
    dead = sum(int((s.sum(0) == 0).sum()) for s in spikes)
    assert got["dead_rate"] == pytest.approx(dead / total_neurons)


def test_meter_counts_over_time_steps():
    model = torch.nn.Sequential(Spike())
    model[0].psi = torch.tensor([2.0, 5.0])
    meter = ActivityMeter(model, steps=4)
    meter.update([torch.tensor([[3.0, 0.0], [1.0, 0.0]])])  # spike counts over 4 steps
    got = meter.summary()
    assert got["energy_pj"] == pytest.approx(E_AC_PJ * (6 + 2) / 2)
    assert got["rate_mean"] == pytest.approx(4 / (2 * 2 * 4))
    assert got["dead_rate"] == 0.5


def test_batch_penalty_reads_the_last_forward_pass():
    torch.manual_seed(0)
    model = create_model("cnn7", width=0.125)
    model(torch.randn(3, 1, 32, 32) * 3)
    named = neurons(model)
    spikes = [m.spikes for _, m in named]
    value = batch_penalty(model, "syn", 1)
    manual = sum((s * m.psi).flatten(1).sum(1) for s, (_, m) in zip(spikes, named)).mean()
    torch.testing.assert_close(value, manual)
    assert value.requires_grad
