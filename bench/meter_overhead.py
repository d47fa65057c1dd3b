"""Benchmark: the overhead of `pipeline.anysnn.SynapticEnergy` on a multi-step spikingjelly training step.

A spikingjelly multi-step CSNN ([T, B, …] through every layer; conv-BN-IF ×3 with pooling, then a
linear layer) is trained on a random batch. The reference is its bare step (reset_net, forward,
cross-entropy, zero_grad, backward, Adam step); the candidates are the same step with the meter's
hooks recording every spiking layer ("meter"), and with the differentiable Ω_syn added to the loss
and the energy read out ("meter + penalty"). Each candidate runs between two reference calls
(bench/timing.py); the last line gives the ratios (target ≤ 1.05), and in brackets the ratio that
the added work accounts for when timed alone (recording hooks + penalty forward/backward).

    .venv/bin/python bench/meter_overhead.py [--quick] [--threads N] [--rounds R] [--width W]
        [--batch B] [--steps T] [--repeats K]

Needs spikingjelly (requirements-peers.txt).
"""
from __future__ import annotations

import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pipeline

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from pipeline.anysnn import SynapticEnergy  # noqa: E402
from timing import bench_parser, parse_bench_args, print_ratios, sandwiched_seconds  # noqa: E402

try:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
except ImportError as exc:
    raise SystemExit(f"bench/meter_overhead.py: {exc.name} is missing; pip install -r requirements-peers.txt") from None

__all__ = ["build", "penalty_alone_seconds", "step"]

LAMBDA = 1e-4


def build(width: float, steps: int) -> nn.Sequential:
    """A multi-step CSNN for 1×32×32 inputs; `width` scales the channels (16, 32, 64 at width 1)."""
    c1, c2, c3 = (max(1, round(c * width)) for c in (16, 32, 64))

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [layer.Conv2d(cin, cout, 3, padding=1, bias=False), layer.BatchNorm2d(cout),
                neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True)]

    net = nn.Sequential(*block(1, c1), layer.MaxPool2d(2), *block(c1, c2), layer.MaxPool2d(2), *block(c2, c3),
                        layer.AvgPool2d(2), layer.Flatten(), layer.Linear(c3 * 4 * 4, 10))
    functional.set_step_mode(net, "m")
    return net


def step(net: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor,
         meter: SynapticEnergy | None = None, penalty: bool = False) -> None:
    """One training step on x [T, B, …]; with `meter`, spikes are recorded (and penalised)."""
    functional.reset_net(net)
    if meter is not None:
        meter.reset()
    loss = F.cross_entropy(net(x).mean(0), y)
    if penalty:
        loss = loss + LAMBDA * meter.penalty()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if penalty:
        meter.energy_pj()


def penalty_alone_seconds(meter: SynapticEnergy, net: nn.Module, x: Tensor, repeats: int) -> float:
    """Median seconds of the penalty's forward and backward alone on recorded spikes (leaf copies)."""
    functional.reset_net(net)
    with torch.no_grad(), meter:
        net(x)
        spikes = {n: s.detach() for n, s in meter.spikes().items()}
    times = []
    for _ in range(repeats + 1):
        leaves = {n: s.clone().requires_grad_() for n, s in spikes.items()}
        start = time.perf_counter()
        for n, leaf in leaves.items():  # as the recording hooks would have left them
            meter._records[n][:] = [leaf]
        meter._version += 1  # what a recording hook does: the energy is read from the new spikes
        meter.penalty().backward()
        meter.energy_pj()
        times.append(time.perf_counter() - start)
    meter.reset()
    return statistics.median(times[1:])


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=20, quick_rounds=6,
                          repeats=(20, "the penalty alone"))
    parser.add_argument("--steps", type=int, default=4, help="time steps T (default 4)")
    parser.set_defaults(batch=32)
    args = parse_bench_args(parser)
    torch.manual_seed(0)
    x = torch.rand(args.steps, args.batch, 1, 32, 32) * 2
    y = torch.randint(0, 10, (args.batch,))
    nets = {name: build(args.width, args.steps) for name in ("bare", "meter", "meter + penalty")}
    for net in nets.values():
        net.load_state_dict(nets["bare"].state_dict())
        net.train()
    meters = {name: SynapticEnergy(nets[name], (args.steps, 1, 1, 32, 32)) for name in ("meter", "meter + penalty")}
    steps = {name: partial(step, net, torch.optim.Adam(net.parameters(), 1e-3), x, y, meters.get(name),
                           name == "meter + penalty") for name, net in nets.items()}
    alone = penalty_alone_seconds(meters["meter + penalty"], nets["meter + penalty"], x, args.repeats)
    print(f"spikingjelly multi-step CSNN width {args.width}, T {args.steps}, batch {args.batch}; "
          f"penalty + energy readout alone (median of {args.repeats}): {alone * 1e3:.2f} ms")
    pairs = sandwiched_seconds(steps.pop("bare"), steps, args.rounds)
    print_ratios("training step time / bare step", pairs, "bare", {"meter + penalty": alone})


if __name__ == "__main__":
    main()
