"""The objective-term registry: which terms a config enables, their weights, and the loss
written once as Σ w_t·v_t."""

import pytest
import torch

from weightgen.objective import ObjectiveConfig
from weightgen.terms import TERMS, enabled_terms, weighted_sum


def names(cfg: ObjectiveConfig) -> list[str]:
    return [type(t).__name__ for t in enabled_terms(cfg)]


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (ObjectiveConfig(), ["CrossEntropy", "WeightEntropy"]),  # eq. 11
        (
            ObjectiveConfig(gauge="soft", gamma=0.5),
            ["CrossEntropy", "WeightEntropy", "GaugePenalty"],
        ),
        (ObjectiveConfig(canonical_permutation=True), ["CrossEntropy", "CanonicalWeightEntropy"]),
        (
            ObjectiveConfig(function_weight=2.0),
            ["CrossEntropy", "WeightEntropy", "FunctionEntropy"],
        ),
    ],
)
def test_a_config_enables_exactly_its_terms(cfg, expected):
    assert names(cfg) == expected


def test_weights_are_the_papers_coefficients():
    cfg = ObjectiveConfig(lam=300.0, gauge="soft", gamma=0.25, function_weight=2.0)
    weights = {t.name: t.weight() for t in enabled_terms(cfg)}
    assert weights == {
        "cross_entropy": 300.0,
        "entropy": -1.0,
        "gauge_penalty": 0.25,
        "function_entropy": -2.0,
    }


def test_weighted_sum_is_the_loss_formula():
    cfg = ObjectiveConfig(lam=10.0, gauge="soft", gamma=0.5)
    terms = enabled_terms(cfg)
    values = {"cross_entropy": 2.0, "entropy": 7.0, "gauge_penalty": 4.0}
    assert weighted_sum(terms, values) == 10.0 * 2.0 - 7.0 + 0.5 * 4.0
    tensors = {k: torch.tensor(v) for k, v in values.items()}
    assert weighted_sum(terms, tensors).item() == 15.0


def test_every_registered_term_has_a_unique_logged_name_or_excludes_its_twin():
    """Two terms may share a name (plain and canonical entropy) only if no config enables both."""
    for cfg in (ObjectiveConfig(), ObjectiveConfig(canonical_permutation=True)):
        logged = [t.name for t in enabled_terms(cfg)]
        assert len(logged) == len(set(logged))
    assert {cls.name for cls in TERMS} == {
        "cross_entropy",
        "entropy",
        "gauge_penalty",
        "function_entropy",
    }
