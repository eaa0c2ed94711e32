"""The datasets weightgen trains on, as tensors: ``weightgen.datasets.load("fashion_mnist")``
returns the test split's images and labels."""

from __future__ import annotations

import os

from torch import Tensor

from .data import DATASETS, DataConfig, load_dataset
from .errors import ArgumentError

SPLITS = ("train", "validation", "test")


def names() -> list[str]:
    """The registered datasets (``npz`` reads ``npz:PATH``)."""
    return sorted(DATASETS)


def load(
    name: str,
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[Tensor, Tensor]:
    """(images, labels) of one split: images (N, C, H, W) float32 in [0, 1], labels (N,)
    int64. The splits are the ones training uses: MNIST and Fashion-MNIST train on 55,000
    images, validate on the first 5,000 of the official training set and test on the official
    10,000. ``name`` is a registered dataset or ``npz:PATH``; files are searched in
    ``data_dir``, ``$WEIGHTGEN_DATA`` and the cache, and downloaded (checksum-verified) where
    the dataset can be."""
    if split not in SPLITS:
        raise ArgumentError(f"split must be one of {list(SPLITS)}, got {split!r}")
    kind, _, path = str(name).partition(":")
    if kind not in DATASETS or (kind == "npz") != bool(path):
        raise ArgumentError(f"dataset must be one of {names()} (npz as npz:PATH), got {name!r}")
    dataset = load_dataset(DataConfig(name=kind, path=path or None, ood=None), data_dir, download)
    part = getattr(dataset, split)
    return part.images, part.labels
