"""Benchmark: input-pipeline images/s with 0, 1, 2 DataLoader workers (RandAugment on) vs the model step's.

The pipeline's training loader (`pipeline.data.make_loaders`, as a run with
`compute.loader_workers` = W builds it) reads one epoch of the training set —
RandAugment, normalisation, batching; each pass starts its workers anew, as
every epoch of a run does — and the CNN7 training step (forward, loss,
backward, Adam) runs on enough random batches to see as many images. Each
loader pass is timed between two model passes; the script prints each
loader's images/s ÷ the model step's images/s beside it: above 1 the input
pipeline keeps up with training, below 1 the model waits for data.
Workers are separate processes: on a 2-core machine they compete with the
model step for the same cores once training and loading overlap.

    .venv/bin/python bench/input_pipeline.py [--quick] [--threads N] [--rounds R] [--width W] [--batch B]
        [--dataset digits] [--images N] [--workers 0 1 2]
"""
from __future__ import annotations

import statistics

import torch

from pipeline.data import load_datasets, make_loaders
from pipeline.models import create_model
from timing import bench_parser, parse_bench_args, plain_step, random_batch, sandwiched_seconds


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=5, quick_rounds=1)
    parser.add_argument("--width", type=float, default=1.0, help="CNN7 width multiplier (default 1)")
    parser.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--dataset", default="digits", help="dataset read by the loader (default digits, offline)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--images", type=int, default=None,
                        help="training images per loader pass (default: all; 300 with --quick)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader workers to compare")
    args = parse_bench_args(parser)
    images = args.images or (300 if args.quick else None)
    data = load_datasets(args.dataset, args.data_dir, randaugment=True, download=False, limit_train=images)
    n_images = len(data.train)
    torch.manual_seed(0)
    channels = data.train.images.shape[1]
    model = create_model("cnn7", in_channels=channels, width=args.width)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = random_batch(args.batch)
    x = x.expand(-1, channels, -1, -1).contiguous()
    steps = max(1, round(n_images / args.batch))

    def model_pass() -> None:
        for _ in range(steps):
            plain_step(model, optimizer, x, y)

    def loader_pass(workers: int):
        def run() -> None:
            train, _, _ = make_loaders(data.train, data.val, data.test, args.batch, torch.Generator().manual_seed(0),
                                       workers=workers)
            for _ in train:
                pass
        return run

    pairs = sandwiched_seconds(model_pass, {f"workers{w}": loader_pass(w) for w in args.workers}, args.rounds)
    model_images = steps * args.batch
    print(f"input pipeline ({args.dataset}, {n_images} images per pass, RandAugment on, batch {args.batch}) vs the "
          f"CNN7 x{args.width:g} training step ({model_images} images per pass); {args.rounds} rounds, each loader "
          f"pass between two model passes; {torch.get_num_threads()} torch thread(s)")
    ref = [r for p in pairs.values() for _, r in p]
    print(f"  model step   median {model_images / statistics.median(ref):9.0f} images/s")
    summary = {}
    for name, p in pairs.items():
        # (loader images / loader seconds) / (model images / model seconds), per round
        summary[name] = statistics.median((n_images / own) / (model_images / r) for own, r in p)
        rate = n_images / statistics.median(own for own, _ in p)
        print(f"  loader {name:<9} median {rate:9.0f} images/s  ratio to the model step {summary[name]:.3f}")
    print("ratios (loader images/s / model step images/s, median of rounds): "
          + "  ".join(f"{n}={r:.3f}" for n, r in summary.items()))


if __name__ == "__main__":
    main()
