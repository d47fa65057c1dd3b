"""The paper profile end to end, in miniature: `dvc exp run -S profile=paper` on Ray.

Tiny Fashion-MNIST, CIFAR-10 and CIFAR-100 files are written in torchvision's on-disk formats (IDX
files; pickled CIFAR batches) under the copy's data/, and the paper profile runs over them with its
own code path — torchvision's readers, make_split's 54k/6k and 45k/5k proportions, per-dataset
normalisation, RandAugment, CNN7, VGG11 and ResNet18, p ∈ {1, 2} — shrunk by values in params.yaml
(which win over the profile) to one epoch, a handful of runs per stage and width 1/16, every stage
training through compute.backend=ray on a local Ray instance the stages start and stop themselves.

torchvision checks each CIFAR batch against the md5 of the official archive, and pipeline.data each
Fashion-MNIST file against the SHA-256 of the original. The checks keep running: a sitecustomize.py, first
on the PYTHONPATH of the dvc process (and so of the stages and their Ray workers), declares the checksums
of the files written here when torchvision.datasets.cifar and pipeline.data are imported.
"""
import hashlib
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_pipeline_e2e import copy_repository, dvc, run

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

N_TRAIN, N_TEST = 300, 100  # images per dataset: the split pool and the test set
WIDTH = 0.0625
KEPT = ("cnn7-fmnist-adam-s3nn", "vgg11-cifar10-adam-s3nn", "resnet18-cifar100-adam-s3nn")
TABLES = ("tradeoff_points", "tradeoff_scores", "method_comparison", "grid", "training_time")
STAGES = tuple(f"{stage}@default" for stage in ("check", "split", "tune_wd", "train", "grid", "ann2snn", "score",
                                                   "figures"))


