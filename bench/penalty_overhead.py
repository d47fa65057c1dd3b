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

With --out FILE it also writes every round's ratio per penalty as JSON: the controlled measurement the
claims table tests the paper's Table 7 claim on (`pipeline.comparisons.read_timing`); the committed one
is bench/results/training_time.json, made by

    .venv/bin/python bench/penalty_overhead.py --width 0.25 --steps 13 --clock cpu --rounds 16 \
        --out bench/results/training_time.json

(--steps 13: each timed call is one digits epoch's worth of steps, the paper's per-epoch time; --clock
cpu: the process's CPU time, which on a shared machine swings about half as much as its wall time.)

    .venv/bin/python bench/penalty_overhead.py [--quick] [--threads N] [--rounds R] [--width W] [--batch B] [--repeats K]
        [--steps S] [--clock wall|cpu] [--out FILE]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from pipeline.energy import ActivityMeter
from pipeline.models import create_model
from pipeline.neuron import neurons
from pipeline.penalties import PENALTIES, omega, omega_all_firing
from pipeline.train import STATS, Objective, train_step
from timing import Pairs, bench_parser, parse_bench_args, print_ratios, random_batch, sandwiched_seconds

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median_seconds(fn: Callable[[], object], repeats: int, clock: Callable[[], float]) -> float:
    """Median seconds by `clock` of `fn` over `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def penalty_term(spikes: list[Tensor], psi: list[Tensor], kind: str, p: float) -> Callable[[], None]:
    """The penalty's share of a step: its forward, and its backward accumulated into the spikes' gradient."""
    leaves = [s.detach().requires_grad_() for s in spikes]
    for s in leaves:
        s.grad = torch.zeros_like(s)
    return lambda: omega(leaves, psi, kind, p).mean().backward()


def write_rounds(path: Path, pairs: Pairs, added: dict[str, float], call_seconds: float,
                 objectives: dict[str, tuple[str, float]], args: argparse.Namespace) -> None:
    """Every round's time ratio per penalty (each call ÷ the mean of the no-penalty calls beside it), with
    what was measured, as JSON at `path`."""
    record = {
        "what": "CNN7 training steps (pipeline.train.train_step) with each penalty at λ' = 1, each call of "
                "steps_per_call steps timed between two calls without penalty; ratios = call ÷ mean of its two "
                "neighbours, one per interleaved round",
        "command": " ".join(["bench/penalty_overhead.py", *sys.argv[1:]]),
        "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "torch": torch.__version__, "model": "cnn7", "width": args.width, "batch": args.batch,
        "threads": torch.get_num_threads(), "rounds": args.rounds, "steps_per_call": args.steps, "clock": args.clock,
        "median_call_seconds": call_seconds,
        "penalties": [{"penalty": kind, "p": p, "ratios": [own / ref for own, ref in pairs[name]],
                       "attributed_ratio": 1 + added[name] / call_seconds}
                      for name, (kind, p) in objectives.items()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=10, quick_rounds=1,
                          repeats=(30, "the added work alone"))
    parser.add_argument("--steps", type=int, default=1,
                        help="training steps per timed call (default 1; 13 = one digits epoch at batch 100)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time, which neighbours on a shared machine disturb "
                             "less (default wall)")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write every round's ratio per penalty as JSON here (the claims table reads it)")
    args = parse_bench_args(parser)
    torch.manual_seed(0)
    model = create_model("cnn7", width=args.width)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = random_batch(args.batch)
    psi = [m.psi for _, m in neurons(model)]
    sums = torch.zeros(len(STATS), dtype=torch.float64)
    meter = ActivityMeter(model)

    def step(objective: Objective = Objective("syn", 1.0, 0.0, 0.0, 0), statistics: bool = False) -> None:
        for _ in range(args.steps):  # one timed call: --steps training steps
            train_step(model, optimizer, x, y, objective, sums)
            if statistics:
                meter.update([m.spikes for _, m in neurons(model)])

    candidates, added, objectives = {}, {}, {}
    step()
    spikes = [m.spikes for _, m in neurons(model)]
    for kind in PENALTIES:
        for p in (1, 2):
            name = f"omega_{kind} p={p}"
            objectives[name] = (kind, float(p))
            lam_norm_1 = Objective(kind, p, 1.0 / omega_all_firing(psi, kind, p), 0.0, 0)  # λ' = 1
            candidates[name] = partial(step, lam_norm_1)
            added[name] = penalty_term(spikes, psi, kind, p)
    candidates["statistics"] = partial(step, statistics=True)
    added["statistics"] = lambda: meter.update(spikes)
    clock = CLOCKS[args.clock]
    added_seconds = {name: args.steps * median_seconds(fn, args.repeats, clock) for name, fn in added.items()}
    pairs = sandwiched_seconds(step, candidates, args.rounds, clock=clock)
    call_seconds = statistics.median(r for p in pairs.values() for _, r in p)
    print(f"added work alone (median of {args.repeats}, × {args.steps} step(s) per call), as a share of the median"
          " call without penalty:")
    for name, seconds in added_seconds.items():
        print(f"  {name:<17}  {seconds * 1e3:6.1f} ms  {100 * seconds / call_seconds:5.2f} %")
    print_ratios(f"cnn7 width {args.width}, batch {args.batch}: step time / step without penalty",
                 pairs, "no penalty", added_seconds)
    if args.out is not None:
        write_rounds(args.out, pairs, added_seconds, call_seconds, objectives, args)


if __name__ == "__main__":
    main()
