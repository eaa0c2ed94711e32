"""The two-seed tables of docs/results_history.md ("What moves the ensemble", issue 12) from run folders and
``weightgen evaluate --json`` files.

For each run: its config's name, seed, the kept checkpoint with the best validation majority
vote (``--step best``) and that step's validation record (200 networks, the training's own
validation z, the validation split). For each evaluate file: the split, the source(s), and the
single-network and ensemble numbers (accuracies in %). With ``--history``, each run's
validation record at every validated step (the per-step tables of the full-length runs).

    python scripts/seed_table.py --runs RUN [RUN ...] [--evaluations FILE [FILE ...]]
    python scripts/seed_table.py --history RUN [--from-step 14000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from weightgen.fileio import MetricsLog
from weightgen.runfolder import best_validated_step, saved_config

RUN_COLUMNS = [
    "run",
    "config",
    "seed",
    "step chosen on validation",
    "mean",
    "min",
    "majority vote",
    "disagreement",
]
HISTORY_COLUMNS = [
    "step",
    "mean",
    "min",
    "max",
    "majority vote",
    "mean prob.",
    "most confident",
    "disagreement",
    "entropy Ĥ",
]
EVALUATION_COLUMNS = [
    "file",
    "split",
    "networks from",
    "networks",
    "mean",
    "min",
    "majority vote",
    "ensemble NLL",
    "disagreement",
]


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def run_row(run: Path) -> str:
    config = saved_config(run)
    step = best_validated_step(run)
    v = next(
        r
        for r in reversed(MetricsLog(run / "metrics.jsonl").records())
        if r.get("kind") == "validation" and r["step"] == step
    )
    return (
        f"| {run.name} | {config['name']} | {config.get('seed')} | {step} | "
        f"{_percent(v['accuracy_mean'])} | {_percent(v['accuracy_min'])} | "
        f"{_percent(v['ensemble_majority_vote'])} | "
        f"{_percent(v.get('prediction_disagreement'))} |"
    )


def _entropy(value: float | None) -> str:
    """Ĥ to one decimal; "—" for methods without an entropy term (HyperGAN, MNFG)."""
    return "—" if value is None else f"{value:.1f}"


def history_rows(run: Path, from_step: int) -> list[str]:
    """One row per validation record of ``run`` at ``from_step`` or later."""
    return [
        f"| {v['step']} | {_percent(v['accuracy_mean'])} | {_percent(v['accuracy_min'])} | "
        f"{_percent(v['accuracy_max'])} | {_percent(v['ensemble_majority_vote'])} | "
        f"{_percent(v['ensemble_mean_probability'])} | "
        f"{_percent(v['ensemble_most_confident'])} | "
        f"{_percent(v.get('prediction_disagreement'))} | {_entropy(v.get('entropy'))} |"
        for v in MetricsLog(run / "metrics.jsonl").records()
        if v.get("kind") == "validation" and v["step"] >= from_step
    ]


def evaluation_row(path: Path) -> str:
    m = json.loads(path.read_text())
    nll = m.get("ensemble_nll")
    return (
        f"| {path.name} | {m['split']} | {m['source']} | {m['networks']} | "
        f"{_percent(m['accuracy_mean'])} | {_percent(m['accuracy_min'])} | "
        f"{_percent(m['ensemble_majority_vote'])} | "
        f"{'—' if nll is None else f'{nll:.4f}'} | "
        f"{_percent(m.get('prediction_disagreement'))} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=Path, default=[])
    parser.add_argument("--evaluations", nargs="+", type=Path, default=[])
    parser.add_argument("--history", nargs="+", type=Path, default=[])
    parser.add_argument("--from-step", type=int, default=0)
    args = parser.parse_args()
    tables = [
        (RUN_COLUMNS, [run_row(run) for run in args.runs]),
        (EVALUATION_COLUMNS, [evaluation_row(path) for path in args.evaluations]),
        *[(HISTORY_COLUMNS, history_rows(run, args.from_step)) for run in args.history],
    ]
    print("\n\n".join(_table(columns, rows) for columns, rows in tables if rows))


def _table(columns: list[str], rows: list[str]) -> str:
    return "\n".join([f"| {' | '.join(columns)} |", "|" + "---|" * len(columns), *rows])


if __name__ == "__main__":
    main()
