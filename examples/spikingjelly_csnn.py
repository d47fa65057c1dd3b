"""A spikingjelly multi-step convolutional SNN ([T, B, …] through every layer) trained one epoch on
digits, with and without our spiking synaptic penalty; prints accuracy and energy per image.

    .venv/bin/python examples/spikingjelly_csnn.py [--tiny] [--lam 0.1] [--steps T] [--epochs E]
"""
from __future__ import annotations

from common import Example, main
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import Tensor, nn


def build(width: int, steps: int) -> nn.Module:
    net = nn.Sequential(
        layer.Conv2d(1, width, 3, padding=1, bias=False), layer.BatchNorm2d(width),
        neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True), layer.MaxPool2d(2),
        layer.Conv2d(width, 2 * width, 3, padding=1, bias=False), layer.BatchNorm2d(2 * width),
        neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True), layer.AvgPool2d(2),
        layer.Flatten(), layer.Linear(2 * width * 2 * 2, 10),
    )
    functional.set_step_mode(net, "m")
    return net


def logits(model: nn.Module, x: Tensor, steps: int) -> Tensor:
    functional.reset_net(model)
    return model(x.unsqueeze(0).repeat(steps, 1, 1, 1, 1)).mean(0)  # direct encoding at every step


EXAMPLE = Example("spikingjelly multi-step CSNN", build, logits, lambda steps: (steps, 1, 1, 8, 8))

if __name__ == "__main__":
    main(EXAMPLE)
