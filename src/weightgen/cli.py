"""The ``weightgen`` command: train, sample, evaluate.

Errors a user can cause print one line, ``weightgen: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
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
        words = self.prog.split()  # "weightgen" or "weightgen SUBCOMMAND"
        raise WeightgenError(f"{words[-1]}: {message}" if len(words) > 1 else message)


def _at_least(minimum: int):
    """An argparse type: a whole number >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        if value >= 2 ** 63:
            raise argparse.ArgumentTypeError(f"expected a number below 2**63, got {value}")
        return value
    return parse


_positive, _non_negative = _at_least(1), _at_least(0)


REPORT_OPTIONS = {  # the report's protocol sizes, each a paper figure's
    "networks": "networks sampled for the accuracy histograms and ensembles (Fig. 3)",
    "ensemble_size": "networks per ensemble; --networks / this many disjoint ensembles",
    "pca_samples": "networks sampled for each PCA scatter matrix (Figs. 14-26)",
    "filter_samples": "filters drawn per filter-sample figure (Figs. 7-13)",
    "path_pairs": "pairs of networks whose connecting paths are walked (Figs. 4-5)",
    "path_points": "points evaluated along each path",
    "diversity_networks": "networks compared pairwise for distances and disagreement",
    "adversarial_images": "test images attacked by targeted FGSM (Fig. 6)",
    "adversarial_ensemble": "networks in the attacked ensemble (Fig. 6)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weightgen", description="Hypernetworks that generate whole neural "
                     "networks (Deutsch 2018, 'Generating Neural Networks with Neural Networks').")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"weightgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    common.add_argument("--data-dir", default=None,
                        help="folder with the MNIST .gz files (else $WEIGHTGEN_DATA, the cache)")
    _add_threads(common)

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
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    _add_batch_norm(p)

    p = sub.add_parser("evaluate", parents=[common], help="accuracy of generated networks and "
                       "of their ensembles")
    p.add_argument("source", help="a run folder or a .safetensors networks file")
    p.add_argument("-n", "--num", type=_positive, default=None,
                   help="networks to sample from a run folder (default 200)")
    p.add_argument("--ensemble-size", type=_positive, default=None,
                   help="split the networks into disjoint ensembles of this size")
    p.add_argument("--split", choices=["test", "validation"], default="test",
                   help="MNIST split: the 10,000 test images or the 5,000 validation images "
                        "(the first 5,000 training images; default test)")
    p.add_argument("--seed", type=_non_negative, default=0, help="noise seed (default 0)")
    p.add_argument("--json", dest="json_out", help="write all metrics to this JSON file")
    p.add_argument("--force", action="store_true", help="replace the --json file if it exists")
    p.add_argument("--include-non-finite", action="store_true",
                   help="evaluate networks with NaN or infinite weights instead of refusing")
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
                       help=f"{REPORT_OPTIONS[name]} (default {getattr(defaults, name)})")
    p.add_argument("--test-images", type=_positive, default=None,
                   help="use only the first N test images (default all 10,000)")
    p.add_argument("--seed", type=_non_negative, default=0,
                   help="seed of every noise draw of the report (default 0)")
    _add_precision(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("bench", help="training and evaluation throughput against plain "
                       "reference loops in the same process")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    _add_threads(p)
    p.add_argument("--steps", type=_positive, default=5, help="timed training steps")
    p.add_argument("--noise-samples", type=_positive, default=32,
                   help="networks per timed training step (default 32, the paper's)")
    p.add_argument("--images-per-network", type=_positive, default=32,
                   help="images per network per timed training step (default 32)")
    p.add_argument("--networks", type=_positive, default=16,
                   help="networks evaluated (default 16)")
    p.add_argument("--images", type=_positive, default=2000,
                   help="shared evaluation images (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench
    from .train import resolve_device

    _threads(args)
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

    _threads(args)
    from .evaluate import warn_if_slow_bfloat16
    warn_if_slow_bfloat16(args.precision, resolve_device(args.device))
    out = Path(args.out)
    from .runfolder import run_method

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

    threads = _threads(args)
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
    if config.method == "hypernetwork":
        from .memory import require, training_step_bytes
        require(training_step_bytes(config.target.build(), config.train.noise_samples,
                                    config.train.images_per_network),
                f"a training step of {config.train.noise_samples} noise samples x "
                f"{config.train.images_per_network} images", "lower train.noise_samples or "
                f"train.images_per_network")
    from .evaluate import warn_if_slow_bfloat16
    from .train import resolve_device
    warn_if_slow_bfloat16(config.train.precision, resolve_device(args.device))
    from .runfolder import RunLock
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun rank 0 owns the folder
    with RunLock(out) if main_process else contextlib.nullcontext():
        return _train_in(config, out, args, threads)


def _train_in(config, out: Path, args: argparse.Namespace, threads: str) -> int:
    from .train import prepare_run_folder, resolve_device, train

    progress = not args.no_progress and sys.stderr.isatty()  # no bars in log files
    if config.method == "hypernetwork":
        metrics = train(config, out, device=args.device, data_dir=args.data_dir,
                        progress=progress, threads=threads)
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


def _hypernet_chunks(hypernet, n: int, seed: int, gauge: bool, batch_norm: str, ctx):
    """(lo, z, filters) for consecutive chunks of the n networks a hypernetwork run samples
    with ``seed``: z is drawn chunk by chunk from one generator, the same numbers as one draw
    of all n. Under torchrun each rank generates its share of a chunk; all receive it."""
    from . import distributed
    from .api import SAMPLE_CHUNK
    from .rng import seeded_generator
    from .train import chunk_bounds, generate

    noise = seeded_generator(seed, "sample")
    for lo, hi in chunk_bounds(n, SAMPLE_CHUNK):
        z = hypernet.sample_noise(hi - lo, noise)
        mine = distributed.split(hi - lo, ctx)
        filters = generate(hypernet, z[mine], gauge=gauge, batch_norm=batch_norm) \
            if mine.stop > mine.start else \
            [z.new_zeros((0, layer.out_size, layer.filter_size)) for layer in hypernet.spec.layers]
        gathered = [distributed.gather_shards(f, hi - lo, ctx) for f in filters]
        del filters
        yield lo, z, gathered
        del z, gathered


def _open_run(run_dir: str, n: int, seed: int, device: str, gauge: bool, batch_norm: str):
    """(ctx, config, spec, step, chunks) of a run folder of any method; chunks yields
    (lo, z or None, filters) for the n networks in order."""
    from . import distributed
    from .memory import require
    from .runfolder import run_method
    from .symmetry import gauge_fix
    from .train import load_run, resolve_device

    ctx = distributed.setup(resolve_device(device))
    dev = distributed.local_device(resolve_device(device), ctx)
    method = run_method(run_dir)
    if batch_norm != "running" and method in ("direct", "mnfg"):
        raise WeightgenError(f"--batch-norm {batch_norm}: {run_dir} is a {method} run, which "
                             f"has no batch norm")
    if method in ("direct", "mnfg"):
        if method == "direct":
            from .baselines.direct import load_direct
            config, spec, filters, step = load_direct(Path(run_dir))
            if n > len(filters[0]):
                raise WeightgenError(f"{run_dir} holds {len(filters[0])} trained networks, "
                                     f"not {n}")
            filters = [f[:n].to(dev) for f in filters]
        else:
            from .baselines.mnfg import load_mnfg
            from .rng import seeded_generator
            config, model, step = load_mnfg(Path(run_dir), dev)
            spec = model.spec
            require(3 * 4 * n * spec.num_weights, f"sampling {n} MNFG networks at once",
                    "sample fewer")
            filters = model.sample_filters(n, seeded_generator(seed, "sample"))
        filters = gauge_fix(spec, filters) if gauge else filters
        return ctx, config, spec, step, iter([(0, None, filters)])
    config, hypernet, step = load_run(run_dir, str(dev))
    return ctx, config, hypernet.spec, step, _hypernet_chunks(hypernet, n, seed, gauge,
                                                              batch_norm, ctx)


def _check_output(path: str, force: bool, inputs: Sequence[str] = ()) -> None:
    """Before any work: refuse to replace an input, an existing file without --force, or to
    write into a folder that does not exist."""
    target = Path(path)
    if any(Path(i).exists() and target.exists() and target.resolve() == Path(i).resolve()
           for i in inputs):
        raise WeightgenError(f"{path} is an input of this command; write the output elsewhere")
    if target.is_dir():
        raise WeightgenError(f"{path} is a folder; give a file name")
    if target.exists() and not force:
        raise WeightgenError(f"{path} exists; pass --force to replace it")
    if not target.resolve().parent.is_dir():
        raise WeightgenError(f"{path}: folder {target.parent} does not exist")


def _non_finite(filters: Sequence) -> "torch.Tensor":
    """(N,) bool: networks with a NaN or infinite weight."""
    import torch
    return ~torch.stack([torch.isfinite(f.flatten(1)).all(1) for f in filters]).all(0)


def _cmd_sample(args: argparse.Namespace) -> int:
    from .exchange import NetworksWriter

    if not args.output.endswith(".safetensors"):
        raise WeightgenError(f"-o {args.output}: the file name must end in .safetensors")
    _check_output(args.output, args.force, [args.run_dir])
    _threads(args)
    ctx, config, spec, step, chunks = _open_run(args.run_dir, args.num, args.seed, args.device,
                                                gauge=not args.raw, batch_norm=args.batch_norm)
    source = {"hypernetwork": "weightgen hypernetwork", "mnfg": "weightgen MNFG baseline",
              "direct": "weightgen directly trained networks"}[config.method]
    extra = {"source": source, "run": config.name, "step": str(step), "seed": str(args.seed),
             "gauge_fixed": str(not args.raw).lower(),
             **({"batch_norm": args.batch_norm} if config.method == "hypernetwork" else {})}
    noise_dim = config.hypernet.noise_dim if config.method == "hypernetwork" else None
    if not ctx.is_main:
        for _ in chunks:  # generate this rank's shares; rank 0 writes
            pass
        return 0
    with NetworksWriter(args.output, spec, args.num, noise_dim, extra) as out:
        for lo, z, filters in chunks:
            bad = int(_non_finite(filters).sum())
            if bad:
                raise WeightgenError(f"{bad} of the networks {lo}..{lo + len(filters[0]) - 1} "
                                     f"have non-finite weights; nothing was written")
            out.write(lo, filters, z)
            del z, filters  # one chunk in memory at a time
    print(f"wrote {args.num} networks (step {step}) to {args.output}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from . import distributed
    from .data import load_mnist
    from .evaluate import evaluate_networks
    from .exchange import load_networks
    from .memory import require
    from .train import resolve_device

    if args.json_out:
        _check_output(args.json_out, args.force, [args.source])
    _threads(args)
    num = 200 if args.num is None else args.num
    source = Path(args.source)
    if source.is_dir():
        ctx, config, spec, step, chunks = _open_run(args.source, num, args.seed,
                                                    args.device, gauge=True,
                                                    batch_norm=args.batch_norm)
        require(3 * 4 * num * spec.num_weights, f"evaluating {num} networks at once",
                "use a smaller -n (or several runs of evaluate with other --seed values)")
        parts = [filters for _, _, filters in chunks]
        filters = [torch.cat(layer) for layer in zip(*parts)]
        origin = f"{source} step {step}"
    else:
        if args.num is not None:
            raise WeightgenError("-n samples networks from a run folder; a networks file is "
                                 "evaluated whole")
        if args.batch_norm != "running":
            raise WeightgenError("--batch-norm applies to sampling from a run folder, not to "
                                 "a networks file")
        networks = load_networks(source)
        ctx = distributed.setup(resolve_device(args.device))
        dev = distributed.local_device(resolve_device(args.device), ctx)
        spec, filters, origin = networks.spec, [f.to(dev) for f in networks.filters()], str(source)
    count = filters[0].shape[0]
    if args.ensemble_size is not None and args.ensemble_size > count:
        raise WeightgenError(f"--ensemble-size {args.ensemble_size} is larger than the "
                             f"{count} networks evaluated")
    bad = _non_finite(filters)
    if bad.any() and not args.include_non_finite:
        raise WeightgenError(f"{int(bad.sum())} of {count} networks have non-finite weights "
                             f"(NaN or inf); pass --include-non-finite to evaluate them anyway")
    from .evaluate import warn_if_slow_bfloat16
    warn_if_slow_bfloat16(args.precision, filters[0].device)
    data = load_mnist(args.data_dir)
    split = getattr(data, args.split).to(filters[0].device)
    _check_spec_fits(spec, split)
    metrics = evaluate_networks(spec, filters, split, ensemble_size=args.ensemble_size, ctx=ctx,
                                 precision=args.precision, progress=sys.stderr.isatty())
    metrics["source"] = origin
    metrics["split"] = args.split
    metrics["precision"] = args.precision
    metrics["non_finite_networks"] = int(bad.sum())
    if not ctx.is_main:
        return 0
    print(f"{metrics['networks']} networks from {origin} on {args.split} "
          f"({metrics['images']} images)")
    if metrics["non_finite_networks"]:
        print(f"  {metrics['non_finite_networks']} of them have non-finite weights")
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


def _check_spec_fits(spec, split) -> None:
    """The networks must read the split's images and have one output per class."""
    shape = tuple(split.images.shape[1:])
    if tuple(spec.input_shape) != shape:
        raise WeightgenError(f"the networks read inputs of shape {tuple(spec.input_shape)}, the "
                             f"data has {shape}")
    classes = int(split.labels.max()) + 1
    if spec.num_classes < classes:
        raise WeightgenError(f"the networks have {spec.num_classes} outputs, the data has "
                             f"{classes} classes")


COMMANDS = {"train": _cmd_train, "sample": _cmd_sample, "evaluate": _cmd_evaluate,
            "report": _cmd_report, "bench": _cmd_bench}


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", default=None,
                   help="CPU threads: a number, 'all' or 'auto' (default $WEIGHTGEN_THREADS, "
                        "else auto: the cores other processes leave idle, re-measured during "
                        "training; a fixed number makes runs bit-for-bit reproducible)")


def _threads(args: argparse.Namespace) -> str:
    """The --threads setting, validated, with its default; applied to PyTorch."""
    from .threads import ENV, apply_threads, parse_threads
    value = args.threads or os.environ.get(ENV) or "auto"
    parse_threads(value)  # a bad value is a one-line error before any work
    apply_threads(value)
    return value


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


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers send before SIGKILL), handled like Ctrl-C: training saves a
    checkpoint on its way out."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _interrupted_message(command: str | None, terminated: bool) -> str:
    how = "terminated (SIGTERM)" if terminated else "interrupted"
    if command == "train":
        return f"{how}; a checkpoint was saved: run the same command to continue"
    return f"{how}; nothing was written"


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    command = None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        code = COMMANDS[args.command](args)
        from .distributed import teardown
        teardown()
        return code
    except WeightgenError as err:
        print(f"weightgen: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"weightgen: {_interrupted_message(command, terminated)}", file=sys.stderr)
        return 143 if terminated else 130
    except MemoryError:
        print("weightgen: error: out of memory; use fewer networks or images at once",
              file=sys.stderr)
        return 2
    except RuntimeError as err:
        if "allocate" not in str(err) and "out of memory" not in str(err):
            return _internal_error(err)
        print("weightgen: error: out of memory; use fewer networks or images at once",
              file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line, the traceback on request
        return _internal_error(err)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _internal_error(err: Exception) -> int:
    if os.environ.get("WEIGHTGEN_DEBUG"):
        raise err
    print(f"weightgen: internal error: {type(err).__name__}: {err} (set WEIGHTGEN_DEBUG=1 "
          f"for the traceback)", file=sys.stderr)
    return 1
