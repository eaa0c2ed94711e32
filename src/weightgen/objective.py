"""The training objective: accuracy versus gauge-fixed diversity (paper, eqs. 10–14)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch
import torch.distributed
from torch import Tensor

from .distributed import is_distributed, mean_over_ranks
from .errors import check_config, check_value
from .models.hypernet import HyperNetwork
from .symmetry import gauge_fix
from .targets import ConvImpl, TargetSpec, forward
from .terms import TermInputs, enabled_terms, term_sections, weighted_sum


@dataclass(frozen=True)
class ObjectiveConfig:
    """L = λ·CE − Ĥ(S(G(z))) (eq. 11), or λ·CE + γ·𝒢 − Ĥ(G(z)) with the soft gauge (eq. 10)."""

    lam: float = 1e3  # written ``lambda`` in files
    # beyond the paper (issue 27): λ at training step 0, moving geometrically to ``lambda`` at
    # the last step (larger: accuracy first, diversity later); None keeps λ constant
    lambda_start: float | None = None
    gauge: Literal["exact", "soft", "none"] = "exact"
    gamma: float = 0.0
    entropy_metric: Literal["l1", "l2"] = "l1"
    entropy_dim: int | None = None  # d of eq. 14; None: the dimension of z
    # beyond the paper: the weight entropy of permutation-canonical weights (filters sorted)
    canonical_permutation: bool = False
    # beyond the paper: + β·Ĥ of the networks' class probabilities on shared training images
    function_weight: float = 0.0  # β; 0 switches the term off
    function_images: int = 16  # shared images per step (at most train.images_per_network)
    # the images the term sees: training images as they are, or each cut into a 4 x 4 grid of
    # patches shuffled (off the data manifold: diversity where there is no data, issue 26)
    function_inputs: Literal["train", "shuffled_patches"] = "train"
    # settings of registered terms beyond these keys, by term name (weightgen.terms)
    terms: dict[str, Any] = field(default_factory=dict, metadata={"sections": term_sections})

    def __post_init__(self) -> None:
        check_value("objective.lambda", self.lam, "> 0")
        if self.lambda_start is not None:
            check_value("objective.lambda_start", self.lambda_start, "> 0")
        check_value("objective.gamma", self.gamma, ">= 0")
        if self.entropy_dim is not None:
            check_value("objective.entropy_dim", self.entropy_dim, ">= 1")
        check_value("objective.function_weight", self.function_weight, ">= 0")
        check_value("objective.function_images", self.function_images, ">= 1")
        sections = term_sections()
        unknown = sorted(set(self.terms) - set(sections))
        check_config(
            not unknown,
            f"objective.terms.{unknown[0]}" if unknown else "",
            "is no registered term's section",
        )
        object.__setattr__(
            self, "terms", {name: self.terms.get(name) or kind() for name, kind in sections.items()}
        )

    def at_step(self, step: int, steps: int) -> ObjectiveConfig:
        """This config with the λ of training step ``step`` of ``steps``:
        λ_start^(1−t) · λ^t with t = step / steps (itself when λ is constant)."""
        if self.lambda_start is None:
            return self
        t = min(step / max(steps, 1), 1.0)
        return dataclasses.replace(self, lam=self.lambda_start ** (1 - t) * self.lam**t)


@dataclass
class ObjectiveTerms:
    """The loss and its parts for one noise batch (all scalars).

    ``loss`` is what this process back-propagates; ``value`` is the loss of the whole global
    batch (the same number on every rank, equal to ``loss`` in a single process). ``parts``
    holds each enabled term's detached global value by name (``terms.entropy`` reads
    ``parts["entropy"]``).
    """

    loss: Tensor
    value: Tensor
    accuracy: Tensor
    parts: dict[str, Tensor]

    def __getattr__(self, name: str) -> Tensor:
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError(f"no objective term {name!r} in this config's loss")


def objective(
    hypernet: HyperNetwork | torch.nn.Module,
    z: Tensor,
    images: Tensor,
    labels: Tensor,
    cfg: ObjectiveConfig,
    conv_impl: ConvImpl | None = None,
    shared_images: Tensor | None = None,
    precision: str = "float32",
) -> ObjectiveTerms:
    """L = Σ_t w_t·v_t over the enabled terms (:mod:`weightgen.terms`): λ·CE(T(x; G(z))) −
    Ĥ(S(G(z))) (eq. 11 with eqs. 12–14), or with cfg.gauge == "soft" λ·CE + γ·𝒢(G(z)) −
    Ĥ(G(z)) (eq. 10), and the terms beyond the paper (canonical entropy, −β·Ĥ_f).

    z: (K, noise_dim); images: (K, B, C, H, W), network k's own images; labels: (K, B);
    shared_images: (M, C, H, W), the same for every network and rank (function-space term).
    The target is evaluated on the gauge-fixed weights, which compute the same function.

    ``precision`` "bfloat16" runs the target networks' forward and backward under autocast
    (mixed precision); the hypernetwork, gauge, entropy and loss stay float32.
    """
    generator = cast(HyperNetwork, getattr(hypernet, "module", hypernet))  # unwrap DDP
    spec: TargetSpec = generator.spec
    raw = hypernet(z)
    filters = gauge_fix(spec, raw) if cfg.gauge == "exact" else raw
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        logits = forward(spec, filters, images, conv_impl).float()  # (K, B, classes)
    inputs = TermInputs(
        spec,
        raw,
        filters,
        logits,
        labels,
        shared_images,
        cfg.entropy_dim or generator.cfg.noise_dim,
        conv_impl,
    )
    terms = enabled_terms(cfg)
    values = {term.name: term.value(inputs) for term in terms}
    # DDP averages gradients over W ranks: per-rank means (CE, 𝒢) average to the global
    # means, while an estimate over every rank's rows (Ĥ) has a gradient summed over ranks'
    # rows, hence the factor W
    world = torch.distributed.get_world_size() if is_distributed() else 1
    loss = weighted_sum(
        terms, {t.name: world * values[t.name] if t.spans_ranks else values[t.name] for t in terms}
    )
    with torch.no_grad():
        accuracy = mean_over_ranks((logits.argmax(-1) == labels).float().mean())
        parts = {
            t.name: values[t.name].detach() if t.spans_ranks else mean_over_ranks(values[t.name])
            for t in terms
        }
        value = weighted_sum(terms, parts)
    return ObjectiveTerms(torch.as_tensor(loss), torch.as_tensor(value).detach(), accuracy, parts)


def evaluate_terms(
    spec: TargetSpec,
    raw: list[Tensor],
    filters: list[Tensor],
    logits: Tensor,
    labels: Tensor,
    cfg: ObjectiveConfig,
    entropy_dim: int,
    shared_images: Tensor | None = None,
) -> dict[str, float]:
    """Each enabled term's value and ``loss`` = Σ w_t·v_t for networks already run on a
    split (validation), within this process; logits (K, N, classes), labels (N,) or (K, N)."""
    terms = enabled_terms(cfg)
    inputs = TermInputs(
        spec,
        raw,
        filters,
        logits,
        labels.expand(logits.shape[:2]),
        shared_images,
        entropy_dim,
        gather=False,
    )
    values = {term.name: term.value(inputs).item() for term in terms}
    return {**values, "loss": float(weighted_sum(terms, values))}
