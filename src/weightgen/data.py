"""Datasets as plug-ins: a registry of loaders returning train / validation / test splits with
their input shape and number of classes, selected by a config's ``data:`` section.

Built in: ``mnist`` (the paper's split: the first 5,000 training images validate, 55,000
train), ``fashion_mnist`` (the same split of Fashion-MNIST), ``digits`` (scikit-learn's 8x8
handwritten digits, shipped inside scikit-learn) and ``npz`` (the user's own arrays). A new
dataset is one function registered with :func:`register`.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .errors import WeightgenError, check_config
from .idxfiles import load_split
from .memory import require
from .rng import seeded_generator
from .split import Split

VALIDATION_SIZE = 5000  # the paper: the first 5,000 training images validate, 55,000 train


@dataclass(frozen=True)
class DataConfig:
    """Which data a run trains and is evaluated on."""

    name: str = "mnist"  # a key of DATASETS
    path: str | None = None  # the .npz file of ``name: npz``
    ood: str | None = "fashion_mnist"  # the report's out-of-distribution test set (or null)

    def __post_init__(self) -> None:
        check_config(
            self.name in DATASETS,
            "data.name",
            f"must be one of {sorted(DATASETS)}, got {self.name!r}",
        )
        check_config(
            (self.path is not None) == (self.name == "npz"),
            "data.path",
            "is the .npz file of name: npz (and only of it)",
        )
        check_config(
            self.ood is None or self.ood in DATASETS and self.ood != "npz",
            "data.ood",
            f"must be null or one of {sorted(set(DATASETS) - {'npz'})}",
        )

    def to_metadata(self) -> dict[str, str]:
        """The exchange file's record of the dataset its networks were trained on."""
        meta = {"dataset": self.name}
        if self.path is not None:
            meta["dataset_path"] = self.path
        if self.ood is not None:
            meta["ood_dataset"] = self.ood
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> DataConfig | None:
        """The dataset an exchange file records, or None for files written before it did
        (or naming a dataset this installation does not have)."""
        if meta.get("dataset") not in DATASETS:
            return None
        try:
            return cls(meta["dataset"], meta.get("dataset_path"), meta.get("ood_dataset"))
        except WeightgenError:
            return None


@dataclass(frozen=True)
class Dataset:
    """Three splits of one dataset and what networks reading it must fit."""

    name: str
    train: Split
    validation: Split
    test: Split
    input_shape: tuple[int, ...]  # (C, H, W)
    num_classes: int


Loader = Callable[[DataConfig, "str | os.PathLike | None", bool], Dataset]
DATASETS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    """Register a dataset loader under ``name`` (the value of ``data.name``)."""

    def add(loader: Loader) -> Loader:
        DATASETS[name] = loader
        return loader

    return add


def load_dataset(
    cfg: DataConfig | str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """The dataset a config names (or a bare name); files are searched in ``data_dir``,
    ``$WEIGHTGEN_DATA`` and the cache, and downloaded where the dataset can be."""
    cfg = DataConfig(name=cfg) if isinstance(cfg, str) else cfg
    return DATASETS[cfg.name](cfg, data_dir, download)


INPUT_SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "digits": (1, 8, 8)}


def input_shape(cfg: DataConfig) -> tuple[int, ...]:
    """The (C, H, W) of a dataset's images without loading it (an npz file: from the header
    of its x_train array)."""
    if cfg.name in INPUT_SHAPES:
        return INPUT_SHAPES[cfg.name]
    if cfg.name != "npz":  # a registered dataset without a recorded shape: load it
        return load_dataset(cfg).input_shape
    shapes = _npz_headers(Path(cfg.path or ""))
    if "x_train" not in shapes:
        raise WeightgenError(f"data.path {cfg.path}: not an .npz file with an x_train array")
    shape = shapes["x_train"][0]
    return (1, *shape[1:]) if len(shape) == 3 else tuple(shape[1:])


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of an .npz file, read from the headers alone."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise WeightgenError(
            f"data.path {path}: not an .npz file (no such file, or not a "
            f"zip archive as numpy.savez writes)"
        )
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                with archive.open(name) as f:
                    major, _ = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                headers[name.removesuffix(".npy")] = (tuple(shape), dtype)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise WeightgenError(
            f"data.path {path}: not a readable .npz file ({str(err).splitlines()[0][:120]})"
        ) from None
    return headers


