"""The Python entry point: weightgen.load(...).sample / stream / logits / module / metrics."""

import pytest
import torch
from safetensors.torch import load_file

import weightgen
from tests.helpers import write_tiny_yaml
from weightgen.cli import main
from weightgen.errors import WeightgenError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_dir):
    folder = tmp_path_factory.mktemp("api")
    config = write_tiny_yaml(folder / "tiny.yaml", steps=2, checkpoint_every=2)
    assert (
        main(
            [
                "train",
                "--config",
                str(config),
                "--out",
                str(folder / "run"),
                "--data-dir",
                str(mnist_dir),
                "--device",
                "cpu",
                "--no-progress",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    return folder / "run"


def test_sample_gives_the_networks_of_the_sample_command(tiny_run, tmp_path):
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "7", "-o", str(out), "--seed", "3"]) == 0
    nets = weightgen.load(tiny_run).sample(7, seed=3)
    state = nets.spec.to_state_dict(nets.filters)
    written = load_file(str(out))
    assert torch.equal(written["z"], nets.z)
    for name, tensor in state.items():
        assert torch.equal(written[name], tensor), name


def test_stream_is_the_sample_in_chunks(tiny_run):
    gen = weightgen.load(tiny_run)
    whole = gen.sample(2501, seed=1)
    parts = list(gen.stream(2501, chunk=1000, seed=1))
    assert [len(p) for p in parts] == [1000, 1000, 501]
    for layer, mat in enumerate(whole.filters):
        assert torch.equal(torch.cat([p.filters[layer] for p in parts]), mat)


def test_logits_module_and_metrics(tiny_run, mnist):
    nets = weightgen.load(tiny_run).sample(4)
    images, labels = mnist.validation.images[:64], mnist.validation.labels[:64]
    logits = nets.logits(images)
    assert logits.shape == (4, 64, 10)
    module = nets.module(2)
    assert isinstance(module, torch.nn.Module)
    torch.testing.assert_close(module(images), logits[2], rtol=1e-3, atol=1e-3)
    metrics = nets.metrics(images, labels)
    accuracy = (logits.argmax(-1) == labels).float().mean(-1)
    assert metrics["accuracy_mean"] == pytest.approx(accuracy.mean().item())
    nll = torch.nn.functional.cross_entropy(logits.softmax(-1).mean(0).log(), labels)
    assert metrics["ensemble_nll"] == pytest.approx(nll.item(), rel=1e-3)
    assert 0 <= metrics["member_ece"] <= 1


def test_networks_files_load_too(tiny_run, tmp_path, mnist):
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "3", "-o", str(out)]) == 0
    from_file = weightgen.load(out).sample(3)
    from_run = weightgen.load(tiny_run).sample(3)
    for a, b in zip(from_file.filters, from_run.filters):
        assert torch.equal(a, b)
    with pytest.raises(WeightgenError, match="holds 3 networks, not 5"):
        weightgen.load(out).sample(5)


def test_wrong_inputs_are_one_line_errors(tiny_run, mnist):
    nets = weightgen.load(tiny_run).sample(2)
    with pytest.raises(
        WeightgenError, match=r"images must have shape \(B, 1, 28, 28\), got \(5, 784\)"
    ):
        nets.logits(torch.rand(5, 784))
    with pytest.raises(WeightgenError, match=r"in \[0, 1\]"):
        nets.logits(torch.rand(5, 1, 28, 28) * 255)
    with pytest.raises(WeightgenError, match="class indices"):
        nets.metrics(mnist.validation.images[:4], torch.tensor([0, 1, 2, 11]))
    with pytest.raises(WeightgenError, match="does not exist"):
        nets.module(5)
    with pytest.raises(WeightgenError, match="not a run folder"):
        weightgen.load(tiny_run.parent)


def test_the_readme_python_example_runs_as_written(mnist_dir, monkeypatch, capsys):
    import re

    from tests.helpers import REPO

    monkeypatch.setenv("WEIGHTGEN_DATA", str(mnist_dir))
    readme = (REPO / "README.md").read_text()
    block = next(
        b
        for b in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "pretrained:paper_lambda1e3" in b
    )
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 (our own docs)
    assert scope["logits"].shape == (20, 1000, 10)
    assert 0.9 < float(capsys.readouterr().out) <= 1.0


def test_ensemble_module_averages_the_members_probabilities_and_reprs_are_short():
    images, labels = weightgen.datasets.load("mnist", "test")
    gen = weightgen.load("pretrained:paper_lambda1e3")
    nets = gen.sample(3, seed=1)
    ensemble = gen.ensemble(3, seed=1)
    assert isinstance(ensemble, torch.nn.Module) and len(ensemble) == 3
    expected = nets.logits(images[:50]).softmax(-1).mean(0)  # (50, classes)
    torch.testing.assert_close(ensemble(images[:50]), expected)
    for text in (repr(gen), repr(nets), repr(ensemble)):
        assert len(text) < 200, text
    metrics = nets.metrics(images[:300], labels[:300])
    # members' NLL is the mean over members, the same quantity as cross_entropy
    assert abs(metrics["member_nll"] - metrics["cross_entropy"]) < 1e-4
    assert set(metrics) >= {"ensemble_nll", "ensemble_ece", "member_ece", "prediction_disagreement"}
