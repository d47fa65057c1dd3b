"""Benchmark: cost of the penalty and the activity statistics in a CNN7 training step.

Prints the ratio of step time with Ω_syn + ActivityMeter to step time without,
measured interleaved in one run on one torch thread (stable on small CPUs),
and the wall time of computing ψ for every registered model.

    .venv/bin/python bench/penalty_overhead.py [--steps 20] [--batch 100] [--width 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from pipeline.energy import ActivityMeter
from pipeline.models import MODELS, create_model, input_shape
from pipeline.neuron import neurons
from pipeline.penalties import batch_penalty, omega_all_firing
from pipeline.synapses import synapse_counts


def step_seconds(model, optimizer, x, y, penalized: bool, meter: ActivityMeter, norm: float) -> float:
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    if penalized:
        loss = loss + 1e-3 * batch_penalty(model, "syn", 1) / norm
        meter.update([m.spikes for _, m in neurons(model)])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--width", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("cnn7", width=args.width)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    meter = ActivityMeter(model)
    norm = omega_all_firing([m.psi for _, m in neurons(model)], "syn", 1)
    x, y = torch.randn(args.batch, 1, 32, 32) * 2, torch.randint(0, 10, (args.batch,))
    for penalized in (False, True):  # warm-up
        step_seconds(model, optimizer, x, y, penalized, meter, norm)
    plain, penal = [], []
    for i in range(args.steps):  # interleaved, alternating which goes first
        for penalized in ((False, True) if i % 2 == 0 else (True, False)):
            (penal if penalized else plain).append(step_seconds(model, optimizer, x, y, penalized, meter, norm))
    paired = statistics.median(b / a for a, b in zip(plain, penal))
    print(f"cnn7 width {args.width}, batch {args.batch}, {args.steps} interleaved pairs, 1 thread")
    print(f"step without penalty: median {statistics.median(plain) * 1e3:.1f} ms, min {min(plain) * 1e3:.1f} ms")
    print(f"step with omega_syn + ActivityMeter: median {statistics.median(penal) * 1e3:.1f} ms, "
          f"min {min(penal) * 1e3:.1f} ms")
    print(f"ratio with/without: median of paired ratios {paired:.4f}, ratio of minima {min(penal) / min(plain):.4f}")
    for name in MODELS:
        net = create_model(name, psi=None)
        start = time.perf_counter()
        synapse_counts(net, input_shape(name))
        print(f"psi for {name} (width 1, {input_shape(name)}): {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
