"""Shared fixtures: the real MNIST from ../shared/data (or $WEIGHTGEN_DATA), tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import data_dir, tiny_config_dict
from weightgen.config import config_from_dict

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One of several pytest-xdist workers (scripts/run_tests.sh): one thread each, for this
    # process and the `weightgen` commands it starts, so the workers do not oversubscribe.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("WEIGHTGEN_THREADS", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    folder = data_dir()
    if (
        not (folder / "mnist" / "train-images-idx3-ubyte.gz").exists()
        and not (folder / "train-images-idx3-ubyte.gz").exists()
    ):
        pytest.fail(
            f"MNIST not found at {folder}: set WEIGHTGEN_DATA to the folder with the "
            f"official .gz files"
        )
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from weightgen.data import load_mnist

    return load_mnist(mnist_dir, download=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_config():
    return config_from_dict(tiny_config_dict())
