"""Datasets, the saved train/validation split, transforms and loaders (spec §5).

Every dataset is held in memory as a uint8 tensor [N, C, 32, 32]; a sample is
RandAugment'ed (training only, torch RNG) and normalized per dataset when it is
read. Fashion-MNIST is zero-padded from 28×28 to 32×32 once at load time.

Fashion-MNIST's four IDX files are each read from the first place that has it:
`<data_dir>/FashionMNIST/raw/` (torchvision's layout, unzipped or `.gz`), then
Debian's package `dataset-fashion-mnist` (`./setup.sh` installs it), else they
are downloaded by torchvision when `download` is true. Whatever the source, the
SHA-256 of each decompressed file must be the original's (docs/fashion-mnist.md).

`digits` is the embedded offline default: scikit-learn's 1,797 handwritten 8×8
digits, upsampled to 28×28 and padded to 32×32 like Fashion-MNIST.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets as tvd
from torchvision.transforms import RandAugment

from pipeline.fileio import one_line, write_atomic

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "FASHION_MNIST_SHA256",
    "FASHION_MNIST_SYSTEM_DIR",
    "INFO",
    "ImageDataset",
    "Datasets",
    "make_split",
    "save_split",
    "load_split",
    "load_datasets",
    "make_loaders",
]

DATASETS = ("digits", "fashion_mnist", "cifar10", "cifar100")


class DataError(RuntimeError):
    """A dataset or split artifact cannot be read; the message is one line."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: shapes, the paper's split sizes, normalization."""

    in_channels: int
    input_size: int
    num_classes: int
    sizes: tuple[int, int, int]  # train, validation, test (paper App. A.2)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fix: str  # how to put the files in place when they are missing


INFO: dict[str, DatasetInfo] = {
    # mean/std of the 32×32 padded digits images (all 1,797), computed once.
    "digits": DatasetInfo(1, 32, 10, (1257, 180, 360), (0.2337,), (0.3121,), "it ships with scikit-learn"),
    "fashion_mnist": DatasetInfo(
        1, 32, 10, (54000, 6000, 10000), (0.2860,), (0.3530,),
        "install it with `apt-get install dataset-fashion-mnist` (./setup.sh does, as root), "
        "copy the four IDX files (.gz or not) to FashionMNIST/raw/ in the data directory, or run once online",
    ),
    "cifar10": DatasetInfo(
        3, 32, 10, (45000, 5000, 10000), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        "run once online, or extract cifar-10-python.tar.gz into it",
    ),
    "cifar100": DatasetInfo(
        3, 32, 100, (45000, 5000, 10000), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
        "run once online, or extract cifar-100-python.tar.gz into it",
    ),
}

