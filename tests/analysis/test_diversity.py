import torch

from tests.helpers import random_filters
from weightgen.analysis.diversity import align, diversity_summary, failure_mode, pairwise_distances
from weightgen.symmetry import gauge_fix, permute_filters
from weightgen.targets import forward, mnist_cnn


def test_permuted_copy_has_zero_aligned_distance():
    spec = mnist_cnn()
    torch.manual_seed(2)
    net = gauge_fix(spec, random_filters(spec, 1))
    moved = net
    for index in range(3):
        moved = permute_filters(spec, moved, index, torch.randperm(spec.layers[index].out_size))
    both = [torch.cat([a, b]) for a, b in zip(net, moved)]
    plain = pairwise_distances(spec, both, permutation_aware=False)
    aligned = pairwise_distances(spec, both, permutation_aware=True)
    assert plain[0, 1] > 10.0
    assert aligned[0, 1] < 1e-4
    for a, b in zip(align(spec, net, moved), net):
        torch.testing.assert_close(a, b)


def test_identical_networks_have_zero_diversity():
    spec = mnist_cnn()
    net = gauge_fix(spec, random_filters(spec, 1))
    same = [f.expand(4, -1, -1) for f in net]
    logits = forward(spec, same, torch.rand(20, 1, 28, 28))
    summary = diversity_summary(spec, same, logits)
    assert summary["mean_gauge_fixed_distance"] == 0.0
    assert summary["mean_permutation_aligned_distance"] == 0.0
    assert summary["mean_prediction_disagreement"] == 0.0


def test_failure_mode_detects_diversity_in_ignored_filters():
    spec = mnist_cnn()
    torch.manual_seed(3)
    base = random_filters(spec, 1)
    nets = [f.repeat(50, 1, 1) for f in base]
    nets[0] = nets[0].clone()
    nets[1] = nets[1].clone()
    nets[0][:, :8] += torch.randn(50, 8, 26)  # diverse first-layer filters 0..7 ...
    nets[1][:, :, : 8 * 25] *= 0.0  # ... that the second layer does not read
    report = failure_mode(spec, nets)["conv1"]
    assert report["variance_share_of_weakest"] > 0.99
    assert report["weakest_fraction"] == 0.25


def test_the_permutation_share_is_a_share_even_where_greedy_alignment_fails():
    from weightgen.analysis.diversity import diversity_summary
    from weightgen.targets import mnist_mlp

    spec = mnist_mlp((8, 8))
    torch.manual_seed(3)
    for _ in range(5):  # unrelated random networks: layer-wise matching often makes it worse
        filters = random_filters(spec, 6)
        logits = torch.randn(6, 20, 10)
        summary = diversity_summary(spec, filters, logits)
        assert summary["mean_permutation_aligned_distance"] <= summary["mean_gauge_fixed_distance"]
        assert 0.0 <= summary["share_explained_by_permutations"] <= 1.0
