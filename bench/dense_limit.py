"""Benchmark: our SNN training step ÷ the step of the identical network with ReLU instead of spikes.

The ReLU network (same convolutions, BN, dropout, batch) is the limit a
spiking layer cannot beat on dense hardware. `snn` is the pipeline's
`train_step` without a penalty (it also sums the step's statistics);
`snn plain` is the bare step (forward, cross-entropy, backward, Adam), like
`relu`. As whole steps vary more between neighbouring calls than the two
nets differ, it also times the spiking layers and the ReLUs alone (forward
and backward on the same potentials) and prints, in brackets, the step ratio
they account for.

    .venv/bin/python bench/dense_limit.py [--quick] [--threads N] [--rounds R] [--width W] [--batch B] [--repeats K]
        [--surrogate S]
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.models import create_model
from pipeline.neuron import SURROGATES, Spike
from pipeline.train import STATS, Objective, train_step
from timing import (bench_parser, layer_io, layers_alone_seconds, parse_bench_args, plain_step, print_ratios,
                    random_batch, sandwiched_seconds)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=20, quick_rounds=4, repeats=(20, "the layers alone"))
    parser.add_argument("--surrogate", choices=SURROGATES, default="s3nn")
    args = parse_bench_args(parser)
    torch.manual_seed(0)
    snn = create_model("cnn7", width=args.width, surrogate=args.surrogate)
    relu = create_model("cnn7", width=args.width, psi=None, neuron=nn.ReLU)
    relu.load_state_dict(snn.state_dict())
    snn_opt, relu_opt = (torch.optim.Adam(m.parameters(), 1e-3) for m in (snn, relu))
    x, y = random_batch(args.batch)
    sums = torch.zeros(len(STATS), dtype=torch.float64)
    no_penalty = Objective("syn", 1.0, 0.0, 0.0, 0)
    _, potentials, _ = layer_io(snn, (Spike,), x)
    layers = {"relu": [m for m in relu.modules() if isinstance(m, nn.ReLU)],
              "spike": [m for m in snn.modules() if isinstance(m, Spike)]}
    alone = layers_alone_seconds(layers, potentials, args.repeats)
    pairs = sandwiched_seconds(lambda: plain_step(relu, relu_opt, x, y), {
        "snn": lambda: train_step(snn, snn_opt, x, y, no_penalty, sums),
        "snn plain": lambda: plain_step(snn, snn_opt, x, y),
    }, args.rounds)
    print(f"layers alone, forward + backward (median of {args.repeats}): "
          + ", ".join(f"{name} {s * 1e3:.1f} ms" for name, s in alone.items()))
    extra = alone["spike"] - alone["relu"]
    print_ratios(f"cnn7 width {args.width}, batch {args.batch}, {args.surrogate} surrogate: step time / ReLU step",
                 pairs, "relu", {"snn": extra, "snn plain": extra})


if __name__ == "__main__":
    main()
