import torch

from weightgen.data import Split
from weightgen.evaluate import (ensemble_metrics, evaluate_networks, majority_vote,
                                mean_probability, most_confident, predict)
from weightgen.targets import forward, mnist_cnn

from .test_targets import random_filters


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


def test_predict_in_chunks_equals_one_pass():
    spec = mnist_cnn()
    filters = random_filters(spec, 5)
    images = torch.rand(30, 1, 28, 28)
    torch.testing.assert_close(predict(spec, filters, images, chunk_network_images=24,
                                       image_chunk=8), forward(spec, filters, images))


def test_disjoint_ensembles_are_averaged():
    spec = mnist_cnn()
    filters = random_filters(spec, 6)
    split = Split(torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,)))
    result = evaluate_networks(spec, filters, split, ensemble_size=3)
    assert result["ensembles"] == 2 and result["networks"] == 6
    per = result["ensemble_majority_vote_per_ensemble"]
    assert result["ensemble_majority_vote"] == sum(per) / 2
    assert len(result["accuracies"]) == 6
