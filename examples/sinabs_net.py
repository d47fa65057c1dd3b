"""A sinabs network (multi-spike IAFSqueeze neurons on [B·T, …], sum pooling) trained one epoch on
digits, with and without our spiking synaptic penalty; prints accuracy and energy per image.
Each neuron may emit several spikes per step; each costs its ψ.

    .venv/bin/python examples/sinabs_net.py [--tiny] [--lam 0.1] [--steps T] [--epochs E]
"""
from __future__ import annotations

import sinabs.layers as sl
from common import Example, main
from torch import Tensor, nn


def build(width: int, steps: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False), sl.IAFSqueeze(num_timesteps=steps), sl.SumPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), sl.IAFSqueeze(num_timesteps=steps), sl.SumPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 2 * 2, 10, bias=False),
    )


def logits(model: nn.Module, x: Tensor, steps: int) -> Tensor:
    for m in model.modules():
        if isinstance(m, sl.StatefulLayer):
            m.reset_states()
    b = len(x)
    frames = x.unsqueeze(1).expand(b, steps, *x.shape[1:]).reshape(b * steps, *x.shape[1:])  # [B·T, …]
    return model(frames).reshape(b, steps, -1).mean(1)


EXAMPLE = Example("sinabs multi-spike net", build, logits, lambda steps: (steps, 1, 8, 8))

if __name__ == "__main__":
    main(EXAMPLE)
