"""What pinning the numerics costs: the pipeline's training step with pinned numerics ÷ the same step with
the libraries' own choices (`PIPELINE_NUMERICS=native`), in one run.

The ISA switches act when a process starts, so the two variants live in two worker processes, each
holding the same CNN7, batch and optimizer; this process asks them for one timed step in turn, each
pinned step between two native ones (`timing.sandwiched_seconds`), and prints the ratios.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from timing import bench_parser, parse_bench_args, print_ratios, sandwiched_seconds

_WORKER = """
import sys, time, torch
from pipeline.config import RunConfig
from pipeline.numerics import environment
from pipeline.train import STATS, Objective, build_model, run_device, train_step
sys.path.insert(0, {bench!r})
from timing import random_batch
cfg = RunConfig(width={width}, penalty="syn", lam_norm=8, threads={threads}, device={device!r})
device = run_device(cfg)
torch.manual_seed(0)
model = build_model(cfg).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
x, y = (t.to(device) for t in random_batch({batch}))
objective, sums = Objective("syn", 1.0, 1e-7, 1e-4, 0), torch.zeros(len(STATS), dtype=torch.float64, device=device)
model.train()
print(environment()["isa"], flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    for _ in range({repeats}):
        train_step(model, optimizer, x, y, objective, sums)
    sums.sum().item()  # waits for the device
    print(time.perf_counter() - start, flush=True)
"""


class Worker:
    """A process that times `repeats` training steps each time it is asked."""

    def __init__(self, numerics: str, args) -> None:
        code = _WORKER.format(bench=str(Path(__file__).parent), width=args.width, threads=args.threads,
                              batch=args.batch, repeats=args.repeats, device=args.device)
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env={**os.environ, "PIPELINE_NUMERICS": numerics})
        self.isa = self.process.stdout.readline().strip()

    def step(self) -> None:
        self.process.stdin.write("step\n")
        self.process.stdin.flush()
        self.process.stdout.readline()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = bench_parser(__doc__, rounds=20, quick_rounds=5, repeats=(3, "the step per timed call"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the step runs (default cpu)")
    parser.set_defaults(width=0.25)
    args = parse_bench_args(parser)
    native, pinned = Worker("native", args), Worker("pinned", args)
    try:
        pairs = sandwiched_seconds(native.step, {f"pinned ({pinned.isa})": pinned.step}, rounds=args.rounds)
    finally:
        native.close()
        pinned.close()
    print_ratios(f"cnn7 width {args.width}, batch {args.batch}, {args.repeats} steps per call on {args.device}: pinned "
                 f"step time / native ({native.isa})", pairs, "native")


if __name__ == "__main__":
    main()
