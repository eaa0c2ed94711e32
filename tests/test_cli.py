import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.helpers import digits_target, write_tiny_yaml
from weightgen.cli import main


@pytest.fixture
def tiny_yaml(tmp_path):
    return write_tiny_yaml(tmp_path / "tiny.yaml", steps=2, validate_every=2, checkpoint_every=2)


def train_tiny(config, run, data_dir) -> int:
    """``weightgen train`` of a config into ``run`` on the CPU, without progress bars."""
    argv = ["train", "--config", str(config), "--out", str(run), "--data-dir", str(data_dir)]
    return main([*argv, "--device", "cpu", "--no-progress"])


@pytest.mark.slow
def test_train_sample_evaluate(tiny_yaml, tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    assert train_tiny(tiny_yaml, run, mnist_dir) == 0
    assert (run / "checkpoints" / "step-0000002.pt").is_file()
    # --steps extends the same run: it resumes at step 2
    assert (
        main(
            [
                "train",
                "--config",
                str(tiny_yaml),
                "--out",
                str(run),
                "--steps",
                "3",
                "--data-dir",
                str(mnist_dir),
                "--no-progress",
                "--checkpoint-every",
                "1",
            ]
        )
        == 0
    )
    assert (run / "checkpoints" / "step-0000003.pt").is_file()

    out = tmp_path / "nets.safetensors"
    # a fixed thread count: with "auto" a busy machine may change it between the two calls,
    # and thread counts change the order of float sums (README, "The command")
    assert (
        main(["sample", str(run), "-n", "5", "-o", str(out), "--seed", "3", "--threads", "1"]) == 0
    )
    tensors = load_file(str(out))
    assert tensors["conv2.weight"].shape == (5, 16, 32, 5, 5) and tensors["z"].shape == (5, 16)
    # the same seed gives the same networks
    out2 = tmp_path / "nets2.safetensors"
    main(["sample", str(run), "-n", "5", "-o", str(out2), "--seed", "3", "--threads", "1"])
    assert torch.equal(load_file(str(out2))["fc1.weight"], tensors["fc1.weight"])

    metrics_file = tmp_path / "m.json"
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--data-dir",
                str(mnist_dir),
                "--split",
                "validation",
                "--json",
                str(metrics_file),
            ]
        )
        == 0
    )
    metrics = json.loads(metrics_file.read_text())
    assert metrics["networks"] == 5 and metrics["images"] == 5000
    assert 0.0 <= metrics["accuracy_min"] <= metrics["accuracy_mean"] <= metrics["accuracy_max"]
    fast_file = tmp_path / "m_bf16.json"
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--data-dir",
                str(mnist_dir),
                "--split",
                "validation",
                "--precision",
                "bfloat16",
                "--json",
                str(fast_file),
            ]
        )
        == 0
    )
    fast = json.loads(fast_file.read_text())
    assert fast["precision"] == "bfloat16"
    assert abs(fast["accuracy_mean"] - metrics["accuracy_mean"]) < 0.01
    assert (
        main(
            [
                "evaluate",
                str(run),
                "-n",
                "4",
                "--ensemble-size",
                "2",
                "--data-dir",
                str(mnist_dir),
                "--split",
                "validation",
            ]
        )
        == 0
    )
    assert "ensembles 2 x 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--config", "nope.yaml"], "cannot read config nope.yaml"),
        (["train"], "the following arguments are required: --config"),
        (["train", "--config", "x.yaml", "--steps", "-3"], "expected a number >= 0"),
        (["sample", "no_such_run", "-n", "3", "-o", "x.safetensors"], "no such run folder"),
        (["sample", ".", "-n", "0", "-o", "x.safetensors"], "expected a number >= 1"),
        (["evaluate", "missing.safetensors"], "missing.safetensors: no such file"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_with_nonzero_exit(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("weightgen: error:")


@pytest.mark.slow
def test_bad_config_value_through_the_real_command(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "weightgen", "train", "--config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "weightgen: error: config: train.lr must be > 0, got -1.0"
    assert "Traceback" not in result.stderr


def test_cuda_request_without_gpu_is_a_clear_error(tiny_yaml, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert (
        main(
            ["train", "--config", str(tiny_yaml), "--out", str(tmp_path / "r"), "--device", "cuda"]
        )
        == 2
    )
    assert "no CUDA device" in capsys.readouterr().err


# ---- property: no argument list produces a traceback -----------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_words = st.sampled_from(
    [
        "train",
        "sample",
        "evaluate",
        "--config",
        "--steps",
        "--out",
        "-n",
        "-o",
        "--seed",
        "--device",
        "--split",
        "--ensemble-size",
        "--json",
        "--data-dir",
        "--checkpoint-every",
        "--raw",
        "-1",
        "0",
        "7",
        "abc",
        "x.yaml",
        "nope/run",
        "cuda",
        "tpu",
        "test",
        "",
        "--",
        "1e3",
    ]
)


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


# ---- user mistakes found by trying the command as a hostile user (issue 13) -------------------


@pytest.fixture
def tiny_run(tiny_yaml, tmp_path, mnist_dir):
    run = tmp_path / "run"
    assert train_tiny(tiny_yaml, run, mnist_dir) == 0
    return run


def _one_line_error(capsys, fragment):
    err = capsys.readouterr().err
    assert fragment in err, err
    assert err.count("\n") == 1 and err.startswith("weightgen: error:"), err


def test_outputs_are_never_overwritten_silently(tiny_run, tmp_path, mnist_dir, capsys):
    nets = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "3", "-o", str(nets)]) == 0
    before = nets.read_bytes()
    capsys.readouterr()
    assert main(["sample", str(tiny_run), "-n", "4", "-o", str(nets)]) == 2
    _one_line_error(capsys, "exists; pass --force")
    assert nets.read_bytes() == before
    assert main(["sample", str(tiny_run), "-n", "4", "-o", str(nets), "--force"]) == 0
    assert load_file(str(nets))["z"].shape[0] == 4
    assert main(["evaluate", str(nets), "--json", str(nets), "--force"]) == 2
    _one_line_error(capsys, "is an input of this command")
    assert load_file(str(nets))["z"].shape[0] == 4
    # a --json folder that does not exist is refused before the evaluation starts
    assert main(["evaluate", str(nets), "--json", str(tmp_path / "no" / "m.json")]) == 2
    _one_line_error(capsys, "does not exist")


def test_sample_files_get_ordinary_permissions(tiny_run, tmp_path):
    old = os.umask(0o022)
    try:
        assert (
            main(["sample", str(tiny_run), "-n", "2", "-o", str(tmp_path / "n.safetensors")]) == 0
        )
    finally:
        os.umask(old)
    assert (tmp_path / "n.safetensors").stat().st_mode & 0o777 == 0o644


def test_streamed_sample_is_bit_identical_to_generating_all_at_once(tiny_run, tmp_path):
    from tests.helpers import trained_hypernet
    from weightgen.methods.hypernetwork import generate
    from weightgen.rng import seeded_generator

    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "2001", "-o", str(out), "--seed", "4"]) == 0
    g = trained_hypernet(tiny_run)
    z = g.sample_noise(2001, seeded_generator(4, "sample"))
    state = g.spec.to_state_dict(generate(g, z))
    streamed = load_file(str(out))
    assert torch.equal(streamed["z"], z)
    for name, tensor in state.items():
        assert torch.equal(streamed[name], tensor), name


