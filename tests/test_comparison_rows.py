"""scripts/comparison_rows.py: RESULTS rows from evaluate --curve --json files."""

import json
import subprocess
import sys

from tests.helpers import REPO, curve_point, load_script

SCRIPT = REPO / "scripts" / "comparison_rows.py"


def test_a_row_has_size_10_ranges_and_size_200_means():
    result = {
        "accuracy_mean": 0.9,
        "accuracy_min": 0.85,
        "accuracy_max": 0.91,
        "curve": [
            curve_point(10, 20, (0.9123, 0.91, 0.9139), 0.2454, (0.8975, 0.887, 0.908)),
            curve_point(200, 1, (0.915, 0.915, 0.915), 0.2414, (0.9142, 0.9142, 0.9142)),
        ],
    }
    row = load_script("comparison_rows").row("K = 3", result)
    assert row == (
        "| K = 3 | 90.00 (85.00–91.00) | 91.23 (91.00–91.39) | 91.50 | 0.2454 / 0.2414 "
        "| 0.0100 | 0.897 (0.887–0.908) | 0.914 | 5.12 |"
    )


def test_ten_networks_give_one_ensemble_and_dashes_at_200(tmp_path):
    result = {
        "accuracy_mean": 0.8875,
        "accuracy_min": 0.8765,
        "accuracy_max": 0.8963,
        "curve": [curve_point(10, 1, (0.9039, 0.9039, 0.9039), 0.2771)],
    }
    path = tmp_path / "de.json"
    path.write_text(json.dumps(result))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), f"deep ensemble, λ = 1e3={path}"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    assert out.stdout.strip() == (
        "| deep ensemble, λ = 1e3 | 88.75 (87.65–89.63) | 90.39 | — | 0.2771 / — | 0.0100 | — | — | 5.12 |"
    )
    bad = subprocess.run([sys.executable, str(SCRIPT), "no-json"], capture_output=True, text=True)
    assert bad.returncode != 0 and "is not NAME=JSON" in bad.stderr
    missing = subprocess.run(
        [sys.executable, str(SCRIPT), f"x={tmp_path / 'none.json'}"], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "none.json: not a readable JSON file" in missing.stderr
    assert "Traceback" not in missing.stderr
