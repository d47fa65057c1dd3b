"""The `ann2snn` stage's part of conversion: evaluate the QReLU ANN a run directory holds."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader

from pipeline.config import RunConfig
from pipeline.convert import check_conversion, evaluate_ann, evaluate_converted
from pipeline.data import load_datasets
from pipeline.rundir import MODEL, finished_metrics
from pipeline.train import build_model, run_device

__all__ = ["evaluate_trained"]


def evaluate_trained(cfg: RunConfig, run_dir: Path, steps: Sequence[int], *, neuron: str = "multi",
                     encoding: str = "spread") -> list[dict]:
    """Convert the QReLU ANN trained by `train_run(cfg, run_dir)` and evaluate it at each T in `steps`.

    Each result also carries the ANN's `diverged` flag, training `epoch_seconds`, and the ANN's own
    `ann_test_accuracy` and `ann_energy_pj` (`evaluate_ann`, the same for every T).
    """
    check_conversion(steps, neuron, encoding)
    trained = finished_metrics(cfg.identity(), run_dir)
    device = run_device(cfg)
    ann = build_model(cfg)
    ann.load_state_dict(torch.load(run_dir / MODEL, weights_only=True, map_location="cpu"))
    ann.to(device)
    data = load_datasets(cfg.dataset, cfg.data_dir, split_seed=cfg.split_seed, split_file=cfg.split_file,
                         randaugment=False, download=cfg.download)
    loader = DataLoader(data.test, batch_size=cfg.batch_size)
    extra = {"diverged": trained["diverged"], "epoch_seconds": trained["epoch_seconds"], **evaluate_ann(ann, loader)}
    return [{**evaluate_converted(ann, loader, T, neuron=neuron, encoding=encoding), **extra} for T in steps]
