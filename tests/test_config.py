import re

import pytest

from tests.helpers import REPO, tiny_config_dict
from weightgen.config import Config, config_from_dict, load_config, save_config
from weightgen.errors import WeightgenError


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


@pytest.mark.parametrize(
    "patch, message",
    [
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
    ],
)
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


# ---- property: any document is either a valid config or one WeightgenError -------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_sections = ["target", "hypernet", "objective", "train"]
_known = {
    "train": ["steps", "lr", "noise_samples", "adam_betas", "lr_decay", "validate_every"],
    "objective": ["lambda", "gauge", "gamma", "entropy_metric", "entropy_dim"],
    "hypernet": ["noise_dim", "code_dim", "generator_hidden", "leaky_slope"],
    "target": ["preset", "layers", "input_shape"],
}


@st.composite
def _mutated_configs(draw):
    data = tiny_config_dict()
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(_sections + ["seed", "name", "method", "extra"]))
        if section in _known and draw(st.booleans()):
            key = draw(st.sampled_from(_known[section] + ["bogus"]))
            current = data.get(section)
            data[section] = {**(current if isinstance(current, dict) else {}), key: draw(_values)}
        else:
            data[section] = draw(_values)
    return data


@settings(max_examples=150, deadline=None)
@given(_mutated_configs())
def test_any_config_document_is_valid_or_one_clear_error(data):
    try:
        config = config_from_dict(data)
    except WeightgenError as err:
        assert str(err).startswith(("config:", "target spec:", "unknown target preset"))
        assert "\n" not in str(err)
    else:
        assert isinstance(config, Config)


def test_every_shipped_config_is_found_by_name_and_loads():
    from weightgen.config import shipped_configs

    names = shipped_configs()
    assert {"paper_lambda1e3", "fashion_mnist/mnfg", "digits/hypernetwork"} <= set(names)
    for name in names:
        assert load_config(name).name  # found in the package, not via the working directory
    assert load_config("configs/paper_lambda1e3.yaml") == load_config("paper_lambda1e3")


def test_a_mistyped_config_name_or_key_gets_a_did_you_mean():
    with pytest.raises(
        WeightgenError,
        match=r"shipped config named 'paper_lamda1e3' \(did you mean paper_lambda1e3\?\)",
    ):
        load_config("paper_lamda1e3")
    with pytest.raises(
        WeightgenError, match=r"unknown key objective.lamda \(did you mean objective.lambda\?\)"
    ):
        config_from_dict({"objective": {"lamda": 3.0}})
    with pytest.raises(WeightgenError, match=r"unknown key trian \(did you mean train\?\)"):
        config_from_dict({"trian": {}})
    with pytest.raises(WeightgenError, match=r"unknown key train.zzzz$"):
        config_from_dict({"train": {"zzzz": 1}})  # nothing close: no guess


def test_dotted_overrides_are_applied_before_the_checks():
    config = load_config(
        "paper_lambda1e3",
        [
            "objective.lambda=3000",
            "train.steps=500",
            "train.adam_betas=[0.8, 0.9]",
            "data.ood=null",
        ],
    )
    assert config.objective.lam == 3000.0 and config.train.steps == 500
    assert config.train.adam_betas == (0.8, 0.9) and config.data.ood is None
    assert load_config("mnfg", ["mnfg.lr=0.01"]).mnfg.lr == 0.01  # a method's own section
    for bad, message in [
        ("objective.lambda=-1", "objective.lambda must be > 0, got -1.0"),
        ("objective.lamda=1", "did you mean objective.lambda"),
        ("train", "expected KEY=VALUE"),
        ("train..steps=1", "expected KEY=VALUE"),
        ("seed.x=1", "seed is not a section"),
        ("train.steps=[1", "not valid YAML"),
    ]:
        with pytest.raises(WeightgenError, match=re.escape(message)):
            load_config("paper_lambda1e3", [bad])


def test_range_errors_name_key_rule_and_value():
    for data, message in [
        ({"train": {"lr_decay": 1.5}}, "config: train.lr_decay must be in (0, 1], got 1.5"),
        (
            {"train": {"adam_betas": [0.9, 1.0]}},
            "config: train.adam_betas must be in [0, 1), got (0.9, 1.0)",
        ),
        ({"method": "mnfg", "mnfg": {"hidden_q": 0}}, "config: mnfg.hidden_q must be >= 1, got 0"),
        (
            {"method": "direct", "direct": {"init_std": 0.0}},
            "config: direct.init_std must be > 0, got 0.0",
        ),
    ]:
        with pytest.raises(WeightgenError, match=re.escape(message) + "$"):
            config_from_dict(data)
