"""Benchmark: the Ray backend's overhead over the local one, for a few tiny runs trained one after the other.

Each round trains the same `--runs` tiny runs (digits, CNN7 x0.0625, 100
training images, 2 epochs, one thread; distinct λ') into a fresh run store,
once on the local backend (in this process, `compute.workers` = 1) and once
on the ray backend (a local Ray instance with one CPU, so its tasks run one
after the other too), the order alternating each round. Starting and stopping
the Ray instance is timed apart: a stage pays it once, however many runs it
has. Prints the per-round wall times and the ratio ray / local last.

    .venv/bin/python bench/ray_overhead.py [--quick] [--runs N] [--rounds R]
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import ray

from pipeline.config import RunConfig
from pipeline.runs import ray_backend
from pipeline.runs.store import run_all
from timing import bench_parser, parse_bench_args


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=3, quick_rounds=1)
    parser.add_argument("--runs", type=int, default=4, help="tiny runs per pass (default 4)")
    args = parse_bench_args(parser)
    configs = [RunConfig.from_dict({"dataset": "digits", "model": "cnn7", "width": 0.0625, "epochs": 2,
                                    "limit_train": 100, "threads": 1, "randaugment": False, "penalty": "syn",
                                    "lam_norm": float(2 ** i)}) for i in range(args.runs)]
    start = time.perf_counter()
    ray_backend.connect(num_cpus=1)
    init_s = time.perf_counter() - start
    times: dict[str, list[float]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for backend in (("local", "ray") if r % 2 == 0 else ("ray", "local")):
                store = Path(tmp) / f"{backend}{r}"
                start = time.perf_counter()
                run_all(configs, store, workers=1, compute={"backend": backend, "threads": 1})
                times[backend].append(time.perf_counter() - start)
    start = time.perf_counter()
    ray.shutdown()
    shutdown_s = time.perf_counter() - start
    print(f"{args.runs} tiny runs one after the other, {args.rounds} round(s) (first Ray round: workers start)")
    for backend, t in times.items():
        print(f"  {backend:<6} " + "  ".join(f"{s:6.1f} s" for s in t) + f"   median {statistics.median(t):6.1f} s")
    ratios = [ray_s / local_s for ray_s, local_s in zip(times["ray"], times["local"])]
    warm = slice(1, None) if args.rounds > 1 else slice(None)  # round 1: Ray's worker processes import torch
    extra = statistics.median(times["ray"][warm]) - statistics.median(times["local"][warm])
    print(f"  Ray instance start {init_s:.1f} s, stop {shutdown_s:.1f} s (once per stage); first round "
          f"{times['ray'][0] - times['local'][0]:+.1f} s on Ray (its workers start); later rounds per run on Ray: "
          f"{extra / args.runs:+.2f} s (median)")
    print(f"ratios (ray / local wall time, median of rounds after the first): "
          f"ray={statistics.median(ratios[warm]):.3f}")


if __name__ == "__main__":
    main()
