import json

from weightgen.cli import main

KEYS = {"train_steps_per_s", "train_steps_per_s_reference", "eval_net_images_per_s",
        "eval_net_images_per_s_reference", "eval_net_images_per_s_bfloat16", "peak_memory_mb",
        "device", "torch"}


def test_bench_prints_one_json_object_with_the_required_keys(capsys):
    assert main(["bench", "--device", "cpu", "--steps", "1", "--noise-samples", "2",
                 "--images-per-network", "2", "--networks", "2", "--images", "8",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert KEYS <= set(result)
    assert all(result[k] > 0 for k in KEYS - {"device", "torch"})
