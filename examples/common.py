"""What the three examples share: digits data, one epoch of training with and without our
penalty, and accuracy and energy per test image from `pipeline.anysnn.SynapticEnergy`.

The loss is Eq. 21 without weight decay, with the normalised intensity of Sec. 3.3.2:
CE + λ' · Ω_syn / Ω_syn(1), where Ω_syn sums over the T steps (pipeline/anysnn.py) and
Ω_syn(1) = T · Σ ψ is its value with every neuron firing at every step.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pipeline

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from pipeline.anysnn import SynapticEnergy  # noqa: E402

__all__ = ["Example", "digits", "main", "parser"]


@dataclass
class Example:
    """One library's network: `build(width, steps)` makes it, `logits(model, x, steps)` runs it on
    images x [B, 1, 8, 8] (resetting its state first), `probe_shape(steps)` is its input for ψ."""

    name: str
    build: Callable[[int, int], nn.Module]
    logits: Callable[[nn.Module, Tensor, int], Tensor]
    probe_shape: Callable[[int], tuple[int, ...]]


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--tiny", action="store_true", help="a few seconds: 300 training images, width 4, T = 2")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lam", type=float, default=0.1, help="normalised penalty intensity λ' (default 0.1)")
    p.add_argument("--steps", type=int, default=None, help="time steps T (default 4; 2 with --tiny)")
    p.add_argument("--width", type=int, default=None, help="channels of the first conv (default 8; 4 with --tiny)")
    p.add_argument("--seed", type=int, default=0)
    return p


def digits(tiny: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's 8×8 digits (the project's offline data set, here at its own size) scaled to
    [0, 1]: train and test images [N, 1, 8, 8] and labels, split 80/20 with a fixed permutation."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    n_train = int(0.8 * len(x))
    train, test = slice(0, 300 if tiny else n_train), slice(n_train, n_train + 200 if tiny else len(x))
    return x[train], y[train], x[test], y[test]


def _train_and_measure(example: Example, args: argparse.Namespace, lam: float, data) -> tuple[float, float]:
    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(args.seed)  # the same initial weights and batches with and without the penalty
    model = example.build(args.width, args.steps)
    meter = SynapticEnergy(model, example.probe_shape(args.steps))
    norm = meter.omega_all_firing(args.steps)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(x_tr)).split(32):
            with meter:
                loss = F.cross_entropy(example.logits(model, x_tr[idx], args.steps), y_tr[idx])
                if lam:
                    loss = loss + lam * meter.penalty() / norm
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    model.eval()
    correct, events = 0, 0.0
    with torch.no_grad():
        for idx in torch.arange(len(x_te)).split(100):
            with meter:
                correct += int((example.logits(model, x_te[idx], args.steps).argmax(1) == y_te[idx]).sum())
                events += meter.energy_pj() * len(idx)
    meter.close()
    return correct / len(x_te), events / len(x_te)


def main(example: Example, argv: list[str] | None = None) -> dict[float, tuple[float, float]]:
    """Train without and with the penalty; print accuracy and energy per test image of each."""
    args = parser(f"{example.name} on digits, with and without the spiking synaptic penalty").parse_args(argv)
    args.steps = args.steps or (2 if args.tiny else 4)
    args.width = args.width or (4 if args.tiny else 8)
    torch.set_num_threads(1)
    data = digits(args.tiny)
    results = {}
    print(f"{example.name}: T = {args.steps}, width {args.width}, {len(data[0])} training images, "
          f"{args.epochs} epoch(s)")
    for lam in (0.0, args.lam):
        acc, energy = _train_and_measure(example, args, lam, data)
        results[lam] = (acc, energy)
        print(f"  lambda' = {lam:g}: accuracy {acc:.3f}, energy {energy:.1f} pJ per image")
    ratio = results[args.lam][1] / max(results[0.0][1], 1e-12)
    print(f"energy with / without the penalty: {ratio:.3f}")
    return results
