"""Benchmark: the time to derive ψ for each registered model (width 1, the paper's input shape).

ψ comes from one forward and one backward pass through all-ones copies of
the layers, so each is shown beside — and divided by — one forward and
backward pass of the model itself on one image (eval mode, as ψ runs),
each timed between two of those.

    .venv/bin/python bench/psi_setup.py [--quick] [--threads N] [--rounds R]
"""
from __future__ import annotations

import statistics

import torch

from pipeline.models import MODELS, create_model, input_shape
from pipeline.synapses import synapse_counts
from timing import bench_parser, parse_bench_args, sandwiched_seconds


def main() -> None:
    args = parse_bench_args(bench_parser(__doc__.splitlines()[0], rounds=5, quick_rounds=2))
    print(f"psi set-up per model ({args.rounds} rounds, {torch.get_num_threads()} torch thread(s))")
    ratios = {}
    for name in MODELS:
        model = create_model(name, psi=None).eval()  # BN in eval mode, as in the psi pass
        shape = input_shape(name)
        x = torch.randn(1, *shape)
        pairs = sandwiched_seconds(lambda: model(x).sum().backward(),
                                   {"psi": lambda: synapse_counts(model, shape)}, args.rounds)["psi"]
        psi_s, pass_s = statistics.median(p for p, _ in pairs), statistics.median(r for _, r in pairs)
        ratios[name] = statistics.median(p / r for p, r in pairs)
        print(f"  {name:<13} {shape}  psi {psi_s * 1e3:7.1f} ms  one-image forward+backward {pass_s * 1e3:7.1f} ms"
              f"  ratio {ratios[name]:.3f}")
    print("ratios (psi / one-image pass): " + "  ".join(f"{n}={r:.3f}" for n, r in ratios.items()))


if __name__ == "__main__":
    main()
