"""The rows of RESULTS.md's comparison tables from ``weightgen evaluate --curve --json`` files:
members, vote, NLL, ECE and OOD AUROC at ensemble sizes 10 and 200, and disagreement.

    python scripts/comparison_rows.py "K = 3 (8734)=multi3.json" "deep ensemble (2)=de.json"

Accuracies and disagreement in %; "of 10" is the mean over the disjoint ensembles of 10 with
their range in brackets; disagreement is the mean pairwise disagreement within ensembles of
10; a source without 200 networks gets "—" at 200.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def row(name: str, result: dict[str, Any]) -> str:
    """One table row: name | members | vote of 10 | of 200 | NLL 10 / 200 | ECE of 10 |
    OOD AUROC of 10 | of 200 | disagreement within ensembles of 10."""
    by_size = {point["size"]: point for point in result["curve"]}
    ten, full = by_size.get(10), by_size.get(200)
    if ten is None:
        raise SystemExit(f"comparison_rows: {name}: no ensembles of 10 in its curve")

    def spread(stat: dict[str, float], scale: float, digits: int) -> str:
        mean = f"{stat['mean'] * scale:.{digits}f}"
        if ten["ensembles"] == 1:
            return mean
        return f"{mean} ({stat['min'] * scale:.{digits}f}–{stat['max'] * scale:.{digits}f})"

    def at_full(key: str, scale: float, digits: int) -> str:
        return "—" if full is None or key not in full else f"{full[key]['mean'] * scale:.{digits}f}"

    members = (
        f"{result['accuracy_mean'] * 100:.2f} "
        f"({result['accuracy_min'] * 100:.2f}–{result['accuracy_max'] * 100:.2f})"
    )
    auroc = spread(ten["ood_auroc"], 1, 3) if "ood_auroc" in ten else "—"
    cells = [
        name,
        members,
        spread(ten["majority_vote"], 100, 2),
        at_full("majority_vote", 100, 2),
        f"{ten['nll']['mean']:.4f} / {at_full('nll', 1, 4)}",
        f"{ten['ece']['mean']:.4f}",
        auroc,
        at_full("ood_auroc", 1, 3),
        f"{ten['disagreement']['mean'] * 100:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def read_source(item: str, script: str = "comparison_rows") -> tuple[str, dict[str, Any]]:
    """``NAME=JSON`` as the name and the parsed ``evaluate --json`` file; a one-line exit
    naming ``script`` when either is wrong."""
    name, _, path = item.rpartition("=")  # a name may hold "=" ("beta = 0.05"), a path not
    if not name:
        raise SystemExit(f"{script}: {item!r} is not NAME=JSON")
    try:
        return name, json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"{script}: {path}: not a readable JSON file ({err})") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", metavar="NAME=JSON")
    args = parser.parse_args()
    for item in args.sources:
        print(row(*read_source(item)))


if __name__ == "__main__":
    main()
