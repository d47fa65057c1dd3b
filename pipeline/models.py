"""The paper's architectures (spec §9, paper Table 5), built by name.

`create_model("cnn7", in_channels=1, input_size=32, num_classes=10)` returns a
network whose every spiking layer is a named `Spike` module carrying its ψ
buffer. Convolutions and linear layers have no bias; weights use Kaiming
(ReLU) initialisation. `width` scales every hidden channel count (at least 1)
for cheap profiles; the class-sized layers are not scaled. `footprint` counts a
network's parameters and activations on the meta device, without allocating
it, so a model this machine cannot hold is refused in one line before it is built.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from pipeline import machine
from pipeline.neuron import Spike
from pipeline.penalties import attach_spike_costs
from pipeline.synapses import attach_psi

__all__ = ["MAX_CLASSES", "MAX_WIDTH", "MODELS", "Footprint", "create_model", "footprint", "input_shape"]

MAX_WIDTH = 64.0  # the widest multiplier (CNN7's widest conv: 16,384 channels); memory is checked too
MAX_CLASSES = 100_000

NeuronFactory = Callable[[], nn.Module]


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _conv(c_in: int, c_out: int, k: int, s: int = 1, p: int = 0) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=s, padding=p, bias=False)


def _cnn7(convs: list[tuple[int, int, int, float]], in_channels: int, input_size: int,
          num_classes: int, width: float, neuron: NeuronFactory) -> nn.Sequential:
    """CNN7: (channels, kernel, stride, dropout) per conv–BN–S block, then C(classes)k1 + GAP.

    The global average pool makes the layers independent of `input_size`.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = in_channels
    for i, (c, k, s, drop) in enumerate(convs, start=1):
        c_out = num_classes if c == 0 else _scaled(c, width)  # 0 marks the class-sized conv
        layers[f"conv{i}"] = _conv(c_in, c_out, k, s)
        layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
        layers[f"spike{i}"] = neuron()
        if drop:
            layers[f"drop{i}"] = nn.Dropout(drop)
        c_in = c_out
    layers["classifier"] = _conv(c_in, num_classes, 1)
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    return nn.Sequential(layers)


# (channels, kernel, stride, dropout); channels 0 = num_classes.
_CNN7 = [(64, 3, 2, 0.1), (128, 3, 1, 0.2), (256, 6, 1, 0.3), (128, 3, 1, 0.2), (64, 1, 1, 0.1), (0, 1, 1, 0)]
# The paper's printed Table 5 puts k6 on the second conv; it cannot reproduce the paper's totals.
_CNN7_PRINTED = [(64, 3, 2, 0.1), (128, 6, 1, 0.2), (256, 3, 1, 0.3), (128, 3, 1, 0.2), (64, 1, 1, 0.1), (0, 1, 1, 0)]


def _vgg11(in_channels: int, input_size: int, num_classes: int, width: float,
           neuron: NeuronFactory) -> nn.Sequential:
    """VGG11: eight C(c)k3s1p1–BN–S blocks, each followed by Avg or DO(0.2), then FC–BN–S twice."""
    blocks = [(64, "pool"), (128, "drop"), (256, "pool"), (512, "drop"),
              (512, "pool"), (512, "pool"), (512, "drop"), (512, "drop")]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in, size = in_channels, input_size
    for i, (c, after) in enumerate(blocks, start=1):
        c_out = _scaled(c, width)
        layers[f"conv{i}"] = _conv(c_in, c_out, 3, 1, 1)
        layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
        layers[f"spike{i}"] = neuron()
        if after == "pool":
            layers[f"pool{i}"] = nn.AvgPool2d(2)
            size //= 2
        else:
            layers[f"drop{i}"] = nn.Dropout(0.2)
        c_in = c_out
    layers["flatten"] = nn.Flatten()
    f_in = c_in * size * size
    for i in (9, 10):
        f_out = _scaled(4096, width)
        layers[f"fc{i}"] = nn.Linear(f_in, f_out, bias=False)
        layers[f"bn{i}"] = nn.BatchNorm1d(f_out)
        layers[f"spike{i}"] = neuron()
        layers[f"drop{i}"] = nn.Dropout(0.2)
        f_in = f_out
    layers["classifier"] = nn.Linear(f_in, num_classes, bias=False)
    return nn.Sequential(layers)


