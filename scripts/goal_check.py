"""Issue 26's goal checked on ``weightgen evaluate --curve --json`` files: does each candidate
beat every deep ensemble and every MNFG run on majority vote, ensemble NLL and OOD AUROC, at
ensemble sizes 10 and 200?

    python scripts/goal_check.py --deep-ensemble "DE (8734)=de.json" --mnfg "MNFG (8734)=mnfg.json" \\
        --vote-margin 0.5 "K = 3 (8734)=multi3.json" "K = 3 (2)=multi3_s2.json"

Each cell is the candidate's smallest margin over the baselines (vote in points, NLL as the
baseline's minus the candidate's, AUROC as the difference: positive is a win), with the number
of baselines beaten. A baseline without ensembles of 200 (the deep ensemble's 10 networks) is
met with its largest ensemble. ``--vote-margin`` is the lead over the deep ensembles that the vote
of 10 must have (the goal's 0.5 points on Fashion-MNIST). The last column counts the
comparisons won; run on validation files it ranks configurations without a test image. Values
equal to float32 precision (relative difference under 1e-6: the evaluations' accuracies are
float32) are a tie, and a tie is not a win.

A source (baseline or candidate) whose evaluation file is not at hand can be given as the
numbers a results table recorded of it, vote in %, one value per ensemble size (10, then 200)
separated by "/":

    --mnfg "MNFG (8734)=vote:92.01/92.42,nll:0.2270/0.2219,auroc:0.741/0.780"
    --deep-ensemble "DE (8734)=vote:90.88,nll:0.2561,auroc:0.870"

Margins to such a source are exact only to the digits it was recorded with.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from comparison_rows import read_source

SIZES = (10, 200)
TIE = 1e-6  # relative difference under which two values are the same to float32 precision
# criterion -> (curve key, scale of a margin, its digits, larger is better)
CRITERIA = {
    "vote": ("majority_vote", 100.0, 2, True),
    "NLL": ("nll", 1.0, 4, False),
    "AUROC": ("ood_auroc", 1.0, 3, True),
}


def read_result(item: str) -> tuple[str, dict[str, Any]]:
    """``NAME=vote:V10[/V200],nll:...,auroc:...`` as a name and an ``evaluate --json``-shaped
    result holding just those curve means; ``NAME=JSON`` otherwise."""
    name, _, spec = item.rpartition("=")
    if not name or not spec.startswith("vote:"):
        return read_source(item, "goal_check")
    keys = {"vote": ("majority_vote", 0.01), "nll": ("nll", 1.0), "auroc": ("ood_auroc", 1.0)}
    curve: dict[int, dict[str, Any]] = {}
    for part in spec.split(","):
        label, _, values = part.partition(":")
        if label not in keys:
            raise SystemExit(f"goal_check: {name}: {label!r} is not one of vote, nll, auroc")
        key, scale = keys[label]
        try:
            numbers = [float(v) * scale for v in values.split("/")]
        except ValueError:
            raise SystemExit(
                f"goal_check: {name}: {part!r} is not {label}:NUMBER[/NUMBER]"
            ) from None
        if len(numbers) > len(SIZES):
            raise SystemExit(f"goal_check: {name}: {part!r} has more values than sizes {SIZES}")
        for size, mean in zip(SIZES, numbers, strict=False):
            curve.setdefault(size, {"size": size})[key] = {"mean": mean}
    return name, {"curve": list(curve.values())}


def at_size(result: dict[str, Any], size: int, name: str) -> dict[str, Any]:
    """The curve point of ensembles of ``size``, or of the largest size below it."""
    points = [p for p in result["curve"] if p["size"] <= size]
    if not points:
        raise SystemExit(f"goal_check: {name}: no ensembles of {size} or fewer in its curve")
    return max(points, key=lambda p: p["size"])


def margins(
    candidate: tuple[str, dict[str, Any]],
    baselines: list[tuple[str, dict[str, Any], float]],
) -> dict[tuple[str, int], list[float]]:
    """For each (criterion, size) the candidate's margin over each baseline, less the lead the
    baseline demands (a win is a margin above 0)."""
    name, result = candidate
    out: dict[tuple[str, int], list[float]] = {}
    for criterion, (key, scale, _, larger) in CRITERIA.items():
        for size in SIZES:
            mine = at_size(result, size, name)
            for base_name, base, lead in baselines:
                theirs = at_size(base, size, base_name)
                if key not in mine or key not in theirs:
                    raise SystemExit(f"goal_check: {name} or {base_name}: no {key} (pass --ood)")
                a, b = mine[key]["mean"], theirs[key]["mean"]
                diff = 0.0 if math.isclose(a, b, rel_tol=TIE) else (a - b) * scale
                demand = lead if criterion == "vote" and size == 10 else 0.0
                out.setdefault((criterion, size), []).append((diff if larger else -diff) - demand)
    return out


def table(candidates: list[str], baselines: list[tuple[str, dict[str, Any], float]]) -> str:
    """A markdown table: a row per candidate, a column per criterion and size."""
    head = [f"{c} of {s}" for c in CRITERIA for s in SIZES]
    lines = [
        "| candidate | " + " | ".join(head) + " | comparisons won |",
        "|---" * (len(head) + 2) + "|",
    ]
    for item in candidates:
        name, result = read_result(item)
        found = margins((name, result), baselines)
        cells = [
            f"{min(m):+.{CRITERIA[c][2]}f} ({sum(x > 0 for x in m)}/{len(m)})"
            for (c, _), m in found.items()
        ]
        won = sum(x > 0 for m in found.values() for x in m)
        total = sum(len(m) for m in found.values())
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {won}/{total} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", metavar="NAME=JSON|NUMBERS")
    parser.add_argument("--deep-ensemble", action="append", default=[], metavar="NAME=JSON|NUMBERS")
    parser.add_argument("--mnfg", action="append", default=[], metavar="NAME=JSON|NUMBERS")
    parser.add_argument("--vote-margin", type=float, default=0.0, metavar="POINTS")
    args = parser.parse_args()
    if not args.deep_ensemble and not args.mnfg:
        raise SystemExit("goal_check: give at least one --deep-ensemble or --mnfg NAME=JSON")
    baselines = [(*read_result(i), args.vote_margin) for i in args.deep_ensemble]
    baselines += [(*read_result(i), 0.0) for i in args.mnfg]
    print(table(args.candidates, baselines))


if __name__ == "__main__":
    main()
