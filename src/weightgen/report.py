"""``weightgen report``: every experiment of the paper and the extra metrics, from real runs,
into ``index.html`` (self-contained), ``report.md``, PNG figures and ``metrics.json``.

A source is a run folder (a hypernetwork or MNFG, sampled without end and walked along paths in
their noise; or directly trained networks) or an exchange file of networks (a baseline: a fixed
set, used in order). A finished report's folder can be compared too: its sources' numbers and
figures are reused, not recomputed, so the runs of a comparison can be reported one at a time
(each takes long on a CPU).
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor
from tqdm import tqdm

from .analysis import figures
from .analysis.adversarial import fgsm_curves
from .analysis.diversity import diversity_summary, failure_mode, filter_importance
from .analysis.uncertainty import uncertainty_report
from .analysis.weightspace import (PathWalk, filter_images, hypernet_walk, paths, pca_groups,
                                  principal_components)
from .data import Split, load_fashion_mnist_test, load_mnist
from .errors import WeightgenError
from .evaluate import evaluate_networks, predict
from .exchange import load_networks
from .fileio import atomic_write_text
from .rng import seeded_generator
from .targets import TargetSpec


@dataclass(frozen=True)
class ReportSettings:
    """Sizes of every protocol; the defaults are the paper's (implementation notes)."""

    networks: int = 4000  # 20 ensembles x 200
    ensemble_size: int = 200
    pca_samples: int = 3000
    pca_components: int = 6
    filter_samples: int = 25
    path_pairs: int = 10
    path_points: int = 40
    diversity_networks: int = 20
    adversarial_images: int = 500
    adversarial_ensemble: int = 100
    test_images: int | None = None  # a prefix of the test set, for quick looks
    seed: int = 0
    precision: str = "float32"  # arithmetic of evaluation (not of the adversarial gradients)


@dataclass
class Source:
    """Networks to analyse: a name, their spec, a way to draw k more (gauge-fixed) and, for a
    generative model, its interpolated paths between samples."""

    name: str
    spec: TargetSpec
    draw: Callable[[int], list[Tensor]]
    walk: PathWalk | None = None
    size: int | None = None  # a fixed set of networks (a baseline); None: a generator

    def count(self, wanted: int) -> int:
        return wanted if self.size is None else min(wanted, self.size)


def open_source(path: str | Path, seed: int, device: str = "cpu") -> Source:
    from .runfolder import run_method
    from .train import generate, load_run

    path = Path(path)
    if run_method(path) == "direct":
        from .baselines.direct import load_direct
        from .symmetry import gauge_fix
        config, spec, filters, step = load_direct(path)
        return Source(f"{config.name} (step {step})", spec,
                      _cycling(gauge_fix(spec, [f.to(device) for f in filters])),
                      size=filters[0].shape[0])
    if run_method(path) == "mnfg":
        from .baselines.mnfg import load_mnfg
        from .symmetry import gauge_fix
        config, model, step = load_mnfg(path, device)
        draws = iter(range(1 << 62))

        def draw_mnfg(k: int) -> list[Tensor]:
            g = seeded_generator(seed, "report", next(draws))
            return gauge_fix(model.spec, model.sample_filters(k, g))

        def walk_mnfg(t: Tensor, g: torch.Generator) -> list[Tensor]:
            return gauge_fix(model.spec, model.interpolated_path(t, g))

        return Source(f"{config.name} (step {step})", model.spec, draw_mnfg, walk_mnfg)
    if path.is_dir():
        config, hypernet, step = load_run(path, device)
        counter = iter(range(1 << 62))

        def draw(k: int) -> list[Tensor]:
            g = seeded_generator(seed, "report", next(counter))
            return generate(hypernet, hypernet.sample_noise(k, g))

        return Source(f"{config.name} (step {step})", hypernet.spec, draw,
                      hypernet_walk(hypernet))
    networks = load_networks(path)
    return Source(f"{networks.metadata.get('run', path.stem)} ({path.name})", networks.spec,
                  _cycling([f.to(device) for f in networks.filters()]), size=len(networks))


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


