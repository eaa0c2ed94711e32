"""Copy the figures of a finished report that docs/results_history.md shows into docs/figures/, under short
names, as small palette PNGs (the PCA scatter matrices are ~0.5 MB each at full size).

    python scripts/docs_figures.py REPORT_DIR [--out docs/figures]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

KEPT = (
    "paths",
    "filters_conv1",
    "filters_conv2",
    "filters_fc1",
    "failure_mode",
    "pca_whole_network",
    "pca_conv1_filter_0",
    "pca_conv2__whole_layer",
)
SHARED = {
    "accuracy_histograms.png": "fig3_accuracy_histograms.png",
    "adversarial.png": "fig6_adversarial.png",
}


def shrink(source: Path, target: Path, max_width: int = 1100) -> None:
    image = Image.open(source).convert("RGB")
    if image.width > max_width:
        image = image.resize(
            (max_width, round(image.height * max_width / image.width)), Image.LANCZOS
        )
    image.quantize(colors=128).save(target, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    metrics = json.loads((args.report / "metrics.json").read_text())
    written = []
    for filename, short in SHARED.items():
        shrink(args.report / filename, args.out / short)
        written.append(short)
    for name, source in metrics["sources"].items():
        runs = name.split(" (")[0].split(" + ")  # a pooled networks file names every run
        run = runs[0].removeprefix("paper_") if len(runs) == 1 else f"pool_of_{len(runs)}"
        for _, filename in source["figures"]:
            kind = next((k for k in KEPT if filename.startswith(k)), None)
            if kind is not None:
                short = f"{kind.rstrip('_')}_{run}.png".replace("__", "_")
                shrink(args.report / filename, args.out / short)
                written.append(short)
    print("\n".join(f"{args.out / name}" for name in written))


if __name__ == "__main__":
    main()
