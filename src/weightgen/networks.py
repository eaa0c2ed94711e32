"""A batch of generated target networks: their filter matrices, logits, modules and metrics."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .errors import WeightgenError, check_argument
from .evaluate import ensemble_metrics, predict
from .targets import TargetSpec


@dataclass
class GeneratedNetworks:
    """K target networks as per-layer filter matrices [(K, out, fan_in + 1)], with the noise
    they came from (hypernetworks only)."""

    spec: TargetSpec
    filters: list[Tensor]
    z: Tensor | None = None

    def __len__(self) -> int:
        return self.filters[0].shape[0]

    def __repr__(self) -> str:
        layers = ", ".join(
            f"{layer.name} {layer.kind} {layer.out_size}" for layer in self.spec.layers
        )
        noise = "" if self.z is None else f", z {tuple(self.z.shape)}"
        return (
            f"GeneratedNetworks({len(self)} networks of {self.spec.num_weights:,} weights "
            f"[{layers}] on {self.filters[0].device}{noise})"
        )

    def ensemble(self) -> EnsembleModule:
        """The networks as one torch.nn.Module whose forward averages their probabilities."""
        return EnsembleModule(self)

    def check_images(self, images: Tensor) -> None:
        """Images must be (B, *input_shape) in [0, 1]; a one-line error otherwise."""
        shape = tuple(self.spec.input_shape)
        if (
            not isinstance(images, Tensor)
            or images.dim() != len(shape) + 1
            or tuple(images.shape[1:]) != shape
        ):
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise WeightgenError(
                f"images must have shape (B, {', '.join(map(str, shape))}), got {got}"
            )
        check_argument(images.shape[0] >= 1, "images must hold at least one image, got 0")
        if (
            not images.is_floating_point()
            or images.numel()
            and (images.min() < 0 or images.max() > 1 or not torch.isfinite(images).all())
        ):
            raise WeightgenError("images must be finite floats in [0, 1] (as MNIST / 255)")

    @torch.no_grad()
    def logits(self, images: Tensor) -> Tensor:
        """Logits of every network on shared images: (K, B, classes)."""
        self.check_images(images)
        return predict(self.spec, [f.to(images.device) for f in self.filters], images)

    def module(self, index: int) -> nn.Module:
        """Network ``index`` as an ordinary torch.nn.Sequential with its weights loaded."""
        check_argument(
            isinstance(index, int) and not isinstance(index, bool),
            f"index must be a whole number, got {index!r}",
        )
        if not -len(self) <= index < len(self):
            raise WeightgenError(f"network {index} does not exist (there are {len(self)})")
        index %= len(self)  # -1: the last network
        module = self.spec.build_module()
        state = self.spec.to_state_dict([f[index : index + 1] for f in self.filters])
        module.load_state_dict({name: t[0] for name, t in state.items()})
        return module.eval()

    @torch.no_grad()
    def metrics(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        """Members' and ensemble's quality on labelled images. Keys:

        - ``accuracy_mean``, ``accuracy_std``, ``accuracy_min``, ``accuracy_max``: of the
          members, each network alone;
        - ``cross_entropy``: the members' mean NLL (each network's own probabilities);
        - ``ensemble_majority_vote``, ``ensemble_mean_probability``,
          ``ensemble_most_confident``: accuracy of the three ensemble rules;
        - ``ensemble_nll``, ``ensemble_ece``, ``ensemble_brier``: of the ensemble's mean
          probability;
        - ``member_nll``, ``member_ece``, ``member_brier``: the mean over members of each
          network's own NLL, ECE (15 equal-width bins, L1) and Brier score;
        - ``prediction_disagreement``: the fraction of images on which two members, averaged
          over pairs, predict different classes.
        """
        from .uncertainty import calibration  # scikit-learn: imported on use only

        logits = self.logits(images)
        check_argument(
            isinstance(labels, Tensor)
            and not labels.is_floating_point()
            and not labels.is_complex()
            and labels.dtype != torch.bool,
            f"labels must be an integer tensor of class indices, got "
            f"{getattr(labels, 'dtype', type(labels).__name__)}",
        )
        labels = labels.to(logits.device)
        if (
            labels.shape != (images.shape[0],)
            or labels.min() < 0
            or labels.max() >= self.spec.num_classes
        ):
            raise WeightgenError(
                f"labels must be {images.shape[0]} class indices in 0..{self.spec.num_classes - 1}"
            )
        result = ensemble_metrics(logits, labels)
        probs = logits.softmax(-1)  # (K, N, classes)
        members = [calibration(p, labels) for p in probs]
        for key in members[0]:
            result[f"member_{key}"] = sum(m[key] for m in members) / len(members)
        for key, value in calibration(probs.mean(0), labels).items():
            result[f"ensemble_{key}"] = value
        return result


class EnsembleModule(nn.Module):
    """K generated networks as one module: ``forward(images)`` returns the mean of their
    class probabilities, (B, classes), for use in a user's own evaluation code."""

    def __init__(self, networks: GeneratedNetworks):
        super().__init__()
        self.spec = networks.spec
        for index, weights in enumerate(networks.filters):  # (K, out, fan_in + 1) per layer
            self.register_buffer(f"filters_{index}", weights.detach().clone())

    def __len__(self) -> int:
        return int(self.get_buffer("filters_0").shape[0])

    def extra_repr(self) -> str:
        return f"{len(self)} networks of {self.spec.num_weights:,} weights, mean probability"

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        filters = [getattr(self, f"filters_{i}") for i in range(len(self.spec.layers))]
        return predict(self.spec, filters, images).softmax(-1).mean(0)