def _sample_peak_memory(run, n, out):
    """Peak resident memory (bytes) of a `weightgen sample` process writing n networks: its
    VmHWM (ru_maxrss would start from the forking parent's, this test process's, peak)."""
    code = (
        "import sys\nfrom weightgen.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(next(line.split()[1] for line in open('/proc/self/status')"
        " if line.startswith('VmHWM:')))\nsys.exit(code)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "sample",
            str(run),
            "-n",
            str(n),
            "-o",
            str(out),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1]) * 1024  # VmHWM is in KiB


@pytest.mark.slow
def test_sampling_20000_networks_stays_under_a_memory_cap(tiny_run, tmp_path):
    """20,000 networks of the paper's CNN are 1.6 GB; sampling them takes about the memory of
    sampling 1,000 (one chunk), far below the file's size."""
    out = tmp_path / "many.safetensors"
    few = _sample_peak_memory(tiny_run, 1000, tmp_path / "few.safetensors")
    many = _sample_peak_memory(tiny_run, 20000, out)
    size = out.stat().st_size
    assert size > 20000 * 20018 * 4
    print(
        f"peak memory: 1,000 networks {few / 2**20:.0f} MiB, 20,000 {many / 2**20:.0f} MiB; "
        f"file {size / 2**20:.0f} MiB"
    )
    assert many < 0.75 * size, (many, size)
    assert many - few < 0.2 * size, (few, many, size)
    tensors = load_file(str(out))  # the last network is there
    assert tensors["fc2.weight"][-1].abs().sum() > 0 and tensors["z"][-1].abs().sum() > 0