def build_report(sources: Sequence[Source | Path], out: Path, settings: ReportSettings,
                 data_dir: str | None = None, progress: bool = True) -> dict:
    """Run every analysis on every source (a Path: the folder of a finished report, whose
    sources are reused); write figures, metrics.json, report.md, index.html."""
    finished = {s: _finished_report(s) for s in sources if isinstance(s, Path)}  # fail early
    computed = [s for s in sources if not isinstance(s, Path)]
    out.mkdir(parents=True, exist_ok=True)
    mnist = load_mnist(data_dir)
    test = mnist.test if settings.test_images is None else Split(
        mnist.test.images[:settings.test_images], mnist.test.labels[:settings.test_images])
    fashion = load_fashion_mnist_test(data_dir)
    fashion = Split(fashion.images[:len(test)], fashion.labels[:len(test)])
    device = computed[0].draw(1)[0].device if computed else torch.device("cpu")
    test, fashion = test.to(device), fashion.to(device)

    figs: list[tuple[str, Path]] = []
    metrics: dict = {"settings": settings.__dict__, "sources": {}}
    accuracies: dict[str, Tensor] = {}
    adversarial: dict[str, dict[str, Tensor]] = {}
    stages = ["accuracy and ensembles", "calibration and OOD", "diversity", "PCA and filters",
              "paths", "adversarial"]
    bar = tqdm(total=len(stages) * len(computed), disable=not progress, desc="report")
    for source in sources:
        if isinstance(source, Path):
            _reuse_report(source, finished[source], out, metrics, figs, accuracies, adversarial)
            continue
        m: dict = {}
        first_figure = len(figs)
        slug = _slug(source.name)
        bar.set_postfix_str(f"{source.name}: {stages[0]}")
        n = source.count(settings.networks)
        size = min(settings.ensemble_size, n)
        filters = source.draw(n)
        result = evaluate_networks(source.spec, filters, test, ensemble_size=size,
                                   precision=settings.precision, progress=progress,
                                   keep_first_logits=True)
        ensemble_logits = result.pop("first_ensemble_logits")  # (size, N, classes)
        accuracies[source.name] = torch.tensor(result["accuracies"])
        m["accuracy"] = result
        bar.update(1)

        bar.set_postfix_str(f"{source.name}: {stages[1]}")
        ensemble = [f[:size] for f in filters]
        m["uncertainty"] = uncertainty_report(
            ensemble_logits, test.labels,
            predict(source.spec, ensemble, fashion.images, precision=settings.precision))
        bar.update(1)

        bar.set_postfix_str(f"{source.name}: {stages[2]}")
        few = [f[:source.count(settings.diversity_networks)] for f in filters]
        m["diversity"] = diversity_summary(
            source.spec, few, predict(source.spec, few, test.images, precision=settings.precision))
        bar.update(1)

        bar.set_postfix_str(f"{source.name}: {stages[3]}")
        sample = source.draw(source.count(settings.pca_samples))
        m["failure_mode"] = failure_mode(source.spec, sample)
        figs.append((f"Failure-mode diagnostic, {source.name}", figures.failure_mode_scatter(
            filter_importance(source.spec, sample),
            [layer.name for layer in source.spec.layers[:-1]], source.name,
            out / f"failure_mode_{slug}.png")))
        m["pca_explained_variance"] = {}
        for group, samples in pca_groups(source.spec, sample).items():
            pca = principal_components(samples, settings.pca_components)
            m["pca_explained_variance"][group] = pca["explained"].tolist()
            figs.append((f"PCA, {group}, {source.name}", figures.pca_scatter_matrix(
                pca["projection"].cpu(), pca["explained"], f"{group} — {source.name}",
                out / f"pca_{_slug(group)}_{slug}.png")))
        for title, images in filter_images(source.spec, sample, settings.filter_samples).items():
            figs.append((f"Filter samples, {title}, {source.name}", figures.filter_grid(
                images.cpu(), f"{title} — {source.name}", out / f"filters_{_slug(title)}_{slug}.png")))
        bar.update(1)

        bar.set_postfix_str(f"{source.name}: {stages[4]}")
        if source.walk is not None:
            walk = paths(source.spec, source.walk, test, settings.path_pairs,
                         settings.path_points, settings.seed, settings.precision)
            m["paths"] = {"direct_min_accuracy_mean": walk["direct"].min(1).values.mean().item(),
                          "interpolated_min_accuracy_mean":
                              walk["interpolated"].min(1).values.mean().item()}
            figs.append((f"Paths in weight space, {source.name}", figures.path_accuracies(
                walk, source.name, out / f"paths_{slug}.png")))
        bar.update(1)

        bar.set_postfix_str(f"{source.name}: {stages[5]}")
        curves = fgsm_curves(source.spec, source.draw, test, settings.adversarial_images,
                             source.count(settings.adversarial_ensemble), seed=settings.seed)
        adversarial[source.name] = curves
        m["adversarial"] = {"epsilon": curves["epsilon"].tolist(),
                            "single": curves["single"].tolist(),
                            "ensemble": curves["ensemble"].tolist(),
                            "images": int(curves["images"])}
        bar.update(1)
        m["figures"] = [[title, path.name] for title, path in figs[first_figure:]]
        metrics["sources"][source.name] = m
    bar.close()
    figs.insert(0, ("Accuracy histograms (Fig. 3)",
                    figures.accuracy_histograms(accuracies, out / "accuracy_histograms.png")))
    figs.append(("Adversarial examples (Fig. 6)",
                 figures.adversarial_curves(adversarial, out / "adversarial.png")))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    markdown = render_markdown(metrics, figs, out)
    atomic_write_text(out / "report.md", markdown)
    atomic_write_text(out / "index.html", render_html(metrics, figs))
    return metrics


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


