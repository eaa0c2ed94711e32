import math

import pytest
import torch

from weightgen.entropy import kl_entropy, log_unit_ball_volume, nearest_neighbour_distances


def gaussian_entropy(cov: torch.Tensor) -> float:
    d = cov.shape[0]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + torch.logdet(cov).item())


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_full_estimator_matches_gaussian_closed_form(metric):
    torch.manual_seed(3)
    cov = torch.tensor([[2.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.5]], dtype=torch.float64)
    samples = torch.distributions.MultivariateNormal(
        torch.zeros(3, dtype=torch.float64), cov
    ).sample((6000,))
    estimate = kl_entropy(samples, metric, full=True).item()
    assert estimate == pytest.approx(gaussian_entropy(cov), abs=0.06)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_full_estimator_matches_uniform_closed_form(metric):
    torch.manual_seed(4)
    # uniform on a box of side 3 in 2-D: H = 2 log 3
    samples = 3 * torch.rand(6000, 2, dtype=torch.float64)
    assert kl_entropy(samples, metric, full=True).item() == pytest.approx(2 * math.log(3), abs=0.05)


def test_paper_form_is_digamma_plus_scaled_mean_log_distance():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [5.0, 5.0]], dtype=torch.float64)
    eps = torch.tensor([1.0, 1.0, 3.0, 7.0], dtype=torch.float64)  # L1 nearest neighbours
    torch.testing.assert_close(nearest_neighbour_distances(x, "l1"), eps)
    expected = (
        torch.special.digamma(torch.tensor(4.0, dtype=torch.float64))
        + 300 * torch.log(eps + 1e-8).mean()
    )
    torch.testing.assert_close(kl_entropy(x, "l1", dim=300), expected)


def test_unit_ball_volumes():
    assert math.exp(log_unit_ball_volume(2, "l2")) == pytest.approx(math.pi)
    assert math.exp(log_unit_ball_volume(3, "l2")) == pytest.approx(4 / 3 * math.pi)
    assert math.exp(log_unit_ball_volume(2, "l1")) == pytest.approx(2.0)
    assert math.exp(log_unit_ball_volume(3, "l1")) == pytest.approx(8 / 6)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_duplicates_give_finite_values_and_gradients(metric):
    x = torch.randn(5, 7)
    x = torch.cat([x, x[:2]]).requires_grad_()  # two exact duplicates
    h = kl_entropy(x, metric, dim=300)
    assert torch.isfinite(h)
    (grad,) = torch.autograd.grad(h, x)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_distances_and_gradients_equal_the_minimum_over_all_pairs(metric):
    x = torch.randn(32, 500, dtype=torch.float64, requires_grad=True)
    dist = torch.cdist(x, x, p=1.0 if metric == "l1" else 2.0)
    brute = dist.masked_fill(torch.eye(32, dtype=torch.bool), math.inf).min(1).values
    fast = nearest_neighbour_distances(x, metric)
    torch.testing.assert_close(fast, brute)
    weights = torch.rand(32, dtype=torch.float64)
    (expected,) = torch.autograd.grad((weights * brute.log()).sum(), x)
    (got,) = torch.autograd.grad((weights * fast.log()).sum(), x)
    torch.testing.assert_close(got, expected)


def test_entropy_grows_with_spread():
    x = torch.randn(64, 10)
    assert kl_entropy(2 * x, "l1").item() > kl_entropy(x, "l1").item()
    # scaling by a multiplies distances by a: Ĥ shifts by d log a exactly
    torch.testing.assert_close(
        kl_entropy(2 * x, "l1", dim=10) - kl_entropy(x, "l1", dim=10),
        torch.tensor(10 * math.log(2.0)),
        rtol=1e-4,
        atol=1e-4,
    )


def test_needs_two_samples():
    with pytest.raises(ValueError):
        kl_entropy(torch.zeros(1, 3))


# ---- property: finite for any finite samples, duplicates included ---------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=80, deadline=None)
@given(
    arrays(
        "float64",
        st.tuples(st.integers(2, 12), st.integers(1, 6)),
        elements=st.floats(-1e6, 1e6, allow_nan=False),
    ),
    st.sampled_from(["l1", "l2"]),
)
def test_estimate_is_finite_for_any_samples(samples, metric):
    x = torch.from_numpy(samples).requires_grad_()
    h = kl_entropy(x, metric, dim=300)
    assert torch.isfinite(h)
    (grad,) = torch.autograd.grad(h, x)
    assert torch.isfinite(grad).all()
