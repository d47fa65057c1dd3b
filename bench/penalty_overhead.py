"""Benchmark: the cost of each penalty and of the full statistics in a CNN7 training step (Table 7).

Times `pipeline.train.train_step` — the step the pipeline trains with — with
Ω_syn, Ω_total, Ω_balance at p = 1 and 2, and with no penalty plus an
`ActivityMeter` update (per-layer energy, rates, dead-neuron mask) every
step, each timed between two steps without any penalty; prints each ÷ that.

A whole step varies by several percent between neighbouring calls here, more
than the penalty costs, so the script also times the added work alone — the
penalty's forward and backward onto the last step's spikes (accumulating into
their gradient as in a step), or the meter update — over many repetitions,
and prints 1 + that ÷ the median step as the "attributed" ratio (in brackets).

    .venv/bin/python bench/penalty_overhead.py [--quick] [--threads N] [--rounds R] [--width W] [--batch B] [--repeats K]
"""
from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Callable

import torch
from torch import Tensor

from pipeline.energy import ActivityMeter
from pipeline.models import create_model
from pipeline.neuron import neurons
from pipeline.penalties import PENALTIES, omega, omega_all_firing
from pipeline.train import STATS, Objective, train_step
from timing import bench_parser, parse_bench_args, print_ratios, random_batch, sandwiched_seconds


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of `fn` over `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def penalty_term(spikes: list[Tensor], psi: list[Tensor], kind: str, p: float) -> Callable[[], None]:
    """The penalty's share of a step: its forward, and its backward accumulated into the spikes' gradient."""
    leaves = [s.detach().requires_grad_() for s in spikes]
    for s in leaves:
        s.grad = torch.zeros_like(s)
    return lambda: omega(leaves, psi, kind, p).mean().backward()


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=10, quick_rounds=1,
                          repeats=(30, "the added work alone"))
    args = parse_bench_args(parser)
    torch.manual_seed(0)
    model = create_model("cnn7", width=args.width)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = random_batch(args.batch)
    psi = [m.psi for _, m in neurons(model)]
    sums = torch.zeros(len(STATS), dtype=torch.float64)
    meter = ActivityMeter(model)

    def step(objective: Objective = Objective("syn", 1.0, 0.0, 0.0, 0)) -> None:
        train_step(model, optimizer, x, y, objective, sums)

    def with_statistics() -> None:
        step()
        meter.update([m.spikes for _, m in neurons(model)])

    candidates, added = {}, {}
    step()
    spikes = [m.spikes for _, m in neurons(model)]
    for kind in PENALTIES:
        for p in (1, 2):
            name = f"omega_{kind} p={p}"
            lam_norm_1 = Objective(kind, p, 1.0 / omega_all_firing(psi, kind, p), 0.0, 0)  # λ' = 1
            candidates[name] = partial(step, lam_norm_1)
            added[name] = penalty_term(spikes, psi, kind, p)
    candidates["statistics"] = with_statistics
    added["statistics"] = lambda: meter.update(spikes)
    added_seconds = {name: median_seconds(fn, args.repeats) for name, fn in added.items()}
    pairs = sandwiched_seconds(step, candidates, args.rounds)
    step_seconds = statistics.median(r for p in pairs.values() for _, r in p)
    print(f"added work alone (median of {args.repeats}), as a share of the median step without penalty:")
    for name, seconds in added_seconds.items():
        print(f"  {name:<17}  {seconds * 1e3:6.1f} ms  {100 * seconds / step_seconds:5.2f} %")
    print_ratios(f"cnn7 width {args.width}, batch {args.batch}: step time / step without penalty",
                 pairs, "no penalty", added_seconds)


if __name__ == "__main__":
    main()
