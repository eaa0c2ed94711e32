"""Time to accuracy (issue 27): train from scratch until the validation vote reaches a target,
then measure the test set once.

For each seed the config trains in a fresh run folder; every ``--every`` steps the loop's own
validation (``train.validation_networks`` networks drawn with the same noise each time, on the
5,000 validation images) runs inside the timed span, and training stops at the first one whose
majority vote reaches ``--target`` (a checkpoint is saved there). Then 200 networks (sampling
seed 0) are measured on the test set once. One row a seed: wall time, steps, counted training
cost (:mod:`weightgen.cost`) and the test numbers; with ``--reference CONFIG`` the same for a
reference config (the paper's) in the same process (``--reference-seeds``, default the same
seeds), and each time as a ratio to the reference's mean time.

    python benchmarks/speedrun.py configs/fast.yaml --seeds 8734 2 --target 0.99 \
        --reference configs/paper_lambda1e3.yaml --json speedrun.json

Under torchrun the training step is sharded over the processes as in ``weightgen train`` (the
same global batch, so the same recipe); rank 0 validates, decides when to stop for all ranks,
measures the test set and prints:

    torchrun --standalone --nproc_per_node 2 benchmarks/speedrun.py configs/fast.yaml --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from weightgen import distributed
from weightgen.config import load_config
from weightgen.cost import training_cost
from weightgen.data import load_dataset
from weightgen.evaluate import ensemble_metrics, predict
from weightgen.fileio import MetricsLog
from weightgen.loop import train
from weightgen.methods import METHODS
from weightgen.runfolder import open_run


class TargetReached(KeyboardInterrupt):
    """Stops the loop the way Ctrl-C does, so the step reached is saved as a checkpoint."""


def speedrun(
    config_path: str,
    seed: int,
    target: float,
    every: int,
    max_steps: int | None,
    run: Path,
    data,
    device: str = "auto",
) -> dict | None:
    """Train ``config_path`` with ``seed`` in the new folder ``run`` until the validation vote
    reaches ``target``; the row on rank 0, None on the other ranks."""
    ctx = distributed.setup(distributed.resolve_device(device))
    config = load_config(config_path).replace(seed=seed)
    section = METHODS[config.method].section
    steps = max_steps or getattr(config, section).steps
    config = config.replace(**{section: dataclasses.replace(getattr(config, section), steps=steps)})
    config = config.replace(
        train=dataclasses.replace(
            config.train, validate_every=every, checkpoint_every=10**9, keep_best_checkpoint=False
        )
    )
    log = MetricsLog(run / "metrics.jsonl")
    reached: dict = {}

    def check(step: int) -> None:
        if step % every:
            return
        vote = None
        if ctx.is_main:
            last = log.records()[-1]  # the loop validated this step just before calling back
            if last.get("kind") == "validation":
                vote = last["ensemble_majority_vote"]
        vote = distributed.broadcast_object(vote, ctx)  # every rank stops at the same step
        if vote is not None and vote >= target:
            reached.update(step=step, vote=vote)
            raise TargetReached

    started = time.perf_counter()
    try:
        train(config, run, device=device, data=data, progress=False, on_step=check)
    except TargetReached:
        pass
    seconds = time.perf_counter() - started
    if not ctx.is_main:
        return None
    method = open_run(run, str(distributed.resolve_device(device)))
    networks = next(method.sample(200, seed=0, chunk=200))
    test_split = data.test.to(method.device)
    test = ensemble_metrics(
        predict(method.spec, networks.filters, test_split.images), test_split.labels
    )
    return {
        "config": config_path,
        "seed": seed,
        "target": target,
        "reached": bool(reached),
        "steps": method.step,
        "seconds": seconds,
        "validation_vote": reached.get("vote"),
        **training_cost(method.spec, method.passes_per_step(), method.step),
        "test_vote": test["ensemble_majority_vote"],
        "test_mean": test["accuracy_mean"],
        "test_disagreement": test["prediction_disagreement"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[8734])
    parser.add_argument(
        "--target",
        type=float,
        default=0.99,
        help="validation majority vote to reach (default 0.99)",
    )
    parser.add_argument("--every", type=int, default=250, help="steps between validations")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="give up after this many steps (default the config's)",
    )
    parser.add_argument(
        "--reference", default=None, help="a config timed the same way in this run, for ratios"
    )
    parser.add_argument(
        "--reference-seeds", type=int, nargs="+", default=None, help="default: --seeds"
    )
    parser.add_argument(
        "--runs", default=None, help="keep the run folders here (default a temporary folder)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs = [args.config] + ([args.reference] if args.reference else [])
    ctx = distributed.setup(distributed.resolve_device(args.device))
    rows = []
    with tempfile.TemporaryDirectory(prefix="speedrun-") as workdir:
        workdir = distributed.broadcast_object(args.runs or workdir, ctx)  # rank 0's is the run's
        data = load_dataset(load_config(args.config).data, args.data_dir)
        for index, config_path in enumerate(configs):
            for seed in (args.reference_seeds or args.seeds) if index else args.seeds:
                row = speedrun(
                    config_path,
                    seed,
                    args.target,
                    args.every,
                    args.max_steps,
                    Path(workdir) / f"{index}_seed{seed}",
                    data,
                    args.device,
                )
                if row is not None:
                    rows.append(
                        {
                            **row,
                            "reference": index == 1,
                            "processes": ctx.world_size,
                            "threads": args.threads,
                        }
                    )
        distributed.teardown()
    if not ctx.is_main:
        return
    reference_times = [r["seconds"] for r in rows if r["reference"]]
    reference = sum(reference_times) / len(reference_times) if reference_times else float("nan")
    print(
        f"{'config':34s} {'seed':>6s} {'steps':>7s} {'wall s':>8s} {'ratio':>6s} "
        f"{'TFLOP':>7s} {'test vote':>9s} {'mean':>7s} {'disagree':>8s}"
    )
    for r in rows:
        ratio = r["ratio_to_reference"] = r["seconds"] / reference
        flag = "" if r["reached"] else "  (target not reached)"
        print(
            f"{r['config']:34s} {r['seed']:6d} {r['steps']:7d} {r['seconds']:8.1f} "
            f"{ratio:6.2f} {r['target_flops'] / 1e12:7.2f} {100 * r['test_vote']:8.2f}% "
            f"{100 * r['test_mean']:6.2f}% {100 * r['test_disagreement']:7.2f}%{flag}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
