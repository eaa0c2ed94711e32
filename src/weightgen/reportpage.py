"""The report's pages: ``report.md`` and a self-contained ``index.html`` with a summary, a table
of contents, the results table, every figure with a caption naming the paper's figure and what
to look for, and the command and commit that made it."""

from __future__ import annotations

import base64
import datetime
import html
import json
import subprocess
from pathlib import Path

PAPER_MNIST_VOTE = 99.14  # Deutsch 2018, λ = 1e3: majority vote of 200 generated networks

# figure title prefix -> caption: the paper's figure and what to look for
CAPTIONS = {
    "Toy problem": "Paper Fig. 2. (a) The generated points should follow a path through the "
    "mixture's peaks; (b) the density along the path stays high; (c) the "
    "nearest-neighbour distance stays even (the entropy term spreads the points).",
    "Accuracy histograms": "Paper Fig. 3: test accuracy of each generated network. A narrow "
    "peak near the paper's 98-99 % is good; a left tail means failed "
    "networks.",
    "Training curves": "From metrics.jsonl: the training loss (λ·CE − Ĥ for a hypernetwork, "
    "so it is negative once the entropy term dominates) and the validation "
    "networks' accuracy and majority vote over the steps.",
    "Failure-mode diagnostic": "Section 4.2.2: each filter's variance across networks against "
    "the mean weight with which the next layer reads it. In the "
    "paper's failure mode the variance sits in filters the next "
    "layer ignores (high variance only at small outgoing norm).",
    "PCA": "Paper Figs. 14-26: the leading principal components of one layer's generated "
    "weights across networks. Clusters or a wide cloud mean the networks differ in that "
    "layer; a tight blob means they do not.",
    "Filter samples": "Paper Figs. 7-13: one filter as many generated networks have it. "
    "Different shapes are real diversity (the gauge already removed scale).",
    "Paths in weight space": "Paper Figs. 4-5: test accuracy along the straight line between "
    "two generated networks (dashed) and along the generator's "
    "interpolated path (solid). A dip on the line but not on the path "
    "means the networks sit in different basins the generator joins.",
    "Adversarial examples": "Paper Fig. 6: targeted FGSM on one network; the fraction of attacked "
    "images misclassified by it (dashed) and by an ensemble of other "
    "networks (solid). Only images the attacked network classified "
    "correctly are attacked; a lower solid curve means the attack "
    "transfers less to the ensemble.",
    "Ensemble size": "Beyond the paper: majority-vote accuracy and ensemble NLL of disjoint "
    "ensembles of 1 to 200 networks (within each source's first ensemble); the "
    "line is the mean over ensembles, the band their range. A user pays for "
    "every member at prediction time, so compare sources at the size they "
    "would deploy.",
}


def caption(title: str) -> str:
    return next((text for prefix, text in CAPTIONS.items() if title.startswith(prefix)), "")


def provenance(command: str | None) -> dict[str, str]:
    """The command, the weightgen commit (or version outside a git checkout) and the time."""
    from . import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "command": command or "(library call)",
        "commit": commit or f"weightgen {__version__} (not a git checkout)",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %" if value == value and value >= 0 else "n/a"


