"""The built-in layer kinds: shapes, checks, counts and the registry's refusal of unknown kinds."""

import pytest
import torch

from weightgen.errors import WeightgenError
from weightgen.layers import LAYER_KINDS
from weightgen.targets import LayerSpec, TargetSpec, mnist_cnn


def test_the_papers_cnn_shapes_flops_and_activations_per_kind():
    spec = mnist_cnn()
    assert spec.shapes() == [(1, 28, 28), (32, 14, 14), (16, 7, 7), (8,), (10,)]
    conv1, conv2, fc1, fc2 = spec.layers
    conv, linear = LAYER_KINDS["conv"], LAYER_KINDS["linear"]
    assert conv.multiply_adds(conv1, (1, 28, 28)) == 32 * 25 * 28 * 28
    assert conv.multiply_adds(conv2, (32, 14, 14)) == 16 * 800 * 14 * 14
    assert linear.multiply_adds(fc1, (16, 7, 7)) == 8 * 784
    # before and after pooling
    assert conv.activation_floats(conv1, (1, 28, 28)) == 32 * 28 * 28 + 32 * 14 * 14
    assert linear.activation_floats(fc2, (8,)) == 10
    # the gauge's blocks: kernel area for a conv, H*W for the linear layer after the convs
    assert [spec.channel_block(i) for i in range(4)] == [25, 25, 49, 1]


def test_an_unknown_kind_is_refused_with_the_choices():
    with pytest.raises(WeightgenError, match=r"unknown kind 'deconv'; choose one of \['conv'"):
        TargetSpec((1, 4, 4), (LayerSpec("d", "deconv", 1, 2), LayerSpec("fc", "linear", 32, 3)))


def test_a_conv_after_a_linear_layer_and_a_pooling_linear_layer_are_refused():
    with pytest.raises(WeightgenError, match="conv after a linear one|after a linear one"):
        TargetSpec(
            (1, 4, 4),
            (
                LayerSpec("fc", "linear", 16, 4),
                LayerSpec("c", "conv", 4, 2),
                LayerSpec("o", "linear", 2, 2),
            ),
        )
    with pytest.raises(WeightgenError, match="fc is linear and cannot pool"):
        TargetSpec((1, 4, 4), (LayerSpec("fc", "linear", 16, 4, pool=2, activation="none"),))


def test_the_module_reader_matches_each_kinds_grouped_forward():
    spec = mnist_cnn()
    module = spec.build_module()
    names = [name for name, _ in module.named_children()]
    assert names == [
        "conv1",
        "conv1_relu",
        "conv1_pool",
        "conv2",
        "conv2_relu",
        "conv2_pool",
        "fc1_flatten",
        "fc1",
        "fc1_relu",
        "fc2",
    ]
    torch.manual_seed(0)
    filters = [torch.randn(1, layer.out_size, layer.filter_size) * 0.1 for layer in spec.layers]
    module.load_state_dict({k: v[0] for k, v in spec.to_state_dict(filters).items()})
    images = torch.rand(3, 1, 28, 28)
    from weightgen.targets import forward

    torch.testing.assert_close(module(images), forward(spec, filters, images, "grouped")[0])
