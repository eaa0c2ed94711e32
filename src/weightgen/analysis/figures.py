"""Matplotlib figures of the paper, drawn from measured data (never by hand)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402


def save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def toy_figure(density, path: dict[str, Tensor], out: Path, extent: float = 9.0) -> Path:
    """Fig. 2: (a) the generated path over the mixture, (b) density and (c) nearest-neighbour
    distance along the path, points coloured by their position on it."""
    grid = torch.linspace(-extent, extent, 300)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    values = density(torch.stack([xx, yy], -1))
    colours = torch.linspace(0, 1, len(path["z"])).numpy()
    index = range(len(path["z"]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    axes[0].imshow(
        values.numpy(), extent=(-extent, extent, -extent, extent), origin="lower", cmap="Oranges"
    )
    axes[0].scatter(
        path["y"][:, 0].numpy(), path["y"][:, 1].numpy(), c=colours, cmap="viridis", s=6
    )
    axes[0].set_title("(a) generated points over the mixture")
    axes[1].scatter(index, path["density"].numpy(), c=colours, cmap="viridis", s=6)
    axes[1].set_title("(b) mixture density along the path")
    axes[1].set_xlabel("point (z from -1 to 1)")
    axes[2].scatter(index, path["nn_distance"].numpy(), c=colours, cmap="viridis", s=6)
    axes[2].set_title("(c) distance to nearest neighbour")
    axes[2].set_xlabel("point (z from -1 to 1)")
    return save(fig, out)


def histogram_range(percent: Tensor) -> tuple[float, float]:
    """The accuracy axis of Fig. 3: the paper's 97–99.1 %, widened to hold the best network and
    all but the worst 1 % (a few failed networks must not squash the bulk into one bar)."""
    low = torch.quantile(percent.double(), 0.01).item()
    return min(97.0, math.floor(10 * low) / 10), max(99.1, percent.max().item())


MAX_HISTOGRAM_BINS = 80  # bars stay visible however wide the axis


def accuracy_histograms(accuracies: dict[str, Tensor], out: Path) -> Path:
    """Fig. 3: histograms of single-network test accuracies (in %, bins of 0.05 points, wider
    when the axis is wide), one panel per source; networks left of the axis are counted in the
    title, wrapped so that long names (pooled sources) stay over their own panel."""
    fig, axes = plt.subplots(1, len(accuracies), figsize=(5 * len(accuracies), 3.6), squeeze=False)
    for ax, (name, acc) in zip(axes[0], accuracies.items()):
        percent = 100 * acc.double()
        lo, hi = histogram_range(percent)
        bins = min(MAX_HISTOGRAM_BINS, max(10, round((hi - lo) / 0.05)))
        ax.hist(percent.numpy(), bins=bins, range=(lo, hi), color="tab:blue")
        below = int((percent < lo).sum())
        ax.set_title(
            textwrap.fill(f"{name}: {len(percent)} networks", 48)  # long names wrap
            + (f"\n({below} below {lo:.1f} %, not shown)" if below else "")
        )
        ax.set_xlabel(f"test accuracy (%), bins of {(hi - lo) / bins:.2g} points")
    return save(fig, out)


def filter_grid(images: Tensor, title: str, out: Path) -> Path:
    """Figs. 7–13: samples of one filter (N, h, w) on a square grid, each on its own scale."""
    n = len(images)
    side = int(n**0.5 + 0.999)
    fig, axes = plt.subplots(side, side, figsize=(1.6 * side, 1.6 * side), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].numpy(), cmap="gray")
    fig.suptitle(title)
    return save(fig, out)


def pca_scatter_matrix(projection: Tensor, explained: Tensor, title: str, out: Path) -> Path:
    """Figs. 14–26: principal component i against j; histograms on the diagonal."""
    c = projection.shape[1]
    fig, axes = plt.subplots(c, c, figsize=(1.9 * c, 1.9 * c), squeeze=False)
    p = projection.numpy()
    for i in range(c):
        for j in range(c):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == j:
                lo, hi = float(p[:, i].min()), float(p[:, i].max())
                if hi - lo <= 1e-6 * max(1.0, abs(hi)):  # a (numerically) constant component
                    lo, hi = lo - 0.5, hi + 0.5
                ax.hist(p[:, i], bins=40, range=(lo, hi), color="tab:blue")
            else:
                ax.scatter(p[:, j], p[:, i], s=0.5, alpha=0.4, color="tab:blue")
        axes[i, 0].set_ylabel(f"PC{i + 1} ({100 * explained[i]:.1f}%)", fontsize=7)
    fig.suptitle(title)
    return save(fig, out)


def path_accuracies(result: dict[str, Tensor], title: str, out: Path) -> Path:
    """Figs. 4–5: accuracy along direct (dashed) and interpolated (solid) paths, one panel per
    pair of end points."""
    pairs = result["direct"].shape[0]
    cols = min(5, pairs)
    rows = -(-pairs // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, sharey=True
    )  # one accuracy scale for every pair
    t = result["t"].numpy()
    for k, ax in enumerate(axes.flat):
        if k >= pairs:
            ax.axis("off")
            continue
        ax.plot(t, 100 * result["direct"][k].numpy(), "--", color="tab:red", label="direct")
        ax.plot(
            t, 100 * result["interpolated"][k].numpy(), "-", color="tab:blue", label="interpolated"
        )
        ax.set_xlabel("t")
    for row in axes:
        row[0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=2)
    fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save(fig, out)


def adversarial_curves(curves: dict[str, dict[str, Tensor]], out: Path) -> Path:
    """Fig. 6: fraction of attacked images misclassified against perturbation size; dashed the
    attacked single network, solid an ensemble of new networks (a transfer attack)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 3.6), squeeze=False)
    fig.subplots_adjust(wspace=0.3)
    for ax, (name, c) in zip(axes[0], curves.items()):
        eps = c["epsilon"].numpy()
        ax.plot(eps, c["single"].numpy(), "--", color="tab:red", label="single network")
        ax.plot(eps, c["ensemble"].numpy(), "-", color="tab:blue", label="ensemble")
        ax.set_title(
            f"{name}\n({int(c['images'])} attacked images: those the attacked "
            f"network classified correctly)",
            fontsize=9,
        )
        ax.set_xlabel("perturbation size ε")
        ax.set_ylabel("fraction misclassified")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    return save(fig, out)


