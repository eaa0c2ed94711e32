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
