"""Small SNNs built with each peer library, an independent brute-force ψ, and a spike recorder,
shared by tests/test_meter.py and tests/test_meter_reconcile.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import snntorch
import snntorch.utils
import torch
from sinabs import layers as sl
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import Tensor, nn

from pipeline.neuron import QReLU, Spike


# --- brute force: for each neuron, count the weights it reaches, one loop per neuron ----------

def _conv_hits(conv: nn.Conv2d, c: int, y: int, x: int, in_hw: tuple[int, int]) -> int:
    """(weight, output position) pairs of `conv` that read input (c, y, x): real taps only."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    ho = (in_hw[0] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (in_hw[1] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rows = sum(1 for oy in range(ho) for ky in range(kh) if oy * sh - ph + ky * dh == y)
    cols = sum(1 for ox in range(wo) for kx in range(kw) if ox * sw - pw + kx * dw == x)
    return conv.out_channels * rows * cols


def brute_psi(shape: tuple[int, int, int], paths: list[list[tuple]]) -> Tensor:
    """ψ of a [C, H, W] spike map, summed over `paths`; a path is a list of ops from the spike to
    its synapses: ("pool", k) (non-overlapping k×k window: the pooled unit carries the spike on),
    ("channel_offset", n) (concatenated after n channels), ("conv", conv), ("linear", linear)
    (after flattening the map)."""
    C, H, W = shape
    psi = torch.zeros(shape)
    for c in range(C):
        for y in range(H):
            for x in range(W):
                total = 0
                for path in paths:
                    cc, yy, xx, hh, ww = c, y, x, H, W
                    for op in path:
                        if op[0] == "pool":
                            k = op[1]
                            cc, yy, xx, hh, ww = cc, yy // k, xx // k, hh // k, ww // k
                            if yy >= hh or xx >= ww:
                                break
                        elif op[0] == "channel_offset":
                            cc += op[1]
                        elif op[0] == "conv":
                            total += _conv_hits(op[1], cc, yy, xx, (hh, ww))
                        elif op[0] == "linear":
                            total += op[1].out_features
                psi[c, y, x] = total
    return psi


# --- the networks ---------------------------------------------------------------------------

@dataclass
class Case:
    """A network, how to run it on a batch of B examples, and the brute-force ψ of its spiking layers."""

    name: str
    model: nn.Module
    input_shape: tuple[int, ...]  # the probe input (B = 1)
    make_input: Callable[[int], Tensor]
    steps: int
    brute: dict[str, Tensor]
    spiking: tuple[type, ...]
    layout: str  # how the test reads raw outputs: "TB" [T,B,…], "step" [B,…] per call, "BT" [(B·T),…]
    first_conv: str = "0"
    reset: Callable[[nn.Module], None] | None = None
    extra: dict = field(default_factory=dict)

    def run(self, x: Tensor) -> Tensor:
        if self.reset is not None:
            self.reset(self.model)
        return self.model(x)


def _image(batch: int, *lead: int, size: int = 8) -> Tensor:
    return torch.rand(*lead, batch, 1, size, size) * 3


def jelly_case(T: int = 3) -> Case:
    """spikingjelly multi-step: conv-BN-IF, conv-LIF, max-pool, flatten, dropout, linear."""
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4),
        neuron.IFNode(surrogate_function=surrogate.Sigmoid()),
        layer.Conv2d(4, 6, 3, padding=1, bias=False), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()),
        layer.MaxPool2d(2), layer.Flatten(), layer.Dropout(0.1), layer.Linear(6 * 4 * 4, 10, bias=False),
        neuron.IFNode(),
    )
    functional.set_step_mode(net, "m")
    brute = {"2": brute_psi((4, 8, 8), [[("conv", net[3])]]),
             "4": brute_psi((6, 8, 8), [[("pool", 2), ("linear", net[8])]]),
             "9": torch.zeros(10)}
    return Case("spikingjelly", net, (T, 1, 1, 8, 8), lambda b: _image(b, T), T, brute, (neuron.BaseNode,), "TB",
                reset=functional.reset_net)


