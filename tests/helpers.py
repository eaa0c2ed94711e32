"""Helpers shared by the tests (plain functions and constants; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
# float32 tolerances for target-network implementations that sum in other orders than the
# torch.nn reference (AVX2 kernels differ from it by up to 3e-5 relative)
FORWARD_CLOSE = {"rtol": 1e-4, "atol": 1e-5}

# report options small enough for a test: seconds, not hours
SMALL_REPORT = [
    "--networks",
    "8",
    "--ensemble-size",
    "4",
    "--pca-samples",
    "30",
    "--filter-samples",
    "4",
    "--path-pairs",
    "2",
    "--path-points",
    "4",
    "--diversity-networks",
    "3",
    "--adversarial-images",
    "30",
    "--adversarial-ensemble",
    "3",
    "--test-images",
    "200",
    "--no-progress",
]


def data_dir() -> Path:
    """The real data: $WEIGHTGEN_DATA, else ../shared/data beside the checkout."""
    if os.environ.get("WEIGHTGEN_DATA"):
        return Path(os.environ["WEIGHTGEN_DATA"])
    return REPO.parent / "shared" / "data"


def tiny_config_dict(**train) -> dict:
    """The paper's target with a small hypernetwork and a few small steps."""
    return {
        "name": "tiny",
        "seed": 1,
        "target": {"preset": "mnist_cnn"},
        "hypernet": {
            "noise_dim": 16,
            "code_dim": 4,
            "extractor_hidden": [32],
            "generator_hidden": [[16], [16], [16], [16]],
        },
        "objective": {"lambda": 100.0},
        "train": {
            "steps": 6,
            "noise_samples": 4,
            "images_per_network": 8,
            "lr": 1e-3,
            "validate_every": 3,
            "validation_networks": 4,
            "checkpoint_every": 3,
            "keep_checkpoints": 2,
            **train,
        },
    }


def write_tiny_yaml(path: Path, **train) -> Path:
    """A YAML file of :func:`tiny_config_dict`."""
    path.write_text(yaml.safe_dump(tiny_config_dict(**train)))
    return path


def read_log(run: Path) -> list[dict]:
    """A run folder's metrics.jsonl records."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def write_npz(path: Path, **arrays) -> Path:
    """An .npz dataset of 40 training and 10 test 6x6 images in 3 classes; ``arrays`` replace
    (or, as None, drop) its arrays."""
    import numpy as np

    rng = np.random.default_rng(0)
    base = {
        "x_train": rng.integers(0, 256, (40, 6, 6), dtype=np.uint8),
        "y_train": rng.integers(0, 3, 40),
        "x_test": rng.integers(0, 256, (10, 6, 6), dtype=np.uint8),
        "y_test": rng.integers(0, 3, 10),
    }
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


def random_filters(spec, k: int, scale: float = 1.0) -> list[torch.Tensor]:
    """k random networks of a spec, weights scaled by 1/sqrt(fan-in)."""
    return [
        torch.randn(k, layer.out_size, layer.filter_size) * scale / layer.filter_size**0.5
        for layer in spec.layers
    ]


def trained_hypernet(run_dir: Path):
    """The hypernetwork of a run folder's newest checkpoint (in eval mode)."""
    from weightgen.runfolder import open_run

    return open_run(run_dir).hypernet


def fresh_hypernet(config):
    """The untrained hypernetwork of a config, initialised as training initialises it."""
    from weightgen.methods import build_method

    return build_method(config).hypernet


def digits_target(filters: int = 4) -> dict:
    """A small CNN for the 8x8 digits as a config's ``target`` section: a 3x3 conv of
    ``filters`` channels, 2x2 pooling, a linear layer to the 10 classes."""
    return {
        "layers": [
            {
                "name": "conv1",
                "kind": "conv",
                "in_size": 1,
                "out_size": filters,
                "kernel_size": 3,
                "pool": 2,
            },
            {
                "name": "fc1",
                "kind": "linear",
                "in_size": 16 * filters,
                "out_size": 10,
                "activation": "none",
            },
        ]
    }


def load_script(name: str):
    """The module of ``scripts/<name>.py`` (scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def curve_point(size, ensembles, vote, nll, ood=None):
    """One point of ``evaluate --curve --json``'s curve: vote and OOD AUROC as (mean, min,
    max), NLL as one value; ECE 0.01 and disagreement 5.12 % throughout."""
    stat = lambda m, lo, hi: {"mean": m, "min": lo, "max": hi}  # noqa: E731
    out = {
        "size": size,
        "ensembles": ensembles,
        "majority_vote": stat(*vote),
        "nll": stat(nll, nll, nll),
        "ece": stat(0.01, 0.01, 0.01),
        "disagreement": stat(0.0512, 0.05, 0.06),
    }
    if ood is not None:
        out["ood_auroc"] = stat(*ood)
    return out
