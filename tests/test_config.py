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