def test_non_finite_networks_are_counted_and_refused(tiny_run, tmp_path, mnist_dir, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    nets = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "4", "-o", str(nets)]) == 0
    tensors = load_file(str(nets))
    with safe_open(str(nets), framework="pt") as f:
        metadata = f.metadata()
    tensors["fc1.weight"][1, 0, 0] = float("nan")
    tensors["conv1.bias"][2, 0] = float("inf")
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    capsys.readouterr()
    assert main(["evaluate", str(bad), "--split", "validation", "--data-dir", str(mnist_dir)]) == 2
    _one_line_error(capsys, "2 of 4 networks have non-finite weights")
    assert (
        main(
            [
                "evaluate",
                str(bad),
                "--split",
                "validation",
                "--data-dir",
                str(mnist_dir),
                "--include-non-finite",
            ]
        )
        == 0
    )
    assert "2 of them have non-finite weights" in capsys.readouterr().out


def test_sample_refuses_to_write_non_finite_networks(tiny_run, tmp_path, capsys):
    from weightgen.runfolder import list_checkpoints

    newest = list_checkpoints(tiny_run)[-1]
    payload = torch.load(newest, weights_only=True)
    name = next(k for k in payload["model"] if k.startswith("generators.1.linears"))
    payload["model"][name][0, 0] = float("nan")
    torch.save(payload, newest)
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "3", "-o", str(out)]) == 2
    _one_line_error(capsys, "non-finite weights; nothing was written")
    assert not out.exists() and not list(tmp_path.glob(".nets*"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_networks_files_in_other_float_types_are_read_as_float32(
    tiny_run, tmp_path, mnist_dir, dtype
):
    from safetensors import safe_open
    from safetensors.torch import save_file

    nets = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "2", "-o", str(nets)]) == 0
    with safe_open(str(nets), framework="pt") as f:
        metadata = f.metadata()
    other = tmp_path / "other.safetensors"
    save_file(
        {k: v.to(dtype) for k, v in load_file(str(nets)).items()}, str(other), metadata=metadata
    )
    assert (
        main(["evaluate", str(other), "--split", "validation", "--data-dir", str(mnist_dir)]) == 0
    )


def test_empty_networks_file_and_oversized_ensemble_are_refused(
    tiny_run, tmp_path, mnist_dir, capsys
):
    from safetensors import safe_open
    from safetensors.torch import save_file

    nets = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "1", "-o", str(nets)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(nets), "--ensemble-size", "5", "--data-dir", str(mnist_dir)]) == 2
    _one_line_error(capsys, "--ensemble-size 5 is larger than the 1 networks")
    assert main(["evaluate", str(nets), "-n", "5"]) == 2
    _one_line_error(capsys, "a networks file is evaluated whole")
    with safe_open(str(nets), framework="pt") as f:
        metadata = f.metadata()
    empty = tmp_path / "empty.safetensors"
    save_file({k: v[:0] for k, v in load_file(str(nets)).items()}, str(empty), metadata=metadata)
    assert main(["evaluate", str(empty)]) == 2
    _one_line_error(capsys, "holds no networks")


