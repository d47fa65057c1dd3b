"""Interleaved timing, and the bare training step, shared by the bench/ scripts.

Absolute times on small shared machines swing by tens of percent within
minutes (CPU time as much as wall time), and neighbouring calls swing
together. So every script times each alternative right between two calls of
the reference — ref, a, ref, b, ref, … in one process, the order rotating
each round — and reports only ratios: each call ÷ the mean of the reference
calls beside it, as the median over rounds, plus the ratio of the minima.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Pairs", "bench_parser", "layer_io", "layers_alone_seconds", "parse_bench_args", "plain_step",
           "print_ratios", "random_batch", "sandwiched_seconds"]


def bench_parser(description: str, rounds: int, quick_rounds: int,
                 repeats: tuple[int, str] | None = None) -> argparse.ArgumentParser:
    """The options every benchmark shares; with `repeats` = (default, what is repeated) also
    --width and --batch of the CNN7 training step and --repeats."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: two threads swing 5-36x on 2-core machines)")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"rounds of the comparison (default {rounds}; {quick_rounds} with --quick)")
    parser.add_argument("--quick", action="store_true", help="a run of under a minute per comparison")
    parser.set_defaults(default_rounds=rounds, quick_rounds=quick_rounds)
    if repeats is not None:
        parser.add_argument("--width", type=float, default=1.0, help="CNN7 width multiplier (default 1)")
        parser.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
        parser.add_argument("--repeats", type=int, default=repeats[0],
                            help=f"repetitions of {repeats[1]} (default {repeats[0]})")
    return parser


def parse_bench_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line, apply --threads and resolve `rounds` from --rounds / --quick."""
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.rounds is None:
        args.rounds = args.quick_rounds if args.quick else args.default_rounds
    return args


def random_batch(batch: int) -> tuple[Tensor, Tensor]:
    """A seeded batch of 1×32×32 inputs spread around the threshold, and labels of 10 classes."""
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 1, 32, 32, generator=generator) * 2,
            torch.randint(0, 10, (batch,), generator=generator))


Pairs = dict[str, list[tuple[float, float]]]  # name -> per round (its seconds, its reference's seconds)


def sandwiched_seconds(reference: Callable[[], object], candidates: Mapping[str, Callable[[], object]],
                       rounds: int, warmup: int = 1, clock: Callable[[], float] | None = None) -> Pairs:
    """Each candidate's seconds per round, beside the mean of the reference calls right before and after;
    by `clock` (default: wall time, `time.perf_counter`; `time.process_time` counts only this process's CPU
    time, which other processes on a shared machine disturb less)."""
    names = list(candidates)
    clock = clock or time.perf_counter

    def timed(fn: Callable[[], object]) -> float:
        start = clock()
        fn()
        return clock() - start

    for _ in range(warmup):
        for fn in (reference, *candidates.values()):
            fn()
    pairs: Pairs = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        before = timed(reference)
        for name in names[shift:] + names[:shift]:
            own = timed(candidates[name])
            after = timed(reference)
            pairs[name].append((own, (before + after) / 2))
            before = after
    return pairs


def plain_step(model: Callable[[Tensor], Tensor], optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
    """A bare training step: forward, cross-entropy, zero_grad, backward, optimizer step."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def layer_io(model: nn.Module, kinds: tuple[type, ...], x: Tensor,
             run: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """The output on `x` of `run` (default: `model` itself), and the inputs and outputs of
    `model`'s layers of the given kinds, in call order (detached)."""
    inputs: list[Tensor] = []
    outputs: list[Tensor] = []

    def record(_: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        inputs.append(args[0].detach())
        outputs.append(out.detach())

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, kinds)]
    try:
        result = (run or model)(x)
    finally:
        for hook in hooks:
            hook.remove()
    return result, inputs, outputs


def layers_alone_seconds(layers: Mapping[str, Sequence[nn.Module]], inputs: Sequence[Tensor], repeats: int,
                         before: Mapping[str, Callable[[], object]] | None = None) -> dict[str, float]:
    """Median seconds, per name, of forward and backward through its layers alone, layer i on inputs[i]
    (the names taking turns, after one warm-up round); `before[name]` runs first each time (e.g. a state reset)."""
    def run(name: str) -> None:
        if before and name in before:
            before[name]()
        for layer, u in zip(layers[name], inputs, strict=True):
            leaf = u.detach().requires_grad_()
            layer(leaf).backward(torch.ones_like(leaf))

    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(repeats + 1):
        for name in layers:
            start = time.perf_counter()
            run(name)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def print_ratios(title: str, pairs: Pairs, reference: str,
                 added: Mapping[str, float] | None = None) -> dict[str, float]:
    """Print each candidate's times and its ratio to the reference; the last line lists the ratios.

    `added[name]` is how many seconds the work by which the candidate differs
    from the reference takes when timed alone; the candidate then also gets
    the "attributed" ratio 1 + added / (median reference call), in brackets.
    Returns {name: median over rounds of the ratio}.
    """
    rounds = len(next(iter(pairs.values())))
    print(f"{title} ({rounds} rounds, each call between two {reference!r} calls;"
          f" {torch.get_num_threads()} torch thread(s))")
    width = max(map(len, [*pairs, reference]))
    ref_times = [r for p in pairs.values() for _, r in p]
    ref_median = statistics.median(ref_times)
    print(f"  {reference:<{width}}  median {ref_median * 1e3:9.1f} ms  min {min(ref_times) * 1e3:9.1f} ms")
    summary, shown = {}, {}
    for name, p in pairs.items():
        own, ref = [o for o, _ in p], [r for _, r in p]
        summary[name] = statistics.median(o / r for o, r in p)
        shown[name] = f"{summary[name]:.3f}"
        if added is not None and name in added:
            shown[name] += f" [{1 + added[name] / ref_median:.3f}]"
        print(f"  {name:<{width}}  median {statistics.median(own) * 1e3:9.1f} ms  min {min(own) * 1e3:9.1f} ms"
              f"  ratio median {summary[name]:.3f}  of minima {min(own) / min(ref):.3f}")
    note = " [attributed]" if added else ""
    print(f"ratios (x / {reference}, median of rounds{note}): " + "  ".join(f"{n}={r}" for n, r in shown.items()))
    return summary
