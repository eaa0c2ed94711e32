import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from weightgen.cli import main

from .conftest import write_tiny_yaml


@pytest.fixture
def tiny_yaml(tmp_path):
    return write_tiny_yaml(tmp_path / "tiny.yaml", steps=2, validate_every=2,
                           checkpoint_every=2)


def test_train_sample_evaluate(tiny_yaml, tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", str(tiny_yaml), "--out", str(run), "--data-dir",
                 str(mnist_dir), "--device", "cpu", "--no-progress"]) == 0
    assert (run / "checkpoints" / "step-0000002.pt").is_file()
    # --steps extends the same run: it resumes at step 2
    assert main(["train", "--config", str(tiny_yaml), "--out", str(run), "--steps", "3",
                 "--data-dir", str(mnist_dir), "--no-progress", "--checkpoint-every", "1"]) == 0
    assert (run / "checkpoints" / "step-0000003.pt").is_file()

    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(run), "-n", "5", "-o", str(out), "--seed", "3"]) == 0
    tensors = load_file(str(out))
    assert tensors["conv2.weight"].shape == (5, 16, 32, 5, 5) and tensors["z"].shape == (5, 16)
    # the same seed gives the same networks
    out2 = tmp_path / "nets2.safetensors"
    main(["sample", str(run), "-n", "5", "-o", str(out2), "--seed", "3"])
    assert torch.equal(load_file(str(out2))["fc1.weight"], tensors["fc1.weight"])

    metrics_file = tmp_path / "m.json"
    assert main(["evaluate", str(out), "--data-dir", str(mnist_dir), "--split", "validation",
                 "--json", str(metrics_file)]) == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["networks"] == 5 and metrics["images"] == 5000
    assert 0.0 <= metrics["accuracy_min"] <= metrics["accuracy_mean"] <= metrics["accuracy_max"]
    fast_file = tmp_path / "m_bf16.json"
    assert main(["evaluate", str(out), "--data-dir", str(mnist_dir), "--split", "validation",
                 "--precision", "bfloat16", "--json", str(fast_file)]) == 0
    fast = json.loads(fast_file.read_text())
    assert fast["precision"] == "bfloat16"
    assert abs(fast["accuracy_mean"] - metrics["accuracy_mean"]) < 0.01
    assert main(["evaluate", str(run), "-n", "4", "--ensemble-size", "2", "--data-dir",
                 str(mnist_dir), "--split", "validation"]) == 0
    assert "ensembles 2 x 2" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--config", "nope.yaml"], "cannot read config nope.yaml"),
    (["train"], "the following arguments are required: --config"),
    (["train", "--config", "x.yaml", "--steps", "-3"], "expected a number >= 0"),
    (["sample", "no_such_run", "-n", "3", "-o", "x.safetensors"], "no such run folder"),
    (["sample", ".", "-n", "0", "-o", "x.safetensors"], "expected a number >= 1"),
    (["evaluate", "missing.safetensors"], "missing.safetensors: no such file"),
    (["frobnicate"], "invalid choice"),
])
def test_user_errors_are_one_line_with_nonzero_exit(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("weightgen: error:")


def test_bad_config_value_through_the_real_command(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: -1\n")
    result = subprocess.run([sys.executable, "-m", "weightgen", "train", "--config", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "weightgen: error: config: train.lr must be > 0"
    assert "Traceback" not in result.stderr


def test_cuda_request_without_gpu_is_a_clear_error(tiny_yaml, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["train", "--config", str(tiny_yaml), "--out", str(tmp_path / "r"),
                 "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


# ---- property: no argument list produces a traceback -----------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_words = st.sampled_from(["train", "sample", "evaluate", "--config", "--steps", "--out", "-n",
                          "-o", "--seed", "--device", "--split", "--ensemble-size", "--json",
                          "--data-dir", "--checkpoint-every", "--raw", "-1", "0", "7", "abc",
                          "x.yaml", "nope/run", "cuda", "tpu", "test", "", "--", "1e3"])


@settings(max_examples=120, deadline=None)
@given(st.lists(_words, max_size=7))
def test_random_command_lines_fail_cleanly(tmp_path_factory, argv):
    import contextlib
    import io
    cwd = tmp_path_factory.mktemp("cli")  # no config, run or data here: nothing can start
    err = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as exit_:  # --help
        code = exit_.code
    finally:
        os.chdir(old)
    assert code in (0, 2), (argv, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert err.getvalue().count("\n") == 1
