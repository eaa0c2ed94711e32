"""The ensemble-size figure of RESULTS.md from ``weightgen evaluate --curve --json`` files:
majority vote and ensemble NLL against ensemble size, every source on one pair of axes.

    python scripts/curve_figure.py "deep ensemble=de.json" "paper config=paper.json" \
        -o docs/figures/fashion_mnist_ensemble_size.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from weightgen.analysis.figures import ensemble_size_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="NAME=JSON",
        help="a legend name and an evaluate --curve --json file",
    )
    parser.add_argument("-o", "--output", required=True, help="the PNG to write")
    args = parser.parse_args()
    curves = {}
    for item in args.sources:
        name, _, path = item.partition("=")
        curves[name] = json.loads(Path(path).read_text())["curve"]
    print(ensemble_size_curves(curves, Path(args.output)))


if __name__ == "__main__":
    main()
