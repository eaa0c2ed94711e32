"""The hypernetwork method's validation reports the trained loss (it reuses the objective)."""

from __future__ import annotations

import pytest

from tests.helpers import tiny_config_dict
from weightgen.config import config_from_dict
from weightgen.methods import build_method
from weightgen.symmetry import gauge_penalty


@pytest.mark.parametrize(
    "objective",
    [
        {"lambda": 100.0, "gauge": "soft", "gamma": 5.0},
        {"lambda": 100.0, "canonical_permutation": True},
        {"lambda": 100.0, "function_weight": 2.0, "function_images": 4},
    ],
)
def test_validation_loss_is_the_objective_of_the_validation_networks(mnist, objective):
    data = tiny_config_dict()
    data["objective"] = objective
    config = config_from_dict(data)
    method = build_method(config)
    method.module.eval()
    split = mnist.validation.head(300)
    metrics = method.validate(split)
    obj = config.objective
    function_part = obj.function_weight * metrics.get("function_entropy", 0.0)
    penalty = 0.0
    if obj.gauge == "soft":
        import torch

        from weightgen.rng import seeded_generator

        z = method.hypernet.sample_noise(
            config.train.validation_networks, seeded_generator(config.seed, "validation")
        )
        with torch.no_grad():
            penalty = gauge_penalty(method.spec, method.hypernet(z)).mean().item()
        assert penalty > 0  # the soft gauge's penalty is part of the validation loss
    expected = (
        obj.lam * metrics["cross_entropy"]
        + obj.gamma * penalty
        - metrics["entropy"]
        - function_part
    )
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
    if obj.function_weight:
        assert metrics["function_entropy"] != 0.0


def test_training_step_uses_the_scheduled_lambda(mnist):
    from weightgen.distributed import Context

    data = tiny_config_dict()
    data["objective"] = {"lambda": 10.0, "lambda_start": 1000.0}
    method = build_method(config_from_dict(data))
    steps = method.config.train.steps
    for step, lam in [(0, 1000.0), (steps // 2, 100.0)]:
        result = method.training_step(step, method.module, mnist.train, Context())
        assert result.record["lambda"] == pytest.approx(lam)
        expected = lam * result.record["cross_entropy"] - result.record["entropy"]
        assert result.value.item() == pytest.approx(expected.item(), rel=1e-5)
