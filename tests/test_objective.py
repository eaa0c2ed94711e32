import pytest
import torch

from weightgen.entropy import kl_entropy
from weightgen.errors import WeightgenError
from weightgen.models.hypernet import HyperNetwork
from weightgen.objective import ObjectiveConfig, objective
from weightgen.symmetry import gauge_fix, gauge_penalty
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
    torch.testing.assert_close(
        terms.loss, 10.0 * terms.cross_entropy - h + 0.5 * penalty, rtol=1e-5, atol=1e-2
    )


def test_objective_backpropagates_to_every_parameter():
    g, z, images, labels = setup()
    objective(g, z, images, labels, ObjectiveConfig()).loss.backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_function_entropy_term_is_beta_times_entropy_of_probabilities_on_shared_images():
    g, z, images, labels = setup(k=5)
    shared = torch.rand(3, 1, 28, 28)
    base = objective(g, z, images, labels, ObjectiveConfig())
    cfg = ObjectiveConfig(function_weight=2.5, function_images=3)
    terms = objective(g, z, images, labels, cfg, shared_images=shared)
    fixed = gauge_fix(g.spec, g(z))
    probs = forward(g.spec, fixed, shared).softmax(-1)  # (K, M, classes)
    h_f = kl_entropy(probs.flatten(1), "l1", dim=300)
    torch.testing.assert_close(terms.function_entropy, h_f.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(terms.loss, base.loss - 2.5 * h_f, rtol=1e-5, atol=1e-2)


def test_function_entropy_does_not_depend_on_the_gauge():
    """Scaling and logit-shift symmetries leave the networks' functions, hence the term, alone."""
    g, z, images, labels = setup(k=5)
    shared = torch.rand(4, 1, 28, 28)
    exact = objective(
        g,
        z,
        images,
        labels,
        ObjectiveConfig(function_weight=1.0, function_images=4),
        shared_images=shared,
    )
    raw = objective(
        g,
        z,
        images,
        labels,
        ObjectiveConfig(gauge="none", function_weight=1.0, function_images=4),
        shared_images=shared,
    )
    torch.testing.assert_close(exact.function_entropy, raw.function_entropy, rtol=1e-4, atol=1e-3)
    # the weight entropy, in contrast, sees the gauge
    assert abs(exact.entropy - raw.entropy) > 1.0


def test_function_and_canonical_terms_give_finite_gradients_to_every_parameter():
    g, z, images, labels = setup()
    cfg = ObjectiveConfig(function_weight=1.0, function_images=4, canonical_permutation=True)
    objective(g, z, images, labels, cfg, shared_images=images[0, :4]).loss.backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_function_term_without_shared_images_is_a_clear_error():
    g, z, images, labels = setup()
    try:
        objective(g, z, images, labels, ObjectiveConfig(function_weight=1.0))
    except ValueError as err:
        assert "shared_images" in str(err)
    else:
        raise AssertionError("no error")


def test_entropy_dimension_d_is_a_rescaled_lambda():
    """λ·CE − ψ(N) − (d/N)Σ log ε: multiplying d by c gives c × the gradient of λ/c with the
    old d, which Adam (invariant to the gradient's scale) follows identically. So the d of eq.
    14 is not a separate knob from λ (docs/results_history.md, "What moves the ensemble")."""
    g, z, images, labels = setup()

    def gradient(lam, d):
        g.zero_grad()
        objective(g, z, images, labels, ObjectiveConfig(lam=lam, entropy_dim=d)).loss.backward()
        return torch.cat([p.grad.flatten() for p in g.parameters()])

    a, b = gradient(1000.0, 1000), gradient(300.0, 300) * (1000 / 300)
    assert torch.linalg.vector_norm(a - b) < 1e-5 * torch.linalg.vector_norm(b)
    # while λ alone changes the direction
    c = gradient(1000.0, 300)
    assert torch.linalg.vector_norm(c - b * 300 / 1000) > 1e-2 * torch.linalg.vector_norm(c)


def test_lambda_schedule_moves_geometrically_from_lambda_start_to_lambda():
    constant = ObjectiveConfig(lam=100.0)
    assert constant.at_step(7, 10) is constant
    scheduled = ObjectiveConfig(lam=100.0, lambda_start=10000.0, canonical_permutation=True)
    assert scheduled.at_step(0, 10).lam == pytest.approx(10000.0)
    assert scheduled.at_step(5, 10).lam == pytest.approx(1000.0)  # the geometric mean
    assert scheduled.at_step(10, 10).lam == pytest.approx(100.0)
    assert scheduled.at_step(12, 10).lam == pytest.approx(100.0)  # trained past the end
    assert scheduled.at_step(5, 10).canonical_permutation  # only λ changes
    with pytest.raises(WeightgenError, match="objective.lambda_start must be > 0"):
        ObjectiveConfig(lambda_start=0.0)
