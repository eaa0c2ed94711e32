"""MNIST (and the Fashion-MNIST test set) from the official gzip'd IDX files, checksum-verified.

Files are looked for in ``--data-dir``, then ``$WEIGHTGEN_DATA``, then the user cache
(``$XDG_CACHE_HOME/weightgen`` or ``~/.cache/weightgen``); each folder may hold the files
directly or in a ``mnist/`` (``fashion-mnist/``) sub-folder. Files missing everywhere are
downloaded into the cache from public mirrors. Every file is verified by the SHA-256 of its
uncompressed contents, so re-compressed copies of the same data (Debian's) are accepted too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import WeightgenError
from .rng import seeded_generator

VALIDATION_SIZE = 5000  # the paper: the first 5,000 training images validate, 55,000 train

# file name -> SHA-256 of the uncompressed IDX contents
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "t10k-images-idx3-ubyte.gz":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}


@dataclass(frozen=True)
class Split:
    """Images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class MNIST:
    """The paper's split: train 55,000, validation 5,000 (first of the file), test 10,000."""

    train: Split
    validation: Split
    test: Split


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "weightgen"


def _search_folders(dataset: str, data_dir: str | os.PathLike | None) -> list[Path]:
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("WEIGHTGEN_DATA"):
        roots.append(Path(os.environ["WEIGHTGEN_DATA"]))
    roots.append(cache_dir())
    return [folder for root in roots for folder in (root, root / dataset)]


def _download(dataset: str, name: str) -> Path:
    """Fetch one file into the cache from the first mirror that serves the right contents."""
    target = cache_dir() / dataset / name
    target.parent.mkdir(parents=True, exist_ok=True)
    for mirror in MIRRORS[dataset]:
        try:
            with urllib.request.urlopen(mirror + name, timeout=30) as response:
                payload = response.read()
            _verify_bytes(gzip.decompress(payload), dataset, name, mirror + name)
        except (OSError, EOFError, WeightgenError):
            continue
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return target
    raise WeightgenError(
        f"{dataset} file {name} not found locally and could not be downloaded; put the official "
        f"files in a folder and pass --data-dir or set WEIGHTGEN_DATA")


def _verify_bytes(raw: bytes, dataset: str, name: str, where: str) -> None:
    if hashlib.sha256(raw).hexdigest() != CHECKSUMS[dataset][name]:
        raise WeightgenError(f"{where}: checksum mismatch (corrupt or not the official {dataset} "
                             f"file); delete it and download it again")


def read_idx(path: Path, dataset: str = "mnist", name: str | None = None) -> np.ndarray:
    """Read one verified gzip'd IDX file into a uint8 array."""
    name = name or path.name
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as err:
        raise WeightgenError(f"{path}: not a readable gzip file ({err}); delete it and download "
                             f"it again") from None
    _verify_bytes(raw, dataset, name, str(path))
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def locate(dataset: str, name: str, data_dir: str | os.PathLike | None = None,
           download: bool = True) -> Path:
    """Path of one data file: the first search folder that has it, else a fresh download."""
    if dataset not in CHECKSUMS or name not in CHECKSUMS[dataset]:
        raise WeightgenError(f"unknown data file {dataset}/{name}")
    for folder in _search_folders(dataset, data_dir):
        if (folder / name).is_file():
            return folder / name
    if not download:
        raise WeightgenError(f"{dataset} file {name} not found in --data-dir, $WEIGHTGEN_DATA or "
                             f"{cache_dir()}")
    return _download(dataset, name)


def load_split(dataset: str, prefix: str, data_dir: str | os.PathLike | None = None,
               download: bool = True) -> Split:
    """One split ("train" or "t10k") as float images in [0, 1] and int64 labels."""
    images_name, labels_name = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    images = read_idx(locate(dataset, images_name, data_dir, download), dataset, images_name)
    labels = read_idx(locate(dataset, labels_name, data_dir, download), dataset, labels_name)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> MNIST:
    """MNIST split exactly as the paper: validation = first 5,000 training images."""
    train = load_split("mnist", "train", data_dir, download)
    test = load_split("mnist", "t10k", data_dir, download)
    v = VALIDATION_SIZE
    return MNIST(train=Split(train.images[v:], train.labels[v:]),
                 validation=Split(train.images[:v], train.labels[:v]), test=test)


def load_fashion_mnist_test(data_dir: str | os.PathLike | None = None,
                            download: bool = True) -> Split:
    """The Fashion-MNIST test set (out-of-distribution inputs for MNIST networks)."""
    return load_split("fashion-mnist", "t10k", data_dir, download)


def training_batch_indices(step: int, num_networks: int, images_per_network: int,
                           train_size: int, seed: int) -> Tensor:
    """Training-set indices for one step, (num_networks, images_per_network).

    The training set is read as an endless stream of per-epoch permutations (epoch e shuffled
    by seed and e); step t takes the next num_networks * images_per_network positions, so each
    network sees its own images and the batch depends only on (seed, step): exact resume.
    """
    per_step = num_networks * images_per_network
    start, stop = step * per_step, (step + 1) * per_step
    chunks = []
    for epoch in range(start // train_size, (stop - 1) // train_size + 1):
        order = torch.randperm(train_size, generator=seeded_generator(seed, "data", epoch))
        lo = max(start - epoch * train_size, 0)
        hi = min(stop - epoch * train_size, train_size)
        chunks.append(order[lo:hi])
    return torch.cat(chunks).reshape(num_networks, images_per_network)

