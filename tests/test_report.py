import json

import pytest

from weightgen.cli import main

from .conftest import tiny_config_dict

SMALL = ["--networks", "8", "--ensemble-size", "4", "--pca-samples", "30", "--filter-samples",
         "4", "--path-pairs", "2", "--path-points", "4", "--diversity-networks", "3",
         "--adversarial-images", "30", "--adversarial-ensemble", "3", "--test-images", "200",
         "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_dir):
    import yaml
    folder = tmp_path_factory.mktemp("report")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config_dict(steps=2, validate_every=2)))
    run = folder / "run"
    assert main(["train", "--config", str(config), "--out", str(run), "--data-dir",
                 str(mnist_dir), "--no-progress", "--device", "cpu"]) == 0
    nets = folder / "nets.safetensors"
    assert main(["sample", str(run), "-n", "6", "-o", str(nets)]) == 0
    return run, nets


def test_report_of_a_run_beside_a_networks_file(tiny_run, tmp_path, mnist_dir):
    run, nets = tiny_run
    out = tmp_path / "report"
    assert main(["report", str(run), "--compare", str(nets), "--out", str(out), "--data-dir",
                 str(mnist_dir), *SMALL]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["sources"]) == 2
    for name, m in metrics["sources"].items():
        # the file holds 6 networks: one ensemble of 4; the run is sampled without end
        expected = (8, 2) if "step" in name else (4, 1)
        assert (m["accuracy"]["networks"], m["accuracy"]["ensembles"]) == expected
        assert set(m["uncertainty"]) >= {"single", "ensemble", "ood_auroc_predictive_entropy",
                                         "ood_auroc_mutual_information"}
        assert len(m["adversarial"]["single"]) == 30
        assert set(m["failure_mode"]) == {"conv1", "conv2", "fc1"}
    run_metrics = next(m for name, m in metrics["sources"].items() if "step" in name)
    assert "paths" in run_metrics  # a fixed set of networks has no paths in its noise
    assert "paths" not in next(m for name, m in metrics["sources"].items() if "step" not in name)
    html = (out / "index.html").read_text()
    assert "data:image/png;base64," in html and "<img src='http" not in html
    assert (out / "accuracy_histograms.png").stat().st_size > 1000
    assert (out / "adversarial.png").is_file()
    assert "![Accuracy histograms (Fig. 3)](accuracy_histograms.png)" in (
        out / "report.md").read_text()


def test_a_finished_report_is_compared_without_recomputing(tiny_run, tmp_path, mnist_dir):
    run, nets = tiny_run
    first = tmp_path / "first"
    assert main(["report", str(run), "--out", str(first), "--data-dir", str(mnist_dir),
                 *SMALL]) == 0
    old = json.loads((first / "metrics.json").read_text())
    (run_name, run_metrics), = old["sources"].items()
    assert len(run_metrics["accuracy"]["accuracies"]) == 8
    assert any(name.startswith("paths_") for _, name in run_metrics["figures"])
    assert all((first / name).is_file() for _, name in run_metrics["figures"])

    second = tmp_path / "second"
    assert main(["report", str(nets), "--compare", str(first), "--out", str(second),
                 "--data-dir", str(mnist_dir), *SMALL]) == 0
    metrics = json.loads((second / "metrics.json").read_text())
    assert len(metrics["sources"]) == 2
    assert metrics["sources"][run_name] == run_metrics  # reused as it was, not recomputed
    assert metrics["reused"][run_name]["report"] == str(first)
    for _, filename in run_metrics["figures"]:
        assert (second / filename).read_bytes() == (first / filename).read_bytes()
    assert run_name in (second / "report.md").read_text()
    assert list(metrics["sources"])[-1] == run_name  # sources keep the command line's order

    third = tmp_path / "third"  # a finished report as the main source
    assert main(["report", str(first), "--compare", str(nets), "--out", str(third),
                 "--data-dir", str(mnist_dir), *SMALL]) == 0
    assert list(json.loads((third / "metrics.json").read_text())["sources"])[0] == run_name


def test_comparing_a_report_without_networks_is_a_clear_error(tiny_run, tmp_path, mnist_dir,
                                                                capsys):
    _, nets = tiny_run
    toy = tmp_path / "toy_report"
    toy.mkdir()
    (toy / "metrics.json").write_text(json.dumps({"toy": {"step": 1}}))
    assert main(["report", str(nets), "--compare", str(toy), "--out", str(tmp_path / "o"),
                 "--data-dir", str(mnist_dir), *SMALL]) == 2
    assert "this report has no network sources to compare" in capsys.readouterr().err


def test_toy_report_draws_figure_2(tmp_path):
    import yaml
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump({"name": "toy", "method": "toy",
                                      "toy": {"steps": 300, "path_points": 50}}))
    run = tmp_path / "toy"
    assert main(["train", "--config", str(config), "--out", str(run), "--no-progress"]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["toy"]["step"] == 300 and metrics["toy"]["mean_density_on_path"] > 0
    assert (tmp_path / "r" / "toy.png").stat().st_size > 1000


def test_toy_training_lowers_the_loss_and_spreads_the_path(tmp_path):
    import torch
    from weightgen.checkpoint import load_latest
    from weightgen.toy import GaussianMixture, ToyConfig, ToyGenerator, toy_loss, train_toy
    cfg = ToyConfig(steps=3000)
    torch.manual_seed(5)
    untrained = ToyGenerator(cfg.hidden)
    density = GaussianMixture(cfg, 5)
    z = torch.linspace(-1, 1, 200).unsqueeze(1)
    train_toy(cfg, 5, tmp_path, checkpoint_every=3000, progress=False)
    trained = ToyGenerator(cfg.hidden)
    trained.load_state_dict(load_latest(tmp_path)["model"])
    with torch.no_grad():
        before, _ = toy_loss(untrained, density, z, cfg)
        after, stats = toy_loss(trained, density, z, cfg)
        length = [(g(z)[1:] - g(z)[:-1]).norm(dim=1).sum() for g in (untrained, trained)]
    assert after < before - 1.0
    assert length[1] > 3 * length[0]
    assert stats["density"] > 0.02
