"""An snntorch convolutional SNN (Leaky neurons, one call per time step) trained one epoch on
digits, with and without our spiking synaptic penalty; prints accuracy and energy per image.

    .venv/bin/python examples/snntorch_csnn.py [--tiny] [--lam 0.1] [--steps T] [--epochs E]
"""
from __future__ import annotations

import snntorch
import snntorch.utils
import torch
from common import Example, main
from torch import Tensor, nn


class Net(nn.Module):
    def __init__(self, width: int, steps: int) -> None:
        super().__init__()
        grad = snntorch.surrogate.fast_sigmoid(slope=25)
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.lif1 = snntorch.Leaky(beta=0.9, spike_grad=grad, init_hidden=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.lif2 = snntorch.Leaky(beta=0.9, spike_grad=grad, init_hidden=True)
        self.fc = nn.Linear(2 * width * 2 * 2, 10)
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        snntorch.utils.reset(self)
        out = []
        for _ in range(self.steps):
            s = self.lif2(self.conv2(self.pool(self.lif1(self.conv1(x)))))
            out.append(self.fc(self.pool(s).flatten(1)))
        return torch.stack(out).mean(0)


EXAMPLE = Example("snntorch CSNN", Net, lambda model, x, steps: model(x), lambda steps: (1, 1, 8, 8))

if __name__ == "__main__":
    main(EXAMPLE)
