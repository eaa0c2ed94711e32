"""``weightgen report``: every experiment of the paper and the extra metrics, from real runs,
into ``index.html`` (self-contained), ``report.md``, PNG figures and ``metrics.json``.

A source is a run folder (a hypernetwork or MNFG, sampled without end and walked along paths in
their noise; or directly trained networks) or an exchange file of networks (a baseline: a fixed
set, used in order). A finished report's folder can be compared too: its sources' numbers and
figures are reused, not recomputed, so the runs of a comparison can be reported one at a time
(each takes long on a CPU).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from . import pretrained
from .analysis import figures
from .analysis.adversarial import fgsm_curves
from .analysis.diversity import diversity_summary, failure_mode, filter_importance
from .analysis.weightspace import PathWalk, filter_images, paths, pca_groups, principal_components
from .data import DataConfig, check_fits, load_dataset, load_ood_split
from .errors import WeightgenError
from .evaluate import CURVE_SIZES, ensemble_size_curve, evaluate_networks, predict
from .exchange import load_networks
from .fileio import MetricsLog, atomic_write_text
from .interrupts import check as check_interrupt
from .methods.toy import ToyMethod
from .reportpage import provenance, render_html, render_markdown
from .reportsettings import ReportSettings
from .rng import seeded_generator
from .runfolder import open_run, run_cost
from .targets import TargetSpec
from .uncertainty import uncertainty_report


@dataclass
class Source:
    """Networks to analyse: a name, their spec, a way to draw k more (gauge-fixed) and, for a
    generative model, its interpolated paths between samples."""

    name: str
    spec: TargetSpec
    draw: Callable[[int], list[Tensor]]
    walk: PathWalk | None = None
    size: int | None = None  # a fixed set of networks (a baseline); None: a generator
    device: torch.device = torch.device("cpu")  # where its networks are drawn
    data: DataConfig | None = None  # what the networks were trained on (None: not recorded)
    run_dir: Path | None = None  # its run folder (training curves from metrics.jsonl)
    cost: dict | None = None  # a run's counted training cost (weightgen.cost); None: unknown

    def count(self, wanted: int) -> int:
        return wanted if self.size is None else min(wanted, self.size)


def open_source(
    path: str | Path, seed: int, device: str = "cpu", step: int | str | None = None
) -> Source:
    """A run folder of any method (a generator, or a fixed set of networks; checkpoint
    ``step``, default the newest) or a networks file as a report source; the report's draws use
    their own seeded stream."""
    path, where = pretrained.resolve(path), torch.device(device)
    if not path.is_dir():
        networks = load_networks(path)
        return Source(
            f"{networks.metadata.get('run', path.stem)} ({path.name})",
            networks.spec,
            _cycling([f.to(where) for f in networks.filters()]),
            size=len(networks),
            data=DataConfig.from_metadata(networks.metadata or {}),
            device=where,
        )
    method = open_run(path, device, step)
    name = f"{method.config.name} (step {method.step})"
    cost = run_cost(method, path)
    if method.size is not None:
        return Source(
            name,
            method.spec,
            _cycling(method.draw(method.size, None).filters),
            size=method.size,
            data=method.config.data,
            run_dir=path,
            device=where,
            cost=cost,
        )
    # draw 0 is skipped: reports made before the Source knew its device spent it on finding
    # the device, and a generator's report keeps drawing the same networks as theirs
    draws = iter(range(1, 1 << 62))

    def draw(k: int) -> list[Tensor]:
        return method.draw(k, seeded_generator(seed, "report", next(draws))).filters

    return Source(
        name,
        method.spec,
        draw,
        method.walk,
        data=method.config.data,
        run_dir=path,
        device=where,
        cost=cost,
    )


def _cycling(filters: list[Tensor]) -> Callable[[int], list[Tensor]]:
    """Draw from a fixed set of networks in order, starting over when it runs out."""
    position = [0]

    def take(k: int) -> list[Tensor]:
        index = torch.arange(position[0], position[0] + k) % filters[0].shape[0]
        position[0] += k
        return [f[index.to(f.device)] for f in filters]

    return take


def is_report_folder(path: str | Path) -> bool:
    """A folder written by ``build_report`` (not a run folder)."""
    path = Path(path)
    return (path / "metrics.json").is_file() and not (path / "config.yaml").exists()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()


def check_report_folder(out: Path, force: bool) -> None:
    """Before any work: ``out`` must be a new or empty folder, or (with ``force``) a finished
    report to replace; never a file or a folder of anything else."""
    if out.exists() and not out.is_dir():
        raise WeightgenError(f"--out {out} is a file; give a folder for the report")
    if out.is_dir() and any(out.iterdir()):
        if not is_report_folder(out):
            raise WeightgenError(
                f"--out {out} is a folder of other files, not a report; choose another --out"
            )
        if not force:
            raise WeightgenError(f"{out} holds a report; pass --force to replace it")


@contextmanager
def report_folder(out: Path, force: bool = False) -> Iterator[Path]:
    """A hidden folder beside ``out`` to write the report into; on success it becomes ``out``
    (replacing a finished report only with ``force``), on any failure or interrupt it is
    removed: ``out`` holds a whole report or none."""
    check_report_folder(out, force)
    try:
        out.resolve().parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=out.resolve().parent, prefix=f".{out.name}.part-"))
    except OSError as err:
        raise WeightgenError(f"cannot write the report beside {out}: {err.strerror}") from None
    try:
        yield partial
        check_interrupt()
        old = None
        if out.exists():  # an empty folder, or a report that force replaces
            old = Path(tempfile.mkdtemp(dir=partial.parent, prefix=f".{out.name}.old-"))
            out.rename(old / "report")
        partial.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        raise WeightgenError(f"cannot write the report {out}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def build_report(
    sources: Sequence[Source | Path],
    out: Path,
    settings: ReportSettings,
    data_dir: str | None = None,
    progress: bool = True,
    data: DataConfig | None = None,
    ood: str | None = "fashion_mnist",
    command: str | None = None,
) -> dict:
    """Run every analysis on every source (a Path: the folder of a finished report, whose
    sources are reused) on the test split of ``data`` (MNIST by default), with ``ood``'s test
    split as the out-of-distribution set (None: none); write figures, metrics.json,
    report.md, index.html into the folder ``out`` (see :func:`report_folder`). A step that
    cannot run on these networks (no correctly classified image to attack, too few networks
    for a PCA) is skipped, with the reason in metrics.json and report.md."""
    finished = {s: _finished_report(s) for s in sources if isinstance(s, Path)}  # fail early
    computed = [s for s in sources if not isinstance(s, Path)]
    dataset = load_dataset(data or DataConfig(), data_dir)
    for computed_source in computed:
        check_fits(
            computed_source.spec,
            dataset.input_shape,
            dataset.num_classes,
            f"dataset {dataset.name}",
        )
    device = computed[0].device if computed else torch.device("cpu")
    test = dataset.test.head(settings.test_images).to(device)
    ood_split = (
        load_ood_split(ood, dataset.input_shape, data_dir).head(len(test)).to(device)
        if ood
        else None
    )
    metrics_data = {
        "data": dataset.name,
        "ood": ood,
        "test_images": len(test),
        "provenance": provenance(command),
    }

    figs: list[tuple[str, Path]] = []
    metrics: dict = {"settings": settings.__dict__, **metrics_data, "sources": {}}
    accuracies: dict[str, Tensor] = {}
    adversarial: dict[str, dict[str, Tensor]] = {}
    stages = [
        "accuracy and ensembles",
        "calibration and OOD",
        "diversity",
        "PCA and filters",
        "paths",
        "adversarial",
    ]
    bar = tqdm(total=len(stages) * len(computed), disable=not progress, desc="report")
    for source in sources:
        if isinstance(source, Path):
            _reuse_report(source, finished[source], out, metrics, figs, accuracies, adversarial)
            continue
        m: dict = {}
        first_figure = len(figs)
        slug = _slug(source.name)
        log = source.run_dir / "metrics.jsonl" if source.run_dir is not None else None
        if log is not None and log.is_file():
            records = MetricsLog(log).records()
            figs.append(
                (
                    f"Training curves, {source.name}",
                    figures.training_curves(records, source.name, out / f"training_{slug}.png"),
                )
            )
        bar.set_postfix_str(f"{source.name}: {stages[0]}")
        n = source.count(settings.networks)
        size = min(settings.ensemble_size, n)
        filters = source.draw(n)
        result = evaluate_networks(
            source.spec,
            filters,
            test,
            ensemble_size=size,
            precision=settings.precision,
            progress=progress,
            keep_first_logits=True,
        )
        ensemble_logits = result.pop("first_ensemble_logits")  # (size, N, classes)
        accuracies[source.name] = torch.tensor(result["accuracies"])
        m["accuracy"] = result
        bar.update(1)

        def stage(index: int, work: Callable[[], None]) -> None:
            """Run one stage; one that cannot run on these networks is skipped with why."""
            check_interrupt()
            bar.set_postfix_str(f"{source.name}: {stages[index]}")
            try:
                work()
            except (RuntimeError, ValueError, IndexError, ZeroDivisionError) as err:
                if "out of memory" in str(err) or "allocate" in str(err):
                    raise
                reason = (
                    str(err).strip().splitlines()[0][:200]
                    if str(err).strip()
                    else type(err).__name__
                )
                m.setdefault("skipped", {})[stages[index]] = reason
            bar.update(1)

        def calibration_and_ood() -> None:
            ensemble = [f[:size] for f in filters]
            ood_logits = (
                None
                if ood_split is None
                else predict(source.spec, ensemble, ood_split.images, precision=settings.precision)
            )
            m["uncertainty"] = uncertainty_report(ensemble_logits, test.labels, ood_logits)
            # issue 26's cost curve: sizes 1..200 within the first ensemble
            m["curve"] = ensemble_size_curve(ensemble_logits, test.labels, CURVE_SIZES, ood_logits)
            if source.cost is not None:
                m["cost"] = source.cost

        def diversity() -> None:
            _need_two(source.count(settings.diversity_networks), "--diversity-networks")
            few = [f[: source.count(settings.diversity_networks)] for f in filters]
            m["diversity"] = diversity_summary(
                source.spec,
                few,
                predict(source.spec, few, test.images, precision=settings.precision),
            )

        stage(1, calibration_and_ood)
        stage(2, diversity)
        stage(3, lambda: _pca_and_filters(source, settings, out, slug, m, figs))
        stage(4, lambda: _paths(source, settings, test, out, slug, m, figs))
        stage(5, lambda: _adversarial(source, settings, test, m, adversarial))
        m["figures"] = [[title, path.name] for title, path in figs[first_figure:]]
        metrics["sources"][source.name] = m
    bar.close()
    check_interrupt()
    figs.insert(
        0,
        (
            "Accuracy histograms (Fig. 3)",
            figures.accuracy_histograms(accuracies, out / "accuracy_histograms.png"),
        ),
    )
    if adversarial:
        figs.append(
            (
                "Adversarial examples (Fig. 6)",
                figures.adversarial_curves(adversarial, out / "adversarial.png"),
            )
        )
    curves = {name: m["curve"] for name, m in metrics["sources"].items() if "curve" in m}
    if curves:
        figs.append(
            ("Ensemble size", figures.ensemble_size_curves(curves, out / "ensemble_size.png"))
        )
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    markdown = render_markdown(metrics, figs, out)
    atomic_write_text(out / "report.md", markdown)
    atomic_write_text(out / "index.html", render_html(metrics, figs))
    return metrics


def _pca_and_filters(
    source: Source,
    settings: ReportSettings,
    out: Path,
    slug: str,
    m: dict,
    figs: list[tuple[str, Path]],
) -> None:
    """The failure-mode diagnostic, the PCA scatter matrices and the filter samples."""
    _need_two(source.count(settings.pca_samples), "--pca-samples")
    sample = source.draw(source.count(settings.pca_samples))
    m["failure_mode"] = failure_mode(source.spec, sample)
    figs.append(
        (
            f"Failure-mode diagnostic, {source.name}",
            figures.failure_mode_scatter(
                filter_importance(source.spec, sample),
                [layer.name for layer in source.spec.layers[:-1]],
                source.name,
                out / f"failure_mode_{slug}.png",
            ),
        )
    )
    m["pca_explained_variance"] = {}
    for group, samples in pca_groups(source.spec, sample).items():
        check_interrupt()
        pca = principal_components(samples, settings.pca_components)
        m["pca_explained_variance"][group] = pca["explained"].tolist()
        figs.append(
            (
                f"PCA, {group}, {source.name}",
                figures.pca_scatter_matrix(
                    pca["projection"].cpu(),
                    pca["explained"],
                    f"{group} — {source.name}",
                    out / f"pca_{_slug(group)}_{slug}.png",
                ),
            )
        )
    for title, images in filter_images(source.spec, sample, settings.filter_samples).items():
        check_interrupt()
        figs.append(
            (
                f"Filter samples, {title}, {source.name}",
                figures.filter_grid(
                    images.cpu(),
                    f"{title} — {source.name}",
                    out / f"filters_{_slug(title)}_{slug}.png",
                ),
            )
        )


def _need_two(count: int, option: str) -> None:
    """Variances and distances need two networks at least."""
    if count < 2:
        raise ValueError(f"needs at least 2 networks ({option} or the source's size), got {count}")


def _paths(
    source: Source,
    settings: ReportSettings,
    test,
    out: Path,
    slug: str,
    m: dict,
    figs: list[tuple[str, Path]],
) -> None:
    """Accuracy along paths between networks (Figs. 4-5), for sources with noise to walk."""
    if source.walk is None:
        return
    walk = paths(
        source.spec,
        source.walk,
        test,
        settings.path_pairs,
        settings.path_points,
        settings.seed,
        settings.precision,
    )
    m["paths"] = {
        "direct_min_accuracy_mean": walk["direct"].min(1).values.mean().item(),
        "interpolated_min_accuracy_mean": walk["interpolated"].min(1).values.mean().item(),
    }
    figs.append(
        (
            f"Paths in weight space, {source.name}",
            figures.path_accuracies(walk, source.name, out / f"paths_{slug}.png"),
        )
    )


def _adversarial(
    source: Source,
    settings: ReportSettings,
    test,
    m: dict,
    adversarial: dict[str, dict[str, Tensor]],
) -> None:
    """FGSM curves of single networks and ensembles (Fig. 6)."""
    curves = fgsm_curves(
        source.spec,
        source.draw,
        test,
        settings.adversarial_images,
        source.count(settings.adversarial_ensemble),
        seed=settings.seed,
    )
    if int(curves["images"]) == 0:
        raise ValueError(
            "no attacked network classified any of its test images correctly, "
            "so there is nothing to attack"
        )
    adversarial[source.name] = curves
    m["adversarial"] = {
        "epsilon": curves["epsilon"].tolist(),
        "single": curves["single"].tolist(),
        "ensemble": curves["ensemble"].tolist(),
        "images": int(curves["images"]),
    }


def _finished_report(folder: str | Path) -> dict:
    """metrics.json of a finished report, checked to hold what a comparison reuses."""
    try:
        old = json.loads((Path(folder) / "metrics.json").read_text())
    except (OSError, ValueError) as err:
        raise WeightgenError(f"{folder}: cannot read metrics.json ({err})") from None
    if not old.get("sources"):
        raise WeightgenError(f"{folder}: this report has no network sources to compare")
    for m in old["sources"].values():
        if "figures" not in m or "accuracies" not in m["accuracy"]:
            raise WeightgenError(f"{folder}: written by an older weightgen; make it again")
    return old


def _reuse_report(
    folder: Path,
    old: dict,
    out: Path,
    metrics: dict,
    figs: list[tuple[str, Path]],
    accuracies: dict[str, Tensor],
    adversarial: dict[str, dict[str, Tensor]],
) -> None:
    """Add the sources of the finished report ``old`` (from ``folder``): numbers, per-source
    figures (copied into ``out``), accuracies for Fig. 3 and curves for Fig. 6."""
    for name, m in old["sources"].items():
        for title, filename in m["figures"]:
            if Path(folder).resolve() != out.resolve():
                shutil.copyfile(Path(folder) / filename, out / filename)
            figs.append((title, out / filename))
        accuracies[name] = torch.tensor(m["accuracy"]["accuracies"])
        if "adversarial" in m:  # not where that report skipped the step
            adversarial[name] = {
                key: torch.tensor(m["adversarial"][key])
                for key in ("epsilon", "single", "ensemble", "images")
            }
        metrics["sources"][name] = m
        metrics.setdefault("reused", {})[name] = {
            "report": str(folder),
            "settings": old["settings"],
        }


def toy_report(method: ToyMethod, out: Path, command: str | None = None) -> dict:
    """Fig. 2 of a trained toy generator."""
    from .models.toy import toy_path

    path = toy_path(method.generator, method.density, method.config.toy.path_points)
    figs = [("Toy problem (Fig. 2)", figures.toy_figure(method.density, path, out / "toy.png"))]
    metrics = {
        "toy": {
            "step": method.step,
            "mean_density_on_path": path["density"].mean().item(),
            "max_nn_distance": path["nn_distance"].max().item(),
        },
        "provenance": provenance(command),
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "report.md", render_markdown(metrics, figs, out))
    atomic_write_text(out / "index.html", render_html(metrics, figs))
    return metrics
