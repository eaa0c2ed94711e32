"""Run folders that cannot be corrupted: checkpoints that load without running code, the lock,
checkpoints tied to their run, SIGTERM, stale temporary files, a deleted config.yaml."""

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from tests.helpers import REPO, write_tiny_yaml
from weightgen.cli import main
from weightgen.errors import WeightgenError
from weightgen.runfolder import (
    RunLock,
    first_difference,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    save_checkpoint,
)


def _env(mnist_dir):
    return {
        **os.environ,
        "WEIGHTGEN_DATA": str(mnist_dir),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO / "src"),
    }


def _train(config, run, mnist_dir, *extra):
    return main(
        [
            "train",
            "--config",
            str(config),
            "--out",
            str(run),
            "--data-dir",
            str(mnist_dir),
            "--device",
            "cpu",
            "--no-progress",
            *extra,
        ]
    )


def test_second_process_is_refused_naming_the_holder_and_a_dead_holder_is_stale(
    tmp_path, mnist_dir, capsys
):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from weightgen.runfolder import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)",
            str(run),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(mnist_dir),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = write_tiny_yaml(tmp_path / "tiny.yaml", steps=2)
        assert _train(config, run, mnist_dir) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "in use by another weightgen process" in err
        assert len(err.strip().splitlines()) == 1
        assert not (run / "config.yaml").exists()  # refused before writing anything
    finally:
        holder.kill()
        holder.wait()
    # SIGKILL left the lock file with the dead holder's details: stale, taken over
    assert str(holder.pid) in (run / ".lock").read_text()
    assert _train(config, run, mnist_dir) == 0
    assert "taking over the stale lock" in capsys.readouterr().err
    assert (run / ".lock").read_text() == ""  # released cleanly


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(Exception, match="in use by another weightgen process"):
            with RunLock(tmp_path / "run"):
                pass
    with RunLock(tmp_path / "run"):  # released
        pass


def test_deleted_config_is_restored_from_the_checkpoint_and_a_new_one_refused(
    tmp_path, mnist_dir, capsys
):
    run = tmp_path / "run"
    config = write_tiny_yaml(tmp_path / "tiny.yaml", steps=2, checkpoint_every=2)
    assert _train(config, run, mnist_dir) == 0
    saved = (run / "config.yaml").read_text()
    (run / "config.yaml").unlink()
    other = yaml.safe_load(config.read_text())
    other["objective"]["lambda"] = 10.0
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    capsys.readouterr()
    assert _train(tmp_path / "other.yaml", run, mnist_dir) == 2
    err = capsys.readouterr().err
    assert "restored from checkpoint step 2" in err and "objective.lambda" in err
    assert yaml.safe_load((run / "config.yaml").read_text()) == yaml.safe_load(saved)


@pytest.mark.slow
def test_a_checkpoint_of_another_run_or_renamed_is_refused(tmp_path, mnist_dir, capsys):
    config = write_tiny_yaml(tmp_path / "tiny.yaml", steps=2, checkpoint_every=2)
    assert _train(config, tmp_path / "a", mnist_dir) == 0
    assert _train(config, tmp_path / "b", mnist_dir, "--seed", "5") == 0
    foreign = tmp_path / "a" / "checkpoints" / "step-0000009.pt"
    shutil.copy(tmp_path / "b" / "checkpoints" / "step-0000002.pt", foreign)
    capsys.readouterr()
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(tmp_path / "a"), "-n", "2", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "step-0000009.pt holds step 2" in err and not out.exists()
    # same step number, other run: its config differs in the seed
    shutil.move(foreign, tmp_path / "a" / "checkpoints" / "step-0000002.pt")
    assert main(["sample", str(tmp_path / "a"), "-n", "2", "-o", str(out)]) == 2
    assert "belongs to another run (seed is 5 there, 1 in config.yaml)" in capsys.readouterr().err