def _first_validates(name: str, train: Split, test: Split, validation_size: int) -> Dataset:
    v = validation_size
    return Dataset(
        name,
        Split(train.images[v:], train.labels[v:]),
        Split(train.images[:v], train.labels[:v]),
        test,
        tuple(train.images.shape[1:]),
        int(train.labels.max()) + 1,
    )


@register("mnist")
def _mnist(cfg: DataConfig, data_dir, download: bool) -> Dataset:
    return _first_validates(
        "mnist",
        load_split("mnist", "train", data_dir, download),
        load_split("mnist", "t10k", data_dir, download),
        VALIDATION_SIZE,
    )


@register("fashion_mnist")
def _fashion_mnist(cfg: DataConfig, data_dir, download: bool) -> Dataset:
    return _first_validates(
        "fashion_mnist",
        load_split("fashion-mnist", "train", data_dir, download),
        load_split("fashion-mnist", "t10k", data_dir, download),
        VALIDATION_SIZE,
    )


DIGITS_VALIDATION, DIGITS_TEST = 200, 397  # of 1,797 images; the other 1,200 train


@register("digits")
def _digits(cfg: DataConfig, data_dir, download: bool) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (values 0..16, scaled to [0, 1]) in a fixed shuffle:
    the first 200 validate, the next 397 test, the other 1,200 train."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=seeded_generator(0, "digits-split"))
    images, labels = images[order], labels[order]
    v, t = DIGITS_VALIDATION, DIGITS_VALIDATION + DIGITS_TEST
    return Dataset(
        "digits",
        Split(images[t:], labels[t:]),
        Split(images[:v], labels[:v]),
        Split(images[v:t], labels[v:t]),
        (1, 8, 8),
        10,
    )