def summary_rows(metrics: dict) -> list[str]:
    rows = [
        "| source | networks | mean acc. | min | max | majority vote | mean prob. | "
        "most confident | ECE single / ens. | OOD AUROC (entropy / MI) | "
        "permutation share | disagreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.get("sources", {}).items():
        a, u, d = m["accuracy"], m.get("uncertainty"), m.get("diversity")
        skipped = ["n/a (skipped)"] * 2  # the cells of a step that could not run
        calibration = (
            skipped
            if u is None
            else [f"{u['single']['ece']:.4f} / {u['ensemble']['ece']:.4f}", _auroc_cell(u)]
        )
        diversity = (
            skipped
            if d is None
            else [
                _percent(d["share_explained_by_permutations"]),
                _percent(d["mean_prediction_disagreement"]),
            ]
        )
        rows.append(
            "| "
            + " | ".join(
                [
                    name,
                    str(a["networks"]),
                    _percent(a["accuracy_mean"]),
                    _percent(a["accuracy_min"]),
                    _percent(a["accuracy_max"]),
                    _percent(a["ensemble_majority_vote"]),
                    _percent(a["ensemble_mean_probability"]),
                    _percent(a["ensemble_most_confident"]),
                    *calibration,
                    *diversity,
                ]
            )
            + " |"
        )
    return rows


def cost_rows(metrics: dict) -> list[str]:
    """The sources side by side with their counted training cost (issue 26: compare at equal
    training FLOPs) and their ensembles of 10 and 200."""
    rows = [
        "| source | training steps | network-image passes | target FLOPs | training time | "
        "vote of 10 | NLL of 10 | vote of 200 | NLL of 200 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.get("sources", {}).items():
        cost, curve = m.get("cost"), {row["size"]: row for row in m.get("curve", [])}
        if cost is None:
            continue
        cells = [
            name,
            f"{cost['steps']:,}",
            f"{cost['network_image_passes'] / 1e6:.1f} M",
            f"{cost['target_flops'] / 1e12:.1f} T",
            "n/a" if cost["train_seconds"] is None else f"{cost['train_seconds'] / 60:.0f} min",
        ]
        for size in (10, 200):
            row = curve.get(size)
            cells += (
                ["n/a", "n/a"]
                if row is None
                else [_percent(row["majority_vote"]["mean"]), f"{row['nll']['mean']:.4f}"]
            )
        rows.append("| " + " | ".join(cells) + " |")
    return rows if len(rows) > 2 else []


def _auroc_cell(u: dict) -> str:
    if "ood_auroc_predictive_entropy" not in u:
        return "n/a (no OOD set)"
    return f"{u['ood_auroc_predictive_entropy']:.3f} / {u['ood_auroc_mutual_information']:.3f}"


def summary_text(metrics: dict) -> list[str]:
    """A few sentences: what was evaluated, on which data, the headline numbers."""
    if "toy" in metrics:
        t = metrics["toy"]
        return [
            f"The toy problem of section 4.1 after {t['step']} steps: mean mixture density "
            f"{t['mean_density_on_path']:.4f} along the generated path."
        ]
    sources = metrics.get("sources", {})
    ood = metrics.get("ood")
    text = [
        f"{len(sources)} source(s) evaluated on the {metrics.get('data', 'mnist')} test "
        f"split ({metrics.get('test_images', 'all')} images)"
        + (
            f", with the {ood} test images as out-of-distribution inputs."
            if ood
            else ", without an out-of-distribution set."
        )
    ]
    for name, m in sources.items():
        a = m["accuracy"]
        text.append(
            f"{name}: single networks {_percent(a['accuracy_mean'])} mean test "
            f"accuracy; majority vote of {a['ensemble_size']} networks "
            f"{_percent(a['ensemble_majority_vote'])}."
        )
    if metrics.get("data", "mnist") == "mnist":
        text.append(f"The paper (λ = 1e3): majority vote of 200 networks {PAPER_MNIST_VOTE} %.")
    return text


def render_markdown(metrics: dict, figs: list[tuple[str, Path]], out: Path) -> str:
    made = metrics.get("provenance", {})
    lines = ["# weightgen report", "", *summary_text(metrics), ""]
    if made:
        lines += [f"Made by `{made['command']}` at commit {made['commit']}, {made['date']}.", ""]
    if metrics.get("sources"):
        lines += summary_rows(metrics) + [""]
    costs = cost_rows(metrics)
    if costs:
        lines += [
            "Training cost, counted from each run (forward + backward passes of the "
            "target networks; a hypernetwork's own layers and MNFG's flows are not "
            "counted):",
            "",
            *costs,
            "",
        ]
    for name, m in metrics.get("sources", {}).items():
        for step, why in m.get("skipped", {}).items():
            lines.append(f"Skipped for {name}: {step} ({why}).")
    lines += ["", "Full numbers: `metrics.json`.", ""]
    for title, path in figs:
        lines += [f"## {title}", "", f"![{title}]({path.relative_to(out)})", "", caption(title), ""]
    return "\n".join(lines)


def render_html(metrics: dict, figs: list[tuple[str, Path]]) -> str:
    made = metrics.get("provenance", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>weightgen report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}"
        "img{max-width:100%}figcaption{color:#444;max-width:900px;margin-bottom:2em}"
        "</style></head><body><h1>weightgen report</h1>",
    ]
    parts += [f"<p>{html.escape(line)}</p>" for line in summary_text(metrics)]
    if made:
        parts.append(
            f"<p>Made by <code>{html.escape(made['command'])}</code> at commit "
            f"{html.escape(made['commit'])}, {html.escape(made['date'])}.</p>"
        )
    parts.append(
        "<h2>Contents</h2><ol>"
        + "".join(
            f"<li><a href='#fig{i}'>{html.escape(title)}</a></li>"
            for i, (title, _) in enumerate(figs)
        )
        + "<li><a href='#metrics'>metrics.json</a></li></ol>"
    )
    rows = summary_rows(metrics) if metrics.get("sources") else []
    if rows:
        parts.append("<table>")
        for i, row in enumerate(r for k, r in enumerate(rows) if k != 1):
            cells = [c.strip() for c in row.strip("|").split("|")]
            tag = "th" if i == 0 else "td"
            parts.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
            )
        parts.append("</table>")
    for i, (title, path) in enumerate(figs):
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(
            f"<h2 id='fig{i}'>{html.escape(title)}</h2><figure>"
            f"<img src='data:image/png;base64,{data}' alt='{html.escape(title)}'>"
            f"<figcaption>{html.escape(caption(title))}</figcaption></figure>"
        )
    parts.append(
        "<h2 id='metrics'>metrics.json</h2><details><summary>every number of this "
        "report (click to open)</summary><pre>"
        + html.escape(json.dumps(metrics, indent=2))
        + "</pre></details></body></html>"
    )
    return "\n".join(parts)
