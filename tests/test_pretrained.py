"""Shipped generators (``pretrained:NAME``): exported weights give the run's networks, and every
shipped generator reproduces the test numbers on its card."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from tests.helpers import REPO
from weightgen import pretrained
from weightgen.cli import main
from weightgen.data import load_dataset
from weightgen.errors import WeightgenError
from weightgen.evaluate import ensemble_metrics, predict
from weightgen.runfolder import open_run, saved_config

LEGACY = REPO / "tests" / "data" / "legacy_runs" / "hypernetwork"


def test_an_exported_generator_samples_the_networks_of_its_run(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "shipped")
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run)
    method = open_run(run)
    pretrained.export(
        method.module.state_dict(),
        yaml.safe_dump(saved_config(run)),
        {"step": method.step},
        pretrained.FOLDER / "tiny",
    )
    assert pretrained.available() == ["tiny"]
    assert not any(p.suffix == ".pt" for p in (pretrained.FOLDER / "tiny").iterdir())
    shipped = open_run("pretrained:tiny")
    assert shipped.step == method.step == 4
    assert open_run("pretrained:tiny", step=4).step == 4
    with pytest.raises(WeightgenError, match="tiny: a shipped generator holds step 4 only, not 3"):
        open_run("pretrained:tiny", step=3)
    a, b = next(method.sample(7, seed=2)), next(shipped.sample(7, seed=2))
    assert all(torch.equal(x, y) for x, y in zip(a.filters, b.filters))
    out = tmp_path / "nets.safetensors"
    assert main(["sample", "pretrained:tiny", "-n", "3", "-o", str(out), "--threads", "1"]) == 0
    import weightgen

    assert len(weightgen.load("pretrained:tiny").sample(3)) == 3


def test_an_unknown_generator_names_the_shipped_ones():
    with pytest.raises(WeightgenError, match="no pretrained generator 'nope'; shipped: "):
        pretrained.resolve("pretrained:nope")


@pytest.mark.parametrize("name", pretrained.available())
def test_a_shipped_generator_reproduces_its_card(name, mnist_dir):
    card = pretrained.card(pretrained.FOLDER / name)
    method = open_run(f"pretrained:{name}")
    assert method.step == card["step"]
    subset = card["test_subset"]
    test = load_dataset(method.config.data, mnist_dir, download=False).test
    nets = next(method.sample(subset["networks"], seed=subset["seed"], chunk=subset["networks"]))
    got = ensemble_metrics(
        predict(method.spec, nets.filters, test.images[: subset["images"]]),
        test.labels[: subset["images"]],
    )
    # the same networks up to float rounding on another CPU: a few images at most flip
    assert got["accuracy_mean"] == pytest.approx(subset["accuracy_mean"], abs=0.002)
    assert got["ensemble_majority_vote"] == pytest.approx(
        subset["ensemble_majority_vote"], abs=0.002
    )
    assert card["test"]["images"] == len(test) and card["test"]["networks"] == 200


@pytest.mark.parametrize("name", pretrained.available())
def test_a_shipped_generators_card_states_its_counted_training_cost(name):
    from weightgen.cost import target_flops

    card = pretrained.card(pretrained.FOLDER / name)
    method = open_run(f"pretrained:{name}")
    tc = method.config.train
    passes = card["step"] * tc.noise_samples * tc.images_per_network  # no function term here
    assert card["training_cost"]["steps"] == card["step"]
    assert card["training_cost"]["network_image_passes"] == passes
    assert card["training_cost"]["target_flops"] == passes * sum(target_flops(method.spec))
