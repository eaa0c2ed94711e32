import json

from weightgen.cli import main

KEYS = {
    "train_steps_per_s",
    "train_steps_per_s_reference",
    "eval_net_images_per_s",
    "eval_net_images_per_s_reference",
    "eval_net_images_per_s_bfloat16",
    "peak_memory_mb",
    "device",
    "torch",
}


def test_bench_prints_one_json_object_with_the_required_keys(capsys):
    assert (
        main(
            [
                "bench",
                "--device",
                "cpu",
                "--steps",
                "1",
                "--noise-samples",
                "2",
                "--images-per-network",
                "2",
                "--networks",
                "2",
                "--images",
                "8",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= KEYS
    assert all(result[k] > 0 for k in KEYS - {"device", "torch"})
    assert {
        "train_steps_per_s_bfloat16",
        "train_gflops",
        "matmul_peak_gflops",
        "train_fraction_of_peak",
    } <= set(result)
    assert 0 < result["train_fraction_of_peak"] < 5


def test_bfloat16_training_step_tracks_the_float32_loss():
    import torch

    from weightgen.models.hypernet import HyperNetwork
    from weightgen.objective import ObjectiveConfig, objective
    from weightgen.targets import mnist_cnn

    g = HyperNetwork(mnist_cnn()).train()
    z = g.sample_noise(4, torch.Generator().manual_seed(0))
    images, labels = torch.rand(4, 6, 1, 28, 28), torch.randint(0, 10, (4, 6))
    full = objective(g, z, images, labels, ObjectiveConfig())
    mixed = objective(g, z, images, labels, ObjectiveConfig(), precision="bfloat16")
    assert torch.isfinite(mixed.loss)
    torch.testing.assert_close(mixed.cross_entropy, full.cross_entropy, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(mixed.entropy, full.entropy)  # the entropy stays float32
    mixed.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in g.parameters())


def test_thread_settings_parse_and_the_governor_follows_idle_cores(monkeypatch):
    import pytest
    import torch

    from weightgen import threads
    from weightgen.errors import WeightgenError

    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    assert threads.parse_threads("3") == 3 and threads.parse_threads("auto") is None
    assert threads.parse_threads("all") == 4
    assert threads.parse_threads("5") == 4  # capped at the usable cores, with a notice
    for bad in ("0", "two"):
        with pytest.raises(WeightgenError, match="threads must be"):
            threads.parse_threads(bad)
    before = torch.get_num_threads()
    try:
        fixed = threads.ThreadGovernor("1", interval=0.0)
        assert fixed.update() is None and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "auto_threads", lambda since=None: 1)
        governor = threads.ThreadGovernor("auto", interval=0.0)
        assert governor.threads == 1
        monkeypatch.setattr(threads, "auto_threads", lambda since=None: 2)
        assert governor.update() == 2 and torch.get_num_threads() == 2
        assert governor.update() is None  # unchanged
    finally:
        torch.set_num_threads(before)


def test_idle_cores_subtracts_other_processes_only(monkeypatch):
    from weightgen import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    # over 10 s the machine was busy 15 core-seconds, 10 of them this process's own
    monkeypatch.setattr(threads, "cpu_snapshot", lambda: (115.0, 30.0, 60.0))
    assert threads.idle_cores((100.0, 20.0, 50.0)) == 1.5
    assert threads.auto_threads((100.0, 20.0, 50.0)) == 2
    # another process used 1.6 cores: one thread is left
    monkeypatch.setattr(threads, "cpu_snapshot", lambda: (126.0, 30.0, 60.0))
    assert threads.auto_threads((100.0, 20.0, 50.0)) == 1