class JellyBranches(nn.Module):
    """spikingjelly multi-step with SeqToANNContainer, a ParametricLIF, a residual add and a concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = layer.SeqToANNContainer(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
        self.sn1 = neuron.IFNode(step_mode="m")
        self.conv2 = layer.SeqToANNContainer(nn.Conv2d(4, 4, 3, padding=1, bias=False))
        self.sn2 = neuron.ParametricLIFNode(step_mode="m")
        self.conv3 = layer.SeqToANNContainer(nn.Conv2d(8, 2, 3, stride=2, padding=1, bias=False))
        self.sn3 = neuron.IFNode(step_mode="m")
        self.fc = layer.SeqToANNContainer(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        s1 = self.sn1(self.conv1(x))
        s2 = self.sn2(self.conv2(s1)) + s1  # residual add: s1 reaches conv3 through it
        s3 = self.sn3(self.conv3(torch.cat([s2, s1], dim=2)))  # [T, B, C, …]: channels are dim 2
        return self.fc(s3)


def jelly_branches_case(T: int = 2) -> Case:
    torch.manual_seed(1)
    net = JellyBranches()
    conv3 = net.conv3[0]
    brute = {"sn1": brute_psi((4, 8, 8), [[("conv", net.conv2[0])], [("conv", conv3)],
                                          [("channel_offset", 4), ("conv", conv3)]]),
             "sn2": brute_psi((4, 8, 8), [[("conv", conv3)]]),
             "sn3": brute_psi((2, 4, 4), [[("pool", 2), ("linear", net.fc[2])]])}
    return Case("spikingjelly-branches", net, (T, 1, 1, 8, 8), lambda b: _image(b, T), T, brute,
                (neuron.BaseNode,), "TB", first_conv="conv1.0", reset=functional.reset_net)


class SnnTorchNet(nn.Module):
    """snntorch convolutional SNN, one call per step (init_hidden), the image presented at every step."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        grad = snntorch.surrogate.fast_sigmoid()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.lif1 = snntorch.Leaky(beta=0.8, spike_grad=grad, init_hidden=True)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False)
        self.lif2 = snntorch.Synaptic(alpha=0.5, beta=0.8, spike_grad=grad, init_hidden=True)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(4 * 2 * 2, 10, bias=False)
        self.lif3 = snntorch.Leaky(beta=0.8, spike_grad=grad, init_hidden=True, output=True)

    def forward(self, x: Tensor) -> Tensor:
        snntorch.utils.reset(self)
        out = 0
        for _ in range(self.steps):
            s = self.lif2(self.conv2(self.lif1(self.conv1(x))))
            spk, _mem = self.lif3(self.fc(self.pool(s).flatten(1)))
            out = out + spk
        return out


def snntorch_case(T: int = 3) -> Case:
    torch.manual_seed(2)
    net = SnnTorchNet(T)
    brute = {"lif1": brute_psi((4, 8, 8), [[("conv", net.conv2)]]),
             "lif2": brute_psi((4, 4, 4), [[("pool", 2), ("linear", net.fc)]]),
             "lif3": torch.zeros(10)}
    return Case("snntorch", net, (1, 1, 8, 8), lambda b: _image(b), T, brute, (snntorch.SpikingNeuron,), "step",
                first_conv="conv1")


def sinabs_case(T: int = 3) -> Case:
    """sinabs, multi-spike IAF (Squeeze: [(B·T), …]), sum pooling, flatten, linear."""
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), sl.IAFSqueeze(num_timesteps=T),
        sl.SumPool2d(2), nn.Conv2d(4, 6, 3, padding=1, bias=False), sl.IAFSqueeze(num_timesteps=T),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 10, bias=False), sl.IAFSqueeze(num_timesteps=T),
    )
    brute = {"1": brute_psi((4, 8, 8), [[("pool", 2), ("conv", net[3])]]),
             "4": brute_psi((6, 4, 4), [[("linear", net[6])]]), "7": torch.zeros(10)}

    def make_input(b: int) -> Tensor:  # [(B·T), …] example-major, the image repeated at each step, strong
        return (torch.rand(b, 1, 1, 8, 8) * 6).expand(b, T, 1, 8, 8).reshape(b * T, 1, 8, 8)

    def reset(model: nn.Module) -> None:
        for m in model.modules():
            if isinstance(m, sl.StatefulLayer):
                m.reset_states()

    return Case("sinabs", net, (T, 1, 8, 8), make_input, T, brute, (sl.StatefulLayer,), "BT", reset=reset)


class OursNet(nn.Module):
    """Our single-step `Spike` and multi-spike `QReLU` layers with a concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.s1 = Spike(surrogate="sigmoid")
        self.conv2 = nn.Conv2d(4, 4, 3, bias=False)
        self.s2 = QReLU()
        self.fc = nn.Linear(4 * 8 * 8 + 4 * 6 * 6, 10, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        s1 = self.s1(self.conv1(x))
        s2 = self.s2(self.conv2(s1))
        return self.fc(torch.cat([s1.flatten(1), s2.flatten(1)], 1))


def ours_case() -> Case:
    torch.manual_seed(4)
    net = OursNet()
    brute = {"s1": brute_psi((4, 8, 8), [[("conv", net.conv2)], [("linear", net.fc)]]),
             "s2": brute_psi((4, 6, 6), [[("linear", net.fc)]])}
    return Case("ours", net, (1, 1, 8, 8), lambda b: _image(b), 1, brute, (Spike, QReLU), "step",
                first_conv="conv1")


CASES: dict[str, Callable[[], Case]] = {
    "ours": ours_case, "spikingjelly": jelly_case, "spikingjelly-branches": jelly_branches_case,
    "snntorch": snntorch_case, "sinabs": sinabs_case,
}


def raw_spikes(case: Case, x: Tensor) -> dict[str, Tensor]:
    """Each spiking layer's spikes on `x` as [T, B, *neuron], read by the test's own hooks (in graph)."""
    calls: dict[str, list[Tensor]] = {}
    named = {n: m for n, m in case.model.named_modules() if isinstance(m, case.spiking)
             and getattr(m, "does_spike", True)}

    def hook(name: str):
        def fn(_, __, out):
            calls.setdefault(name, []).append(out[0] if isinstance(out, tuple) else out)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in named.items()]
    try:
        case.run(x)
    finally:
        for h in handles:
            h.remove()
    result = {}
    for name, outs in calls.items():
        if case.layout == "TB":
            result[name] = torch.cat(outs)
        elif case.layout == "step":
            result[name] = torch.stack(outs)
        else:  # [(B·T), …] example-major
            s = outs[0]
            result[name] = s.reshape(-1, case.steps, *s.shape[1:]).transpose(0, 1)
    return result
