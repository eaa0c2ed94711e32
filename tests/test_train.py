import json

import pytest
import torch

from weightgen.checkpoint import list_checkpoints, load_checkpoint
from weightgen.config import config_from_dict
from weightgen.errors import WeightgenError
from weightgen.objective import objective
from weightgen.train import build_hypernet, load_run, train

from .conftest import tiny_config_dict


def read_log(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_on_real_mnist_lowers_the_loss(mnist, tmp_path):
    # the paper's hypernetwork; the gauge-fixed target needs ~120 steps to leave its plateau
    data = tiny_config_dict(steps=200, noise_samples=32, images_per_network=8, lr=3e-4,
                            validate_every=1000, checkpoint_every=1000)
    del data["hypernet"]
    config = config_from_dict(data)
    z = torch.rand(32, 300, generator=torch.Generator().manual_seed(123)) * 2 - 1
    idx = torch.arange(32 * 16).reshape(32, 16)
    images, labels = mnist.validation.images[idx], mnist.validation.labels[idx]

    def held_out(g):
        with torch.no_grad():
            return objective(g, z, images, labels, config.objective)

    before = held_out(build_hypernet(config))
    train(config, tmp_path / "run", device="cpu", progress=False, data=mnist)
    _, trained, _ = load_run(tmp_path / "run", "cpu")
    after = held_out(trained.train())
    assert after.cross_entropy < before.cross_entropy - 0.15
    assert after.loss < before.loss - 50
    assert after.accuracy > before.accuracy + 0.05


def test_run_folder_log_and_checkpoints(mnist, tmp_path):
    config = config_from_dict(tiny_config_dict())
    metrics = train(config, tmp_path / "run", device="cpu", progress=False, data=mnist)
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file()
    assert [p.name for p in list_checkpoints(run)] == ["step-0000003.pt", "step-0000006.pt"]
    records = read_log(run)
    validations = [r for r in records if r["kind"] == "validation"]
    assert [r["step"] for r in validations] == [3, 6]
    for key in ("accuracy_mean", "accuracy_min", "accuracy_max", "entropy",
                "ensemble_majority_vote", "ensemble_mean_probability"):
        assert key in validations[-1]
    assert metrics["step"] == 6
    payload = load_checkpoint(list_checkpoints(run)[-1])
    assert payload["step"] == 6 and "optimizer" in payload and "model" in payload


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(mnist, tmp_path):
    config = config_from_dict(tiny_config_dict(steps=6, checkpoint_every=3, validate_every=100))
    train(config, tmp_path / "straight", device="cpu", progress=False, data=mnist)

    short = config.replace(train=config.train.__class__(**{**config.train.__dict__, "steps": 3}))
    train(short, tmp_path / "resumed", device="cpu", progress=False, data=mnist)
    assert [p.name for p in list_checkpoints(tmp_path / "resumed")] == ["step-0000003.pt"]
    train(config, tmp_path / "resumed", device="cpu", progress=False, data=mnist)
    assert [p.name for p in list_checkpoints(tmp_path / "resumed")][-1] == "step-0000006.pt"

    _, a, step_a = load_run(tmp_path / "straight", "cpu")
    _, b, step_b = load_run(tmp_path / "resumed", "cpu")
    assert step_a == step_b == 6
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    steps = [r["step"] for r in read_log(tmp_path / "resumed") if r["kind"] == "train"]
    assert steps == sorted(set(steps))


def test_resume_after_interrupt_skips_nothing(mnist, tmp_path):
    config = config_from_dict(tiny_config_dict(steps=6, checkpoint_every=2, validate_every=100))

    def interrupt(step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", device="cpu", progress=False, data=mnist,
              on_step=interrupt)
    assert list_checkpoints(tmp_path / "run")[-1].name == "step-0000004.pt"
    train(config, tmp_path / "run", device="cpu", progress=False, data=mnist)
    assert list_checkpoints(tmp_path / "run")[-1].name == "step-0000006.pt"


def test_resume_with_a_different_config_is_refused(mnist, tmp_path):
    config = config_from_dict(tiny_config_dict(steps=3))
    train(config, tmp_path / "run", device="cpu", progress=False, data=mnist)
    other = config_from_dict({**tiny_config_dict(steps=3), "objective": {"lambda": 5.0}})
    with pytest.raises(WeightgenError, match="objective.lambda"):
        train(other, tmp_path / "run", device="cpu", progress=False, data=mnist)


def test_corrupt_newest_checkpoint_falls_back_to_previous(mnist, tmp_path, capsys):
    config = config_from_dict(tiny_config_dict(steps=6, checkpoint_every=3, validate_every=100))
    train(config, tmp_path / "run", device="cpu", progress=False, data=mnist)
    newest = list_checkpoints(tmp_path / "run")[-1]
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    _, _, step = load_run(tmp_path / "run", "cpu")
    assert step == 3
    assert "step-0000006.pt: unreadable" in capsys.readouterr().err


def test_non_finite_loss_stops_with_the_step(mnist, tmp_path):
    config = config_from_dict(tiny_config_dict(steps=4, lr=1e30, checkpoint_every=1,
                                               validate_every=100))
    with pytest.raises(WeightgenError, match="non-finite loss at step"):
        train(config, tmp_path / "run", device="cpu", progress=False, data=mnist)