_TORCHVISION = {"fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}


class ImageDataset(Dataset):
    """uint8 images [N, C, H, W] and labels; RandAugment (optional) then normalization."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo, augment: bool) -> None:
        self.images, self.labels = images, labels
        self.augment = RandAugment() if augment else None
        self.mean = torch.tensor(info.mean).view(-1, 1, 1)
        self.std = torch.tensor(info.std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i]
        if self.augment is not None:
            x = self.augment(x)
        return (x.float() / 255 - self.mean) / self.std, int(self.labels[i])


def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16  # pixel values 0..16
    x = F.interpolate(x, size=28, mode="bilinear", align_corners=False)
    x = (x * 255).round().clamp(0, 255).to(torch.uint8)
    return F.pad(x, (2, 2, 2, 2)), torch.tensor(d.target, dtype=torch.long)


def _download_paths(cls: type, root: Path) -> list[Path]:
    """What a torchvision download of `cls` creates under `root`, parents before children."""
    if hasattr(cls, "resources"):  # MNIST family: <root>/<Class>/raw/<archive>
        raw = root / cls.__name__ / "raw"
        return [root, root / cls.__name__, raw, *(raw / file for file, _ in cls.resources)]
    return [root, root / cls.base_folder, root / cls.filename]  # CIFAR: <root>/<archive> and its folder


def _remove_leftovers(created: list[Path]) -> None:
    """Undo a failed download: remove the files it started and the directories it made, if they are empty."""
    for path in reversed(created):
        try:
            if path.is_dir():
                path.rmdir()  # only when empty: never anything the user put there
            elif path.exists():
                path.unlink()
        except OSError:
            pass


def _torchvision_dataset(name: str, root: Path, train: bool, download: bool) -> tvd.VisionDataset:
    """torchvision's dataset `name` in `root`, downloaded first if missing and allowed; a failed
    download leaves nothing it created behind."""
    cls = _TORCHVISION[name]
    new = [p for p in _download_paths(cls, root) if not p.exists()]
    try:
        try:
            return cls(str(root), train=train, download=False)
        except RuntimeError:  # torchvision: "Dataset not found (or corrupted)"
            if not download:
                raise
            return cls(str(root), train=train, download=True)
    except Exception as e:  # noqa: BLE001 - any reader/network failure becomes the one-line DataError
        _remove_leftovers(new)
        raise DataError(
            f"dataset '{name}' not found or unreadable in {root} ({one_line(e)}); {INFO[name].fix}"
        ) from None


def _load_cifar(name: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Official CIFAR train or test set through torchvision's own readers, as uint8 [N, 3, 32, 32]."""
    ds = _torchvision_dataset(name, root, train, download)
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # HWC → CHW
    return x, torch.as_tensor(ds.targets, dtype=torch.long)


# SHA-256 of the decompressed IDX files: the same for torchvision's download (whose .gz md5s it checks)
# and for Debian's re-gzipped copies (whose .gz files differ). docs/fashion-mnist.md says how they were taken.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist (.gz files)


def _fashion_mnist_path(file: str, root: Path, download: bool) -> Path:
    """Where Fashion-MNIST's `file` is read from: the data directory, Debian's package, or a download."""
    raw = root / tvd.FashionMNIST.__name__ / "raw"
    places = (raw / file, raw / f"{file}.gz", FASHION_MNIST_SYSTEM_DIR / f"{file}.gz")
    found = next((p for p in places if p.is_file()), None)
    if found is not None:
        return found
    if not download:
        raise DataError(f"Fashion-MNIST file {file} is in neither {raw} nor {FASHION_MNIST_SYSTEM_DIR}; "
                        f"{INFO['fashion_mnist'].fix}")
    _torchvision_dataset("fashion_mnist", root, True, True)  # all four files, unzipped, into raw/
    return raw / file


def _read_idx(path: Path) -> np.ndarray:
    """The array in IDX file `path` (gzipped if it ends in .gz), once its content's SHA-256 is the original's."""
    file = path.name.removesuffix(".gz")
    fix = ("reinstall it: apt-get install --reinstall dataset-fashion-mnist" if path.parent == FASHION_MNIST_SYSTEM_DIR
           else f"delete it, and it is read from {FASHION_MNIST_SYSTEM_DIR} or downloaded again")
    try:
        data = path.read_bytes()
        data = gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a truncated .gz an EOFError
        raise DataError(f"Fashion-MNIST file {path} is unreadable ({one_line(e)}); {fix}") from None
    digest, original = hashlib.sha256(data).hexdigest(), FASHION_MNIST_SHA256[file]
    if digest != original:
        raise DataError(f"Fashion-MNIST file {path} is damaged: the SHA-256 of its content begins {digest[:16]}, "
                        f"the original's {original[:16]}; {fix}")
    ndim = data[3]  # header: 0, 0, dtype (0x08 = uint8), ndim; then ndim big-endian uint32 sizes
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load_fashion_mnist(root: Path, prefix: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's training (`prefix` train) or test (t10k) set as uint8 [N, 1, 32, 32] and labels."""
    images, labels = (_read_idx(_fashion_mnist_path(f"{prefix}-{kind}", root, download))
                      for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
    x = F.pad(torch.from_numpy(images.copy())[:, None], (2, 2, 2, 2))  # zero-pad 28×28 → 32×32
    return x, torch.from_numpy(labels.astype(np.int64))


def make_split(dataset: str, seed: int, pool: int) -> dict:
    """A seeded permutation of the `pool` official training images into train/validation.

    The validation share is the paper's (10 %), so a full dataset gets exactly the
    paper's sizes. `digits` has no official test set, so its permutation of all
    1,797 images also carves the test part.
    """
    perm = torch.randperm(pool, generator=torch.Generator().manual_seed(seed)).tolist()
    train, val, test = INFO[dataset].sizes
    split = {"dataset": dataset, "seed": seed, "pool": pool}
    if dataset == "digits":
        split.update(test=perm[:test], val=perm[test : test + val], train=perm[test + val :])
    else:
        n_val = round(pool * val / (train + val))
        split.update(val=perm[:n_val], train=perm[n_val:])
    return split


def save_split(split: dict, path: Path | str) -> None:
    """Save a split as JSON, atomically."""
    write_atomic(Path(path), json.dumps(split))


def load_split(path: Path | str) -> dict:
    """Read a split saved by `save_split`, checking that its index lists are disjoint and in range."""
    path = Path(path)
    try:
        split = json.loads(path.read_text())
        pool = split["pool"]
        parts = [split[k] for k in ("train", "val", "test") if k in split]
        flat = [i for part in parts for i in part]
        ok = len(parts) >= 2 and all(isinstance(i, int) and 0 <= i < pool for i in flat)
        ok = ok and len(set(flat)) == len(flat) and isinstance(split["dataset"], str)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"split file {path} is unreadable ({type(e).__name__}); delete it to recreate it") from None
    if not ok:
        raise DataError(f"split file {path} is malformed (indices out of range or repeated); delete it to recreate it")
    return split


def _resolve_split(dataset: str, seed: int, pool: int, split_file: Path | None) -> dict:
    """The split in `split_file` if it exists (it must fit), else a new one, saved there."""
    if split_file is None or not split_file.exists():
        split = make_split(dataset, seed, pool)
        if split_file is not None:
            save_split(split, split_file)
        return split
    split = load_split(split_file)
    made = (split["dataset"], split["seed"], split["pool"])
    if made != (dataset, seed, pool):
        raise DataError(
            f"split file {split_file} was made for (dataset, seed, pool) = {made}, "
            f"not {(dataset, seed, pool)}; use another split file or delete it"
        )
    return split


class Datasets(NamedTuple):
    """What `load_datasets` returns: the three sets and the split they came from."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    split: dict


def load_datasets(
    dataset: str,
    data_dir: Path | str = "data",
    *,
    split_seed: int = 0,
    split_file: Path | str | None = None,
    randaugment: bool = True,
    download: bool = True,
    limit_train: int | None = None,
) -> Datasets:
    """Train, validation and test sets; RandAugment on training images only.

    The split is read from `split_file` when it exists, else made with
    `split_seed` (and saved to `split_file` if one is named). `limit_train` keeps
    the first that many training indices (a random subset) for quick runs.
    """
    info = INFO[dataset]
    if dataset == "digits":
        x, y = _load_digits()
        xt, yt = x, y
    elif dataset == "fashion_mnist":
        x, y = _load_fashion_mnist(Path(data_dir), "train", download)
        xt, yt = _load_fashion_mnist(Path(data_dir), "t10k", download)
    else:
        x, y = _load_cifar(dataset, Path(data_dir), True, download)
        xt, yt = _load_cifar(dataset, Path(data_dir), False, download)
    split = _resolve_split(dataset, split_seed, len(y), None if split_file is None else Path(split_file))
    train_idx = torch.tensor(split["train"][:limit_train], dtype=torch.long)
    val_idx = torch.tensor(split["val"], dtype=torch.long)
    test_idx = torch.tensor(split["test"], dtype=torch.long) if "test" in split else torch.arange(len(yt))
    return Datasets(
        ImageDataset(x[train_idx], y[train_idx], info, randaugment),
        ImageDataset(x[val_idx], y[val_idx], info, False),
        ImageDataset(xt[test_idx], yt[test_idx], info, False),
        split,
    )


def _seed_worker(worker_id: int) -> None:
    """Seed a loader worker's NumPy and Python RNGs from its torch seed (base seed + worker id), one thread.

    The base seed is drawn from the training loader's `generator` every epoch (torch's DataLoader does
    so with or without workers), so a run's augmentations depend on its seed and worker count only,
    and a resumed run (the generator is checkpointed) draws the same ones.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(1)


def make_loaders(
    train: Dataset, val: Dataset, test: Dataset, batch_size: int, generator: torch.Generator,
    eval_batch_size: int | None = None, workers: int = 0,
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Loaders; `generator` alone drives the shuffle (and the loader workers' seeds).

    `workers` (a run's `loader_workers`): processes preparing training batches (RandAugment,
    normalisation). 0 reads them in the main process;
    N > 0 gives results that are reproducible for the same seed and N (and, without RandAugment,
    identical to 0). Validation and test sets are read in the main process.
    """
    eval_bs = eval_batch_size or batch_size
    extra = {"worker_init_fn": _seed_worker, "persistent_workers": False} if workers else {}
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator, num_workers=workers, **extra),
        DataLoader(val, batch_size=eval_bs, shuffle=False, num_workers=0),
        DataLoader(test, batch_size=eval_bs, shuffle=False, num_workers=0),
    )
