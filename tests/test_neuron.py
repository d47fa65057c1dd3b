"""Spike forward and the three surrogate backwards against their closed forms (spec §1)."""
import math

import numpy as np
import pytest
import torch

from pipeline.neuron import SURROGATES, QReLU, Spike, spike_fn

U = np.concatenate([np.linspace(-5, 5, 1001), [0.0, 1e-12, -1e-12, 1e-6, 1.0, 1.0 - 1e-7, 1.0 + 1e-7]])


def closed_form(u: float, name: str, alpha: float, tau: float, u_th: float) -> float:
    sigma = 1 / (1 + math.exp((u_th - u) / alpha))  # Eq. 4
    sigma_grad = sigma * (1 - sigma) / alpha  # Eq. 5
    if name == "s3nn":  # Eq. 3
        return 1 / (tau * u) if u >= u_th else sigma_grad
    if name == "linear":  # Eq. 22
        return max(1 - abs(u - u_th), 0.0)
    return sigma_grad  # Eq. 23


@pytest.mark.parametrize("name", SURROGATES)
@pytest.mark.parametrize("alpha,tau,u_th", [(0.25, 0.6, 1.0), (0.45, 1.0, 0.5)])
def test_backward_matches_closed_form(name, alpha, tau, u_th):
    u = torch.tensor(U, dtype=torch.float64, requires_grad=True)
    spike_fn(u, name, alpha, tau, u_th).sum().backward()
    expected = np.array([closed_form(x, name, alpha, tau, u_th) for x in U])
    assert torch.isfinite(u.grad).all()
    np.testing.assert_allclose(u.grad.numpy(), expected, rtol=1e-12, atol=1e-300)


def test_forward_is_heaviside_with_threshold_firing():
    u = torch.tensor([-1.0, 0.0, 0.999, 1.0, 1.001, 3.0])
    assert spike_fn(u).tolist() == [0, 0, 0, 1, 1, 1]
    assert spike_fn(u, "sigmoid", u_th=0.0).tolist() == [0, 1, 1, 1, 1, 1]


def test_s3nn_needs_a_positive_threshold():
    with pytest.raises(ValueError, match=r"s3nn surrogate needs u_th > 0 \(got 0.0\)"):
        Spike("s3nn", u_th=0.0)
    assert Spike("linear", u_th=0.0).u_th == 0.0


def test_float32_s3nn_is_finite_near_zero():
    u = torch.tensor([0.0, 1e-30, -1e-30, -100.0, 100.0], requires_grad=True)
    spike_fn(u, "s3nn").sum().backward()
    assert torch.isfinite(u.grad).all()


def test_spike_module_records_its_output():
    layer = Spike("linear")
    out = layer(torch.tensor([[0.5, 1.5]], requires_grad=True))
    assert layer.spikes is out and out.requires_grad


def test_unknown_surrogate_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"unknown surrogate 'relu'; allowed: s3nn, linear, sigmoid"):
        Spike("relu")


def test_qrelu_counts_spikes_and_passes_gradient_straight_through():
    x = torch.tensor([-1.5, -0.0, 0.3, 1.0, 2.7, 4.0], requires_grad=True)
    out = QReLU()(x)
    assert out.tolist() == [0, 0, 0, 1, 2, 4]
    out.sum().backward()
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 1]
