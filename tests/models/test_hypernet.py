import pytest
import torch

from weightgen.errors import WeightgenError
from weightgen.models.hypernet import HypernetConfig, HyperNetwork
from weightgen.targets import mnist_cnn, mnist_mlp


def test_paper_hypernetwork_has_633640_parameters():
    counts = HyperNetwork(mnist_cnn()).num_parameters()
    assert counts == {"mlp": 631240, "batch_norm": 2400, "total": 633640}


def test_table2_sub_network_sizes():
    g = HyperNetwork(mnist_cnn())
    per_block = [
        sum(p.numel() for n, p in m.named_parameters() if "linears" in n)
        for m in (g.extractor, *g.generators)
    ]
    assert per_block == [436500, 3240, 91600, 90000, 9900]
    assert [lin.weight.shape[0] for lin in g.extractor.linears] == [300, 300, 855]


def test_no_bias_parameters_and_batch_norm_settings():
    g = HyperNetwork(mnist_cnn())
    assert all(
        lin.bias is None for m in g.modules() if isinstance(m, torch.nn.Linear) for lin in [m]
    )
    norms = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 10
    assert all(m.eps == 1e-7 and m.momentum == 0.02 for m in norms)


def test_output_shapes_follow_the_spec():
    for spec in (mnist_cnn(), mnist_mlp((20, 10))):
        cfg = HypernetConfig(generator_hidden=((8,),) * len(spec.layers))
        g = HyperNetwork(spec, cfg)
        filters = g(g.sample_noise(5))
        assert [tuple(f.shape) for f in filters] == [
            (5, layer.out_size, layer.filter_size) for layer in spec.layers
        ]


def test_noise_is_uniform_on_minus_one_one():
    g = HyperNetwork(mnist_cnn())
    z = g.sample_noise(2000, torch.Generator().manual_seed(0))
    assert z.shape == (2000, 300)
    assert z.min() >= -1 and z.max() <= 1
    assert abs(z.mean().item()) < 0.01 and abs(z.var().item() - 1 / 3) < 0.01


def test_initialisation_is_truncated_variance_scaling():
    g = HyperNetwork(mnist_cnn())
    w = g.generators[1].linears[2].weight  # 100 -> 801, fan-in 100
    std = (0.01 / 100) ** 0.5
    assert w.std().item() == pytest.approx(std, rel=0.05)
    assert w.abs().max().item() <= 2 * std / 0.8796 + 1e-7


def test_batch_norm_pools_over_samples_and_filters():
    g = HyperNetwork(mnist_cnn())
    g.train()
    z = g.sample_noise(4)
    g(z)
    # the layer-2 generator's statistics are those of all 4 x 16 codes (samples and filters)
    codes = g.extractor(z).reshape(4, -1, g.cfg.code_dim)[:, 32:48]  # conv2's 16 codes
    generator = g.generators[1]
    h = torch.nn.functional.leaky_relu(
        generator.linears[0](codes.reshape(64, -1)), g.cfg.leaky_slope
    )
    norm = generator.norms[0]
    assert norm.num_batches_tracked.item() == 1
    torch.testing.assert_close(norm.running_mean, h.mean(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(norm.running_var, h.var(0), rtol=1e-4, atol=1e-6)
    # and the layer's output is normalised over those 64 rows
    out = norm(h)
    torch.testing.assert_close(out.mean(0), torch.zeros(out.shape[1]), rtol=0, atol=1e-4)


def test_different_noise_gives_different_networks():
    g = HyperNetwork(mnist_cnn()).eval()
    a, b = g(g.sample_noise(2))[1]
    assert not torch.allclose(a, b)


def test_generator_list_must_match_layers():
    with pytest.raises(WeightgenError, match="generator_hidden"):
        HyperNetwork(mnist_cnn(), HypernetConfig(generator_hidden=((4,),)))


def test_running_statistics_start_from_the_first_batch_so_early_networks_differ():
    import torch

    from weightgen.models.hypernet import HyperNetwork, PooledBatchNorm1d
    from weightgen.targets import mnist_cnn

    torch.manual_seed(0)
    g = HyperNetwork(mnist_cnn()).train()
    z = g.sample_noise(64, torch.Generator().manual_seed(1))
    g(z)  # one training forward
    norm = next(m for m in g.modules() if isinstance(m, PooledBatchNorm1d))
    h = torch.nn.functional.leaky_relu(g.extractor.linears[0](z), g.cfg.leaky_slope)
    torch.testing.assert_close(norm.running_mean, h.mean(0))
    torch.testing.assert_close(norm.running_var, h.var(0))
    g(z)  # later batches move them with the configured momentum
    assert norm.momentum == g.cfg.bn_momentum and int(norm.num_batches_tracked) == 2
    g.eval()
    with torch.no_grad():
        conv1 = g(g.sample_noise(8, torch.Generator().manual_seed(2)))[0]
    spread = conv1.std(0).mean() / conv1.abs().mean()
    assert spread > 0.05  # eval-mode networks are not copies of one another


def test_generator_widths_are_derived_from_the_target_when_not_given():
    from weightgen.config import config_from_dict
    from weightgen.models.hypernet import HyperNetwork
    from weightgen.targets import mnist_cnn, mnist_mlp

    assert HyperNetwork(mnist_cnn()).cfg.generator_hidden == (
        (40, 40),
        (100, 100),
        (100, 100),
        (60, 60),
    )  # the paper's Table 2
    assert HyperNetwork(mnist_mlp()).cfg.generator_hidden == ((40, 40), (100, 100), (60, 60))
    resolved = config_from_dict({"target": {"preset": "mnist_mlp"}}).to_dict()
    assert resolved["hypernet"]["generator_hidden"] == [[40, 40], [100, 100], [60, 60]]
