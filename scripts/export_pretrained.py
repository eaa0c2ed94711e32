"""Ship a trained hypernetwork run as ``pretrained:NAME``: its weights (no optimizer state), its
config and a card with its provenance, its counted training cost and measured test numbers.

    python scripts/export_pretrained.py RUN NAME --trained-with "weightgen train ..." \
        --machine "2-core AMD EPYC (AVX2), PyTorch 2.13.0 CPU" [--step best]

Measures, with sampling seed 0 on the test split of the run's dataset: 200 networks (mean, min,
max, majority vote of the 200), and the subset tests/test_pretrained.py re-measures (20
networks, the first 2,000 test images).
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import torch
import yaml

from weightgen import pretrained
from weightgen.cliargs import parse_step
from weightgen.data import load_dataset
from weightgen.evaluate import ensemble_metrics, predict
from weightgen.reportpage import provenance
from weightgen.runfolder import open_run, run_cost, saved_config

SUBSET_NETWORKS, SUBSET_IMAGES = 20, 2000


def measure(method, test, networks: int, images: int) -> dict:
    nets = next(method.sample(networks, seed=0, chunk=networks))
    m = ensemble_metrics(
        predict(method.spec, nets.filters, test.images[:images]), test.labels[:images]
    )
    keys = (
        "accuracy_mean",
        "accuracy_min",
        "accuracy_max",
        "ensemble_majority_vote",
        "cross_entropy",
        "ensemble_nll",
        "prediction_disagreement",
    )
    return {"networks": networks, "images": images, "seed": 0, **{k: round(m[k], 6) for k in keys}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("name")
    parser.add_argument("--trained-with", required=True, help="the command that trained it")
    parser.add_argument("--machine", required=True, help="where it was trained")
    parser.add_argument(
        "--step",
        type=parse_step,
        default=None,
        help="checkpoint to ship: a step number or 'best' by validation vote (default: the newest)",
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # bit-reproducible measurements
    method = open_run(args.run, step=args.step)
    if method.name != "hypernetwork":
        raise SystemExit("only hypernetwork runs are shipped")
    test = load_dataset(method.config.data, args.data_dir).test
    commit = provenance(None)["commit"]
    info = {
        "name": args.name,
        "method": method.name,
        "run": method.config.name,
        "step": method.step,
        "trained_with": args.trained_with,
        "machine": args.machine,
        "exported_at_commit": commit,
        "exported": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "training_cost": run_cost(method, Path(args.run)),
        "test": measure(method, test, 200, len(test)),
        "test_subset": measure(method, test, SUBSET_NETWORKS, SUBSET_IMAGES),
    }
    out = pretrained.FOLDER / args.name
    pretrained.export(
        method.module.state_dict(),
        yaml.safe_dump(saved_config(args.run), sort_keys=False),
        info,
        out,
    )
    print(f"wrote {out}: {info['test']}")


if __name__ == "__main__":
    main()
