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
from collections.abc import Sequence
from pathlib import Path

from . import pretrained
from .cliargs import build_parser
from .errors import WeightgenError


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench
    from .distributed import resolve_device

    _threads(args)
    result = run_bench(
        resolve_device(args.device),
        args.steps,
        args.noise_samples,
        args.images_per_network,
        args.networks,
        args.images,
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:34s} {value:.3f}" if isinstance(value, float) else f"{key:34s} {value}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .distributed import resolve_device
    from .evaluate import warn_if_slow_bfloat16
    from .methods.toy import ToyMethod
    from .report import (
        ReportSettings,
        build_report,
        check_report_folder,
        is_report_folder,
        open_source,
        report_folder,
        toy_report,
    )
    from .runfolder import open_run

    _threads(args)
    warn_if_slow_bfloat16(args.precision, resolve_device(args.device))
    out = Path(args.out)
    check_report_folder(out, args.force)  # before any run is opened
    device = str(resolve_device(args.device))
    is_run = pretrained.resolve(args.source).is_dir() and not is_report_folder(args.source)
    if args.step is not None and not is_run:
        raise WeightgenError(
            f"--step chooses a checkpoint of a run folder; {args.source} is not one"
        )
    if is_run:
        method = open_run(args.source, device, args.step)
        if isinstance(method, ToyMethod):  # a generator of points: Fig. 2 only
            with report_folder(out, args.force) as partial:
                toy_report(method, partial, command=args.command_line)
            print(f"report written to {out / 'index.html'}")
            return 0
    fields = {
        name: getattr(args, name)
        for name in ReportSettings.__dataclass_fields__
        if hasattr(args, name)
    }
    settings = ReportSettings(**fields)
    if settings.ensemble_size > settings.networks:
        raise WeightgenError("--ensemble-size cannot exceed --networks")
    sources = [
        Path(s) if is_report_folder(s) else open_source(s, args.seed, device, step)
        for s, step in [(args.source, args.step), *((c, None) for c in args.compare)]
    ]
    trained_on = next((s.data for s in sources if not isinstance(s, Path) and s.data), None)
    data = _data_config(args.data) if args.data else trained_on or _data_config("mnist")
    ood = data.ood if args.ood is None else None if args.ood == "none" else args.ood
    with report_folder(out, args.force) as partial:
        build_report(
            sources,
            partial,
            settings,
            args.data_dir,
            progress=not args.no_progress and sys.stderr.isatty(),
            data=data,
            ood=ood,
            command=args.command_line,
        )
    print(f"report written to {out / 'index.html'}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .methods import METHODS
    from .runfolder import RunLock, remove_if_unused

    threads = _threads(args)
    config = load_config(args.config, args.set)
    if args.seed is not None:
        config = config.replace(seed=args.seed)
    overrides = {}
    if args.steps is not None:  # counted in the method's own section
        section = METHODS[config.method].section
        config = config.replace(
            **{section: dataclasses.replace(getattr(config, section), steps=args.steps)}
        )
    if args.checkpoint_every is not None:
        overrides["checkpoint_every"] = args.checkpoint_every
    if args.tensorboard:
        overrides["tensorboard"] = True
    if overrides:
        config = config.replace(train=dataclasses.replace(config.train, **overrides))
    out = Path(args.out or Path("runs") / config.name)
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun rank 0 owns the folder
    created = not out.exists()
    try:
        with RunLock(out) if main_process else contextlib.nullcontext():
            return _train_in(config, out, args, threads)
    except WeightgenError:
        if created and main_process:  # a refused train leaves no trace in a folder it made
            remove_if_unused(out)
        raise


def _train_in(config, out: Path, args: argparse.Namespace, threads: str) -> int:
    from .loop import train

    progress = not args.no_progress and sys.stderr.isatty()  # no bars in log files
    last = train(
        config, out, device=args.device, data_dir=args.data_dir, progress=progress, threads=threads
    )
    if last.get("kind") == "validation":
        print(
            f"validation after step {last['step']}: mean accuracy "
            f"{last['accuracy_mean']:.4f}, majority vote "
            f"{last['ensemble_majority_vote']:.4f}"
        )
    elif "density" in last:
        print(f"toy run: mean density {last['density']:.4f}")
    print(f"run folder: {out}")
    return 0


def _open_method(run_dir: str, device, step: int | str | None):
    """The trained method of a run folder that makes networks, at checkpoint ``step``."""
    from .runfolder import open_run

    method = open_run(run_dir, device, step)
    if not method.needs_data:
        raise WeightgenError(
            f"{run_dir}: the toy problem has no target networks (use "
            f"'weightgen report' for its figure)"
        )
    return method


@contextlib.contextmanager
def _claimed_output(path: str | None, force: bool, inputs: Sequence[str] = ()):
    """For the whole command: the output file's lock (:func:`~weightgen.fileio.output_lock`),
    then the checks of :func:`_check_output`; nothing for a command without one (and on the
    ranks of a torchrun job other than 0, which write nothing)."""
    if path is None or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    _check_output(path, force, inputs)  # a missing folder is named before the lock is tried
    from .fileio import output_lock

    with output_lock(path):
        _check_output(path, force, inputs)  # again, now that no other writer can start
        yield


def _check_output(path: str, force: bool, inputs: Sequence[str] = ()) -> None:
    """Before any work: refuse to replace an input, an existing file without --force, or to
    write into a folder that does not exist."""
    target = Path(path)
    if any(
        Path(i).exists() and target.exists() and target.resolve() == Path(i).resolve()
        for i in inputs
    ):
        raise WeightgenError(f"{path} is an input of this command; write the output elsewhere")
    if target.is_dir():
        raise WeightgenError(f"{path} is a folder; give a file name")
    if target.exists() and not force:
        raise WeightgenError(f"{path} exists; pass --force to replace it")
    if not target.resolve().parent.is_dir():
        raise WeightgenError(f"{path}: folder {target.parent} does not exist")


def _check_poolable(source: str, spec, first: str, first_spec) -> None:
    """Networks of several sources pool only when they share one target architecture."""
    if spec != first_spec:
        raise WeightgenError(
            f"{source}: its networks are not of the target architecture of "
            f"{first}; only networks of one architecture pool"
        )


def _non_finite(filters: Sequence):
    """(N,) bool tensor: networks with a NaN or infinite weight."""
    import torch

    return ~torch.stack([torch.isfinite(f.flatten(1)).all(1) for f in filters]).all(0)


def _cmd_sample(args: argparse.Namespace) -> int:
    if not args.output.endswith(".safetensors"):
        raise WeightgenError(f"-o {args.output}: the file name must end in .safetensors")
    with _claimed_output(args.output, args.force, args.run_dirs):
        return _sample_into(args)


def _sample_into(args: argparse.Namespace) -> int:
    from . import distributed
    from .evaluate import interleave
    from .exchange import NetworksWriter

    _threads(args)
    ctx, dev = distributed.start(args.device)
    methods = [_open_method(run_dir, dev, args.step) for run_dir in args.run_dirs]
    runs = [(pretrained.resolve(r).resolve(), m.step) for r, m in zip(args.run_dirs, methods)]
    for index, run in enumerate(runs):
        if run in runs[:index]:
            raise WeightgenError(
                f"{args.run_dirs[index]} (step {run[1]}) is given twice: its "
                f"networks would count twice in the pool"
            )
    for run_dir, method in zip(args.run_dirs, methods):
        method.check_batch_norm(args.batch_norm)
        _check_poolable(run_dir, method.spec, args.run_dirs[0], methods[0].spec)
    streams = [
        method.sample(args.num, args.seed, gauge=not args.raw, batch_norm=args.batch_norm, ctx=ctx)
        for method in methods
    ]
    noise_dims = {method.noise_dim for method in methods}
    noise_dim = noise_dims.pop() if len(noise_dims) == 1 else None  # z only if all alike

    def joined(values) -> str:
        return " + ".join(str(v) for v in values)

    extra = {
        "source": joined(m.label for m in methods),
        "run": joined(m.config.name for m in methods),
        "step": joined(m.step for m in methods),
        "seed": str(args.seed),
        "gauge_fixed": str(not args.raw).lower(),
        **(
            methods[0].config.data.to_metadata()
            if len({m.config.data for m in methods}) == 1
            else {}
        ),
        **({"batch_norm": args.batch_norm} if any(m.batch_norm for m in methods) else {}),
    }
    if not ctx.is_main:
        for _ in zip(*streams):  # generate this rank's shares; rank 0 writes
            pass
        return 0
    total = args.num * len(methods)
    with NetworksWriter(
        args.output, methods[0].spec, total, noise_dim, extra, replace=args.force
    ) as out:
        lo = 0
        for chunks in zip(*streams):  # chunk c of every source: networks of one index range
            filters = interleave([c.filters for c in chunks])  # one of each source in turn
            z = interleave([[c.z] for c in chunks])[0] if noise_dim is not None else None
            bad = int(_non_finite(filters).sum())
            if bad:
                last = lo + filters[0].shape[0] - 1
                raise WeightgenError(
                    f"{bad} of the networks {lo}..{last} have non-finite "
                    f"weights; nothing was written"
                )
            out.write(lo, filters, z)
            lo += filters[0].shape[0]
            del chunks, filters, z  # one chunk of each source in memory at a time
    print(f"wrote {total} networks (step {extra['step']}) to {args.output}")
    return 0


def _networks_to_evaluate(source: str, args: argparse.Namespace, ctx, dev):
    """(spec, filters, origin, data config or None) of one ``evaluate`` source: -n networks
    sampled from a run folder (checkpoint --step), or a whole networks file."""
    import torch

    from .exchange import load_networks
    from .memory import require

    path = pretrained.resolve(source)
    if not path.is_dir():
        from .data import DataConfig

        networks = load_networks(path)
        trained_on = DataConfig.from_metadata(networks.metadata or {})
        return networks.spec, [f.to(dev) for f in networks.filters()], str(path), trained_on
    method = _open_method(source, dev, args.step)
    method.check_batch_norm(args.batch_norm)
    num = args.num or method.size or 200  # a fixed set: all of it
    require(
        3 * 4 * num * method.spec.num_weights,
        f"evaluating {num} networks at once",
        "use a smaller -n (or several runs of evaluate with other --seed values)",
    )
    parts = [n.filters for n in method.sample(num, args.seed, batch_norm=args.batch_norm, ctx=ctx)]
    return (
        method.spec,
        [torch.cat(layer) for layer in zip(*parts)],
        f"{path} step {method.step}",
        method.config.data,
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    with _claimed_output(args.json_out, args.force, args.sources):
        return _evaluate_into(args)


def _evaluate_into(args: argparse.Namespace) -> int:

    from . import distributed

    _threads(args)
    for source in args.sources:
        if not pretrained.resolve(source).exists():
            raise WeightgenError(f"{source}: no such file or folder")
    if not any(pretrained.resolve(s).is_dir() for s in args.sources):
        for option, given in (
            ("-n", args.num is not None),
            ("--step", args.step is not None),
            ("--batch-norm", args.batch_norm != "running"),
        ):
            if given:
                raise WeightgenError(
                    f"{option} applies to sampling from a run folder; a "
                    f"networks file is evaluated whole"
                )
    if args.ood:
        from .data import check_ood_name

        check_ood_name(args.ood)
    ctx, dev = distributed.start(args.device)
    spec, parts, origins, data_config = None, [], [], None
    for source in args.sources:
        part_spec, filters, origin, trained_on = _networks_to_evaluate(source, args, ctx, dev)
        if spec is not None:
            _check_poolable(source, part_spec, args.sources[0], spec)
        spec, data_config = part_spec, data_config or trained_on
        parts.append(filters)
        origins.append(origin)
    from .evaluate import first_repeat, interleave

    repeat = first_repeat(parts)
    if repeat is not None:
        s, i, t, j = repeat
        raise WeightgenError(
            f"network {i} of {args.sources[s]} is network {j} of "
            f"{args.sources[t]}, bit for bit: "
            f"pooled, it would count twice (the same run or a file sampled "
            f"from it given twice?)"
        )
    filters = interleave(parts)  # one network of each source in turn
    origin = " + ".join(origins)
    data_config = _data_config(args.data) if args.data else data_config or _data_config("mnist")
    count = filters[0].shape[0]
    if args.ensemble_size is not None and args.ensemble_size > count:
        raise WeightgenError(
            f"--ensemble-size {args.ensemble_size} is larger than the {count} networks evaluated"
        )
    bad = _non_finite(filters)
    if bad.any() and not args.include_non_finite:
        raise WeightgenError(
            f"{int(bad.sum())} of {count} networks have non-finite weights "
            f"(NaN or inf); pass --include-non-finite to evaluate them anyway"
        )
    from .data import check_fits, load_dataset, load_ood_split
    from .evaluate import evaluate_networks, warn_if_slow_bfloat16

    warn_if_slow_bfloat16(args.precision, filters[0].device)
    data = load_dataset(data_config, args.data_dir)
    split = getattr(data, args.split).to(filters[0].device)
    check_fits(spec, data.input_shape, data.num_classes, f"dataset {data.name}")
    ood = (
        load_ood_split(args.ood, data.input_shape, args.data_dir, split_name=args.split)
        .head(len(split))
        .to(filters[0].device)
        if args.ood
        else None
    )
    metrics = evaluate_networks(
        spec,
        filters,
        split,
        ensemble_size=args.ensemble_size,
        ctx=ctx,
        precision=args.precision,
        progress=sys.stderr.isatty(),
        ood_images=None if ood is None else ood.images,
        curve_sizes=args.curve,
    )
    metrics["source"] = origin
    metrics["split"] = args.split
    metrics["ood"] = args.ood
    metrics["precision"] = args.precision
    metrics["non_finite_networks"] = int(bad.sum())
    if not ctx.is_main:
        return 0
    print(
        f"{metrics['networks']} networks from {origin} on {args.split} ({metrics['images']} images)"
    )
    if metrics["non_finite_networks"]:
        print(f"  {metrics['non_finite_networks']} of them have non-finite weights")
    print(
        f"  accuracy mean {metrics['accuracy_mean']:.4f}  std {metrics['accuracy_std']:.4f}  "
        f"min {metrics['accuracy_min']:.4f}  max {metrics['accuracy_max']:.4f}"
    )
    if metrics["dropped_networks"]:
        print(
            f"  the last {metrics['dropped_networks']} networks fill no ensemble of "
            f"{metrics['ensemble_size']}: they count in the single-network figures only"
        )
    print(
        f"  ensembles {metrics['ensembles']} x {metrics['ensemble_size']}: majority vote "
        f"{metrics['ensemble_majority_vote']:.4f}  mean probability "
        f"{metrics['ensemble_mean_probability']:.4f}  most confident "
        f"{metrics['ensemble_most_confident']:.4f}"
    )
    print(
        f"  ensemble NLL {metrics['ensemble_nll']:.4f}  members disagree on "
        f"{metrics['prediction_disagreement']:.2%} of images (pairwise)"
    )
    if ood is not None:
        print(
            f"  OOD AUROC against {args.ood} {args.split} ({len(ood)} images): predictive entropy "
            f"{metrics['ood_auroc_predictive_entropy']:.4f}  mutual information "
            f"{metrics['ood_auroc_mutual_information']:.4f}"
        )
    if "curve" in metrics:
        _print_curve(metrics["curve"])
    if args.json_out:
        from .fileio import atomic_write_text

        atomic_write_text(args.json_out, json.dumps(metrics, indent=2), replace=args.force)
    return 0


def _print_curve(rows: list[dict]) -> None:
    """The ensemble-size curve as a table: each metric's mean (min-max) over the ensembles."""
    keys = [k for k in ("majority_vote", "nll", "ece", "disagreement", "ood_auroc") if k in rows[0]]
    print("  ensemble size curve (mean (min-max) over disjoint ensembles):")
    print("  " + f"{'size':>5} {'ensembles':>9}  " + "  ".join(f"{k:>23}" for k in keys))
    for row in rows:
        cells = [f"{row[k]['mean']:.4f} ({row[k]['min']:.4f}-{row[k]['max']:.4f})" for k in keys]
        print(
            "  "
            + f"{row['size']:>5} {row['ensembles']:>9}  "
            + "  ".join(f"{c:>23}" for c in cells)
        )


def _data_config(text: str):
    """A --data value: a dataset name, or npz:PATH for the user's own arrays."""
    from .data import DataConfig

    name, colon, path = text.partition(":")
    if name == "npz" and not path:
        raise WeightgenError(f"--data {text}: give the file, npz:PATH")
    try:
        return DataConfig(name=name, path=path or None)
    except WeightgenError as err:
        raise WeightgenError(f"--data {text}: {str(err).removeprefix('config: ')}") from None


def _cmd_configs(args: argparse.Namespace) -> int:
    from .config import resolve_config, shipped_configs

    if args.name:
        sys.stdout.write(resolve_config(args.name).read_text())
        return 0
    for name in shipped_configs():
        print(name)
    return 0


COMMANDS = {
    "train": _cmd_train,
    "configs": _cmd_configs,
    "sample": _cmd_sample,
    "evaluate": _cmd_evaluate,
    "report": _cmd_report,
    "bench": _cmd_bench,
}


def _threads(args: argparse.Namespace) -> str:
    """The --threads setting, validated, with its default; applied to PyTorch."""
    from .threads import ENV, apply_threads, parse_threads

    value = args.threads or os.environ.get(ENV) or "auto"
    parse_threads(value)  # a bad value is a one-line error before any work
    apply_threads(value)
    return value


def _interrupted_message(command: str | None, terminated: bool) -> str:
    how = "terminated (SIGTERM)" if terminated else "interrupted"
    if command == "train":
        return f"{how}; a checkpoint was saved: run the same command to continue"
    return f"{how}; nothing was written"


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    from .interrupts import Terminated, clear, raise_for_signal

    command = None
    previous = {s: signal.signal(s, raise_for_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        args = build_parser().parse_args(argv)
        args.command_line = " ".join(["weightgen", *(sys.argv[1:] if argv is None else argv)])
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
        print(
            "weightgen: error: out of memory; use fewer networks or images at once", file=sys.stderr
        )
        return 2
    except RuntimeError as err:
        if "allocate" not in str(err) and "out of memory" not in str(err):
            return _internal_error(err)
        print(
            "weightgen: error: out of memory; use fewer networks or images at once", file=sys.stderr
        )
        return 2
    except Exception as err:  # a bug: one line, the traceback on request
        return _internal_error(err)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        clear()


def run() -> None:
    """The ``weightgen`` program: :func:`main`, then exit. After Ctrl-C or SIGTERM it exits at
    once, skipping the interpreter's teardown (PyTorch's and matplotlib's take seconds on a
    busy machine): by then every file is in order, a checkpoint saved or a report removed."""
    code = main()
    if code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _internal_error(err: Exception) -> int:
    if os.environ.get("WEIGHTGEN_DEBUG"):
        raise err
    print(
        f"weightgen: internal error: {type(err).__name__}: {err} (set WEIGHTGEN_DEBUG=1 "
        f"for the traceback)",
        file=sys.stderr,
    )
    return 1