@register("npz")
def _npz(cfg: DataConfig, data_dir, download: bool) -> Dataset:
    """The user's arrays: ``x_train``, ``y_train``, ``x_test``, ``y_test`` and optionally
    ``x_val``, ``y_val`` (else the first tenth of the training arrays validates). Images
    (N, H, W) or (N, C, H, W), uint8 (scaled by 1/255) or floats in [0, 1]; labels integers
    0..K-1."""
    path = Path(cfg.path or "")
    # float32 copies of every array: refused up front when they cannot fit
    require(
        sum(4 * math.prod(shape) for shape, _ in _npz_headers(path).values()),
        f"loading the arrays of {path}",
        "use a smaller dataset",
    )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as err:
        raise WeightgenError(
            f"data.path {path}: not a readable .npz file ({str(err).splitlines()[0][:120]})"
        ) from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in found]
    if missing:
        raise WeightgenError(
            f"{path}: missing arrays {missing} (need x_train, y_train, x_test, "
            f"y_test; optional x_val, y_val)"
        )
    if ("x_val" in found) != ("y_val" in found):
        raise WeightgenError(f"{path}: x_val and y_val come together")
    splits = {
        name: _npz_split(path, name, found[f"x_{name}"], found[f"y_{name}"])
        for name in ("train", "test", "val")
        if f"x_{name}" in found
    }
    train, test = splits["train"], splits["test"]
    if "val" in splits:
        validation = splits["val"]
    else:
        v = max(1, len(train) // 10)
        train, validation = Split(train.images[v:], train.labels[v:]), train.head(v)
    shapes = {tuple(s.images.shape[1:]) for s in (train, validation, test)}
    if len(shapes) > 1:
        raise WeightgenError(f"{path}: the splits' images have different shapes {sorted(shapes)}")
    if len(train) < 2:
        raise WeightgenError(f"{path}: x_train needs at least 2 images after validation")
    classes = int(max(s.labels.max() for s in (train, validation, test))) + 1
    return Dataset(f"npz:{path.name}", train, validation, test, shapes.pop(), classes)


def _npz_split(path: Path, name: str, x: np.ndarray, y: np.ndarray) -> Split:
    """One checked split of an npz file as float images in [0, 1] and int64 labels."""
    where = f"{path}: x_{name}"
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
    if x.ndim != 4 or x.shape[0] == 0:
        raise WeightgenError(
            f"{where} must be (N, H, W) or (N, C, H, W) with N >= 1, got shape {x.shape}"
        )
    if x.dtype == np.uint8:
        images = torch.from_numpy(x.astype(np.float32) / 255.0)
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise WeightgenError(f"{where} has NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise WeightgenError(
                f"{where}: float images must lie in [0, 1] (got "
                f"{x.min():g}..{x.max():g}); scale them or store uint8"
            )
        images = torch.from_numpy(x.astype(np.float32))
    else:
        raise WeightgenError(f"{where} must be uint8 or float, got {x.dtype}")
    if y.ndim != 1 or len(y) != len(x):
        raise WeightgenError(
            f"{path}: y_{name} must be one label per image ({len(x)}), got shape {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise WeightgenError(
            f"{path}: y_{name} must be integer class indices 0..K-1, got "
            f"{y.dtype} {y.min()}..{y.max()}"
        )
    return Split(images.contiguous(), torch.from_numpy(y.astype(np.int64)))


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """MNIST split exactly as the paper: validation = first 5,000 training images."""
    return load_dataset("mnist", data_dir, download)


def load_test_split(
    name: str, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Split:
    """Only the test split of a built-in dataset (the out-of-distribution sets need no more):
    for the IDX datasets, without reading their training files."""
    if name in ("mnist", "fashion_mnist"):
        return load_split(name.replace("_", "-"), "t10k", data_dir, download)
    return load_dataset(name, data_dir, download).test


def check_ood_name(name: str) -> None:
    """An out-of-distribution set must be a built-in dataset (checked before any work)."""
    names = sorted(set(DATASETS) - {"npz"})
    if name not in names:
        raise WeightgenError(f"unknown out-of-distribution set {name!r}; choose one of {names}")


def load_ood_split(
    name: str,
    input_shape: tuple[int, ...],
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    split_name: Literal["test", "validation"] = "test",
) -> Split:
    """Split ``split_name`` of built-in dataset ``name`` as out-of-distribution inputs of
    networks that read images of ``input_shape``. Choices made on the validation split take
    the OOD set's validation split too, so that no test image of either dataset informs them."""
    check_ood_name(name)
    split = (
        load_test_split(name, data_dir, download)
        if split_name == "test"
        else load_dataset(name, data_dir, download).validation
    )
    if tuple(split.images.shape[1:]) != tuple(input_shape):
        raise WeightgenError(
            f"out-of-distribution set {name} has images of shape "
            f"{tuple(split.images.shape[1:])}, the networks read "
            f"{tuple(input_shape)}"
        )
    return split


def check_fits(spec, input_shape: tuple[int, ...], num_classes: int, what: str) -> None:
    """Networks of ``spec`` must read ``what``'s inputs and have an output per class."""
    if tuple(spec.input_shape) != tuple(input_shape):
        raise WeightgenError(
            f"the networks read inputs of shape {tuple(spec.input_shape)}, "
            f"{what} has {tuple(input_shape)}"
        )
    if spec.num_classes < num_classes:
        raise WeightgenError(
            f"the networks have {spec.num_classes} outputs, {what} has {num_classes} classes"
        )


def training_batch_indices(
    step: int, num_networks: int, images_per_network: int, train_size: int, seed: int
) -> Tensor:
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
