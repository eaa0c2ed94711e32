"""The optional TensorBoard writer: the event file holds what metrics.jsonl holds."""

from __future__ import annotations

import json

import pytest

from tests.helpers import write_tiny_yaml
from weightgen.cli import main


def test_tensorboard_scalars_match_the_metrics_log(tmp_path, mnist_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_tiny_yaml(tmp_path / "tiny.yaml", log_every=2)
    run = tmp_path / "run"
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
                "--tensorboard",
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/cross_entropy",
        "train/entropy",
        "train/accuracy",
        "train/lr",
        "train/steps_per_s",
        "validation/accuracy_mean",
        "validation/ensemble_majority_vote",
    } <= tags
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["loss"] for r in records if r["kind"] == "train"}
    scalars = {e.step: e.value for e in events.Scalars("train/loss")}
    assert scalars.keys() == logged.keys() == {2, 4, 6}
    assert all(scalars[s] == pytest.approx(logged[s], rel=1e-6) for s in logged)
    validation = [r for r in records if r["kind"] == "validation"]
    assert [e.step for e in events.Scalars("validation/accuracy_mean")] == [
        r["step"] for r in validation
    ]


def test_a_run_without_the_flag_writes_no_event_files(tmp_path, mnist_dir):
    config = write_tiny_yaml(tmp_path / "tiny.yaml", steps=1, validate_every=1)
    run = tmp_path / "run"
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
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert not (run / "tensorboard").exists()
