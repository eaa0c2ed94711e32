"""Shared fixtures: the real MNIST from ../shared/data (or $WEIGHTGEN_DATA), tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from weightgen.config import config_from_dict

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    if os.environ.get("WEIGHTGEN_DATA"):
        return Path(os.environ["WEIGHTGEN_DATA"])
    return REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    folder = data_dir()
    if not (folder / "mnist" / "train-images-idx3-ubyte.gz").exists() and not (
            folder / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found at {folder}: set WEIGHTGEN_DATA to the folder with the "
                    f"official .gz files")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from weightgen.data import load_mnist
    return load_mnist(mnist_dir, download=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_config_dict(**train) -> dict:
    """The paper's target with a small hypernetwork and a few small steps."""
    return {
        "name": "tiny",
        "seed": 1,
        "target": {"preset": "mnist_cnn"},
        "hypernet": {"noise_dim": 16, "code_dim": 4, "extractor_hidden": [32],
                     "generator_hidden": [[16], [16], [16], [16]]},
        "objective": {"lambda": 100.0},
        "train": {"steps": 6, "noise_samples": 4, "images_per_network": 8, "lr": 1e-3,
                  "validate_every": 3, "validation_networks": 4, "checkpoint_every": 3,
                  "keep_checkpoints": 2, **train},
    }


@pytest.fixture
def tiny_config():
    return config_from_dict(tiny_config_dict())


def write_tiny_yaml(path: Path, **train) -> Path:
    """A YAML file of :func:`tiny_config_dict`."""
    import yaml
    path.write_text(yaml.safe_dump(tiny_config_dict(**train)))
    return path
