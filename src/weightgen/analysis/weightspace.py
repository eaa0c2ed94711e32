"""Probes of the generated weight space: paths between networks (Fig. 4), principal
components (Figs. 14–21) and single-filter samples (Figs. 7–10)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data import Split
from ..evaluate import predict
from ..hypernet import HyperNetwork
from ..rng import seeded_generator
from ..targets import TargetSpec


@torch.no_grad()
def paths(hypernet: HyperNetwork, data: Split, pairs: int = 10, points: int = 40,
          seed: int = 0, precision: str = "float32") -> dict[str, Tensor]:
    """Accuracy along the direct path t·θ1 + (1−t)·θ2 between gauge-fixed networks and along
    the interpolated path S(G(t·z1 + (1−t)·z2)), for ``pairs`` random pairs of z.

    Returns t (points,), direct and interpolated accuracies (pairs, points).
    """
    from ..train import generate

    spec = hypernet.spec
    g = seeded_generator(seed, "paths")
    t = torch.linspace(0, 1, points, device=data.images.device)
    direct, interpolated = [], []
    for _ in range(pairs):
        z = hypernet.sample_noise(2, g)
        ends = generate(hypernet, z)  # [(2, out, n)]
        line = [(t.view(-1, 1, 1) * m[0] + (1 - t.view(-1, 1, 1)) * m[1]) for m in ends]
        zs = t.view(-1, 1) * z[0] + (1 - t.view(-1, 1)) * z[1]
        for filters, out in ((line, direct), (generate(hypernet, zs), interpolated)):
            logits = predict(spec, filters, data.images, precision=precision)
            out.append((logits.argmax(-1) == data.labels).float().mean(-1).cpu())
    return {"t": t.cpu(), "direct": torch.stack(direct), "interpolated": torch.stack(interpolated)}


def principal_components(samples: Tensor, components: int = 6) -> dict[str, Tensor]:
    """Project samples (N, D) on their first principal components -> (N, components), with the
    explained variance ratio of each."""
    x = samples.double() - samples.double().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    variance = s.square()
    return {"projection": (x @ vh[:components].T).float(),
            "explained": (variance[:components] / variance.sum()).float()}


def pca_groups(spec: TargetSpec, filters: Sequence[Tensor]) -> dict[str, Tensor]:
    """The sample sets of the PCA figures: one filter per hidden layer (Figs. 14–16), each layer
    (Figs. 17–20) and the whole network (Fig. 21), each (N, D)."""
    groups = {}
    for layer, mat in zip(spec.layers[:-1], filters[:-1]):
        groups[f"{layer.name} filter 0"] = mat[:, 0]
    for layer, mat in zip(spec.layers, filters):
        groups[f"{layer.name} (whole layer)"] = mat.flatten(1)
    groups["whole network"] = spec.flatten(filters)
    return groups


def filter_images(spec: TargetSpec, filters: Sequence[Tensor], samples: int = 25
                  ) -> dict[str, Tensor]:
    """2-D images of one filter across samples (Figs. 7–10): the first conv layer's filter 0,
    channel 0 of the second conv layer's filter 0, channel 0 of the first linear layer's neuron
    0 seen as its input map. Each (samples, h, w)."""
    images: dict[str, Tensor] = {}
    for index, (layer, mat) in enumerate(zip(spec.layers[:-1], filters[:-1])):
        weights = mat[:samples, 0, :-1]  # (samples, fan_in)
        if layer.kind == "conv":
            kernel = weights.reshape(-1, layer.in_size, layer.kernel_size, layer.kernel_size)
            images[f"{layer.name} filter 0, channel 0"] = kernel[:, 0]
        elif index > 0 and spec.layers[index - 1].kind == "conv":
            side = int(round(spec.channel_block(index) ** 0.5))
            if side * side == spec.channel_block(index):
                channel = weights[:, :spec.channel_block(index)]
                images[f"{layer.name} neuron 0, channel 0"] = channel.reshape(-1, side, side)
    return images
