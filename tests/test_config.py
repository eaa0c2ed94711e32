from pathlib import Path

import pytest

from weightgen.config import Config, config_from_dict, load_config, save_config
from weightgen.errors import WeightgenError

from .conftest import REPO, tiny_config_dict


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config.target.build().num_weights > 0


def test_paper_configs_hold_the_papers_values():
    config = load_config(REPO / "configs" / "paper_lambda1e3.yaml")
    assert config.objective.lam == 1e3 and config.seed == 8734
    assert config.train.steps == 13000 and config.train.noise_samples == 32
    assert config.train.images_per_network == 32 and config.train.lr == 3e-4
    assert config.train.lr_decay == 0.99998 and config.objective.entropy_metric == "l1"
    assert load_config(REPO / "configs" / "paper_lambda1e5.yaml").objective.lam == 1e5


def test_roundtrip(tmp_path):
    config = config_from_dict(tiny_config_dict())
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config


@pytest.mark.parametrize("patch, message", [
    ({"train": {"stepz": 3}}, "unknown key train.stepz"),
    ({"colour": 1}, "unknown key colour"),
    ({"train": {"steps": "many"}}, "train.steps must be an integer"),
    ({"train": {"steps": 1.5}}, "train.steps must be an integer"),
    ({"train": {"lr": -1.0}}, "train.lr must be > 0"),
    ({"train": {"noise_samples": 1}}, "train.noise_samples must be >= 2"),
    ({"objective": {"lambda": 0}}, "objective.lambda must be > 0"),
    ({"objective": {"gauge": "maybe"}}, "objective.gauge must be one of"),
    ({"objective": {"entropy_metric": "l3"}}, "objective.entropy_metric must be one of"),
    ({"train": {"adam_betas": [0.9]}}, "train.adam_betas must have 2 entries"),
    ({"target": {"preset": "resnet"}}, "unknown target preset 'resnet'"),
    ({"hypernet": {"generator_hidden": [[4]]}}, "generator_hidden"),
    ({"train": 5}, "train must be a mapping"),
])
def test_bad_values_name_the_key(patch, message):
    data = tiny_config_dict()
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    with pytest.raises(WeightgenError, match=message):
        config_from_dict(data)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(WeightgenError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(WeightgenError, match="not valid YAML"):
        load_config(bad)


def test_defaults_are_the_paper():
    config = Config()
    assert config.hypernet.noise_dim == 300 and config.objective.lam == 1e3
