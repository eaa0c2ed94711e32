import json

import pytest

from tests.helpers import SMALL_REPORT as SMALL
from tests.helpers import tiny_config_dict
from weightgen.cli import main
from weightgen.data import load_dataset


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_dir):
    import yaml

    folder = tmp_path_factory.mktemp("report")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config_dict(steps=2, validate_every=2)))
    run = folder / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                "--out",
                str(run),
                "--data-dir",
                str(mnist_dir),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    nets = folder / "nets.safetensors"
    assert main(["sample", str(run), "-n", "6", "-o", str(nets)]) == 0
    return run, nets


@pytest.mark.slow
def test_report_of_a_run_beside_a_networks_file(tiny_run, tmp_path, mnist_dir):
    run, nets = tiny_run
    out = tmp_path / "report"
    assert (
        main(
            [
                "report",
                str(run),
                "--compare",
                str(nets),
                "--out",
                str(out),
                "--data-dir",
                str(mnist_dir),
                *SMALL,
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["sources"]) == 2
    for name, m in metrics["sources"].items():
        # the file holds 6 networks: one ensemble of 4, and all 6 in the single-network
        # figures; the run is sampled without end
        expected = (8, 2) if "step" in name else (6, 1)
        assert (m["accuracy"]["networks"], m["accuracy"]["ensembles"]) == expected
        assert set(m["uncertainty"]) >= {
            "single",
            "ensemble",
            "ood_auroc_predictive_entropy",
            "ood_auroc_mutual_information",
        }
        assert len(m["adversarial"]["single"]) == 30
        assert set(m["failure_mode"]) == {"conv1", "conv2", "fc1"}
    run_metrics = next(m for name, m in metrics["sources"].items() if "step" in name)
    # the ensemble-size curve within the first ensemble (of 4), and the run's counted cost
    assert [row["size"] for row in run_metrics["curve"]] == [1, 2]
    assert run_metrics["curve"][0]["majority_vote"]["mean"] == pytest.approx(
        sum(run_metrics["accuracy"]["accuracies"][:4]) / 4
    )
    from weightgen.cost import target_flops
    from weightgen.targets import mnist_cnn

    assert run_metrics["cost"]["steps"] == 2
    assert run_metrics["cost"]["network_image_passes"] == 2 * 4 * 8  # steps x noise x images
    assert run_metrics["cost"]["target_flops"] == 64 * sum(target_flops(mnist_cnn()))
    assert (out / "ensemble_size.png").is_file()
    assert "| tiny (step 2) | 2 | 0.0 M |" in (out / "report.md").read_text()
    # the run's networks are its report draw 1 (draw 0 went to finding the device in earlier
    # versions: their reports stay reproducible)
    from weightgen.evaluate import evaluate_networks
    from weightgen.rng import seeded_generator
    from weightgen.runfolder import open_run

    test = load_dataset("mnist", mnist_dir).test.head(200)
    method = open_run(run)
    drawn = method.draw(8, seeded_generator(0, "report", 1)).filters
    expected = evaluate_networks(method.spec, drawn, test)
    assert run_metrics["accuracy"]["accuracies"] == expected["accuracies"]
    assert "paths" in run_metrics  # a fixed set of networks has no paths in its noise
    assert "paths" not in next(m for name, m in metrics["sources"].items() if "step" not in name)
    html = (out / "index.html").read_text()
    assert "data:image/png;base64," in html and "<img src='http" not in html
    assert (out / "accuracy_histograms.png").stat().st_size > 1000
    assert (out / "adversarial.png").is_file()
    assert (
        "![Accuracy histograms (Fig. 3)](accuracy_histograms.png)"
        in (out / "report.md").read_text()
    )
    check_page(html, metrics)


@pytest.mark.slow
def test_a_networks_file_is_reported_in_its_order(tiny_run, tmp_path, mnist_dir):
    from weightgen.evaluate import evaluate_networks
    from weightgen.exchange import load_networks

    _, nets = tiny_run
    out = tmp_path / "report"
    assert main(["report", str(nets), "--out", str(out), "--data-dir", str(mnist_dir), *SMALL]) == 0
    reported = next(iter(json.loads((out / "metrics.json").read_text())["sources"].values()))
    networks = load_networks(nets)  # all six, in order; the first four are the ensemble of 4
    expected = evaluate_networks(
        networks.spec, networks.filters(), load_dataset("mnist", mnist_dir).test.head(200)
    )
    assert reported["accuracy"]["accuracies"] == expected["accuracies"]


def check_page(page: str, metrics: dict) -> None:
    """A report page reads well: every figure embedded as a real, non-empty PNG with a caption
    and an entry in the contents, no NaN or negative percentage in the table, the summary, the
    command and commit that made it, the raw numbers folded away."""
    import base64
    import re

    images = re.findall(r"<img src='data:image/png;base64,([^']+)' alt='([^']*)'>", page)
    headings = re.findall(r"<h2 id='fig\d+'>", page)
    assert images and len(images) == len(headings)
    for data, title in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG") and len(png) > 2000, title
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert len(captions) == len(images) and all(len(c) > 40 for c in captions)
    assert "Paper Fig. 3" in page and "Paper Fig. 6" in page and "Training curves" in page
    contents = page[page.index("<h2>Contents</h2>") : page.index("</ol>")]
    assert contents.count("<li>") == len(images) + 1
    table = page[page.index("<table>") : page.index("</table>")]
    assert "nan" not in table.lower() and not re.search(r">-\d[\d.]* %<", table)
    assert "source(s) evaluated on the mnist test split (200 images)" in page
    assert "The paper (λ = 1e3): majority vote of 200 networks 99.14 %" in page
    assert re.search(r"Made by <code>weightgen report .*</code> at commit \w+", page)
    assert "<details><summary>" in page and metrics["provenance"]["command"].startswith(
        "weightgen report"
    )


@pytest.mark.slow
def test_a_finished_report_is_compared_without_recomputing(tiny_run, tmp_path, mnist_dir):
    run, nets = tiny_run
    first = tmp_path / "first"
    assert (
        main(["report", str(run), "--out", str(first), "--data-dir", str(mnist_dir), *SMALL]) == 0
    )
    old = json.loads((first / "metrics.json").read_text())
    ((run_name, run_metrics),) = old["sources"].items()
    assert len(run_metrics["accuracy"]["accuracies"]) == 8
    assert any(name.startswith("paths_") for _, name in run_metrics["figures"])
    assert all((first / name).is_file() for _, name in run_metrics["figures"])

    second = tmp_path / "second"
    assert (
        main(
            [
                "report",
                str(nets),
                "--compare",
                str(first),
                "--out",
                str(second),
                "--data-dir",
                str(mnist_dir),
                *SMALL,
            ]
        )
        == 0
    )
    metrics = json.loads((second / "metrics.json").read_text())
    assert len(metrics["sources"]) == 2
    assert metrics["sources"][run_name] == run_metrics  # reused as it was, not recomputed
    assert metrics["reused"][run_name]["report"] == str(first)
    for _, filename in run_metrics["figures"]:
        assert (second / filename).read_bytes() == (first / filename).read_bytes()
    assert run_name in (second / "report.md").read_text()
    assert list(metrics["sources"])[-1] == run_name  # sources keep the command line's order

    third = tmp_path / "third"  # a finished report as the main source
    assert (
        main(
            [
                "report",
                str(first),
                "--compare",
                str(nets),
                "--out",
                str(third),
                "--data-dir",
                str(mnist_dir),
                *SMALL,
            ]
        )
        == 0
    )
    assert list(json.loads((third / "metrics.json").read_text())["sources"])[0] == run_name


def test_comparing_a_report_without_networks_is_a_clear_error(
    tiny_run, tmp_path, mnist_dir, capsys
):
    _, nets = tiny_run
    toy = tmp_path / "toy_report"
    toy.mkdir()
    (toy / "metrics.json").write_text(json.dumps({"toy": {"step": 1}}))
    assert (
        main(
            [
                "report",
                str(nets),
                "--compare",
                str(toy),
                "--out",
                str(tmp_path / "o"),
                "--data-dir",
                str(mnist_dir),
                *SMALL,
            ]
        )
        == 2
    )
    assert "this report has no network sources to compare" in capsys.readouterr().err
    assert main(["report", str(nets), "--step", "best", "--out", str(tmp_path / "o")]) == 2
    assert "--step chooses a checkpoint of a run folder" in capsys.readouterr().err


def test_toy_report_draws_figure_2(tmp_path):
    import yaml

    config = tmp_path / "toy.yaml"
    config.write_text(
        yaml.safe_dump({"name": "toy", "method": "toy", "toy": {"steps": 300, "path_points": 50}})
    )
    run = tmp_path / "toy"
    assert main(["train", "--config", str(config), "--out", str(run), "--no-progress"]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["toy"]["step"] == 300 and metrics["toy"]["mean_density_on_path"] > 0
    assert (tmp_path / "r" / "toy.png").stat().st_size > 1000


def test_toy_training_lowers_the_loss_and_spreads_the_path(tmp_path):
    import torch

    from weightgen.config import config_from_dict
    from weightgen.loop import train
    from weightgen.methods import build_method
    from weightgen.models.toy import toy_loss
    from weightgen.runfolder import open_run

    config = config_from_dict(
        {"method": "toy", "seed": 5, "toy": {"steps": 3000}, "train": {"checkpoint_every": 3000}}
    )
    cfg = config.toy
    untrained = build_method(config).generator
    density = build_method(config).density
    z = torch.linspace(-1, 1, 200).unsqueeze(1)
    train(config, tmp_path, device="cpu", progress=False)
    trained = open_run(tmp_path).generator
    with torch.no_grad():
        before, _ = toy_loss(untrained, density, z, cfg)
        after, stats = toy_loss(trained, density, z, cfg)
        length = [(g(z)[1:] - g(z)[:-1]).norm(dim=1).sum() for g in (untrained, trained)]
    assert after < before - 1.0
    assert length[1] > 3 * length[0]
    assert stats["density"] > 0.02


@pytest.mark.slow
def test_the_report_page_renders_in_a_headless_browser(tmp_path, mnist_dir):
    """A screenshot of index.html in Chromium (installed by .ci/run from Debian's packages;
    skipped where there is none) shows the page: text, table and figures, not a blank."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium (.ci/run installs Debian's)")
    from matplotlib.image import imread

    from tests.helpers import REPO

    run = tmp_path / "run"
    shutil.copytree(REPO / "tests" / "data" / "legacy_runs" / "hypernetwork", run)
    out = tmp_path / "report"
    assert (
        main(
            [
                "report",
                str(run),
                "--out",
                str(out),
                "--data-dir",
                str(mnist_dir),
                "--threads",
                "1",
                *SMALL,
            ]
        )
        == 0
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            (out / "index.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    pixels = imread(shot)[..., :3]  # (2400, 1200, 3) in [0, 1]
    assert pixels.shape[:2] == (2400, 1200)
    ink = (pixels.min(-1) < 0.9).mean()  # share of non-white pixels
    blue = ((pixels[..., 2] > 0.5) & (pixels[..., 0] < 0.3)).mean()  # histogram bars, links
    assert ink > 0.03 and blue > 0.001
