"""weightgen.datasets: the public way to a split's tensors."""

import pytest
import torch

import weightgen
from weightgen.errors import ArgumentError


def test_fashion_mnist_splits_as_tensors():
    images, labels = weightgen.datasets.load("fashion_mnist", "validation")
    assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (5000,) and labels.dtype == torch.int64
    assert 0 <= images.min() and images.max() <= 1
    test_images, _ = weightgen.datasets.load("fashion_mnist")  # default: the test split
    assert test_images.shape[0] == 10_000
    assert weightgen.datasets.load("mnist", "train")[0].shape[0] == 55_000


def test_npz_data_by_path(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(
        path,
        x_train=rng.random((20, 6, 6)),
        y_train=rng.integers(0, 3, 20),
        x_test=rng.random((7, 6, 6)),
        y_test=rng.integers(0, 3, 7),
    )
    images, labels = weightgen.datasets.load(f"npz:{path}", "test")
    assert images.shape == (7, 1, 6, 6) and labels.shape == (7,)


@pytest.mark.parametrize(
    ("name", "split", "message"),
    [
        ("fmnist", "test", "dataset must be one of"),
        ("npz", "test", "npz as npz:PATH"),
        ("mnist", "dev", "split must be one of"),
    ],
)
def test_bad_names_and_splits_are_argument_errors(name, split, message):
    with pytest.raises(ArgumentError, match=message):
        weightgen.datasets.load(name, split)
