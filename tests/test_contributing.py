"""CONTRIBUTING.md's example method runs as written: registered, trained by the shared loop on
the 8x8 digits, sampled and evaluated through the method interface."""

from __future__ import annotations

import json
import re

import pytest
import torch

from tests.helpers import FORWARD_CLOSE, REPO
from weightgen.config import config_from_dict
from weightgen.layers import LAYER_KINDS
from weightgen.loop import train
from weightgen.methods import METHODS
from weightgen.runfolder import open_run
from weightgen.terms import TERMS

DIGITS_TARGET = {
    "layers": [
        {"name": "conv1", "kind": "conv", "in_size": 1, "out_size": 8, "kernel_size": 3, "pool": 2},
        {"name": "fc1", "kind": "linear", "in_size": 128, "out_size": 10, "activation": "none"},
    ]
}


def run_example(defines: str) -> dict:
    """Execute the CONTRIBUTING.md Python block that defines ``defines``; its namespace."""
    text = (REPO / "CONTRIBUTING.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if defines in b)
    namespace: dict = {}
    exec(compile(block, "CONTRIBUTING.md", "exec"), namespace)  # noqa: S102 (our own docs)
    return namespace


@pytest.fixture
def example_method():
    yield run_example("class GaussianCloud")["GaussianCloud"]
    METHODS.pop("gaussian_cloud", None)


@pytest.fixture
def example_layer():
    yield run_example("class StridedConv")["StridedConv"]
    LAYER_KINDS.pop("strided_conv", None)


@pytest.fixture
def example_term():
    yield run_example("class WeightSpread")["WeightSpread"]
    TERMS.remove(TERMS[-1])


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
    with pytest.raises(
        WeightgenError,
        match=r"unknown key gaussian_cloud.sample \(did you mean gaussian_cloud.samples\?\)$",
    ):
        config_from_dict({**base, "gaussian_cloud": {"sample": 3}})
    with pytest.raises(WeightgenError, match="gaussian_cloud.lr must be a number"):
        config_from_dict({**base, "gaussian_cloud": {"lr": "fast"}})
    with pytest.raises(WeightgenError, match="gaussian_cloud.samples must be >= 1, got 0"):
        config_from_dict({**base, "gaussian_cloud": {"samples": 0}})
    assert config_from_dict(base).gaussian_cloud.samples == 4  # defaults when not given


def test_the_documented_term_joins_the_loss_from_its_config_section(example_term, tmp_path):
    from weightgen.models.hypernet import HyperNetwork
    from weightgen.objective import objective
    from weightgen.symmetry import gauge_fix

    base = {
        "name": "spread",
        "data": {"name": "digits", "ood": None},
        "target": DIGITS_TARGET,
        "train": {
            "steps": 6,
            "noise_samples": 4,
            "images_per_network": 8,
            "log_every": 2,
            "validate_every": 6,
            "validation_networks": 4,
        },
    }
    plain = config_from_dict(base)
    spread = config_from_dict({**base, "objective": {"terms": {"weight_spread": {"weight": 0.5}}}})
    assert plain.objective.terms["weight_spread"].weight == 0.0  # registered: defaults
    assert config_from_dict(spread.to_dict()) == spread  # the section round-trips

    torch.manual_seed(0)
    g = HyperNetwork(spread.spec(), spread.hypernet)
    z = g.sample_noise(4, torch.Generator().manual_seed(1))
    images, labels = torch.rand(4, 8, 1, 8, 8), torch.randint(0, 10, (4, 8))
    with_term = objective(g, z, images, labels, spread.objective)
    without = objective(g, z, images, labels, plain.objective)
    rows = spread.spec().flatten(gauge_fix(g.spec, g(z)))
    expected = torch.log(torch.cdist(rows, rows).sum() / 12)
    torch.testing.assert_close(with_term.weight_spread, expected.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(with_term.loss, without.loss - 0.5 * expected, rtol=1e-5, atol=1e-3)

    metrics = train(spread, tmp_path / "run", device="cpu", progress=False)
    assert "weight_spread" in metrics  # validation computes it and adds it to the loss
    logged = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"weight_spread"' in logged


def test_an_unregistered_term_section_is_refused():
    from weightgen.errors import WeightgenError

    with pytest.raises(WeightgenError, match="objective.terms.nope is no registered section"):
        config_from_dict({"objective": {"terms": {"nope": {"weight": 1.0}}}})


STRIDED_TARGET = {
    "layers": [
        {"name": "down1", "kind": "strided_conv", "in_size": 1, "out_size": 6, "kernel_size": 3},
        {"name": "conv2", "kind": "conv", "in_size": 6, "out_size": 4, "kernel_size": 3, "pool": 2},
        {"name": "fc1", "kind": "linear", "in_size": 16, "out_size": 10, "activation": "none"},
    ]
}


def test_the_documented_layer_kind_runs_everywhere(example_layer, tmp_path):
    from weightgen.cost import target_flops
    from weightgen.errors import WeightgenError
    from weightgen.symmetry import gauge_fix
    from weightgen.targets import TargetSpec, forward

    spec = TargetSpec.from_dict({"input_shape": [1, 8, 8], **STRIDED_TARGET})
    assert spec.shapes() == [(1, 8, 8), (6, 4, 4), (4, 2, 2), (10,)]
    assert spec.num_weights == 6 * 10 + 4 * 55 + 10 * 17
    # forward FLOPs: 2 x (6*9*16 + 4*54*16 + 10*16) multiply-adds
    assert target_flops(spec)[0] == 2 * (6 * 9 * 16 + 4 * 54 * 16 + 10 * 16)
    torch.manual_seed(0)
    filters = [torch.randn(3, layer.out_size, layer.filter_size) for layer in spec.layers]
    images = torch.rand(5, 1, 8, 8)
    reference = forward(spec, filters, images, "reference")  # torch.nn modules, one by one
    for impl in ("per_network", "grouped"):
        torch.testing.assert_close(forward(spec, filters, images, impl), reference, **FORWARD_CLOSE)
    own = torch.rand(3, 5, 1, 8, 8)  # each network its own images
    torch.testing.assert_close(
        forward(spec, filters, own, "grouped"),
        forward(spec, filters, own, "reference"),
        **FORWARD_CLOSE,
    )
    # the gauge fix keeps every network's function (scaling symmetry through the new kind)
    torch.testing.assert_close(
        forward(spec, gauge_fix(spec, filters), images, "reference").softmax(-1),
        reference.softmax(-1),
    )
    odd = {"input_shape": [1, 7, 7], **STRIDED_TARGET}
    with pytest.raises(WeightgenError, match="down1 has stride 2 and needs an even size"):
        TargetSpec.from_dict(odd)

    config = config_from_dict(
        {
            "name": "strided",
            "data": {"name": "digits", "ood": None},
            "target": STRIDED_TARGET,
            "train": {
                "steps": 30,
                "noise_samples": 8,
                "images_per_network": 16,
                "lr": 3e-3,
                "log_every": 5,
                "validate_every": 30,
                "validation_networks": 8,
            },
            "objective": {"lambda": 100.0},
        }
    )
    train(config, tmp_path / "run", device="cpu", progress=False)
    lines = [
        line
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if '"train"' in line
    ]
    first, last = (json.loads(lines[i])["cross_entropy"] for i in (0, -1))
    assert last < first  # the hypernetwork learns through the new kind


def test_the_documented_dataset_trains_a_generator(tmp_path):
    import weightgen
    from weightgen.data import DATASETS

    run_example('@register("stripes")')
    try:
        images, labels = weightgen.datasets.load("stripes", "validation")
        assert images.shape == (200, 1, 16, 16) and set(labels.tolist()) == {0, 1}
        config = config_from_dict(
            {
                "name": "stripes",
                "data": {"name": "stripes", "ood": None},
                "target": {
                    "layers": [
                        {
                            "name": "conv1",
                            "kind": "conv",
                            "in_size": 1,
                            "out_size": 4,
                            "kernel_size": 3,
                            "pool": 4,
                        },
                        {
                            "name": "fc1",
                            "kind": "linear",
                            "in_size": 64,
                            "out_size": 2,
                            "activation": "none",
                        },
                    ]
                },
                "objective": {"lambda": 100.0},
                "train": {
                    "steps": 40,
                    "noise_samples": 8,
                    "images_per_network": 16,
                    "lr": 3e-3,
                    "validate_every": 40,
                    "validation_networks": 8,
                },
            }
        )
        metrics = train(config, tmp_path / "run", device="cpu", progress=False)
        assert metrics["ensemble_majority_vote"] > 0.9  # stripes are easy; chance is 0.5
    finally:
        DATASETS.pop("stripes", None)
