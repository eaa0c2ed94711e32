"""Training cost counted from the target spec: (network, image) passes and their FLOPs.

Methods are compared at equal training cost (issue 26): what every method pays alike is the
forward and backward pass of target networks over images, so a step's cost is the number of
(network, image) pairs it computes (:meth:`weightgen.Method.passes_per_step`) times the FLOPs
of one pair. What a method spends besides (a hypernetwork's own layers, MNFG's flows) is left
out and said so where numbers are compared.
"""

from __future__ import annotations

import math

from .targets import TargetSpec


def target_flops(spec: TargetSpec) -> tuple[int, int]:
    """(forward, backward) floating-point operations of one (network, image) pair.

    Each layer's forward is 2 FLOPs per multiply-add its kind counts (a conv or linear layer:
    out·fan_in per output position); its
    backward computes the weight gradient (the same count) and, except for the first layer
    (whose input is the image), the input gradient (the same count again).
    """
    forward = backward = 0
    for index, (layer, shape) in enumerate(zip(spec.layers, spec.shapes())):
        flops = 2 * layer.rule.multiply_adds(layer, shape)
        forward += flops
        backward += flops * (1 if index == 0 else 2)
    return forward, backward


def training_step_flops(spec: TargetSpec, noise_samples: int, images_per_network: int) -> int:
    """FLOPs of the target networks in one step of noise_samples networks on
    images_per_network images each."""
    forward, backward = target_flops(spec)
    return noise_samples * images_per_network * (forward + backward)


def training_cost(spec: TargetSpec | None, passes_per_step: int, steps: int) -> dict[str, int]:
    """The counted cost of ``steps`` training steps: network-image passes and target FLOPs
    (forward + backward); zero for a method without target networks."""
    passes = passes_per_step * steps
    flops = passes * sum(target_flops(spec)) if spec is not None else 0
    return {"network_image_passes": passes, "target_flops": flops}


def activation_floats(spec: TargetSpec) -> int:
    """Activations one (network, image) pair writes in a forward pass: every layer's output
    before and after pooling."""
    shapes = spec.shapes()
    total = math.prod(shapes[0])
    for layer, shape in zip(spec.layers, shapes):
        total += layer.rule.activation_floats(layer, shape)
    return total


def training_step_bytes(spec: TargetSpec, noise_samples: int, images_per_network: int) -> int:
    """Rough peak of one training step: each pair's activations kept for the backward pass,
    their gradients and a workspace (3x), and each network's weights several times over."""
    pairs = noise_samples * images_per_network
    return 4 * (3 * pairs * activation_floats(spec) + 8 * noise_samples * spec.num_weights)
