import pytest
import torch

from tests.helpers import random_filters
from weightgen.data import Split
from weightgen.evaluate import (
    ensemble_metrics,
    evaluate_networks,
    interleave,
    majority_vote,
    mean_probability,
    most_confident,
    predict,
    prediction_disagreement,
)
from weightgen.targets import forward, mnist_cnn


def test_majority_vote_breaks_ties_to_the_smallest_label():
    # 4 networks, 1 image, 3 classes: votes 2 for class 2, 2 for class 1
    logits = torch.tensor([[[0, 0, 9.0]], [[0, 9.0, 0]], [[0, 0, 9.0]], [[0, 9.0, 0]]])
    assert majority_vote(logits).tolist() == [1]


def test_mean_probability_and_most_confident():
    logits = torch.log(torch.tensor([[[0.6, 0.4]], [[0.6, 0.4]], [[0.05, 0.95]]]))
    assert mean_probability(logits).tolist() == [1]  # mean (0.417, 0.583)
    assert majority_vote(logits).tolist() == [0]
    assert most_confident(logits).tolist() == [1]


def test_identical_networks_make_an_ensemble_equal_to_one_member():
    spec = mnist_cnn()
    one = random_filters(spec, 1)
    same = [f.expand(5, -1, -1) for f in one]
    images = torch.rand(40, 1, 28, 28)
    labels = forward(spec, one, images)[0].argmax(-1)
    labels[:10] = (labels[:10] + 1) % 10  # 75 % right
    metrics = ensemble_metrics(forward(spec, same, images), labels)
    assert metrics["accuracy_mean"] == metrics["ensemble_majority_vote"] == 0.75
    assert metrics["ensemble_mean_probability"] == metrics["ensemble_most_confident"] == 0.75
    assert metrics["accuracy_std"] == 0.0


@pytest.mark.parametrize("conv_impl", ["per_network", "grouped"])
def test_predict_in_chunks_equals_one_pass(conv_impl):
    spec = mnist_cnn()
    filters = random_filters(spec, 5)
    images = torch.rand(30, 1, 28, 28)
    torch.testing.assert_close(
        predict(spec, filters, images, chunk_network_images=24, image_chunk=8, conv_impl=conv_impl),
        forward(spec, filters, images, "reference"),
    )


def test_disjoint_ensembles_are_averaged():
    spec = mnist_cnn()
    filters = random_filters(spec, 6)
    split = Split(torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,)))
    result = evaluate_networks(spec, filters, split, ensemble_size=3)
    assert result["ensembles"] == 2 and result["networks"] == 6
    per = result["ensemble_majority_vote_per_ensemble"]
    assert result["ensemble_majority_vote"] == sum(per) / 2
    assert len(result["accuracies"]) == 6


def test_ood_auroc_of_each_ensemble_is_averaged():
    from weightgen.uncertainty import ood_detection

    spec = mnist_cnn()
    filters = random_filters(spec, 6)
    split = Split(torch.rand(30, 1, 28, 28), torch.randint(0, 10, (30,)))
    # the same images as out-of-distribution set: every score ties, AUROC exactly 0.5
    same = evaluate_networks(spec, filters, split, ensemble_size=3, ood_images=split.images)
    assert same["ood_auroc_predictive_entropy"] == pytest.approx(0.5, abs=1e-12)
    assert same["ood_auroc_mutual_information"] == pytest.approx(0.5, abs=1e-12)
    ood = torch.rand(25, 1, 28, 28) * 3
    result = evaluate_networks(spec, filters, split, ensemble_size=3, ood_images=ood)
    per = [
        ood_detection(
            forward(spec, [f[g : g + 3] for f in filters], split.images),
            forward(spec, [f[g : g + 3] for f in filters], ood),
        )
        for g in (0, 3)
    ]
    for key in ("ood_auroc_predictive_entropy", "ood_auroc_mutual_information"):
        assert result[key] == pytest.approx((per[0][key] + per[1][key]) / 2, abs=1e-6)
    assert "ood_auroc_predictive_entropy" not in evaluate_networks(spec, filters, split)


def test_interleave_gives_each_ensemble_equal_shares_of_the_sources():
    a = [torch.arange(4.0).view(4, 1), torch.arange(4.0).view(4, 1, 1)]  # two layers
    b = [10 + torch.arange(4.0).view(4, 1), 10 + torch.arange(4.0).view(4, 1, 1)]
    c = [20 + torch.arange(2.0).view(2, 1), 20 + torch.arange(2.0).view(2, 1, 1)]
    assert interleave([a, b])[0].flatten().tolist() == [0, 10, 1, 11, 2, 12, 3, 13]
    pooled = interleave([a, b, c])
    assert pooled[0].flatten().tolist() == [0, 10, 20, 1, 11, 21, 2, 12, 3, 13]
    assert torch.equal(pooled[1].flatten(), pooled[0].flatten())  # every layer in one order
    assert torch.equal(interleave([a])[0], a[0])


def test_bfloat16_predictions_are_float32_and_close_to_float32_arithmetic():
    spec = mnist_cnn()
    filters = random_filters(spec, 4)
    images = torch.rand(64, 1, 28, 28)
    exact = predict(spec, filters, images)
    fast = predict(spec, filters, images, precision="bfloat16")
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    assert not torch.equal(fast, exact)  # the arithmetic really changed
    # bfloat16 keeps 8 significant bits: about 0.4 % relative error per rounding
    assert (fast - exact).abs().max() <= 0.05 * exact.abs().max()
    assert (fast.argmax(-1) == exact.argmax(-1)).float().mean() >= 0.9


