"""Every registered method keeps the interface's promises: built from a config, seeded, its
state round-trips through a checkpoint payload, draws are reproducible and checked."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import tiny_config_dict
from weightgen.config import config_from_dict
from weightgen.errors import WeightgenError
from weightgen.methods import METHODS, build_method

NETWORK_METHODS = ["hypernetwork", "multi_hypernetwork", "hypergan", "mnfg", "direct"]


def config_of(method: str):
    data = tiny_config_dict()
    data.update(
        method=method,
        direct={"copies": 3, "steps": 2},
        mnfg={"steps": 2, "hidden_q": 4, "hidden_r": 4},
        multi_hypernetwork={"components": 2},
        hypergan={
            "code_dim": 4,
            "mixer_hidden": [8],
            "generator_hidden": [8],
            "discriminator_hidden": [8],
        },
    )
    return config_from_dict(data)


def test_the_registry_names_every_built_in_method():
    assert sorted(METHODS) == [
        "direct",
        "hypergan",
        "hypernetwork",
        "mnfg",
        "multi_hypernetwork",
        "toy",
    ]
    assert all(cls.name == name for name, cls in METHODS.items())


def test_an_unknown_method_is_a_one_line_config_error():
    data = tiny_config_dict()
    data["method"] = "gan"
    with pytest.raises(WeightgenError, match="config: method must be one of"):
        config_from_dict(data)


@pytest.mark.parametrize("name", NETWORK_METHODS)
def test_state_round_trips_and_draws_are_seeded(name):
    method = build_method(config_of(name))
    twin = build_method(config_of(name))  # the same seed: the same initial parameters
    for a, b in zip(method.module.parameters(), twin.module.parameters()):
        assert torch.equal(a, b)
    with torch.no_grad():
        for p in method.module.parameters():
            p.add_(0.01)
    twin.load_state(method.state())
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    a, b = method.draw(3, gen()), twin.draw(3, gen())
    assert len(a) == 3 and [f.shape for f in a.filters] == [
        (3, layer.out_size, layer.filter_size) for layer in method.spec.layers
    ]
    assert all(torch.equal(x, y) for x, y in zip(a.filters, b.filters))


@pytest.mark.parametrize("name", ["mnfg", "direct"])
def test_batch_statistics_are_refused_without_batch_norm(name):
    with pytest.raises(WeightgenError, match="has no batch norm"):
        build_method(config_of(name)).draw(2, None, batch_norm="batch")


def test_a_fixed_set_refuses_more_networks_than_it_holds():
    with pytest.raises(WeightgenError, match="holds 3 trained networks, not 4"):
        build_method(config_of("direct")).draw(4, None)


def test_sampling_in_chunks_gives_the_networks_of_one_draw():
    method = build_method(config_of("hypernetwork"))
    whole = next(method.sample(2001, seed=1, chunk=5000))
    parts = list(method.sample(2001, seed=1, chunk=1000))
    assert [len(p) for p in parts] == [1000, 1001]  # a trailing chunk of one joins another
    for layer, pieces in zip(whole.filters, zip(*(p.filters for p in parts))):
        assert torch.equal(layer, torch.cat(pieces))


def test_warmup_cosine_schedule_rises_peaks_and_falls_to_the_floor():
    from weightgen.config import config_from_dict
    from weightgen.methods import build_method

    config = config_from_dict(
        {
            "train": {
                "lr": 1e-3,
                "steps": 1000,
                "lr_schedule": "warmup_cosine",
                "warmup_steps": 100,
                "lr_min_ratio": 0.1,
            }
        }
    )
    method = build_method(config)
    rates = [method.learning_rate(step) for step in (0, 49, 99, 100, 550, 1000, 2000)]
    assert rates[0] == pytest.approx(1e-5) and rates[1] == pytest.approx(5e-4)
    assert rates[2] == pytest.approx(1e-3) and rates[3] == pytest.approx(1e-3)
    assert rates[4] == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # half way down the cosine
    assert rates[5] == pytest.approx(1e-4) and rates[6] == pytest.approx(1e-4)
    # the default is the paper's exponential decay, unchanged
    paper = build_method(config_from_dict({"train": {"lr": 3e-4, "lr_decay": 0.99998}}))
    assert paper.learning_rate(500) == 3e-4 * 0.99998**500
