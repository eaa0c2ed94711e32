import pytest
import torch

from tests.helpers import FORWARD_CLOSE, random_filters
from weightgen.errors import WeightgenError
from weightgen.targets import (
    LayerSpec,
    TargetSpec,
    forward,
    mnist_cnn,
    mnist_mlp,
    reference_forward,
)


def test_paper_cnn_has_20018_weights_in_table1_layout():
    spec = mnist_cnn()
    assert spec.num_weights == 20018
    assert [layer.num_weights for layer in spec.layers] == [832, 12816, 6280, 90]
    assert [layer.filter_size for layer in spec.layers] == [26, 801, 785, 9]
    assert dict(spec.state_dict_shapes()) == {
        "conv1.weight": (32, 1, 5, 5),
        "conv1.bias": (32,),
        "conv2.weight": (16, 32, 5, 5),
        "conv2.bias": (16,),
        "fc1.weight": (8, 784),
        "fc1.bias": (8,),
        "fc2.weight": (10, 8),
        "fc2.bias": (10,),
    }


def test_module_of_spec_has_same_parameter_count():
    for spec in (mnist_cnn(), mnist_mlp((50, 20))):
        module = spec.build_module()
        assert sum(p.numel() for p in module.parameters()) == spec.num_weights


@pytest.mark.parametrize("spec", [mnist_cnn(), mnist_mlp((32, 16))], ids=["cnn", "mlp"])
@pytest.mark.parametrize("impl", ["grouped", "per_network"])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("grad", [False, True])  # the per-network path differs without autograd
def test_batched_forward_equals_per_network_modules(spec, impl, shared, grad):
    k, b = 3, 5
    filters = random_filters(spec, k)
    x = torch.rand(b, 1, 28, 28) if shared else torch.rand(k, b, 1, 28, 28)
    expected = reference_forward(spec, filters, x)
    with torch.set_grad_enabled(grad):
        got = forward(spec, filters, x, impl)
    assert got.shape == (k, b, 10)
    torch.testing.assert_close(got, expected, **FORWARD_CLOSE)


def test_forward_gradients_match_reference():
    spec = mnist_cnn()
    filters = [f.requires_grad_() for f in random_filters(spec, 2)]
    x = torch.rand(2, 4, 1, 28, 28)
    grads = {}
    for impl in ("grouped", "per_network", None):
        out = (
            reference_forward(spec, filters, x) if impl is None else forward(spec, filters, x, impl)
        )
        grads[impl] = torch.autograd.grad(out.square().sum(), filters)
    for impl in ("grouped", "per_network"):
        for g, ref in zip(grads[impl], grads[None]):
            torch.testing.assert_close(g, ref, **FORWARD_CLOSE)


def test_flatten_roundtrip_and_state_dict_roundtrip():
    spec = mnist_cnn()
    filters = random_filters(spec, 3)
    theta = spec.flatten(filters)
    assert theta.shape == (3, 20018)
    for a, b in zip(spec.unflatten(theta), filters):
        assert torch.equal(a, b)
    for a, b in zip(spec.from_state_dict(spec.to_state_dict(filters)), filters):
        assert torch.equal(a, b)


def test_spec_json_roundtrip():
    spec = mnist_cnn()
    assert TargetSpec.from_dict(spec.to_dict()) == spec


def test_bad_specs_are_refused_with_the_layer_named():
    with pytest.raises(WeightgenError, match="fc1 expects 100 input features"):
        TargetSpec((1, 28, 28), (LayerSpec("fc1", "linear", 100, 10, activation="none"),))
    with pytest.raises(WeightgenError, match="last layer"):
        TargetSpec((1, 28, 28), (LayerSpec("fc1", "linear", 784, 10),))
    with pytest.raises(WeightgenError, match="odd kernel_size"):
        TargetSpec(
            (1, 28, 28),
            (
                LayerSpec("c", "conv", 1, 4, kernel_size=4),
                LayerSpec("f", "linear", 4 * 28 * 28, 10, activation="none"),
            ),
        )