class PreActBlock(nn.Module):
    """ResA (stride 1, identity shortcut) or ResB (stride 2, BN–S–C k1s2 shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int, neuron: NeuronFactory) -> None:
        super().__init__()
        self.bn1, self.spike1 = nn.BatchNorm2d(c_in), neuron()
        self.conv1 = _conv(c_in, c_out, 3, stride, 1)
        self.bn2, self.spike2 = nn.BatchNorm2d(c_out), neuron()
        self.conv2 = _conv(c_out, c_out, 3, 1, 1)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            # The shortcut has its own BN and spike layer on the block input.
            self.shortcut = nn.Sequential(OrderedDict(
                bn=nn.BatchNorm2d(c_in), spike=neuron(), conv=_conv(c_in, c_out, 1, stride)))

    def forward(self, x: Tensor) -> Tensor:
        main = self.conv2(self.spike2(self.bn2(self.conv1(self.spike1(self.bn1(x))))))
        return main + self.shortcut(x)


def _resnet18(in_channels: int, input_size: int, num_classes: int, width: float,
              neuron: NeuronFactory) -> nn.Sequential:
    """Pre-activation ResNet18: stem conv, ResA/ResB blocks, BN–S–C(classes)k1–GAP."""
    c = [_scaled(n, width) for n in (64, 128, 256, 512)]
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=_conv(in_channels, c[0], 3, 1, 1))
    plan = [(c[0], c[0], 1), (c[0], c[0], 1), (c[0], c[1], 2), (c[1], c[1], 1),
            (c[1], c[2], 2), (c[2], c[2], 1), (c[2], c[3], 2), (c[3], c[3], 1)]
    for i, (c_in, c_out, stride) in enumerate(plan, start=1):
        layers[f"block{i}"] = PreActBlock(c_in, c_out, stride, neuron)
    layers["bn"] = nn.BatchNorm2d(c[3])
    layers["spike"] = neuron()
    layers["classifier"] = _conv(c[3], num_classes, 1)
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    return nn.Sequential(layers)


_BUILDERS: dict[str, Callable[..., nn.Sequential]] = {
    "cnn7": partial(_cnn7, _CNN7),
    "cnn7_printed": partial(_cnn7, _CNN7_PRINTED),
    "vgg11": _vgg11,
    "resnet18": _resnet18,
}
MODELS = tuple(_BUILDERS)

_DEFAULT_CHANNELS = {"cnn7": 1, "cnn7_printed": 1, "vgg11": 3, "resnet18": 3}


def input_shape(name: str, in_channels: int | None = None, input_size: int = 32) -> tuple[int, int, int]:
    """(C, H, W) of one input image; channels default to the paper's dataset for `name`."""
    _check_name(name)
    return (in_channels or _DEFAULT_CHANNELS[name], input_size, input_size)


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")


@dataclass(frozen=True)
class Footprint:
    """What a network holds, in float32 values: its parameters, and every layer's output for one image."""

    parameters: int
    activations: int  # per input image, summed over the leaf layers (the tensors a training step keeps)

    def build_bytes(self) -> int:
        """Building the network: its weights, the all-ones copy ψ's derivation makes of them, and that
        derivation's activations and gradients for one image."""
        return 4 * (2 * self.parameters + 4 * self.activations)

    def training_bytes(self, batch_size: int, optimizer_states: int) -> int:
        """Training it: weights, gradients and `optimizer_states` values per weight (Adam 2, momentum SGD 1),
        and each layer's output and its gradient for a batch."""
        return max(self.build_bytes(),
                   4 * ((2 + optimizer_states) * self.parameters + 2 * batch_size * self.activations))


def _meta_pass(name: str, in_channels: int, size: int, num_classes: int, width: float) -> Footprint | None:
    """The footprint of an input of `size` through the net on the meta device (nothing allocated); None if it
    does not pass (too small)."""
    outputs = []
    with torch.device("meta"):
        net = _BUILDERS[name](in_channels, size, num_classes, width, Spike).eval()
        for m in net.modules():
            if not list(m.children()):
                m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel()))
        try:
            net(torch.zeros(1, in_channels, size, size))
        except RuntimeError:
            return None
    return Footprint(sum(p.numel() for p in net.parameters()), sum(outputs))


def _check_arguments(name: str, width: float, num_classes: int) -> None:
    _check_name(name)
    if not (isinstance(width, (int, float)) and 0 < width <= MAX_WIDTH):  # NaN fails too
        raise ValueError(f"width must be > 0 and <= {MAX_WIDTH:g} (got {width})")
    if not (isinstance(num_classes, int) and 1 <= num_classes <= MAX_CLASSES):
        raise ValueError(f"num_classes must be an integer from 1 to {MAX_CLASSES} (got {num_classes})")


def footprint(name: str, *, in_channels: int | None = None, input_size: int = 32, num_classes: int = 10,
              width: float = 1.0) -> Footprint:
    """Parameters and per-image activations of model `name`, counted without allocating it.

    ValueError (one line) for an unknown name, a width outside (0, MAX_WIDTH], a class count outside
    [1, MAX_CLASSES], or an input too small for the net (naming the smallest that passes).
    """
    _check_arguments(name, width, num_classes)
    c_in = input_shape(name, in_channels, input_size)[0]
    found = _meta_pass(name, c_in, input_size, num_classes, width)
    if found is None:
        minimum = next((s for s in range(input_size + 1, 1025) if _meta_pass(name, c_in, s, num_classes, width)),
                       None)
        raise ValueError(f"input size {input_size} is too small for {name}"
                         + (f"; minimum is {minimum}" if minimum else "; no size up to 1024 passes"))
    return found


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")


def create_model(
    name: str,
    *,
    in_channels: int | None = None,
    input_size: int = 32,
    num_classes: int = 10,
    width: float = 1.0,
    surrogate: str = "s3nn",
    alpha: float = 0.25,
    tau: float = 0.6,
    u_th: float = 1.0,
    psi: str | None = "padded",
    neuron: NeuronFactory | None = None,
) -> nn.Sequential:
    """Build model `name` and attach ψ for convention `psi` and every cost model's spike costs
    (`penalties.attach_spike_costs`, for the energy penalties; None: attach nothing).

    `neuron` overrides the spiking layer (e.g. a quantised ReLU for ANN→SNN
    conversion); by default each is `Spike(surrogate, alpha, tau, u_th)`.
    """
    need = footprint(name, in_channels=in_channels, input_size=input_size, num_classes=num_classes,
                     width=width).build_bytes()
    short = machine.memory_shortfall(need, "cpu")
    if short:
        raise ValueError(f"building {name} at width {width:g} {short}; lower the width")
    c_in = input_shape(name, in_channels, input_size)[0]
    make_neuron = neuron or (lambda: Spike(surrogate, alpha, tau, u_th))
    model = _BUILDERS[name](c_in, input_size, num_classes, width, make_neuron)
    _init_weights(model)
    if psi is not None:
        attach_spike_costs(model, attach_psi(model, (c_in, input_size, input_size), psi))
    return model
