"""The ``weightgen`` command's arguments: every subcommand and option, each with its help."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .errors import WeightgenError


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line instead of usage text."""

    def error(self, message: str) -> NoReturn:
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
        if value >= 2**63:
            raise argparse.ArgumentTypeError(f"expected a number below 2**63, got {value}")
        return value

    return parse


_positive, _non_negative = _at_least(1), _at_least(0)

# the arithmetic choices of weightgen.evaluate.PRECISIONS, named here without importing torch
PRECISION_NAMES = ["bfloat16", "float32"]


def parse_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated ensemble sizes, e.g. 1,2,5,10."""
    return tuple(_positive(part.strip()) for part in text.split(","))


def parse_step(text: str) -> int | str:
    """An argparse type: a checkpoint's step number or 'best'."""
    return text if text == "best" else _non_negative(text)


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
    parser = _Parser(
        prog="weightgen",
        description="Hypernetworks that generate whole neural "
        "networks (Deutsch 2018, 'Generating Neural Networks with Neural Networks').",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"weightgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    common.add_argument(
        "--data-dir",
        default=None,
        help="folder with the MNIST / Fashion-MNIST .gz files (else $WEIGHTGEN_DATA, the cache)",
    )
    _add_threads(common)

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a hypernetwork (resumes if --out already holds a run)",
    )
    p.add_argument(
        "--config",
        required=True,
        help="a YAML config file, or a shipped config's name (paper_lambda1e3, "
        "fashion_mnist/mnfg, ...: see `weightgen configs`)",
    )
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys, checked like the file (--set objective.lambda=3000 "
        "train.steps=500); values are read as YAML",
    )
    p.add_argument("--steps", type=_non_negative, help="override train.steps")
    p.add_argument("--out", help="run folder (default runs/<config name>)")
    p.add_argument("--seed", type=_non_negative, help="override the config's seed")
    p.add_argument("--checkpoint-every", type=_positive, help="override train.checkpoint_every")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write the metrics as TensorBoard scalars into OUT/tensorboard "
        "(needs the tensorboard package; config key train.tensorboard)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "sample", parents=[common], help="write N generated networks to a safetensors exchange file"
    )
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="run_dir",
        help="a run folder made by 'weightgen train', or pretrained:NAME (a generator "
        "shipped with weightgen); several are pooled into one file, one network "
        "of each in turn (as 'weightgen evaluate' pools them)",
    )
    p.add_argument(
        "-n",
        "--num",
        type=_positive,
        required=True,
        help="number of networks (from each run folder)",
    )
    p.add_argument("-o", "--output", required=True, help="output .safetensors file")
    p.add_argument("--seed", type=_non_negative, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--raw", action="store_true", help="export G(z) as generated instead of gauge-fixed S(G(z))"
    )
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    _add_step(p)
    _add_batch_norm(p)

    p = sub.add_parser(
        "evaluate", parents=[common], help="accuracy of generated networks and of their ensembles"
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="source",
        help="a run folder, pretrained:NAME or a .safetensors networks file; several "
        "are pooled into one set of networks (e.g. two generators trained with "
        "different seeds), one network of each in turn, so that every "
        "--ensemble-size ensemble holds equal shares",
    )
    p.add_argument(
        "-n",
        "--num",
        type=_positive,
        default=None,
        help="networks to sample from each run folder (default 200)",
    )
    p.add_argument(
        "--ensemble-size",
        type=_positive,
        default=None,
        help="split the networks into disjoint ensembles of this size",
    )
    p.add_argument(
        "--split",
        choices=["test", "validation"],
        default="test",
        help="the dataset's test or validation split (MNIST: the 10,000 test images "
        "or the first 5,000 training images; default test)",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="NAME",
        help="dataset: mnist, fashion_mnist, digits or npz:PATH (default: the run's "
        "data.name; mnist for a networks file)",
    )
    p.add_argument("--seed", type=_non_negative, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--ood",
        default=None,
        metavar="NAME",
        help="also measure each ensemble's OOD AUROC against this dataset's images "
        "of the same split (--split validation: its validation images, so that no "
        "test image informs a choice; as many as the split's), by predictive entropy "
        "and mutual information, e.g. fashion_mnist (costs a second pass)",
    )
    p.add_argument(
        "--curve",
        nargs="?",
        type=parse_sizes,
        default=None,
        const=(1, 2, 5, 10, 20, 50, 100, 200),
        metavar="SIZES",
        help="also the ensemble-size curve: for each size (default "
        "1,2,5,10,20,50,100,200; those up to the number of networks) the "
        "mean and range over disjoint ensembles of majority vote, NLL, ECE, "
        "disagreement and, with --ood, OOD AUROC",
    )
    p.add_argument("--json", dest="json_out", help="write all metrics to this JSON file")
    p.add_argument("--force", action="store_true", help="replace the --json file if it exists")
    p.add_argument(
        "--include-non-finite",
        action="store_true",
        help="evaluate networks with NaN or infinite weights instead of refusing",
    )
    _add_precision(p)
    _add_step(p)
    _add_batch_norm(p)

    p = sub.add_parser(
        "report",
        parents=[common],
        help="every experiment and figure of the "
        "paper for a run (and others to compare) in one report",
    )
    p.add_argument(
        "source",
        help="a run folder (hypernetwork, baseline or toy), pretrained:NAME, "
        "a networks file "
        "or a finished report's folder",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="RUN_OR_FILE",
        help="further runs, networks files or finished report folders (reused, not "
        "recomputed) shown beside it",
    )
    p.add_argument(
        "--out",
        required=True,
        help="folder for index.html, report.md, PNGs, metrics.json (written whole or not at all)",
    )
    p.add_argument("--force", action="store_true", help="replace a finished report in --out")
    from .reportsettings import ReportSettings

    defaults = ReportSettings()
    for name in (
        "networks",
        "ensemble_size",
        "pca_samples",
        "filter_samples",
        "path_pairs",
        "path_points",
        "diversity_networks",
        "adversarial_images",
        "adversarial_ensemble",
    ):
        p.add_argument(
            f"--{name.replace('_', '-')}",
            type=_positive,
            default=getattr(defaults, name),
            help=f"{REPORT_OPTIONS[name]} (default {getattr(defaults, name)})",
        )
    p.add_argument(
        "--test-images",
        type=_positive,
        default=None,
        help="use only the first N test images (default all 10,000)",
    )
    p.add_argument(
        "--seed",
        type=_non_negative,
        default=0,
        help="seed of every noise draw of the report (default 0)",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="NAME",
        help="dataset whose test split is evaluated: mnist, fashion_mnist, digits or "
        "npz:PATH (default: the run's data.name; mnist for networks files)",
    )
    p.add_argument(
        "--ood",
        default=None,
        metavar="NAME",
        help="out-of-distribution test set for the AUROC: a dataset name or 'none' "
        "(default: the dataset's data.ood, Fashion-MNIST for MNIST)",
    )
    _add_precision(p)
    _add_step(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "configs",
        help="list the configs shipped with weightgen, or print one (to copy and edit)",
    )
    p.add_argument("name", nargs="?", help="a shipped config's name: print its YAML")

    p = sub.add_parser(
        "bench",
        help="training and evaluation throughput against plain reference loops in the same process",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    _add_threads(p)
    p.add_argument("--steps", type=_positive, default=5, help="timed training steps")
    p.add_argument(
        "--noise-samples",
        type=_positive,
        default=32,
        help="networks per timed training step (default 32, the paper's)",
    )
    p.add_argument(
        "--images-per-network",
        type=_positive,
        default=32,
        help="images per network per timed training step (default 32)",
    )
    p.add_argument("--networks", type=_positive, default=16, help="networks evaluated (default 16)")
    p.add_argument(
        "--images", type=_positive, default=2000, help="shared evaluation images (default 2000)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        default=None,
        help="CPU threads: a number, 'all' or 'auto' (default $WEIGHTGEN_THREADS, "
        "else auto: the cores other processes leave idle, re-measured during "
        "training; a fixed number makes runs bit-for-bit reproducible)",
    )


def _add_step(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--step",
        type=parse_step,
        default=None,
        help="checkpoint of a run folder: a kept step number, or 'best' for the kept "
        "checkpoint with the highest validation majority vote in metrics.jsonl "
        "(default: the newest)",
    )


def _add_batch_norm(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-norm",
        choices=["running", "batch"],
        default="running",
        help="hypernetwork batch norm when sampling: running statistics (default; "
        "each network independent of the others) or the statistics of each "
        "batch of 200 noise vectors, as the paper's original code",
    )


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISION_NAMES,
        default="float32",
        help="arithmetic of the networks' forward passes (default float32; bfloat16 "
        "is about 2x faster where the hardware has it)",
    )
