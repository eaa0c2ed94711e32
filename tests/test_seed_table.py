"""scripts/seed_table.py: the per-step validation table of a run folder."""

import json

from tests.helpers import load_script


def test_history_of_a_method_without_an_entropy_term_shows_a_dash(tmp_path):
    record = {
        "kind": "validation",
        "step": 8000,
        "accuracy_mean": 0.988,
        "accuracy_min": 0.9842,
        "accuracy_max": 0.991,
        "ensemble_majority_vote": 0.9918,
        "ensemble_mean_probability": 0.9922,
        "ensemble_most_confident": 0.9898,
        "prediction_disagreement": 0.0107,
    }
    lines = [record, {**record, "step": 9000, "entropy": 2966.61}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows = load_script("seed_table").history_rows(tmp_path, from_step=0)
    assert rows == [
        "| 8000 | 98.80 | 98.42 | 99.10 | 99.18 | 99.22 | 98.98 | 1.07 | — |",
        "| 9000 | 98.80 | 98.42 | 99.10 | 99.18 | 99.22 | 98.98 | 1.07 | 2966.6 |",
    ]
