"""ψ per neuron against a brute-force loop over every weight × output position (spec §2, §9)."""
import itertools

import pytest
import torch
from torch import nn

from pipeline.neuron import Spike
from pipeline.synapses import Synapses, synapse_counts, trace_synapses


def out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def brute_conv_psi(shape, c_out, k, s, p, d, groups, convention):
    """Loop over every weight and output position; charge each tap to the neuron it reads.

    A tap on zero padding counts only under `padded`, charged to the clamped (nearest) neuron.
    """
    c_in, h, w = shape
    psi = torch.zeros(shape, dtype=torch.float64)
    cin_g, cout_g = c_in // groups, c_out // groups
    ho, wo = out_size(h, k, s, p, d), out_size(w, k, s, p, d)
    for co, ci_local, oh, ow, kh, kw in itertools.product(
            range(c_out), range(cin_g), range(ho), range(wo), range(k), range(k)):
        ci = (co // cout_g) * cin_g + ci_local
        ih, iw = oh * s - p + kh * d, ow * s - p + kw * d
        inside = 0 <= ih < h and 0 <= iw < w
        if inside or convention == "padded":
            psi[ci, min(max(ih, 0), h - 1), min(max(iw, 0), w - 1)] += 1
    return psi


def unpool(psi_pooled, shape, k):
    """A spike entering a k×k average pool reaches every synapse of its pooled unit."""
    psi = torch.zeros(shape, dtype=torch.float64)
    c, hp, wp = psi_pooled.shape
    psi[:, : hp * k, : wp * k] = psi_pooled.repeat_interleave(k, 1).repeat_interleave(k, 2)
    return psi


class Net(nn.Module):
    """image → conv → BN → spike A → [pool] → conv(k,s,p,d,g) → BN → spike B → flatten → FC(5)."""

    def __init__(self, shape, c_out, k, s, p, d, groups, pool):
        super().__init__()
        c_in, h, w = shape
        self.stem = nn.Conv2d(1, c_in, 3, padding=1, bias=False)
        self.bn0, self.a = nn.BatchNorm2d(c_in), Spike()
        self.pool = nn.AvgPool2d(pool) if pool else nn.Identity()
        self.conv = nn.Conv2d(c_in, c_out, k, s, p, dilation=d, groups=groups, bias=False)
        self.bn1, self.b = nn.BatchNorm2d(c_out), Spike()
        hp, wp = (h // pool, w // pool) if pool else (h, w)
        self.fc = nn.Linear(c_out * out_size(hp, k, s, p, d) * out_size(wp, k, s, p, d), 5, bias=False)

    def forward(self, x):
        x = self.a(self.bn0(self.stem(x)))
        x = self.b(self.bn1(self.conv(self.pool(x))))
        return self.fc(x.flatten(1))


CASES = [  # (C_in, H, W), C_out, k, s, p, d, groups, pool
    ((2, 7, 7), 3, 3, 1, 0, 1, 1, 0),
    ((2, 7, 6), 3, 3, 1, 1, 1, 1, 0),
    ((2, 8, 8), 2, 3, 2, 1, 1, 1, 0),
    ((3, 9, 9), 2, 5, 2, 2, 1, 1, 0),
    ((2, 8, 8), 2, 6, 1, 2, 1, 1, 0),
    ((1, 9, 7), 2, 1, 2, 0, 1, 1, 0),
    ((2, 9, 9), 2, 3, 1, 2, 2, 1, 0),
    ((4, 6, 6), 6, 3, 1, 1, 1, 2, 0),
    ((4, 6, 6), 4, 2, 2, 0, 1, 4, 0),
    ((2, 8, 8), 3, 3, 1, 1, 1, 1, 2),
    ((2, 9, 9), 2, 2, 1, 0, 1, 1, 2),
    ((2, 10, 10), 2, 4, 3, 2, 2, 1, 0),
]


@pytest.mark.parametrize("convention", ["padded", "exact"])
@pytest.mark.parametrize("shape,c_out,k,s,p,d,groups,pool", CASES)
def test_conv_psi_matches_brute_force(shape, c_out, k, s, p, d, groups, pool, convention):
    torch.manual_seed(0)
    net = Net(shape, c_out, k, s, p, d, groups, pool)
    psi = synapse_counts(net, (1,) + shape[1:], convention)
    if pool:
        pooled = (shape[0], shape[1] // pool, shape[2] // pool)
        expected = unpool(brute_conv_psi(pooled, c_out, k, s, p, d, groups, convention), shape, pool)
    else:
        expected = brute_conv_psi(shape, c_out, k, s, p, d, groups, convention)
    assert psi["a"].shape == shape
    assert torch.equal(psi["a"].double(), expected)
    assert torch.equal(psi["b"], torch.full_like(psi["b"], 5.0))  # FC: ψ = C_{l+1}


def test_padded_psi_sums_to_the_consumer_macs_and_exact_is_smaller():
    shape, c_out, k, s, p = (2, 6, 6), 3, 3, 2, 1
    net = Net(shape, c_out, k, s, p, 1, 1, 0)
    padded = synapse_counts(net, (1, 6, 6), "padded")["a"]
    exact = synapse_counts(net, (1, 6, 6), "exact")["a"]
    macs = shape[0] * c_out * k * k * out_size(6, k, s, p, 1) ** 2
    assert padded.sum() == macs
    assert exact.sum() < macs


class ResidualBlock(nn.Module):
    """Spike A feeds both a main conv (k3 s2 p1) and a shortcut conv (k1 s2): ψ counts both."""

    def __init__(self, c=2, c_out=3):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.a = Spike()
        self.main = nn.Conv2d(c, c_out, 3, 2, 1, bias=False)
        self.bn, self.b = nn.BatchNorm2d(c_out), Spike()
        self.main2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c, c_out, 1, 2, bias=False)

    def forward(self, x):
        s = self.a(self.stem(x))
        return self.main2(self.b(self.bn(self.main(s)))) + self.shortcut(s)


@pytest.mark.parametrize("convention", ["padded", "exact"])
def test_spike_feeding_two_branches_counts_both(convention):
    wiring = trace_synapses(ResidualBlock(), (1, 1, 7, 7), convention)
    main = brute_conv_psi((2, 7, 7), 3, 3, 2, 1, 1, 1, convention)
    shortcut = brute_conv_psi((2, 7, 7), 3, 1, 2, 0, 1, 1, convention)
    assert list(wiring.fanout["a"]) == ["main", "shortcut"]  # ψ_{l→j}: one per conv the layer drives
    assert torch.equal(wiring.fanout["a"]["main"].double(), main)
    assert torch.equal(wiring.fanout["a"]["shortcut"].double(), shortcut)
    assert torch.equal(wiring.psi["a"].double(), main + shortcut)
    assert torch.equal(wiring.psi["b"].double(), brute_conv_psi((3, 4, 4), 3, 3, 1, 1, 1, 1, convention))


def test_each_conv_and_linear_is_described_per_step_and_example():
    """The sizes the cost models price: inputs and outputs of one sample, weights, biases, MACs."""
    net = Net((2, 8, 8), 3, 3, 2, 1, 1, 1, 0)
    net.fc = nn.Linear(net.fc.in_features, 5, bias=True)
    found = trace_synapses(net, (4, 1, 8, 8), "exact").synapses  # a batch of 4: still per example
    assert list(found) == ["stem", "conv", "fc"]
    assert found["stem"] == Synapses("conv", False, 64, 2 * 64, 2 * 9, 0, 2 * 22 ** 2)  # reads the image
    assert found["conv"] == Synapses("conv", True, 2 * 64, 3 * 16, 3 * 2 * 9, 0,
                                     float(brute_conv_psi((2, 8, 8), 3, 3, 2, 1, 1, 1, "exact").sum()))
    assert found["fc"] == Synapses("linear", True, 48, 5, 5 * 48, 5, 5 * 48)
    padded = trace_synapses(net, (1, 1, 8, 8), "padded").synapses
    assert padded["stem"].macs == 2 * 9 * 64 and padded["conv"].macs == 3 * 2 * 9 * 16


def test_psi_does_not_depend_on_weights_or_mode():
    net = Net((2, 8, 8), 3, 3, 2, 1, 1, 1, 0)
    before = synapse_counts(net, (1, 8, 8))
    with torch.no_grad():
        for prm in net.parameters():
            prm.normal_()
    net.train()
    after = synapse_counts(net, (1, 8, 8))
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert net.training


def test_unsupported_layer_is_named():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), Spike(), nn.Tanh(), nn.Flatten(), nn.Linear(32, 2))
    with pytest.raises(ValueError, match=r"layer '2' \(Tanh\)"):
        synapse_counts(net, (1, 6, 6))


def test_unknown_convention():
    with pytest.raises(ValueError, match="allowed: padded, exact"):
        synapse_counts(Net((2, 6, 6), 2, 3, 1, 1, 1, 1, 0), (1, 6, 6), "hardware")
