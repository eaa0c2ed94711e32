"""The ``weightgen`` command: train, sample, evaluate.

Errors a user can cause print one line, ``weightgen: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from .errors import WeightgenError


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line instead of usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise WeightgenError(f"{self.prog.split()[-1]}: {message}")


def _at_least(minimum: int):
    """An argparse type: a whole number >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value
    return parse


_positive, _non_negative = _at_least(1), _at_least(0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weightgen", description="Hypernetworks that generate whole neural "
                     "networks (Deutsch 2018, 'Generating Neural Networks with Neural Networks').")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    common.add_argument("--data-dir", default=None,
                        help="folder with the MNIST .gz files (else $WEIGHTGEN_DATA, the cache)")

    p = sub.add_parser("train", parents=[common], help="train a hypernetwork (resumes if --out "
                       "already holds a run)")
    p.add_argument("--config", required=True, help="YAML experiment config (see configs/)")
    p.add_argument("--steps", type=_non_negative, help="override train.steps")
    p.add_argument("--out", help="run folder (default runs/<config name>)")
    p.add_argument("--seed", type=_non_negative, help="override the config's seed")
    p.add_argument("--checkpoint-every", type=_positive, help="override train.checkpoint_every")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("sample", parents=[common], help="write N generated networks to a "
                       "safetensors exchange file")
    p.add_argument("run_dir", help="a run folder made by 'weightgen train'")
    p.add_argument("-n", "--num", type=_positive, required=True, help="number of networks")
    p.add_argument("-o", "--output", required=True, help="output .safetensors file")
    p.add_argument("--seed", type=_non_negative, default=0, help="noise seed (default 0)")
    p.add_argument("--raw", action="store_true",
                   help="export G(z) as generated instead of gauge-fixed S(G(z))")
    _add_batch_norm(p)

    p = sub.add_parser("evaluate", parents=[common], help="accuracy of generated networks and "
                       "of their ensembles")
    p.add_argument("source", help="a run folder or a .safetensors networks file")
    p.add_argument("-n", "--num", type=_positive, default=200,
                   help="networks to sample from a run folder (default 200)")
    p.add_argument("--ensemble-size", type=_positive, default=None,
                   help="split the networks into disjoint ensembles of this size")
    p.add_argument("--split", choices=["test", "validation"], default="test")
    p.add_argument("--seed", type=_non_negative, default=0, help="noise seed (default 0)")
    p.add_argument("--json", dest="json_out", help="write all metrics to this JSON file")
    _add_precision(p)
    _add_batch_norm(p)

    p = sub.add_parser("report", parents=[common], help="every experiment and figure of the "
                       "paper for a run (and others to compare) in one report")
    p.add_argument("source", help="a run folder (hypernetwork, baseline or toy), a networks file "
                   "or a finished report's folder")
    p.add_argument("--compare", nargs="+", default=[], metavar="RUN_OR_FILE",
                   help="further runs, networks files or finished report folders (reused, not "
                        "recomputed) shown beside it")
    p.add_argument("--out", required=True, help="folder for index.html, report.md, PNGs, "
                   "metrics.json")
    from .report import ReportSettings
    defaults = ReportSettings()
    for name in ("networks", "ensemble_size", "pca_samples", "filter_samples", "path_pairs",
                 "path_points", "diversity_networks", "adversarial_images",
                 "adversarial_ensemble"):
        p.add_argument(f"--{name.replace('_', '-')}", type=_positive,
                       default=getattr(defaults, name),
                       help=f"(default {getattr(defaults, name)})")
    p.add_argument("--test-images", type=_positive, default=None,
                   help="use only the first N test images (default all 10,000)")
    p.add_argument("--seed", type=_non_negative, default=0)
    _add_precision(p)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("bench", help="training and evaluation throughput against plain "
                       "reference loops in the same process")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--steps", type=_positive, default=5, help="timed training steps")
    p.add_argument("--noise-samples", type=_positive, default=32)
    p.add_argument("--images-per-network", type=_positive, default=32)
    p.add_argument("--networks", type=_positive, default=16, help="networks evaluated")
    p.add_argument("--images", type=_positive, default=2000, help="shared evaluation images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench
    from .train import resolve_device

    result = run_bench(resolve_device(args.device), args.steps, args.noise_samples,
                       args.images_per_network, args.networks, args.images)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:34s} {value:.3f}" if isinstance(value, float) else f"{key:34s} {value}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import (ReportSettings, build_report, is_report_folder, open_source,
                         toy_report)
    from .train import resolve_device

    out = Path(args.out)
    from .train import run_method

    if run_method(args.source) == "toy":
        toy_report(Path(args.source), out)
    else:
        fields = {name: getattr(args, name) for name in ReportSettings.__dataclass_fields__
                  if hasattr(args, name)}
        settings = ReportSettings(**fields)
        if settings.ensemble_size > settings.networks:
            raise WeightgenError("--ensemble-size cannot exceed --networks")
        device = str(resolve_device(args.device))
        sources = [Path(s) if is_report_folder(s) else open_source(s, args.seed, device)
                   for s in [args.source, *args.compare]]
        build_report(sources, out, settings, args.data_dir, progress=not args.no_progress)
    print(f"report written to {out / 'index.html'}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import prepare_run_folder, resolve_device, train

    config = load_config(args.config)
    if args.seed is not None:
        config = config.replace(seed=args.seed)
    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.checkpoint_every is not None:
        overrides["checkpoint_every"] = args.checkpoint_every
    if config.method in ("toy", "direct", "mnfg") and "steps" in overrides:
        section = getattr(config, config.method)  # these methods count steps in their section
        config = config.replace(**{config.method: dataclasses.replace(
            section, steps=overrides.pop("steps"))})
    if overrides:
        config = config.replace(train=dataclasses.replace(config.train, **overrides))
    out = Path(args.out or Path("runs") / config.name)
    progress = not args.no_progress
    if config.method == "hypernetwork":
        metrics = train(config, out, device=args.device, data_dir=args.data_dir,
                        progress=progress)
    else:
        prepare_run_folder(config, out)
        if config.method == "toy":
            from .toy import train_toy
            stats = train_toy(config.toy, config.seed, out, config.train.checkpoint_every,
                              progress=progress)
            print(f"toy run: mean density {stats.get('density', float('nan')):.4f}; "
                  f"run folder: {out}")
            return 0
        from .baselines.direct import train_direct
        from .baselines.mnfg import train_mnfg
        trainer = train_direct if config.method == "direct" else train_mnfg
        metrics = trainer(config, out, resolve_device(args.device), data_dir=args.data_dir,
                          progress=progress)
    if metrics:
        print(f"validation after step {metrics['step']}: mean accuracy "
              f"{metrics['accuracy_mean']:.4f}, majority vote "
              f"{metrics['ensemble_majority_vote']:.4f}")
    print(f"run folder: {out}")
    return 0


def _sample(run_dir: str, n: int, seed: int, device: str, gauge: bool,
            batch_norm: str = "running"):
    """Sample n networks from a run; under torchrun each rank generates its share and every
    rank receives all of them."""
    from . import distributed
    from .rng import seeded_generator
    from .train import generate, load_run, resolve_device, run_method

    ctx = distributed.setup(resolve_device(device))
    dev = distributed.local_device(resolve_device(device), ctx)
    if batch_norm != "running" and run_method(run_dir) in ("direct", "mnfg"):
        raise WeightgenError(f"--batch-norm {batch_norm}: {run_dir} is a "
                             f"{run_method(run_dir)} run, which has no batch norm")
    if run_method(run_dir) == "direct":
        from .baselines.direct import load_direct
        from .symmetry import gauge_fix
        config, spec, filters, step = load_direct(Path(run_dir))
        if n > len(filters[0]):
            raise WeightgenError(f"{run_dir} holds {len(filters[0])} trained networks, not {n}")
        filters = [f[:n].to(dev) for f in filters]
        return ctx, config, spec, step, None, gauge_fix(spec, filters) if gauge else filters
    if run_method(run_dir) == "mnfg":
        from .baselines.mnfg import load_mnfg
        from .symmetry import gauge_fix
        config, model, step = load_mnfg(Path(run_dir), dev)
        filters = model.sample_filters(n, seeded_generator(seed, "sample"))
        return ctx, config, model.spec, step, None, gauge_fix(model.spec, filters) if gauge \
            else filters
    config, hypernet, step = load_run(run_dir, str(dev))
    z = hypernet.sample_noise(n, seeded_generator(seed, "sample"))
    mine = distributed.split(n, ctx)
    filters = generate(hypernet, z[mine], gauge=gauge, batch_norm=batch_norm) \
        if mine.stop > mine.start else \
        [z.new_zeros((0, layer.out_size, layer.filter_size)) for layer in hypernet.spec.layers]
    filters = [distributed.gather_shards(f, n, ctx) for f in filters]
    return ctx, config, hypernet.spec, step, z, filters


def _cmd_sample(args: argparse.Namespace) -> int:
    from .exchange import save_networks

    if not args.output.endswith(".safetensors"):
        raise WeightgenError(f"-o {args.output}: the file name must end in .safetensors")
    ctx, config, spec, step, z, filters = _sample(args.run_dir, args.num, args.seed,
                                                  args.device, gauge=not args.raw,
                                                  batch_norm=args.batch_norm)
    if ctx.is_main:
        save_networks(args.output, spec, filters, z,
                      extra={"source": "weightgen hypernetwork", "run": config.name,
                             "step": str(step), "seed": str(args.seed),
                             "gauge_fixed": str(not args.raw).lower()})
        print(f"wrote {args.num} networks (step {step}) to {args.output}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import distributed
    from .data import load_mnist
    from .evaluate import evaluate_networks
    from .exchange import load_networks
    from .train import resolve_device

    source = Path(args.source)
    if source.is_dir():
        ctx, _, spec, step, _, filters = _sample(args.source, args.num, args.seed,
                                                 args.device, gauge=True,
                                                 batch_norm=args.batch_norm)
        origin = f"{source} step {step}"
    else:
        networks = load_networks(source)
        ctx = distributed.setup(resolve_device(args.device))
        dev = distributed.local_device(resolve_device(args.device), ctx)
        spec, filters, origin = networks.spec, [f.to(dev) for f in networks.filters()], str(source)
    data = load_mnist(args.data_dir)
    split = getattr(data, args.split).to(filters[0].device)
    metrics = evaluate_networks(spec, filters, split, ensemble_size=args.ensemble_size, ctx=ctx,
                                 precision=args.precision, progress=sys.stderr.isatty())
    metrics["source"] = origin
    metrics["split"] = args.split
    metrics["precision"] = args.precision
    if not ctx.is_main:
        return 0
    print(f"{metrics['networks']} networks from {origin} on {args.split} "
          f"({metrics['images']} images)")
    print(f"  accuracy mean {metrics['accuracy_mean']:.4f}  std {metrics['accuracy_std']:.4f}  "
          f"min {metrics['accuracy_min']:.4f}  max {metrics['accuracy_max']:.4f}")
    print(f"  ensembles {metrics['ensembles']} x {metrics['ensemble_size']}: majority vote "
          f"{metrics['ensemble_majority_vote']:.4f}  mean probability "
          f"{metrics['ensemble_mean_probability']:.4f}  most confident "
          f"{metrics['ensemble_most_confident']:.4f}")
    if args.json_out:
        from .fileio import atomic_write_text
        atomic_write_text(args.json_out, json.dumps(metrics, indent=2))
    return 0


COMMANDS = {"train": _cmd_train, "sample": _cmd_sample, "evaluate": _cmd_evaluate,
            "report": _cmd_report, "bench": _cmd_bench}


def _add_batch_norm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-norm", choices=["running", "batch"], default="running",
                   help="hypernetwork batch norm when sampling: running statistics (default; "
                        "each network independent of the others) or the statistics of each "
                        "batch of 200 noise vectors, as the paper's original code")


def _add_precision(p: argparse.ArgumentParser) -> None:
    from .evaluate import PRECISIONS
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="float32",
                   help="arithmetic of the networks' forward passes (default float32; bfloat16 "
                        "is about 2x faster where the hardware has it)")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = COMMANDS[args.command](args)
        from .distributed import teardown
        teardown()
        return code
    except WeightgenError as err:
        print(f"weightgen: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("weightgen: interrupted (a training run saved a checkpoint; run the same command "
              "to continue)", file=sys.stderr)
        return 130
    except MemoryError:
        print("weightgen: error: out of memory; use fewer networks or images at once",
              file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line, the traceback on request
        if os.environ.get("WEIGHTGEN_DEBUG"):
            raise
        print(f"weightgen: internal error: {type(err).__name__}: {err} (set WEIGHTGEN_DEBUG=1 "
              f"for the traceback)", file=sys.stderr)
        return 1
