"""Probes of the generated weight space: paths between networks (Fig. 4), principal
components (Figs. 14–21) and single-filter samples (Figs. 7–10)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..data import Split
from ..evaluate import predict
from ..rng import seeded_generator
from ..targets import TargetSpec

PathWalk = Callable[[Tensor, torch.Generator], list[Tensor]]
"""Gauge-fixed networks (filter matrices, (points, out, fan_in + 1) each) at the points t of the
interpolated path between two fresh random samples: t = 1 is the first sample, t = 0 the second."""


@torch.no_grad()
def paths(
    spec: TargetSpec,
    walk: PathWalk,
    data: Split,
    pairs: int = 10,
    points: int = 40,
    seed: int = 0,
    precision: str = "float32",
) -> dict[str, Tensor]:
    """Accuracy along the interpolated path of ``walk`` and along the direct path
    t·θ1 + (1−t)·θ2 between its gauge-fixed end points θ1 (t = 1), θ2 (t = 0), for ``pairs``
    random pairs (Figs. 4–5).

    Returns t (points,), direct and interpolated accuracies (pairs, points).
    """
    g = seeded_generator(seed, "paths")
    t = torch.linspace(0, 1, points, device=data.images.device)
    direct: list[Tensor] = []
    interpolated: list[Tensor] = []
    for _ in range(pairs):
        along = walk(t, g)  # [(points, out, n)]
        line = [t.view(-1, 1, 1) * m[-1] + (1 - t.view(-1, 1, 1)) * m[0] for m in along]
        for filters, out in ((line, direct), (along, interpolated)):
            logits = predict(spec, filters, data.images, precision=precision)
            out.append((logits.argmax(-1) == data.labels).float().mean(-1).cpu())
    return {"t": t.cpu(), "direct": torch.stack(direct), "interpolated": torch.stack(interpolated)}


def principal_components(samples: Tensor, components: int = 6) -> dict[str, Tensor]:
    """Project samples (N, D) on their first principal components -> (N, components), with the
    explained variance ratio of each."""
    x = samples.double() - samples.double().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    variance = s.square()
    return {
        "projection": (x @ vh[:components].T).float(),
        "explained": (variance[:components] / variance.sum()).float(),
    }


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


def filter_images(
    spec: TargetSpec, filters: Sequence[Tensor], samples: int = 25
) -> dict[str, Tensor]:
    """2-D images of one filter across samples (Figs. 7–10): the first conv layer's filter 0,
    channel 0 of the second conv layer's filter 0, channel 0 of the first linear layer's neuron
    0 seen as its input map. Each (samples, h, w)."""
    images: dict[str, Tensor] = {}
    shapes = spec.shapes()
    for index, (layer, mat) in enumerate(zip(spec.layers[:-1], filters[:-1])):
        weights = mat[:samples, 0, :-1]  # (samples, fan_in)
        if len(layer.weight_shape) == 4:  # a kernel (out, in, h, w)
            kernel = weights.reshape(-1, *layer.weight_shape[1:])
            images[f"{layer.name} filter 0, channel 0"] = kernel[:, 0]
        elif index > 0 and len(shapes[index]) == 3:  # reads feature maps
            side = int(round(spec.channel_block(index) ** 0.5))
            if side * side == spec.channel_block(index):
                channel = weights[:, : spec.channel_block(index)]
                images[f"{layer.name} neuron 0, channel 0"] = channel.reshape(-1, side, side)
    return images
