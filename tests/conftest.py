"""Shared test set-up: one torch thread (stable and fast on 2-core machines); a params.yaml to edit; the installed
Fashion-MNIST hidden."""
import shutil
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def params_dir(tmp_path, monkeypatch):
    """A working directory holding copies of params.yaml, profiles/ and dvc.yaml (edit them freely)."""
    shutil.copy(ROOT / "params.yaml", tmp_path)
    shutil.copy(ROOT / "dvc.yaml", tmp_path)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_fashion_mnist_package(tmp_path, monkeypatch):
    """Debian's Fashion-MNIST folder moved to an empty one (returned), so that only what a test puts there counts."""
    import pipeline.data

    folder = tmp_path / "usr-share-datasets-fashion-mnist"
    folder.mkdir()
    monkeypatch.setattr(pipeline.data, "FASHION_MNIST_SYSTEM_DIR", folder)
    return folder
