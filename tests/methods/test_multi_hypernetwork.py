"""The multi-component generator: K hypernetworks in one run, rows shared out in turn, one
entropy over all their networks."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import tiny_config_dict
from weightgen.config import config_from_dict
from weightgen.errors import WeightgenError
from weightgen.loop import train
from weightgen.methods import build_method
from weightgen.models.hypernet import HypernetConfig, HyperNetwork, MultiHyperNetwork
from weightgen.objective import objective
from weightgen.runfolder import open_run
from weightgen.targets import mnist_cnn

PAPER_G = 633_640  # Table 2: 631,240 MLP weights + 2,400 batch norm


def multi_config(components=2, share_extractor=False, **train):
    data = tiny_config_dict(**train)
    data["method"] = "multi_hypernetwork"
    data["multi_hypernetwork"] = {"components": components, "share_extractor": share_extractor}
    return config_from_dict(data)


def test_parameter_counts_of_independent_and_shared_extractor_components():
    spec = mnist_cnn()
    single = HyperNetwork(spec)
    extractor = sum(p.numel() for p in single.extractor.parameters())
    assert (
        sum(p.numel() for p in MultiHyperNetwork(spec, HypernetConfig(), 4).parameters())
        == 4 * PAPER_G
    )
    shared = MultiHyperNetwork(spec, HypernetConfig(), 4, share_extractor=True)
    assert sum(p.numel() for p in shared.parameters()) == extractor + 4 * (PAPER_G - extractor)


@pytest.mark.parametrize("share", [False, True])
def test_row_i_comes_from_component_i_mod_k(share):
    torch.manual_seed(0)
    g = MultiHyperNetwork(mnist_cnn(), HypernetConfig(), 3, share_extractor=share).eval()
    z = g.sample_noise(7)
    together = g(z)
    for c in range(3):
        alone = g(z[c::3], component=c)
        for a, b in zip(together, alone):
            torch.testing.assert_close(a[c::3], b)
    # the components differ: the same z gives other networks in another component
    assert not torch.allclose(g(z[:2], component=0)[0], g(z[:2], component=1)[0])


def test_first_component_starts_as_the_one_generator_run():
    config = multi_config()
    single = build_method(config.replace(method="hypernetwork")).hypernet
    multi = build_method(config).hypernet
    for (name, a), (_, b) in zip(
        single.state_dict().items(), multi.components[0].state_dict().items()
    ):
        assert torch.equal(a, b), name


def test_one_entropy_over_all_components_and_gradients_reach_each(mnist):
    config = multi_config(components=2, noise_samples=4)
    method = build_method(config)
    g = method.hypernet.train()
    z = g.sample_noise(4, torch.Generator().manual_seed(0))
    idx = torch.arange(32).reshape(4, 8)
    terms = objective(g, z, mnist.train.images[idx], mnist.train.labels[idx], config.objective)
    terms.loss.backward()
    for component in g.components:
        grad = component.generators[0].linears[0].weight.grad
        assert grad is not None and grad.abs().sum() > 0


def test_noise_batch_must_share_out_evenly():
    with pytest.raises(WeightgenError, match="multiple of multi_hypernetwork.components"):
        build_method(multi_config(components=3, noise_samples=4))
    with pytest.raises(WeightgenError, match="at least twice it"):
        build_method(multi_config(components=4, noise_samples=4))
    with pytest.raises(WeightgenError, match="multi_hypernetwork.components must be >= 1"):
        multi_config(components=0)


@pytest.mark.parametrize("share", [False, True])
def test_trains_resumes_and_samples_in_turn(mnist, tmp_path, share):
    config = multi_config(
        components=2, share_extractor=share, steps=4, checkpoint_every=2, validate_every=2
    )
    metrics = train(config, tmp_path / "run", device="cpu", progress=False, data=mnist)
    assert metrics["kind"] == "validation" and metrics["step"] == 4
    method = open_run(tmp_path / "run")
    assert method.step == 4 and method.config.multi_hypernetwork.share_extractor == share
    networks = next(method.sample(6, seed=0, gauge=False))
    z = networks.z
    for c in range(2):  # network i from component i mod 2
        expected = method.hypernet(z[c::2], component=c)
        for got, want in zip(networks.filters, expected):
            torch.testing.assert_close(got[c::2], want)
    again = next(open_run(tmp_path / "run").sample(6, seed=0, gauge=False))
    assert all(torch.equal(a, b) for a, b in zip(networks.filters, again.filters))
    path = method.walk(torch.linspace(0, 1, 3), torch.Generator().manual_seed(0))
    assert path[0].shape[0] == 3
