import torch

from weightgen.config import ObjectiveConfig
from weightgen.hypernet import HyperNetwork
from weightgen.objective import objective
from weightgen.symmetry import gauge_fix, gauge_penalty
from weightgen.entropy import kl_entropy
from weightgen.targets import forward, mnist_cnn


def setup(k=4, b=6):
    g = HyperNetwork(mnist_cnn())
    z = g.sample_noise(k, torch.Generator().manual_seed(0))
    images = torch.rand(k, b, 1, 28, 28)
    labels = torch.randint(0, 10, (k, b))
    return g, z, images, labels


def test_exact_gauge_objective_is_lambda_ce_minus_entropy_of_gauged_weights():
    g, z, images, labels = setup()
    cfg = ObjectiveConfig(lam=1000.0, entropy_metric="l1")
    terms = objective(g, z, images, labels, cfg)
    torch.manual_seed(0)
    g.train()
    filters = g(z)  # same batch statistics: a deterministic function of z
    fixed = gauge_fix(g.spec, filters)
    logits = forward(g.spec, fixed, images)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
    h = kl_entropy(g.spec.flatten(fixed), "l1", dim=300)
    torch.testing.assert_close(terms.loss, 1000.0 * ce - h, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(terms.entropy, h.detach())


def test_soft_gauge_adds_gamma_times_penalty_and_uses_raw_weights():
    g, z, images, labels = setup()
    cfg = ObjectiveConfig(lam=10.0, gauge="soft", gamma=0.5)
    terms = objective(g, z, images, labels, cfg)
    filters = g(z)
    penalty = gauge_penalty(g.spec, filters).mean()
    torch.testing.assert_close(terms.gauge_penalty, penalty.detach(), rtol=1e-5, atol=1e-3)
    h = kl_entropy(g.spec.flatten(filters), "l1", dim=300)
    torch.testing.assert_close(terms.loss, 10.0 * terms.cross_entropy - h + 0.5 * penalty,
                               rtol=1e-5, atol=1e-2)


def test_objective_backpropagates_to_every_parameter():
    g, z, images, labels = setup()
    objective(g, z, images, labels, ObjectiveConfig()).loss.backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
