import json

import pytest
import torch

from tests.helpers import SMALL_REPORT as SMALL
from weightgen.cli import main
from weightgen.models.direct import DirectConfig, init_filters
from weightgen.targets import mnist_cnn


def test_initialisation_follows_the_notes():
    filters = init_filters(mnist_cnn(), DirectConfig(copies=4), seed=0)
    weights = torch.cat([f[..., :-1].flatten() for f in filters])
    assert abs(weights.std().item() - 0.1 * 0.88) < 0.01  # truncated at 2 std
    assert weights.abs().max() <= 0.2
    assert all(torch.all(f[..., -1] == 0.1) for f in filters)
    assert not torch.equal(filters[0][0], filters[0][1])  # copies start apart


@pytest.mark.slow
def test_direct_baseline_trains_exports_and_reports(tmp_path, mnist_dir):
    import yaml
    from safetensors.torch import load_file

    config = tmp_path / "direct.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "ens",
                "method": "direct",
                "direct": {"copies": 3, "steps": 150, "batch_size": 32},
                "train": {"validate_every": 150, "checkpoint_every": 50},
            }
        )
    )
    run = tmp_path / "ens"
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
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert losses[-1] < 0.6 * losses[0] and losses[-1] < 1.0  # about ln 10 = 2.3 at the start
    validation = [r for r in records if r["kind"] == "validation"][-1]
    assert validation["accuracy_mean"] > 0.75 and validation["accuracy_std"] > 0
    nets = tmp_path / "ens.safetensors"
    assert main(["sample", str(run), "-n", "3", "-o", str(nets)]) == 0
    assert load_file(str(nets))["conv1.weight"].shape == (3, 32, 1, 5, 5)
    assert main(["sample", str(run), "-n", "4", "-o", str(nets)]) == 2  # only 3 exist
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out), "--data-dir", str(mnist_dir), *SMALL]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    (only,) = metrics["sources"].values()
    assert only["accuracy"]["networks"] == 3  # a fixed set is not repeated
