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
        """Accuracy of single networks and of the ensembles (majority vote, mean probability,
        most confident), with NLL and ECE of a single network and of the ensemble's mean
        probability."""
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
        probs = logits.softmax(-1)
        for name, p in (("single", probs[0]), ("ensemble", probs.mean(0))):
            for key, value in calibration(p, labels).items():
                result[f"{name}_{key}"] = value
        return result