def _images(rng, n: int, shape: tuple, classes: int) -> tuple[np.ndarray, list[int]]:
    """uint8 images whose brightness follows the label (something to learn), and the labels."""
    labels = rng.integers(0, classes, n)
    base = (labels * (200 // classes)).reshape(-1, *[1] * len(shape))
    return np.clip(base + rng.integers(0, 56, (n, *shape)), 0, 255).astype(np.uint8), labels.tolist()


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (big-endian header: 0, 0, dtype 0x08 = uint8, ndim; then the dims; then the bytes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(root: Path, rng) -> dict[str, str]:
    """The four IDX files in torchvision's layout; their SHA-256s by file name."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images, labels = _images(rng, n, (28, 28), 10)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array(labels))
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in raw.iterdir()}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, rng, cls) -> dict:
    """CIFAR batches (pickled dicts, rows R|G|B) split evenly over the class's files; their md5s."""
    label_key, classes = ("labels", 10) if cls.__name__ == "CIFAR10" else ("fine_labels", 100)
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    md5 = {}
    for kind, files, n in (("train_list", cls.train_list, N_TRAIN), ("test_list", cls.test_list, N_TEST)):
        assert n % len(files) == 0
        for fname, _ in files:
            images, labels = _images(rng, n // len(files), (3072,), classes)
            (folder / fname).write_bytes(pickle.dumps({"data": images, label_key: labels}))
        md5[kind] = [[fname, _md5(folder / fname)] for fname, _ in files]
    meta = folder / cls.meta["filename"]
    meta.write_bytes(pickle.dumps({cls.meta["key"]: [f"class{i}" for i in range(classes)]}))
    md5["meta"] = _md5(meta)
    return md5


SITECUSTOMIZE = '''"""Test fixture: torchvision's CIFAR classes and pipeline.data declare the checksums of the tiny
files the test wrote."""
import importlib.abc
import importlib.machinery
import sys

MD5 = {md5!r}
SHA256 = {sha256!r}


def _declare_cifar(module):
    for name, sums in MD5.items():
        cls = getattr(module, name)
        cls.train_list, cls.test_list = sums["train_list"], sums["test_list"]
        cls.meta = {{**cls.meta, "md5": sums["meta"]}}


def _declare_fashion_mnist(module):
    module.FASHION_MNIST_SHA256.update(SHA256)


DECLARE = {{"torchvision.datasets.cifar": _declare_cifar, "pipeline.data": _declare_fashion_mnist}}


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in DECLARE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_declare(module):
            exec_module(module)
            DECLARE[fullname](module)

        spec.loader.exec_module = exec_and_declare
        return spec


sys.meta_path.insert(0, _Finder())
'''


def shrink(path: Path) -> None:
    """The paper profile's settings and sweeps, shrunk. Each value differs from profiles/default.yaml
    (so it wins over the profile) or equals the paper's (so the profile's value, the same, applies)."""
    params = yaml.safe_load(path.read_text())
    paper = yaml.safe_load((path.parent / "profiles" / "paper.yaml").read_text())
    settings = [{**s, "width": WIDTH} for s in paper["settings"] if s["name"] in KEPT]
    assert [s["name"] for s in settings] == list(KEPT)
    params["settings"] = settings
    # threads: a Ray task asks for `threads` CPUs; the paper's 4 would never be scheduled on 2 cores
    params["compute"].update(backend="ray", ray_address="", threads=2)
    params["data"]["download"] = False
    params["train"].update(epochs=1, randaugment=True)
    params["tune_wd"]["seeds"] = [1]  # the default's [0] would not win over the paper's [0, 1, 2]
    params["penalty"].update(p=[1, 2], lam_norms=[1, 64], seeds=[1])
    params["grid"].update(lams=[1.0e-06], weight_decays=[0.001], bn_decays=[0], seeds=[1])
    params["ann2snn"].update(lam_norms=[0], T=[1, 2], seeds=[1])
    params["figures"]["curve_lam_norms"] = [1]
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_paper_profile_in_miniature_on_ray(tmp_path, monkeypatch):
    from torchvision import datasets as tvd

    from pipeline.data import INFO, make_split
    from pipeline.runs.params import profiled_params

    repo = copy_repository(tmp_path / "repo")
    shrink(repo / "params.yaml")

    # what the stages will read under -S profile=paper: the shrunken values, the paper's where not shrunk
    effective = profiled_params(repo / "params.yaml", "paper")
    assert [s["name"] for s in effective["settings"]] == list(KEPT)
    assert {s["width"] for s in effective["settings"]} == {WIDTH}
    assert {s["model"] for s in effective["settings"]} == {"cnn7", "vgg11", "resnet18"}
    assert effective["train"]["epochs"] == 1 and effective["train"]["randaugment"] is True
    assert effective["penalty"]["p"] == [1, 2] and effective["penalty"]["lam_norms"] == [1, 64]
    assert effective["compute"]["backend"] == "ray" and effective["compute"]["threads"] == 2
    assert effective["data"] == {"data_dir": "data", "split_seed": 0, "download": False}

    rng = np.random.default_rng(0)
    data = repo / "data"  # the paper profile's data.data_dir (git-ignored)
    sha256 = write_fashion_mnist(data, rng)
    md5 = {cls.__name__: write_cifar(data, rng, cls) for cls in (tvd.CIFAR10, tvd.CIFAR100)}
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(md5=md5, sha256=sha256))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), str(repo),
                                                                   os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")

    run(repo, "git", "init", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "paper profile, shrunk")
    start = time.perf_counter()
    out = dvc(repo, "exp", "run", "-S", "profile=paper", "figures@default")
    seconds = time.perf_counter() - start
    print(f"dvc exp run -S profile=paper: {seconds:.0f} s")

    for stage in STAGES:
        assert f"Running stage '{stage}'" in out, stage
    for name in TABLES:
        for ext in ("csv", "md"):
            assert (repo / "results/default/tables" / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    for name in ("tradeoff", "training_curves", "layer_shares"):
        assert (repo / "results/default/figures" / f"{name}.png").stat().st_size > 0, name
    assert yaml.safe_load((repo / "params.yaml").read_text())["profile"] == "paper"

    points = pd.read_csv(repo / "results/default/tables/tradeoff_points.csv")
    assert set(points["setting"]) == set(KEPT)
    assert set(points["method"]) == {"baseline", "syn", "total", "balance", "ann2snn"}
    penalized = points[points["method"].isin(["syn", "total", "balance"])]
    assert set(penalized["p"]) == {1, 2}
    for setting in KEPT:  # every setting: 3 penalties × p ∈ {1, 2} × λ' ∈ {1, 64}; T = 1, 2 converted
        rows = penalized[penalized["setting"] == setting]
        assert len(rows) == 12 and set(rows["lam_norm"]) == {1, 64}, setting
        assert sorted(points.query("setting == @setting and method == 'ann2snn'")["T"]) == [1, 2], setting
    assert set(pd.read_csv(repo / "results/default/tables/grid.csv")["setting"]) == set(KEPT)
    assert set(pd.read_csv(repo / "results/default/tables/training_time.csv")["setting"]) == set(KEPT)

    for dataset in ("fashion_mnist", "cifar10", "cifar100"):  # the paper's proportions, as make_split makes them
        split = json.loads((repo / "artifacts/default/splits" / f"{dataset}.json").read_text())
        train, val, _ = INFO[dataset].sizes
        assert split["pool"] == N_TRAIN
        assert len(split["val"]) == round(N_TRAIN * val / (train + val)) == N_TRAIN // 10
        assert len(split["train"]) == N_TRAIN - N_TRAIN // 10
        assert split == make_split(dataset, 0, N_TRAIN)
    baselines = json.loads((repo / "artifacts/default/tune_wd/baseline.json").read_text())
    assert {name: b["weight_decay"] for name, b in baselines.items()} == {
        s["name"]: s["weight_decays"][0] for s in effective["settings"]}  # the paper's tuned λ_WD
    runs = (repo / "artifacts/default/tune_wd/runs").glob("*/metrics.json")
    configs = [json.loads(path.read_text())["config"] for path in runs]
    assert {(c["dataset"], c["model"]) for c in configs} == {
        ("fashion_mnist", "cnn7"), ("cifar10", "vgg11"), ("cifar100", "resnet18")}
    assert all(c["randaugment"] and c["epochs"] == 1 and c["width"] == WIDTH and c["download"] is False
               for c in configs)