@pytest.mark.slow
def test_checkpoint_with_only_a_format_tag_falls_back_to_the_previous(tmp_path, mnist_dir, capsys):
    config = write_tiny_yaml(tmp_path / "tiny.yaml", steps=4, checkpoint_every=2)
    assert _train(config, tmp_path / "run", mnist_dir) == 0
    newest = list_checkpoints(tmp_path / "run")[-1]
    torch.save({"format": "weightgen-checkpoint/1"}, newest)
    capsys.readouterr()
    out = tmp_path / "nets.safetensors"
    assert main(["sample", str(tmp_path / "run"), "-n", "2", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "incomplete checkpoint" in captured.err and "(step 2)" in captured.out


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_exits_143_and_stale_temporaries_go(tmp_path, mnist_dir):
    run = tmp_path / "run"
    config = write_tiny_yaml(
        tmp_path / "tiny.yaml", steps=100000, checkpoint_every=100000, validate_every=100000
    )
    (run / "checkpoints").mkdir(parents=True)
    stale = run / "checkpoints" / ".step-0000007.pt.x1y2.tmp"
    stale.write_bytes(b"torn")
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weightgen",
            "train",
            "--config",
            str(config),
            "--out",
            str(run),
            "--device",
            "cpu",
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=_env(mnist_dir),
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # the log's first record: training is under way
        if (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text():
            break
        time.sleep(0.2)
    assert not stale.exists()
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143
    assert err.strip().splitlines() == [
        "weightgen: terminated (SIGTERM); a checkpoint was saved: run the same command to continue"
    ]
    saved = list_checkpoints(run)
    assert len(saved) == 1 and int(saved[0].stem.split("-")[1]) >= 20
    assert not list((run / "checkpoints").glob(".*.tmp")) and not list(run.glob(".*.tmp"))


def test_first_difference_ignores_resumable_changes_and_optionally_missing_keys():
    saved = {"name": "a", "seed": 1, "train": {"steps": 5, "lr": 0.1}, "objective": {"lambda": 1.0}}
    assert first_difference(saved, {**saved, "name": "b", "train": {"steps": 9, "lr": 0.1}}) is None
    kept = {"steps": 5, "lr": 0.1, "keep_checkpoints": 9, "keep_best_checkpoint": False}
    assert (
        first_difference(
            {**saved, "train": {**kept, "keep_checkpoints": 3, "keep_best_checkpoint": True}},
            {**saved, "train": kept},
        )
        is None
    )
    assert first_difference(saved, {**saved, "train": {"steps": 5, "lr": 0.2}}) == (
        "train.lr",
        0.1,
        0.2,
    )
    newer = {**saved, "objective": {"lambda": 1.0, "function_weight": 0.0}}
    assert first_difference(saved, newer) is not None
    assert first_difference(saved, newer, shared_keys_only=True) is None


MARKER = "weightgen_pwned"


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def test_malicious_pickle_runs_nothing_and_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "checkpoints" / "step-0000001.pt"
    path.parent.mkdir()
    torch.save({"format": "weightgen-checkpoint/1", "step": 1, "evil": Exploit()}, path)
    with pytest.raises(
        WeightgenError,
        match="unsafe checkpoint .it holds Python objects that "
        "would run code when loaded.; refused, nothing ran$",
    ):
        load_checkpoint(path)
    with pytest.raises(WeightgenError, match="^no readable checkpoint: .*step-0000001.pt: unsafe"):
        load_latest(tmp_path)
    assert not (tmp_path / MARKER).exists()
    # a raw pickle (not a torch zip file) is refused too
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(WeightgenError):
        load_checkpoint(path)
    assert not (tmp_path / MARKER).exists()


def test_save_keeps_the_newest_and_leaves_no_temporary_files(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"model": {"w": torch.ones(2) * step}}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000003.pt", "step-0000004.pt"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-0000003.pt",
        "step-0000004.pt",
    ]
    payload = load_latest(tmp_path)
    assert payload["step"] == 4 and torch.equal(payload["model"]["w"], torch.full((2,), 4.0))


def test_save_also_keeps_the_best_validated_checkpoint(tmp_path):
    votes = {1: 0.5, 2: 0.9, 3: 0.7, 4: 0.6, 5: 0.95}  # validation majority votes by step
    log = tmp_path / "metrics.jsonl"
    kept = []
    for step, vote in votes.items():
        with open(log, "a") as f:  # the loop validates before it writes the step's checkpoint
            f.write(
                json.dumps({"kind": "validation", "step": step, "ensemble_majority_vote": vote})
                + "\n"
            )
        save_checkpoint(tmp_path, step, {"model": {"w": torch.ones(2)}}, keep=2, keep_best=True)
        kept.append([int(p.stem[5:]) for p in list_checkpoints(tmp_path)])
    assert kept == [[1], [1, 2], [2, 3], [2, 3, 4], [4, 5]]
    save_checkpoint(tmp_path, 6, {"model": {"w": torch.ones(2)}}, keep=2, keep_best=False)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000005.pt", "step-0000006.pt"]


def test_no_checkpoint_is_none(tmp_path):
    assert load_latest(tmp_path) is None


def test_a_chosen_checkpoint_and_the_best_by_validation_vote(tmp_path, mnist_dir, capsys):
    from safetensors import safe_open

    import weightgen
    from weightgen.runfolder import best_validated_step, open_run

    run = tmp_path / "run"  # 6 steps; validations and checkpoints at 3 and 6
    assert _train(write_tiny_yaml(tmp_path / "tiny.yaml"), run, mnist_dir, "--threads", "1") == 0
    log = run / "metrics.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    votes = {r["step"]: r for r in records if r["kind"] == "validation"}
    assert sorted(votes) == [3, 6]
    votes[3]["ensemble_majority_vote"], votes[6]["ensemble_majority_vote"] = 0.9, 0.5
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert best_validated_step(run) == 3
    assert open_run(run).step == 6 and open_run(run, step="best").step == 3
    older, newer = (weightgen.load(run, step=s).sample(2, seed=0) for s in (3, 6))
    assert not torch.equal(older.filters[0], newer.filters[0])
    assert torch.equal(
        weightgen.load(run, step="best").sample(2, seed=0).filters[0], older.filters[0]
    )
    nets = tmp_path / "nets.safetensors"
    assert main(["sample", str(run), "-n", "2", "-o", str(nets), "--step", "best"]) == 0
    with safe_open(str(nets), "pt") as f:
        assert f.metadata()["step"] == "3"
    capsys.readouterr()
    for step, message in (
        ("4", "no checkpoint of step 4 (kept: 3, 6)"),
        ("x", "expected a whole number"),
    ):
        assert main(["evaluate", str(run), "-n", "2", "--step", step]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["evaluate", str(nets), "--step", "3"]) == 2
    assert "--step applies to sampling from a run folder" in capsys.readouterr().err
    log.write_text("".join(json.dumps(r) + "\n" for r in records if r["kind"] != "validation"))
    with pytest.raises(
        WeightgenError,
        match=r"no validation record for any kept checkpoint "
        r"\(steps 3, 6\)",
    ):
        open_run(run, step="best")
    with pytest.raises(WeightgenError, match="step number or 'best', not '3'"):
        open_run(run, step="3")