def _reuse_report(folder: Path, old: dict, out: Path, metrics: dict,
                  figs: list[tuple[str, Path]], accuracies: dict[str, Tensor],
                  adversarial: dict[str, dict[str, Tensor]]) -> None:
    """Add the sources of the finished report ``old`` (from ``folder``): numbers, per-source
    figures (copied into ``out``), accuracies for Fig. 3 and curves for Fig. 6."""
    for name, m in old["sources"].items():
        for title, filename in m["figures"]:
            if Path(folder).resolve() != out.resolve():
                shutil.copyfile(Path(folder) / filename, out / filename)
            figs.append((title, out / filename))
        accuracies[name] = torch.tensor(m["accuracy"]["accuracies"])
        adversarial[name] = {key: torch.tensor(m["adversarial"][key])
                             for key in ("epsilon", "single", "ensemble", "images")}
        metrics["sources"][name] = m
        metrics.setdefault("reused", {})[name] = {"report": str(folder),
                                                  "settings": old["settings"]}


def toy_report(run_dir: Path, out: Path) -> dict:
    """Fig. 2 of a toy run."""
    from .checkpoint import load_latest
    from .config import config_from_dict
    from .toy import GaussianMixture, ToyGenerator, toy_path
    from .runfolder import saved_config

    config = config_from_dict(saved_config(run_dir))
    checkpoint = load_latest(run_dir)
    if checkpoint is None:
        raise WeightgenError(f"{run_dir}: no checkpoint (train first)")
    generator = ToyGenerator(config.toy.hidden)
    generator.load_state_dict(checkpoint["model"])
    density = GaussianMixture(config.toy, config.seed)
    path = toy_path(generator, density, config.toy.path_points)
    out.mkdir(parents=True, exist_ok=True)
    figs = [("Toy problem (Fig. 2)", figures.toy_figure(density, path, out / "toy.png"))]
    metrics = {"toy": {"step": int(checkpoint["step"]),
                       "mean_density_on_path": path["density"].mean().item(),
                       "max_nn_distance": path["nn_distance"].max().item()}}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(out / "report.md", render_markdown(metrics, figs, out))
    atomic_write_text(out / "index.html", render_html(metrics, figs))
    return metrics


def _summary_rows(metrics: dict) -> list[str]:
    rows = ["| source | networks | mean acc. | min | max | majority vote | mean prob. | "
            "most confident | ECE single / ens. | OOD AUROC (entropy / MI) | "
            "permutation share | disagreement |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in metrics.get("sources", {}).items():
        a, u, d = m["accuracy"], m["uncertainty"], m["diversity"]
        rows.append(
            f"| {name} | {a['networks']} | {100 * a['accuracy_mean']:.2f} % | "
            f"{100 * a['accuracy_min']:.2f} % | {100 * a['accuracy_max']:.2f} % | "
            f"{100 * a['ensemble_majority_vote']:.2f} % | "
            f"{100 * a['ensemble_mean_probability']:.2f} % | "
            f"{100 * a['ensemble_most_confident']:.2f} % | "
            f"{u['single']['ece']:.4f} / {u['ensemble']['ece']:.4f} | "
            f"{u['ood_auroc_predictive_entropy']:.3f} / {u['ood_auroc_mutual_information']:.3f} | "
            f"{100 * d['share_explained_by_permutations']:.1f} % | "
            f"{100 * d['mean_prediction_disagreement']:.2f} % |")
    return rows


def render_markdown(metrics: dict, figs: list[tuple[str, Path]], out: Path) -> str:
    lines = ["# weightgen report", ""]
    if metrics.get("sources"):
        lines += _summary_rows(metrics) + [""]
    lines += ["Full numbers: `metrics.json`.", ""]
    for title, path in figs:
        lines += [f"## {title}", "", f"![{title}]({path.relative_to(out)})", ""]
    return "\n".join(lines)


def render_html(metrics: dict, figs: list[tuple[str, Path]]) -> str:
    import html
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>weightgen report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:100%}</style></head><body><h1>weightgen report</h1>"]
    rows = _summary_rows(metrics) if metrics.get("sources") else []
    if rows:
        parts.append("<table>")
        for i, row in enumerate(r for k, r in enumerate(rows) if k != 1):
            cells = [c.strip() for c in row.strip("|").split("|")]
            tag = "th" if i == 0 else "td"
            parts.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells)
                         + "</tr>")
        parts.append("</table>")
    for title, path in figs:
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{data}'>")
    parts.append("<h2>metrics.json</h2><pre>" + html.escape(json.dumps(metrics, indent=2))
                 + "</pre></body></html>")
    return "\n".join(parts)
