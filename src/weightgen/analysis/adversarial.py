"""Targeted fast-gradient-sign attacks on one generated network, transferred to an ensemble
(section 4.2.3, Fig. 6), as the implementation notes describe."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..data import Split
from ..evaluate import majority_vote, predict
from ..interrupts import check as check_interrupt
from ..targets import TargetSpec, forward

STEPS_255 = tuple(range(0, 60, 2))  # perturbation sizes 0, 2, ..., 58 in units of 1/255


def fgsm_curves(
    spec: TargetSpec,
    draw_networks: Callable[[int], Sequence[Tensor]],
    data: Split,
    images: int = 500,
    ensemble_size: int = 100,
    rounds: int = 5,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Fraction of attacked images misclassified at each perturbation size, by the attacked
    network and by a fresh ensemble voting on the same images (a transfer attack).

    ``draw_networks(k)`` returns k new networks. The images are split into ``rounds`` groups;
    each group is attacked through its own new network and judged by its own new ensemble.
    Only images the attacked network classifies correctly are used (``images`` in the result
    counts them; with none, the curves are NaN). The step increases the target class's
    softmax probability: x + ε·sign(∇_x p_target(x)); no clipping to [0, 1].
    """
    g = torch.Generator().manual_seed(seed)
    eps = torch.tensor(STEPS_255, dtype=torch.float32) / 255.0
    fooled_single, fooled_ensemble, used = [], [], 0
    order = torch.randperm(len(data), generator=g)[:images]
    for chunk in order.chunk(rounds):
        check_interrupt()
        x, y = data.images[chunk], data.labels[chunk]
        attacked = [m.detach() for m in draw_networks(1)]
        with torch.no_grad():
            correct = forward(spec, attacked, x)[0].argmax(-1) == y
        x, y = x[correct], y[correct]
        if len(y) == 0:
            continue
        classes = spec.num_classes  # a random class other than the true one
        target = (y + torch.randint(1, classes, y.shape, generator=g).to(y.device)) % classes
        x_grad = x.clone().requires_grad_()
        probs = forward(spec, attacked, x_grad)[0].softmax(-1)
        (grad,) = torch.autograd.grad(probs.gather(1, target.unsqueeze(1)).sum(), x_grad)
        direction = grad.sign()
        # (steps, B, C, H, W) -> (steps * B, C, H, W): every size at once
        perturbed = (x.unsqueeze(0) + eps.view(-1, 1, 1, 1, 1).to(x) * direction).flatten(0, 1)
        with torch.no_grad():
            single = forward(spec, attacked, perturbed)[0].argmax(-1).view(len(eps), -1)
            votes = majority_vote(predict(spec, draw_networks(ensemble_size), perturbed))
        fooled_single.append((single != y).float().sum(1))
        fooled_ensemble.append((votes.view(len(eps), -1) != y).float().sum(1))
        used += len(y)
    if not used:  # no attacked network classified any of its images correctly
        nothing = torch.full_like(eps, float("nan"))
        return {
            "epsilon": eps,
            "single": nothing,
            "ensemble": nothing.clone(),
            "images": torch.tensor(0),
        }
    return {
        "epsilon": eps,
        "single": torch.stack(fooled_single).sum(0).cpu() / used,
        "ensemble": torch.stack(fooled_ensemble).sum(0).cpu() / used,
        "images": torch.tensor(used),
    }
