"""The screening table of docs/results_history.md ("What moves the ensemble") from run folders.

For each run: what its config changes against configs/paper_lambda1e3.yaml, the validation
record at its last validated step (200 networks, the training's own validation z: mean, min,
vote, NLL and pairwise disagreement where recorded), and the
two batch-norm sampling modes of ``scripts/screen.sh`` (200 networks, seed 0, validation split)
and the training rate (steps/s as logged: one thread, on cores shared with other jobs).
Validation numbers only: test numbers are for the configurations finally chosen.

    python scripts/screen_table.py RUN [RUN ...] [--step 3000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from weightgen.config import config_from_dict, load_config
from weightgen.fileio import MetricsLog

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper_lambda1e3.yaml"
IGNORED = {("name",), ("train", "steps"), ("train", "checkpoint_every")}


def changes(config: dict, paper: dict, prefix: tuple = ()) -> list[str]:
    """'section.key: value' for every setting that differs from the paper config."""
    out = []
    for key, value in config.items():
        path = (*prefix, key)
        if path in IGNORED:
            continue
        base = paper.get(key) if isinstance(paper, dict) else None
        if isinstance(value, dict):
            out += changes(value, base or {}, path)
        elif value != base:
            out.append(f"{'.'.join(path)}: {value}")
    return out


def row(run: Path, step: int | None) -> str:
    # both resolved, every default filled in
    config = config_from_dict(yaml.safe_load((run / "config.yaml").read_text())).to_dict()
    paper = load_config(PAPER).to_dict()
    records = MetricsLog(run / "metrics.jsonl").records()
    validations = [
        r for r in records if r["kind"] == "validation" and (step is None or r["step"] == step)
    ]
    v = validations[-1]
    trained = [r for r in records if r["kind"] == "train" and r["step"] <= v["step"]]
    rate = f"{trained[-1]['steps_per_s']:.2f}" if trained else "—"
    modes = []
    for mode in ("running", "batch"):
        path = run / f"validation_bn_{mode}.json"
        if path.exists():
            m = json.loads(path.read_text())
            modes.append(
                f"{100 * m['accuracy_mean']:.2f} / {100 * m['ensemble_majority_vote']:.2f}"
            )
        else:
            modes.append("—")
    change = ", ".join(changes(config, paper)) or "none (the paper's config)"
    nll = f"{v['ensemble_nll']:.4f}" if "ensemble_nll" in v else "—"
    disagreement = (
        f"{100 * v['prediction_disagreement']:.2f}" if "prediction_disagreement" in v else "—"
    )
    return (
        f"| {run.name} | {change} | {v['step']} | {100 * v['accuracy_mean']:.2f} | "
        f"{100 * v['accuracy_min']:.2f} | {100 * v['ensemble_majority_vote']:.2f} | {nll} | "
        f"{disagreement} | {v['entropy']:.0f} | {modes[0]} | {modes[1]} | {rate} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="the validation step to show (default: each run's last)",
    )
    args = parser.parse_args()
    print(
        "| run | change against the paper's config | step | mean | min | majority vote | NLL | "
        "disagreement | entropy Ĥ | BN running: mean / vote | BN batch: mean / vote | steps/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        print(row(run, args.step))


if __name__ == "__main__":
    main()
