"""CONTRIBUTING.md's example method runs as written: registered, trained by the shared loop on
the 8x8 digits, sampled and evaluated through the method interface."""

from __future__ import annotations

import re

import pytest
import torch

from tests.helpers import REPO
from weightgen.config import config_from_dict
from weightgen.loop import train
from weightgen.methods import METHODS
from weightgen.runfolder import open_run

DIGITS_TARGET = {
    "layers": [
        {"name": "conv1", "kind": "conv", "in_size": 1, "out_size": 8, "kernel_size": 3, "pool": 2},
        {"name": "fc1", "kind": "linear", "in_size": 128, "out_size": 10, "activation": "none"},
    ]
}


@pytest.fixture
def example_method():
    text = (REPO / "CONTRIBUTING.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class " in b)
    namespace: dict = {}
    exec(compile(block, "CONTRIBUTING.md", "exec"), namespace)  # noqa: S102 (our own docs)
    yield namespace["GaussianCloud"]
    METHODS.pop("gaussian_cloud", None)


def test_the_documented_method_trains_samples_and_evaluates(example_method, tmp_path):
    config = config_from_dict(
        {
            "name": "cloud",
            "method": "gaussian_cloud",
            "data": {"name": "digits", "ood": None},
            "target": DIGITS_TARGET,
            "gaussian_cloud": {"steps": 60, "batch_size": 64, "lr": 0.02, "samples": 4},
            "train": {
                "validate_every": 60,
                "validation_networks": 8,
                "checkpoint_every": 30,
                "log_every": 10,
            },
        }
    )
    before = METHODS["gaussian_cloud"](config)
    metrics = train(config, tmp_path / "run", device="cpu", progress=False)
    assert metrics["kind"] == "validation" and metrics["step"] == 60
    assert metrics["accuracy_mean"] > 0.5  # from chance (0.1) in 60 steps
    method = open_run(tmp_path / "run")
    assert isinstance(method, example_method) and method.step == 60
    assert not torch.equal(method.params["fc1"], before.params["fc1"])
    assert method.config.gaussian_cloud.samples == 4
    assert (tmp_path / "run" / "config.yaml").read_text().count("gaussian_cloud:") == 1
    networks = next(method.sample(5, seed=3))
    again = next(open_run(tmp_path / "run").sample(5, seed=3))
    assert len(networks) == 5 and all(
        torch.equal(a, b) for a, b in zip(networks.filters, again.filters)
    )


def test_a_methods_own_section_is_checked_like_every_other(example_method):
    from weightgen.errors import WeightgenError

    base = {
        "method": "gaussian_cloud",
        "data": {"name": "digits", "ood": None},
        "target": DIGITS_TARGET,
    }
    with pytest.raises(WeightgenError, match="unknown key gaussian_cloud.sample$"):
        config_from_dict({**base, "gaussian_cloud": {"sample": 3}})
    with pytest.raises(WeightgenError, match="gaussian_cloud.lr must be a number"):
        config_from_dict({**base, "gaussian_cloud": {"lr": "fast"}})
    with pytest.raises(WeightgenError, match="samples must be >= 1"):
        config_from_dict({**base, "gaussian_cloud": {"samples": 0}})
    assert config_from_dict(base).gaussian_cloud.samples == 4  # defaults when not given