def ensemble_size_curves(curves: dict[str, list[dict]], out: Path) -> Path:
    """Majority-vote accuracy and ensemble NLL against ensemble size, every source on one pair
    of axes: the mean over disjoint ensembles, the band their min to max
    (:func:`weightgen.evaluate.ensemble_size_curve` rows)."""
    fig, (vote_ax, nll_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    fig.subplots_adjust(wspace=0.3)
    for name, rows in curves.items():
        sizes = [row["size"] for row in rows]
        for ax, key, scale in ((vote_ax, "majority_vote", 100.0), (nll_ax, "nll", 1.0)):
            mean = [scale * row[key]["mean"] for row in rows]
            (line,) = ax.plot(sizes, mean, "o-", markersize=3, label=name)
            ax.fill_between(
                sizes,
                [scale * row[key]["min"] for row in rows],
                [scale * row[key]["max"] for row in rows],
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
            )
    for ax, label in ((vote_ax, "majority-vote accuracy (%)"), (nll_ax, "ensemble NLL")):
        ax.set_xscale("log")
        ax.set_xlabel("ensemble size (networks)")
        ax.set_ylabel(label)
    vote_ax.legend(fontsize=7)
    return save(fig, out)


def failure_mode_scatter(
    importance: list[dict[str, Tensor]], names: list[str], title: str, out: Path
) -> Path:
    """Per filter: variance across samples against mean outgoing weight norm (section 4.2.2)."""
    fig, axes = plt.subplots(1, len(importance), figsize=(4 * len(importance), 3.4), squeeze=False)
    for ax, stats, name in zip(axes[0], importance, names):
        ax.scatter(stats["outgoing_norm"].numpy(), stats["variance"].numpy(), s=12)
        ax.set_xlabel("mean outgoing weight norm")
        ax.set_ylabel("variance across samples")
        ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 3), useMathText=True)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # the title above the panels' titles
    return save(fig, out)


def training_curves(records: list[dict], title: str, out: Path) -> Path:
    """Loss over training steps and the validation networks' mean accuracy and majority vote
    (from metrics.jsonl)."""
    train = [r for r in records if r.get("kind") == "train" and "loss" in r]
    validation = [r for r in records if r.get("kind") == "validation"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    axes[0].plot(
        [r["step"] for r in train],
        [r["loss"] for r in train],
        color="tab:blue",
        marker="." if len(train) < 30 else None,
    )
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    for key, label, style in (
        ("accuracy_mean", "mean accuracy", "-"),
        ("ensemble_majority_vote", "majority vote", "--"),
    ):
        points = [(r["step"], 100 * r[key]) for r in validation if key in r]
        if points:
            axes[1].plot(*zip(*points), style, marker="o", label=label)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("validation accuracy (%)")
    if validation:
        axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return save(fig, out)
