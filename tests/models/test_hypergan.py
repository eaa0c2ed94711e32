"""HyperGAN's model: sizes, the generated weights' starting scale, and the two adversarial
losses reaching only their own halves."""

from __future__ import annotations

import torch

from weightgen.models.hypergan import HyperGAN, HyperGANConfig
from weightgen.targets import mnist_cnn

SMALL = HyperGANConfig(
    noise_dim=10, code_dim=6, mixer_hidden=(12,), generator_hidden=(8,), discriminator_hidden=(9,)
)


def test_parameter_count_from_the_sizes():
    spec = mnist_cnn()
    model = HyperGAN(spec, SMALL)
    layers = len(spec.layers)
    mixer = (10 * 12 + 12) + (12 * layers * 6 + layers * 6)
    generators = sum(
        (6 * 8 + 8) + (8 * layer.num_weights + layer.num_weights) for layer in spec.layers
    )
    discriminator = (layers * 6 * 9 + 9) + (9 + 1)
    assert sum(p.numel() for p in model.mixer.parameters()) == mixer
    assert sum(p.numel() for p in model.generators.parameters()) == generators
    assert sum(p.numel() for p in model.discriminator.parameters()) == discriminator


def test_networks_have_the_targets_shapes_and_start_small():
    spec = mnist_cnn()
    torch.manual_seed(0)
    model = HyperGAN(spec)
    filters = model(model.sample_noise(64, torch.Generator().manual_seed(1)))
    for layer, f in zip(spec.layers, filters):
        assert f.shape == (64, layer.out_size, layer.filter_size)
        he = (2.0 / (layer.filter_size - 1)) ** 0.5
        assert 0.02 * he < f[..., :-1].std().item() < 0.5 * he, layer.name  # about he / 10


def test_each_adversarial_loss_reaches_only_its_own_half():
    torch.manual_seed(0)
    model = HyperGAN(mnist_cnn(), SMALL)
    codes = model.codes(model.sample_noise(5))
    mixer_loss, d_loss = model.adversarial_losses(codes, torch.randn(5, codes.shape[1]))
    mixer_loss.backward(retain_graph=True)
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert model.mixer[0].weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    d_loss.backward()
    assert all(p.grad is None for p in model.mixer.parameters())
    assert all(p.grad.abs().sum() > 0 for p in model.discriminator.parameters())
