import pytest
import torch

from weightgen.symmetry import (
    gauge_fix,
    gauge_penalty,
    permute_filters,
    scale_filters,
    shift_logits,
)
from weightgen.targets import forward, mnist_cnn, mnist_mlp

SPECS = {"cnn": mnist_cnn(), "mlp": mnist_mlp((24, 12))}


def filters_for(spec, k=3):
    torch.manual_seed(1)
    return [
        torch.randn(k, layer.out_size, layer.filter_size, dtype=torch.float64)
        / layer.filter_size**0.5
        for layer in spec.layers
    ]


def run(spec, filters, x):
    return forward(spec, filters, x, "per_network")


def random_scales(spec, filters, index):
    return torch.exp(
        torch.randn(filters[index].shape[0], spec.layers[index].out_size, dtype=torch.float64)
    )


@pytest.fixture(params=list(SPECS))
def case(request):
    spec = SPECS[request.param]
    return spec, filters_for(spec), torch.rand(6, 1, 28, 28, dtype=torch.float64)


def test_scaling_keeps_outputs(case):
    spec, filters, x = case
    for index in range(len(spec.layers) - 1):
        scaled = scale_filters(spec, filters, index, random_scales(spec, filters, index))
        assert not torch.allclose(scaled[index], filters[index])
        torch.testing.assert_close(run(spec, scaled, x), run(spec, filters, x))


def test_logit_shift_keeps_probabilities(case):
    spec, filters, x = case
    shifted = shift_logits(filters, torch.tensor([3.0, -1.5, 10.0], dtype=torch.float64))
    assert not torch.allclose(run(spec, shifted, x), run(spec, filters, x))
    torch.testing.assert_close(run(spec, shifted, x).softmax(-1), run(spec, filters, x).softmax(-1))


def test_permutation_keeps_outputs(case):
    spec, filters, x = case
    for index in range(len(spec.layers) - 1):
        perm = torch.randperm(spec.layers[index].out_size)
        permuted = permute_filters(spec, filters, index, perm)
        torch.testing.assert_close(run(spec, permuted, x), run(spec, filters, x))


def test_gauge_keeps_probabilities_and_meets_the_constraints(case):
    spec, filters, x = case
    fixed = gauge_fix(spec, filters)
    torch.testing.assert_close(run(spec, fixed, x).softmax(-1), run(spec, filters, x).softmax(-1))
    for layer, mat in zip(spec.layers[:-1], fixed[:-1]):
        # Σ_k θ² = n_{l,i} for every filter (section 2.2)
        torch.testing.assert_close(
            mat.square().sum(-1),
            torch.full(mat.shape[:2], float(layer.filter_size), dtype=mat.dtype),
            rtol=1e-6,
            atol=1e-6,
        )
    torch.testing.assert_close(fixed[-1][..., -1].sum(-1), torch.zeros(3, dtype=torch.float64))
    # the exact gauge satisfies the soft one: 𝒢(S(θ)) ≈ 0 (eq. 8)
    assert gauge_penalty(spec, fixed).abs().max() < 1e-8
    assert gauge_penalty(spec, filters).min() > 1.0


def test_gauge_is_idempotent(case):
    spec, filters, _ = case
    once = gauge_fix(spec, filters)
    for a, b in zip(gauge_fix(spec, once), once):
        torch.testing.assert_close(a, b)


def test_gauge_is_invariant_to_scaling_and_logit_shift(case):
    spec, filters, _ = case
    reference = gauge_fix(spec, filters)
    transformed = shift_logits(filters, 2.5)
    for index in range(len(spec.layers) - 1):
        transformed = scale_filters(spec, transformed, index, random_scales(spec, filters, index))
    for a, b in zip(gauge_fix(spec, transformed), reference):
        torch.testing.assert_close(a, b)


def test_gauge_commutes_with_permutation(case):
    spec, filters, _ = case
    perm = torch.randperm(spec.layers[0].out_size)
    left = gauge_fix(spec, permute_filters(spec, filters, 0, perm))
    right = permute_filters(spec, gauge_fix(spec, filters), 0, perm)
    for a, b in zip(left, right):
        torch.testing.assert_close(a, b)


def test_zero_filters_stay_finite_with_finite_gradients():
    spec = mnist_cnn()
    filters = filters_for(spec, 2)
    filters[0][:, :5] = 0.0  # five dead first-layer filters
    filters[1][0] = 0.0  # a whole dead layer in one network
    filters = [f.float().requires_grad_() for f in filters]
    fixed = gauge_fix(spec, filters)
    assert all(torch.isfinite(f).all() for f in fixed)
    grads = torch.autograd.grad(sum(f.sum() for f in fixed), filters)
    assert all(torch.isfinite(g).all() for g in grads)


def test_last_layer_cannot_be_scaled_or_permuted():
    spec = mnist_cnn()
    filters = filters_for(spec)
    with pytest.raises(ValueError):
        scale_filters(spec, filters, 3, torch.ones(10))
    with pytest.raises(ValueError):
        permute_filters(spec, filters, 3, torch.arange(10))


# ---- property: the gauge is finite and idempotent on any finite weights ----------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

SMALL = mnist_mlp((3, 2))  # 784 -> 3 -> 2 -> 10: small enough to draw every weight
_weights = arrays(
    "float64",
    (SMALL.num_weights,),
    elements=st.one_of(st.just(0.0), st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)),
)


@settings(max_examples=60, deadline=None)
@given(_weights)
def test_gauge_is_finite_and_idempotent_for_any_weights(theta):
    filters = SMALL.unflatten(torch.from_numpy(theta).unsqueeze(0))
    fixed = gauge_fix(SMALL, filters)
    assert all(torch.isfinite(f).all() for f in fixed)
    again = gauge_fix(SMALL, fixed)
    for a, b in zip(again, fixed):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_per_network_permutations_match_one_network_at_a_time():
    spec = mnist_cnn()
    filters = [torch.randn(3, layer.out_size, layer.filter_size) for layer in spec.layers]
    orders = torch.stack([torch.randperm(32) for _ in range(3)])  # (K, out)
    together = permute_filters(spec, filters, 0, orders)
    for k in range(3):
        alone = permute_filters(spec, [f[k : k + 1] for f in filters], 0, orders[k])
        for a, b in zip(together, alone):
            torch.testing.assert_close(a[k : k + 1], b, rtol=0, atol=0)


def test_canonical_order_is_invariant_to_filter_permutations_and_keeps_the_function():
    from weightgen.symmetry import canonical_order
    from weightgen.targets import forward

    spec = mnist_cnn()
    filters = gauge_fix(
        spec, [torch.randn(4, layer.out_size, layer.filter_size) for layer in spec.layers]
    )
    moved = filters
    for index in range(len(spec.layers) - 1):
        orders = torch.stack([torch.randperm(spec.layers[index].out_size) for _ in range(4)])
        moved = permute_filters(spec, moved, index, orders)
    assert not torch.equal(moved[1], filters[1])
    for a, b in zip(canonical_order(spec, moved), canonical_order(spec, filters)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    x = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(
        forward(spec, canonical_order(spec, filters), x),
        forward(spec, filters, x),
        rtol=1e-4,
        atol=1e-4,
    )
