"""Issue 12 probe: does choosing which generated networks enter the ensemble help? Validation
split only: networks are chosen on its first half and measured on its second half.

Draws 1,000 networks (seed 7) from RUN at STEP and compares, on the second half, ensembles of
200: the first 200 drawn; the 200 most accurate of 1,000 (or of 600) on the first half; the
first 250 without their 50 least accurate; and Caruana-style greedy selection with replacement
of 200 members that minimise the ensemble's NLL on the first half.

    python scripts/probe_selection.py RUN STEP
"""

from __future__ import annotations

import argparse

import torch

import weightgen
from weightgen.data import load_dataset
from weightgen.evaluate import ensemble_metrics, predict


def greedy_selection(probs: torch.Tensor, labels: torch.Tensor, size: int) -> torch.Tensor:
    """Indices (with repeats) of ``size`` members chosen one at a time, each the one whose
    addition gives the lowest ensemble NLL (Caruana et al. 2004); probs (K, N, C)."""
    chosen, total = [], torch.zeros_like(probs[0])
    rows = torch.arange(probs.shape[1])
    for t in range(size):
        candidates = (total.unsqueeze(0) + probs) / (t + 1)  # (K, N, C)
        nll = -candidates[:, rows, labels].clamp_min(1e-12).log().mean(-1)  # (K,)
        best = int(nll.argmin())
        chosen.append(best)
        total += probs[best]
    return torch.tensor(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("step", type=int)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = weightgen.load(args.run, step=args.step)
    validation = load_dataset(gen.method.config.data, args.data_dir).validation
    half = len(validation) // 2
    choose, measure = slice(0, half), slice(half, len(validation))
    nets = gen.sample(1000, seed=7)
    logits_choose = predict(gen.spec, nets.filters, validation.images[choose])
    logits_measure = predict(gen.spec, nets.filters, validation.images[measure])
    accuracy = (logits_choose.argmax(-1) == validation.labels[choose]).float().mean(-1)
    rules = {
        "first 200 drawn": torch.arange(200),
        "200 most accurate of 1,000": accuracy.argsort(descending=True)[:200],
        "200 most accurate of 600": accuracy[:600].argsort(descending=True)[:200],
        "first 250 less their 50 weakest": accuracy[:250].argsort(descending=True)[:200],
        "greedy NLL selection of 200": greedy_selection(
            logits_choose.softmax(-1), validation.labels[choose], 200
        ),
    }
    print("| members | distinct | mean | min | majority vote | ensemble NLL | disagreement |")
    print("|---|---|---|---|---|---|---|")
    for name, index in rules.items():
        m = ensemble_metrics(logits_measure[index], validation.labels[measure])
        print(
            f"| {name} | {len(set(index.tolist()))} | {100 * m['accuracy_mean']:.2f} | "
            f"{100 * m['accuracy_min']:.2f} | {100 * m['ensemble_majority_vote']:.2f} | "
            f"{m['ensemble_nll']:.4f} | {100 * m['prediction_disagreement']:.2f} |"
        )


if __name__ == "__main__":
    main()