def test_several_sources_are_pooled_into_one_set_of_networks(tiny_run, tmp_path, mnist_dir, capsys):
    from weightgen.exchange import save_networks
    from weightgen.targets import TargetSpec

    nets = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "2", "-o", str(nets), "--seed", "5"]) == 0
    parts = []
    for sources in ([str(tiny_run), "-n", "3"], [str(nets)], [str(tiny_run), str(nets), "-n", "3"]):
        out = tmp_path / f"m{len(parts)}.json"
        assert (
            main(
                [
                    "evaluate",
                    *sources,
                    "--split",
                    "validation",
                    "--json",
                    str(out),
                    "--data-dir",
                    str(mnist_dir),
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
        parts.append(json.loads(out.read_text()))
    run, file, pooled = parts
    assert pooled["networks"] == 5 and pooled["source"] == f"{run['source']} + {nets}"
    r, f = run["accuracies"], file["accuracies"]
    assert pooled["accuracies"] == [r[0], f[0], r[1], f[1], r[2]]  # one of each in turn
    other = TargetSpec.from_dict(
        {
            "input_shape": [1, 28, 28],
            "layers": [
                {
                    "name": "fc",
                    "kind": "linear",
                    "in_size": 784,
                    "out_size": 10,
                    "activation": "none",
                }
            ],
        }
    )
    linear = tmp_path / "linear.safetensors"
    save_networks(linear, other, [torch.zeros(2, 10, 785)])
    capsys.readouterr()
    assert main(["evaluate", str(nets), str(linear), "--data-dir", str(mnist_dir)]) == 2
    _one_line_error(capsys, "are not of the target architecture of")


def test_sample_pools_several_run_folders_as_evaluate_does(tiny_run, tmp_path, mnist_dir):
    from safetensors import safe_open

    from tests.helpers import tiny_config_dict

    other_yaml = tmp_path / "other.yaml"
    other_yaml.write_text(yaml.safe_dump({**tiny_config_dict(steps=2), "seed": 2}))
    other = tmp_path / "other"
    assert (
        main(
            [
                "train",
                "--config",
                str(other_yaml),
                "--out",
                str(other),
                "--data-dir",
                str(mnist_dir),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    files = [tmp_path / f"{name}.safetensors" for name in ("a", "b", "pooled")]
    for sources, out in (
        ([tiny_run], files[0]),
        ([other], files[1]),
        ([tiny_run, other], files[2]),
    ):
        assert (
            main(
                [
                    "sample",
                    *map(str, sources),
                    "-n",
                    "3",
                    "-o",
                    str(out),
                    "--seed",
                    "2",
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
    a, b, pooled = (load_file(str(f)) for f in files)
    assert not torch.equal(a["fc1.weight"], b["fc1.weight"])
    assert set(pooled) == set(a) and "z" in pooled
    for name, tensor in pooled.items():  # one network of each run folder in turn
        assert tensor.shape[0] == 6, name
        assert torch.equal(tensor[0::2], a[name]) and torch.equal(tensor[1::2], b[name]), name
    with safe_open(str(files[2]), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["num_networks"] == "6" and metadata["step"] == "2 + 2"
    # the pooled file holds the networks that evaluate pools from the same run folders
    results = []
    for sources in ([str(files[2])], [str(tiny_run), str(other), "-n", "3", "--seed", "2"]):
        out = tmp_path / f"m{len(results)}.json"
        assert (
            main(
                [
                    "evaluate",
                    *sources,
                    "--split",
                    "validation",
                    "--json",
                    str(out),
                    "--data-dir",
                    str(mnist_dir),
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
        results.append(json.loads(out.read_text())["accuracies"])
    assert results[0] == results[1]


def test_evaluate_measures_ood_detection_against_a_second_dataset(
    tiny_run, tmp_path, mnist_dir, capsys
):
    out = tmp_path / "ood.json"
    assert (
        main(
            [
                "evaluate",
                str(tiny_run),
                "-n",
                "4",
                "--ensemble-size",
                "2",
                "--split",
                "validation",
                "--ood",
                "fashion_mnist",
                "--json",
                str(out),
                "--data-dir",
                str(mnist_dir),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert "OOD AUROC against fashion_mnist validation (5000 images)" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert metrics["ood"] == "fashion_mnist" and metrics["ensembles"] == 2
    for key in ("ood_auroc_predictive_entropy", "ood_auroc_mutual_information"):
        assert 0.0 <= metrics[key] <= 1.0
    for name, message in (
        ("cifar", "unknown out-of-distribution set 'cifar'"),
        (
            "digits",
            "out-of-distribution set digits has images of shape "
            "(1, 8, 8), the networks read (1, 28, 28)",
        ),
    ):
        assert (
            main(
                [
                    "evaluate",
                    str(tiny_run),
                    "-n",
                    "2",
                    "--ood",
                    name,
                    "--data-dir",
                    str(mnist_dir),
                    "--threads",
                    "1",
                ]
            )
            == 2
        )
        _one_line_error(capsys, message)


def test_evaluate_curve_over_ensemble_sizes_and_leftover_networks(
    tiny_run, tmp_path, mnist_dir, capsys
):
    out = tmp_path / "curve.json"
    assert (
        main(
            [
                "evaluate",
                str(tiny_run),
                "-n",
                "5",
                "--ensemble-size",
                "2",
                "--split",
                "validation",
                "--curve",
                "--ood",
                "fashion_mnist",
                "--json",
                str(out),
                "--data-dir",
                str(mnist_dir),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "the last 1 networks fill no ensemble of 2" in printed
    assert "ensemble size curve" in printed
    metrics = json.loads(out.read_text())
    assert [row["size"] for row in metrics["curve"]] == [1, 2, 5]  # the default sizes up to 5
    assert [row["ensembles"] for row in metrics["curve"]] == [5, 2, 1]
    assert len(metrics["accuracies"]) == 5 and metrics["dropped_networks"] == 1
    assert 0.0 <= metrics["curve"][2]["ood_auroc"]["mean"] <= 1.0
    assert (
        main(["evaluate", str(tiny_run), "-n", "2", "--curve", "1,x", "--data-dir", str(mnist_dir)])
        == 2
    )
    _one_line_error(capsys, "expected a whole number, got 'x'")


def test_spec_that_does_not_fit_the_data_is_refused_before_work(tmp_path, mnist_dir, capsys):
    from weightgen.exchange import save_networks
    from weightgen.targets import TargetSpec

    spec = TargetSpec.from_dict(
        {
            "input_shape": [1, 28, 28],
            "layers": [
                {
                    "name": "fc",
                    "kind": "linear",
                    "in_size": 784,
                    "out_size": 5,
                    "activation": "none",
                }
            ],
        }
    )
    nets = tmp_path / "five.safetensors"
    save_networks(nets, spec, [torch.zeros(2, 5, 785)])
    assert main(["evaluate", str(nets), "--data-dir", str(mnist_dir)]) == 2
    _one_line_error(capsys, "the networks have 5 outputs, dataset mnist has 10 classes")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("train:\n  steps: 3\ntrain:\n  steps: 4\n", "duplicate key 'train' (line 3)"),
        ("- 1\n- 2\n", "the file must be a mapping"),
        ("seed: 18446744073709551616\n", "seed must be below 2**63"),
        ("train:\n  lr: .inf\n", "train.lr must be a finite number"),
        ("objective:\n  lambda: .nan\n", "objective.lambda must be a finite number"),
        ("train:\n  images_per_network: 1000000000\n", "needs about"),
        ("train:\n  noise_samples: 10000000\n", "needs about"),
        (
            "target:\n  input_shape: [1, 28, 28]\n  layers:\n  - {name: c, kind: conv, in_size: 1, "
            "out_size: 2, kernel_size: 3, pool: 0}\n  - {name: f, kind: linear, in_size: 1568, "
            "out_size: 10, activation: none}\nhypernet:\n  generator_hidden: [[4], [4]]\n",
            "needs pool >= 1",
        ),
    ],
)
def test_config_mistakes_are_one_line_errors(tmp_path, capsys, text, message):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, message)
    assert not (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.slow
def test_binary_config_and_huge_values_give_short_messages(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_bytes(bytes(range(256)) * 4)
    assert main(["train", "--config", str(config)]) == 2
    _one_line_error(capsys, "is not UTF-8 text")
    config.write_text("seed: [" + ", ".join(["1"] * 200000) + "]\n")
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "seed must be an integer" in err and len(err) < 300


def test_run_folder_config_that_is_a_yaml_list_is_a_clean_error(tiny_run, tmp_path, capsys):
    (tiny_run / "config.yaml").write_text("- 1\n- 2\n")
    assert main(["sample", str(tiny_run), "-n", "2", "-o", str(tmp_path / "n.safetensors")]) == 2
    _one_line_error(capsys, "not a weightgen config")


def test_huge_seed_on_the_command_line_and_unprefixed_top_level_errors(capsys):
    assert main(["sample", ".", "-n", "2", "-o", "x.safetensors", "--seed", str(2**64)]) == 2
    _one_line_error(capsys, "below 2**63")
    assert main(["--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("weightgen: error: ") and "weightgen: error: weightgen:" not in err


def test_full_disk_while_sampling_is_a_clean_error_and_leaves_nothing(
    tiny_run, tmp_path, monkeypatch, capsys
):
    import errno

    from weightgen import exchange

    class FullDisk:
        def __init__(self, *args):
            self.file = open(*args)

        def write(self, data):
            if len(data) > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

    monkeypatch.setattr(exchange, "open", FullDisk, raising=False)
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(tiny_run), "-n", "3", "-o", str(out)]) == 2
    _one_line_error(capsys, "No space left on device")
    assert not out.exists() and not list(tmp_path.glob(".nets*"))


def test_every_option_explains_itself_and_version(capsys):
    import argparse

    from weightgen.cliargs import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help and not action.help.startswith("("), (name, action.dest)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("weightgen 0.")


@pytest.mark.slow
def test_resuming_and_finished_runs_say_so(tiny_yaml, tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(tiny_yaml),
        "--out",
        str(run),
        "--data-dir",
        str(mnist_dir),
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "already trained to step 2 (train.steps = 2); nothing to do" in capsys.readouterr().err
    assert main([*args, "--steps", "3"]) == 0
    assert "resuming from step 2" in capsys.readouterr().err


def test_batch_norm_sampling_mode_through_the_command(tiny_run, tmp_path, capsys):
    from safetensors import safe_open

    running, batch = tmp_path / "running.safetensors", tmp_path / "batch.safetensors"
    assert main(["sample", str(tiny_run), "-n", "6", "-o", str(running)]) == 0
    assert (
        main(["sample", str(tiny_run), "-n", "6", "-o", str(batch), "--batch-norm", "batch"]) == 0
    )
    with safe_open(str(batch), framework="pt") as f:
        assert f.metadata()["batch_norm"] == "batch"
    a, b = load_file(str(running)), load_file(str(batch))
    assert torch.equal(a["z"], b["z"]) and not torch.equal(a["conv1.weight"], b["conv1.weight"])
    capsys.readouterr()
    assert main(["evaluate", str(batch), "--batch-norm", "batch"]) == 2
    _one_line_error(capsys, "applies to sampling from a run folder")


def test_a_sample_larger_than_the_free_disk_is_refused_up_front(tiny_run, tmp_path, capsys):
    out = tmp_path / "huge.safetensors"
    assert main(["sample", str(tiny_run), "-n", "9999999999", "-o", str(out)]) == 2
    _one_line_error(capsys, "GiB are free there")
    assert not out.exists()


def test_help_and_version_do_not_import_torch():
    """`weightgen --help` answers without PyTorch (benchmarks/startup.py times it)."""
    import subprocess
    import sys

    from weightgen.cliargs import PRECISION_NAMES
    from weightgen.evaluate import PRECISIONS

    assert sorted(PRECISIONS) == PRECISION_NAMES
    check = (
        "import sys\nfrom weightgen.cli import main\n"
        "for flag in ('--help', '--version'):\n"
        "    try:\n        main([flag])\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import weightgen

    assert f"weightgen {weightgen.__version__}" in result.stdout
    assert "usage: weightgen" in result.stdout


def test_a_networks_file_remembers_its_dataset(tmp_path, capsys):
    """Networks sampled from a digits run are evaluated on digits without --data."""
    import json as _json

    from safetensors import safe_open

    config = tmp_path / "digits.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "d",
                "data": {"name": "digits", "ood": None},
                "target": digits_target(),
                "train": {
                    "steps": 2,
                    "noise_samples": 4,
                    "images_per_network": 4,
                    "validate_every": 2,
                    "validation_networks": 4,
                },
            }
        )
    )
    run, nets = tmp_path / "run", tmp_path / "nets.safetensors"
    assert main(["train", "--config", str(config), "--out", str(run), "--threads", "1"]) == 0
    assert main(["sample", str(run), "-n", "4", "-o", str(nets), "--threads", "1"]) == 0
    with safe_open(str(nets), "pt") as f:
        assert f.metadata()["dataset"] == "digits" and "ood_dataset" not in f.metadata()
    report = tmp_path / "e.json"
    assert main(["evaluate", str(nets), "--json", str(report), "--threads", "1"]) == 0
    assert _json.loads(report.read_text())["images"] == 397  # digits' test split, not MNIST's
