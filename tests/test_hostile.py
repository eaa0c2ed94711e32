"""Hostile input, through the command line and the Python API: every case ends in exit 2 (or a
WeightgenError) with one line, and leaves every file as it was (issue 29)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import weightgen
from tests.helpers import REPO, SMALL_REPORT, write_tiny_yaml
from weightgen.cli import main
from weightgen.errors import ArgumentError, WeightgenError


@pytest.fixture(scope="module")
def place(tmp_path_factory, mnist_dir):
    """A tiny trained run, a networks file sampled from it, a finished report, a config and
    two broken npz files, made once for the whole table."""
    folder = tmp_path_factory.mktemp("hostile")
    config = write_tiny_yaml(folder / "tiny.yaml", steps=2, validate_every=2, checkpoint_every=2)
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
                "--no-progress",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(["sample", str(folder / "run"), "-n", "4", "-o", str(folder / "nets.safetensors")])
        == 0
    )
    (folder / "report").mkdir()
    (folder / "report" / "metrics.json").write_text(json.dumps({"sources": {}}))
    (folder / "not_zip.npz").write_text("not a zip archive")
    header = io.BytesIO()  # an npz whose header declares 10^9 images of 8 x 8
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (10**9, 8, 8)}
    )
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())
    for name in ("not_zip", "huge"):
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\ndata: {{name: npz, path: {folder / (name + '.npz')}}}\n"
            "target:\n  input_shape: [1, 8, 8]\n  layers:\n"
            "    - {name: fc, kind: linear, in_size: 64, out_size: 10, activation: none}\n"
        )
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


CASES = [  # (arguments, with {d} the fixture's folder; what the one line says)
    (["evaluate", "{d}/rnu", "-n", "3"], "{d}/rnu: no such file or folder"),
    (["evaluate", "{d}/run", "{d}/run", "-n", "3"], "bit for bit: pooled, it would count twice"),
    (
        ["evaluate", "{d}/run", "{d}/nets.safetensors", "-n", "4"],
        "network 0 of {d}/nets.safetensors is network 0 of {d}/run, bit for bit",
    ),
    (
        ["sample", "{d}/run", "{d}/run", "-n", "2", "-o", "{d}/pool.safetensors"],
        "(step 2) is given twice",
    ),
    (["report", "{d}/run", "--out", "{d}/tiny.yaml"], "is a file; give a folder"),
    (["report", "{d}/run", "--out", "{d}/run"], "is a folder of other files, not a report"),
    (["report", "{d}/run", "--out", "{d}/report"], "holds a report; pass --force to replace it"),
    (["evaluate", "{d}/nets.safetensors", "--data", "npz:"], "--data npz:: give the file"),
    (
        ["train", "--config", "{d}/not_zip.yaml", "--out", "{d}/new_run"],
        "not an .npz file (no such file, or not a zip archive",
    ),
    (
        ["train", "--config", "{d}/huge.yaml", "--out", "{d}/new_run"],
        "needs about 238 GiB of memory",
    ),
]


@pytest.mark.parametrize(
    "arguments, message", CASES, ids=[" ".join(c[0][:2]) + f" #{i}" for i, c in enumerate(CASES)]
)
def test_hostile_command_lines_end_in_one_line_and_change_nothing(
    place, capsys, monkeypatch, arguments, message
):
    monkeypatch.setenv("WEIGHTGEN_THREADS", "1")
    before = snapshot(place)
    assert main([a.format(d=place) for a in arguments]) == 2
    err = capsys.readouterr().err
    assert message.format(d=place) in err, err
    assert err.count("\n") == 1 and err.startswith("weightgen: error:"), err
    assert snapshot(place) == before
    assert not (place / "new_run").exists()  # a refused train leaves no folder behind


def test_hostile_api_calls_raise_one_line_errors(place):
    gen = weightgen.load(place / "run")
    nets = gen.sample(3)
    calls = {
        "sample(10**12)": (lambda: gen.sample(10**12), "needs about"),
        "sample(0)": (lambda: gen.sample(0), "n must be a whole number >= 1, got 0"),
        "sample(2.5)": (lambda: gen.sample(2.5), "n must be a whole number >= 1, got 2.5"),
        "stream(seed=-1)": (lambda: list(gen.stream(2, seed=-1)), "seed must be a whole number"),
        "module(3)": (lambda: nets.module(3), "network 3 does not exist (there are 3)"),
        "module(1.0)": (lambda: nets.module(1.0), "index must be a whole number"),
        "logits(0 images)": (
            lambda: nets.logits(torch.zeros(0, 1, 28, 28)),
            "images must hold at least one image, got 0",
        ),
        "metrics(float labels)": (
            lambda: nets.metrics(torch.rand(4, 1, 28, 28), torch.tensor([1.0, 2.0, 3.0, 4.0])),
            "labels must be an integer tensor",
        ),
        "load(device='tpu')": (
            lambda: weightgen.load(place / "run", device="tpu"),
            "device must be auto, cpu or cuda, got 'tpu'",
        ),
    }
    for name, (call, message) in calls.items():
        with pytest.raises(WeightgenError) as caught:
            call()
        assert message in str(caught.value), name
        assert "\n" not in str(caught.value), name
    with pytest.raises(ArgumentError):  # also a ValueError, for callers who catch those
        gen.sample(0)
    last = nets.module(-1)  # Python's indexing: the last network
    assert torch.equal(last[0].weight, nets.module(2)[0].weight)


def test_threads_beyond_the_cores_are_capped_with_a_notice(place, capsys):
    from weightgen.threads import parse_threads, usable_cores

    assert parse_threads("10000") == usable_cores()
    assert (
        main(
            [
                "evaluate",
                str(place / "nets.safetensors"),
                "--threads",
                "9999",
                "--split",
                "validation",
            ]
        )
        == 0
    )
    assert (
        f"9999 threads asked for, this process may use {usable_cores()} cores"
        in capsys.readouterr().err
    )
    assert torch.get_num_threads() <= usable_cores()


def test_step_best_skips_damaged_log_lines(place, tmp_path):
    import shutil

    from weightgen.runfolder import best_validated_step

    run = tmp_path / "run"
    shutil.copytree(place / "run", run)
    log = run / "metrics.jsonl"
    good = log.read_bytes()
    log.write_bytes(
        good
        + b"\xff\xfe not utf-8\n"
        + json.dumps({"kind": "validation", "step": 2, "ensemble_majority_vote": "high"}).encode()
        + b"\n"
    )
    assert best_validated_step(run) == 2  # the intact record of step 2 still counts
    log.write_bytes(
        b"\xff\n"
        + json.dumps({"kind": "validation", "step": 2, "ensemble_majority_vote": "high"}).encode()
        + b"\n"
    )
    with pytest.raises(WeightgenError, match="no validation record for any kept checkpoint"):
        best_validated_step(run)


def test_a_second_writer_of_one_output_is_refused(place, capsys):
    from weightgen.fileio import output_lock

    out = place / "busy.safetensors"
    with output_lock(out):  # another process writing it, as far as the lock says
        assert main(["sample", str(place / "run"), "-n", "2", "-o", str(out)]) == 2
    assert (
        "busy.safetensors is being written by another weightgen process" in capsys.readouterr().err
    )
    assert not out.exists() and not (place / ".busy.safetensors.lock").exists()


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path):
    from weightgen.fileio import atomic_path

    target = tmp_path / "out.json"
    with pytest.raises(WeightgenError, match="appeared while this command ran"):
        with atomic_path(target, replace=False) as tmp:
            tmp.write_text("mine")
            target.write_text("theirs")  # another writer got there first
    assert target.read_text() == "theirs"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left


def test_the_next_writer_removes_a_killed_writers_temporaries(place):
    stale = place / ".fresh.safetensors.abc123.tmp"
    stale.write_bytes(b"\0" * 1000)  # what a SIGKILLed sample leaves
    out = place / "fresh.safetensors"
    assert main(["sample", str(place / "run"), "-n", "2", "-o", str(out)]) == 0
    assert out.is_file() and not stale.exists()
    out.unlink()


def test_an_unsafe_checkpoint_is_one_line(place, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(place / "run", run)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    for path in (run / "checkpoints").glob("*.pt"):
        torch.save({"x": Exploit()}, path)
    assert main(["sample", str(run), "-n", "2", "-o", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "would run code when loaded); refused, nothing ran" in err


def test_adversarial_curves_with_nothing_to_attack_are_empty_not_a_crash():
    from weightgen.analysis.adversarial import fgsm_curves
    from weightgen.data import Split
    from weightgen.targets import mnist_cnn

    spec = mnist_cnn()
    zero = [torch.zeros(1, layer.out_size, layer.filter_size) for layer in spec.layers]
    data = Split(torch.rand(20, 1, 28, 28), torch.full((20,), 3))  # zeros always say class 0
    curves = fgsm_curves(
        spec, lambda k: [f.expand(k, -1, -1) for f in zero], data, images=20, ensemble_size=2
    )
    assert int(curves["images"]) == 0 and torch.isnan(curves["single"]).all()


def test_readable_sizes():
    from weightgen.memory import readable_bytes

    assert [readable_bytes(n) for n in (512, 3 * 1024 + 300, 40 * 2**20, 1.6 * 2**30)] == [
        "512 B",
        "3.3 KiB",
        "40.0 MiB",
        "1.6 GiB",
    ]


@pytest.mark.slow
def test_report_with_one_network_skips_what_needs_two_and_says_why(place, tmp_path):
    out = tmp_path / "one"
    small = [
        *SMALL_REPORT,
        "--networks",
        "1",
        "--ensemble-size",
        "1",
        "--pca-samples",
        "1",
        "--diversity-networks",
        "1",
        "--adversarial-ensemble",
        "1",
    ]
    assert main(["report", str(place / "run"), "--out", str(out), *small, "--threads", "1"]) == 0
    text = (out / "report.md").read_text()
    assert "Skipped for tiny (step 2): diversity (needs at least 2 networks" in text
    assert "Skipped for tiny (step 2): PCA and filters (needs at least 2 networks" in text
    assert [p.name for p in tmp_path.iterdir()] == ["one"]  # no partial folder left


@pytest.mark.slow
def test_report_stops_on_sigterm_and_leaves_no_report(place, tmp_path, mnist_dir):
    out = tmp_path / "report"
    env = {**os.environ, "WEIGHTGEN_DATA": str(mnist_dir), "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weightgen",
            "report",
            str(place / "run"),
            "--out",
            str(out),
            "--networks",
            "400",
            "--ensemble-size",
            "100",
            "--threads",
            "1",
            "--no-progress",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".report.part-*")) and time.monotonic() < deadline:
        time.sleep(0.2)  # the report is under way once its hidden folder exists
    time.sleep(2)
    child.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert time.monotonic() - sent < 5  # measured: 0.1-1.0 s with 2 cores fully loaded
    assert "terminated (SIGTERM); nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # neither a report nor a partial folder


def test_a_full_disk_while_checkpointing_says_so(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from weightgen import runfolder

    def torch_on_a_full_disk(obj, path):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(runfolder.torch, "save", torch_on_a_full_disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 4096))
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(WeightgenError, match="step-0000005.pt: no space left on device$"):
        runfolder.save_checkpoint(tmp_path, 5, {"model": {}}, keep=3)
    assert list((tmp_path / "checkpoints").iterdir()) == []  # no partial file left


def test_an_unwritable_output_folder_is_refused_before_the_work(place, capsys, monkeypatch):
    import errno

    from weightgen import fileio

    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(fileio.os, "open", read_only)
    evaluated = []
    monkeypatch.setattr("weightgen.evaluate.evaluate_networks", lambda *a, **k: evaluated.append(1))
    assert main(["evaluate", str(place / "nets.safetensors"), "--json", str(place / "m.json")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write to {place}: Permission denied" in err and err.count("\n") == 1
    assert not evaluated and not (place / "m.json").exists()


@pytest.mark.slow
def test_a_report_on_a_full_disk_is_one_line_and_leaves_nothing(
    place, tmp_path, capsys, monkeypatch
):
    import errno

    from weightgen.analysis import figures

    def full(fig, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(figures, "save", full)
    assert (
        main(
            [
                "report",
                str(place / "run"),
                "--out",
                str(tmp_path / "rep"),
                *SMALL_REPORT,
                "--threads",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []  # no report, no partial folder