def test_unknown_precision_is_a_clear_error():
    from weightgen.errors import WeightgenError

    spec = mnist_cnn()
    with pytest.raises(WeightgenError, match="unknown precision 'float8'"):
        predict(spec, random_filters(spec, 1), torch.rand(2, 1, 28, 28), precision="float8")


def test_disagreement_and_ensemble_nll_against_their_definitions():
    torch.manual_seed(0)
    logits = torch.randn(7, 50, 4) * 3
    labels = torch.randint(0, 4, (50,))
    predictions = logits.argmax(-1)
    pairs = [(i, j) for i in range(7) for j in range(7) if i != j]
    brute = sum((predictions[i] != predictions[j]).float().mean().item() for i, j in pairs)
    assert prediction_disagreement(logits) == pytest.approx(brute / len(pairs), abs=1e-7)
    m = ensemble_metrics(logits, labels)
    mean_probs = logits.softmax(-1).mean(0)
    assert m["ensemble_nll"] == pytest.approx(
        -mean_probs[torch.arange(50), labels].log().mean().item(), rel=1e-5
    )
    same = logits[:1].expand(5, -1, -1)
    assert prediction_disagreement(same) == 0.0 and prediction_disagreement(logits[:1]) == 0.0
    assert ensemble_metrics(same, labels)["ensemble_nll"] == pytest.approx(
        ensemble_metrics(logits[:1], labels)["cross_entropy"], rel=1e-5
    )


def test_networks_left_over_from_the_ensembles_count_in_single_figures_and_are_reported():
    spec = mnist_cnn()
    filters = random_filters(spec, 3)
    split = Split(torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,)))
    result = evaluate_networks(spec, filters, split, ensemble_size=2)
    assert result["ensembles"] == 1 and result["dropped_networks"] == 1
    logits = forward(spec, filters, split.images)
    each = (logits.argmax(-1) == split.labels).float().mean(-1)
    assert result["accuracies"] == pytest.approx(each.tolist())  # all three networks
    assert result["accuracy_mean"] == pytest.approx(each.mean().item())
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), split.labels.repeat(3))
    assert result["cross_entropy"] == pytest.approx(ce.item(), rel=1e-5)
    # the ensemble figures are the first two networks'
    first = ensemble_metrics(logits[:2], split.labels)
    assert result["ensemble_majority_vote"] == first["ensemble_majority_vote"]
    assert evaluate_networks(spec, filters, split)["dropped_networks"] == 0


def test_ensemble_size_curve_against_its_definition():
    from weightgen.evaluate import ensemble_size_curve

    torch.manual_seed(0)
    logits = torch.randn(10, 60, 4) * 2
    labels = torch.randint(0, 4, (60,))
    ood = torch.randn(10, 30, 4)
    rows = ensemble_size_curve(logits, labels, (1, 2, 5, 20), ood)
    assert [r["size"] for r in rows] == [1, 2, 5]  # 20 > 10 networks: left out
    assert [r["ensembles"] for r in rows] == [10, 5, 2]
    singles = (logits.argmax(-1) == labels).float().mean(-1)
    assert rows[0]["majority_vote"]["mean"] == pytest.approx(singles.mean().item())
    assert rows[0]["majority_vote"]["min"] == pytest.approx(singles.min().item())
    assert rows[0]["disagreement"]["max"] == 0.0
    pair = ensemble_metrics(logits[2:4], labels)  # the second ensemble of size 2
    votes = [
        ensemble_metrics(logits[i : i + 2], labels)["ensemble_majority_vote"]
        for i in range(0, 10, 2)
    ]
    assert rows[1]["majority_vote"]["mean"] == pytest.approx(sum(votes) / 5)
    assert rows[1]["majority_vote"]["max"] == pytest.approx(max(votes))
    nlls = [ensemble_metrics(logits[i : i + 5], labels)["ensemble_nll"] for i in (0, 5)]
    assert rows[2]["nll"]["mean"] == pytest.approx(sum(nlls) / 2, rel=1e-5)
    assert pair["ensemble_majority_vote"] in votes
    for row in rows:
        assert 0.0 <= row["ood_auroc"]["min"] <= row["ood_auroc"]["max"] <= 1.0
        assert 0.0 <= row["ece"]["min"] <= row["ece"]["mean"] <= row["ece"]["max"] <= 1.0


def test_evaluate_networks_adds_the_curve_of_all_networks():
    spec = mnist_cnn()
    filters = random_filters(spec, 5)
    split = Split(torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,)))
    result = evaluate_networks(
        spec,
        filters,
        split,
        ensemble_size=2,
        curve_sizes=(1, 5),
        ood_images=torch.rand(10, 1, 28, 28),
    )
    assert [row["size"] for row in result["curve"]] == [1, 5]
    assert result["curve"][0]["majority_vote"]["mean"] == pytest.approx(result["accuracy_mean"])
    assert "ood_auroc" in result["curve"][1]


def test_predict_reports_every_network_image_pass_as_progress():
    from weightgen.evaluate import predict
    from weightgen.targets import mnist_cnn

    spec = mnist_cnn()
    filters = [torch.randn(3, layer.out_size, layer.filter_size) * 0.1 for layer in spec.layers]
    counts: list[int] = []
    images = torch.rand(300, 1, 28, 28)
    logits = predict(spec, filters, images, image_chunk=128, on_progress=counts.append)
    assert counts == [3 * 128, 3 * 128, 3 * 44]  # after each image chunk: all passes counted
    torch.testing.assert_close(logits, predict(spec, filters, images))
