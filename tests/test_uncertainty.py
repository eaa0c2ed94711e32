import math

import pytest
import torch

from weightgen.uncertainty import (
    calibration,
    mutual_information,
    ood_auroc,
    predictive_entropy,
    uncertainty_report,
)


def test_identical_distributions_give_auroc_one_half():
    torch.manual_seed(0)
    scores = torch.rand(20000)
    assert ood_auroc(scores[:10000], scores[10000:]) == pytest.approx(0.5, abs=0.01)
    assert ood_auroc(torch.zeros(5), torch.ones(5)) == 1.0


def test_calibration_closed_forms():
    labels = torch.tensor([0, 1, 1, 0])
    probs = torch.tensor([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.3, 0.7]])
    result = calibration(probs, labels, bins=10)
    nll = -(math.log(0.8) + math.log(0.6) + math.log(0.9) + math.log(0.3)) / 4
    brier = ((0.2**2 * 2) + (0.4**2 * 2) + (0.1**2 * 2) + (0.7**2 * 2)) / 4
    # ECE: bins of confidence 0.8, 0.6, 0.9, 0.7 -> |acc - conf| = .2, .4, .1, .7
    assert result["nll"] == pytest.approx(nll, rel=1e-6)
    assert result["brier"] == pytest.approx(brier, rel=1e-6)
    assert result["ece"] == pytest.approx((0.2 + 0.4 + 0.1 + 0.7) / 4, abs=1e-6)


def test_identical_members_have_zero_mutual_information():
    p = torch.softmax(torch.randn(1, 6, 4), -1).expand(5, -1, -1)
    torch.testing.assert_close(mutual_information(p), torch.zeros(6), atol=1e-6, rtol=0)
    torch.testing.assert_close(predictive_entropy(p), predictive_entropy(p[:1]))


def test_disagreeing_members_have_positive_mutual_information():
    p = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert mutual_information(p).item() == pytest.approx(math.log(2), rel=1e-5)


def test_report_of_an_ensemble_of_identical_networks_equals_the_single_network():
    logits = torch.randn(1, 50, 10).expand(4, -1, -1)
    labels = torch.randint(0, 10, (50,))
    report = uncertainty_report(logits, labels, torch.randn(1, 30, 10).expand(4, -1, -1))
    assert report["single"] == pytest.approx(report["ensemble"])
