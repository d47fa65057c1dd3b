"""compute.loader_workers: seeded DataLoader workers give reproducible runs; the compute keys are validated."""
from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, RunConfig
from pipeline.data import load_datasets, make_loaders
from pipeline.runs.params import resolve
from pipeline.runs.store import run_all, run_id

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("test_accuracy", "val_accuracy", "energy_pj", "energy_pj_layers", "rate_mean", "dead_rate")


def tiny(**more) -> RunConfig:
    return RunConfig.from_dict({"dataset": "digits", "model": "cnn7", "width": 0.0625, "epochs": 2,
                                "limit_train": 100, "threads": 1, "penalty": "syn", "lam_norm": 4.0, **more})


def test_two_workers_give_the_same_run_twice(tmp_path):
    cfg = tiny(randaugment=True, loader_workers=2)
    a, b = (run_all([cfg], tmp_path / name, workers=1)[0] for name in "ab")
    assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}
    # under RandAugment the worker count decides the augmentations, so it is part of the run id
    assert run_id(cfg) != run_id(tiny(randaugment=True, loader_workers=0))
    assert (tmp_path / "a" / run_id(cfg) / "metrics.json").exists()
    assert run_id(tiny(randaugment=False, loader_workers=2)) == run_id(tiny(randaugment=False))


def test_workers_without_randaugment_read_the_same_batches():
    data = load_datasets("digits", randaugment=False, limit_train=300)
    import torch

    batches = []
    for workers in (0, 2):
        train, _, _ = make_loaders(data.train, data.val, data.test, 100, torch.Generator().manual_seed(3),
                                   workers=workers)
        batches.append([(x.clone(), y.clone()) for _ in range(2) for x, y in train])  # two epochs
    assert all(torch.equal(x0, x2) and torch.equal(y0, y2) for (x0, y0), (x2, y2) in zip(*batches))


@pytest.fixture
def repo(params_dir):
    return params_dir


@pytest.mark.parametrize("key,value,message", [
    ("backend", "slurm", r"params key 'compute.backend' must be one of local, ray \(got 'slurm'\)"),
    ("gpus_per_run", -0.5, r"params key 'compute.gpus_per_run' must be >= 0 \(got -0.5\)"),
    ("gpus_per_run", "half", r"params key 'compute.gpus_per_run' must be a number"),
    ("ray_address", 6379, r"params key 'compute.ray_address' must be a string"),
    ("loader_workers", -1, r"params key 'compute.loader_workers' must be >= 0"),
    ("max_retries", 1.5, r"params key 'compute.max_retries' must be an integer"),
])
def test_compute_keys_are_validated(repo, key, value, message):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["compute"][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=message):
        resolve("default")


def test_fractional_gpus_and_the_ray_backend_validate(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["compute"].update(backend="ray", gpus_per_run=0.25, ray_address="auto")
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert resolve("default")["compute"]["gpus_per_run"] == 0.25
