"""Run folders: config.yaml, the config changes a resumed run accepts, checkpoints (atomic,
loadable without running code, the newest good one found), the lock that keeps a second writer
out, the clean-up of torn temporary files, and loading a run as a trained method.

A run folder holds ``config.yaml``, ``metrics.jsonl``, ``checkpoints/step-NNNNNNN.pt`` and,
while a process trains in it, a lock held on ``.lock``.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import math
import os
import pickle
import shutil
import socket
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch
import yaml

from . import pretrained
from .config import Config, config_from_dict, save_config
from .cost import training_cost
from .errors import WeightgenError
from .fileio import MetricsLog, atomic_path, atomic_write_text
from .methods import Method, build_method

# (section, key) pairs a run may change when it is continued; the top-level name is free too
RESUMABLE_CHANGES = {
    ("train", "steps"),
    ("train", "checkpoint_every"),
    ("train", "log_every"),
    ("train", "tensorboard"),
    ("train", "keep_checkpoints"),
    ("train", "keep_best_checkpoint"),
    ("toy", "steps"),
    ("direct", "steps"),
    ("mnfg", "steps"),
}
LOCK_FILE = ".lock"


def first_difference(
    saved: dict, new: dict, shared_keys_only: bool = False
) -> tuple[str, Any, Any] | None:
    """The first ``section.key`` whose value differs between two configs (plain data), with
    both values; changes in RESUMABLE_CHANGES and the name do not count. With
    ``shared_keys_only`` a key missing on either side (an older version's file) is skipped."""
    for section in dict.fromkeys([*saved, *new]):
        if section == "name":
            continue
        old, value = saved.get(section), new.get(section)
        if shared_keys_only and (section not in saved or section not in new):
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            for key in dict.fromkeys([*old, *value]):
                if (section, key) in RESUMABLE_CHANGES:
                    continue
                if shared_keys_only and (key not in old or key not in value):
                    continue
                if old.get(key) != value.get(key):
                    return f"{section}.{key}", old.get(key), value.get(key)
        elif old != value:
            return section, old, value
    return None


def saved_config(run_dir: str | Path) -> dict:
    """The config a run folder was made with (its config.yaml), as plain data."""
    path = Path(run_dir) / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError):
        raise WeightgenError(f"{run_dir}: no readable config.yaml (not a run folder)") from None
    except yaml.YAMLError:
        raise WeightgenError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict):
        raise WeightgenError(f"{path}: not a weightgen config (a YAML mapping)")
    return data


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporary files of writes that a killed process left (``.NAME.*.tmp`` beside
    config, log and checkpoints); only call while holding the run's lock."""
    run_dir = Path(run_dir)
    stale = [*run_dir.glob(".*.tmp"), *(run_dir / "checkpoints").glob(".*.tmp")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _holder_text(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on host {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that left no details"


class RunLock:
    """Exclusive ownership of a run folder while a process writes to it.

    An advisory ``flock`` on ``.lock``, which holds the owner's pid, host and start time. The
    kernel releases the lock when its process dies, however it dies: a lock file left by a
    killed process is stale and taken over. A second process is refused at once with a
    one-line error naming the holder.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        path = self.run_dir / LOCK_FILE
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise WeightgenError(
                f"cannot create run folder {self.run_dir}: {err.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder_text(os.pread(fd, 4096, 0).decode(errors="replace"))
            os.close(fd)
            raise WeightgenError(
                f"{self.run_dir} is in use by another weightgen process "
                f"({holder}); wait for it to finish or use another --out"
            ) from None
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous:
            print(
                f"weightgen: taking over the stale lock of {self.run_dir} "
                f"({_holder_text(previous)}, no longer running)",
                file=sys.stderr,
            )
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty file: released cleanly
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


FORMAT = "weightgen-checkpoint/1"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    return sorted(checkpoint_dir(run_dir).glob("step-*.pt"))


def save_checkpoint(
    run_dir: str | Path, step: int, payload: dict[str, Any], keep: int, keep_best: bool = False
) -> Path:
    """Write ``payload`` as checkpoint ``step`` (temporary file, fsync, rename); keep the newest
    ``keep`` checkpoints and, with ``keep_best``, also the one :func:`best_validated_step`
    names, so that ``--step best`` still finds it after the run trained on."""
    path = checkpoint_dir(run_dir) / f"step-{step:07d}.pt"
    with atomic_path(path) as tmp:
        try:
            torch.save({"format": FORMAT, "step": step, **payload}, tmp)
        except RuntimeError as err:  # torch's writer reports a full disk as RuntimeError
            if shutil.disk_usage(tmp.parent).free < FULL_DISK_BYTES:
                raise OSError(errno.ENOSPC, "no space left on device") from None
            raise OSError(f"checkpoint not written ({str(err).splitlines()[0]})") from None
    best = _best_validated_or_none(Path(run_dir)) if keep_best else None
    for old in list_checkpoints(run_dir)[:-keep]:
        if _step_in_name(old) != best:
            old.unlink(missing_ok=True)
    return path


FULL_DISK_BYTES = 64 * 2**20  # less free than this after a failed write: the disk is full


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint with ``weights_only=True``: a file that would run code is refused,
    and so is one without a step and a model (or trained filters)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise WeightgenError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError:  # weights_only refused an object: nothing was run
        raise WeightgenError(
            f"{path}: unsafe checkpoint (it holds Python objects that would "
            f"run code when loaded); refused, nothing ran"
        ) from None
    except (
        RuntimeError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        ValueError,
        AttributeError,
        KeyError,
    ) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightgenError(f"{path}: unreadable or unsafe checkpoint ({first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightgenError(f"{path}: not a weightgen checkpoint")
    if not isinstance(payload.get("step"), int) or not ({"model", "filters"} & payload.keys()):
        raise WeightgenError(f"{path}: incomplete checkpoint (no step or no weights)")
    return payload


def _step_in_name(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])


def check_belongs(path: Path, payload: dict[str, Any], run_config: dict | None) -> None:
    """Refuse a checkpoint that is not this run's: its step must be the one in its file name
    and its config the run's config.yaml (up to changes a resumed run may make)."""
    if payload["step"] != _step_in_name(path):
        raise WeightgenError(
            f"{path} holds step {payload['step']}, not the step of its name "
            f"(renamed or copied from elsewhere?); move it out of "
            f"{path.parent}"
        )
    if run_config is not None and isinstance(payload.get("config"), dict):
        difference = first_difference(run_config, payload["config"], shared_keys_only=True)
        if difference is not None:
            key, ours, theirs = difference
            raise WeightgenError(
                f"{path} belongs to another run ({key} is {theirs!r} there, "
                f"{ours!r} in config.yaml); move it out of {path.parent}"
            )


def load_latest(
    run_dir: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """The newest checkpoint that loads and belongs to the run (:func:`check_belongs`, against
    config.yaml when there is one); a corrupt newer one is reported in one line and skipped.
    None when the run has no checkpoint."""
    candidates = list_checkpoints(run_dir)
    run_config = saved_config(run_dir) if (Path(run_dir) / "config.yaml").is_file() else None
    skipped: list[str] = []
    for path in reversed(candidates):
        try:
            payload = load_checkpoint(path, map_location)
        except WeightgenError as err:
            skipped.append(str(err))
            continue
        for problem in skipped:
            print(f"weightgen: warning: {problem}; using the previous checkpoint", file=sys.stderr)
        check_belongs(path, payload, run_config)
        return payload
    if candidates:  # one line: the newest checkpoint's problem
        more = f" (and {len(skipped) - 1} older ones)" if len(skipped) > 1 else ""
        raise WeightgenError(f"no readable checkpoint: {skipped[0]}{more}")
    return None


def _check_compatible(saved: dict, new: dict) -> None:
    try:  # keys added to the config since the folder was made take their defaults
        saved = config_from_dict(saved).to_dict()
    except WeightgenError:
        pass  # compared as written; the first difference is reported below
    difference = first_difference(saved, new)
    if difference is not None:
        key, there, now = difference
        raise WeightgenError(
            f"the run folder was made with a different config ({key}: "
            f"{there!r} there, {now!r} now); use another --out or the same "
            f"config"
        )


def prepare_run_folder(config: Config, run_dir: Path) -> None:
    """Refuse a run folder made with another config; create it and write the config.

    Call while holding the folder's :class:`RunLock`. A config.yaml that was deleted from a
    folder with checkpoints is restored from the newest one first, so it is never silently
    replaced by another config; temporary files of killed writes are removed."""
    config_path = run_dir / "config.yaml"
    if not config_path.exists() and list_checkpoints(run_dir):
        newest = load_latest(run_dir)
        if newest is not None and isinstance(newest.get("config"), dict):
            atomic_write_text(config_path, yaml.safe_dump(newest["config"], sort_keys=False))
            print(
                f"weightgen: {config_path} was missing; restored from checkpoint step "
                f"{newest['step']}",
                file=sys.stderr,
            )
        else:
            raise WeightgenError(
                f"{run_dir} has checkpoints but no config.yaml, and none of "
                f"them holds its config; use another --out"
            )
    if config_path.exists():
        _check_compatible(saved_config(run_dir), config.to_dict())
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightgenError(f"cannot create run folder {run_dir}: {err.strerror}") from None
    remove_stale_temporaries(run_dir)
    save_config(config, config_path)


def remove_if_unused(run_dir: Path) -> None:
    """Remove a run folder that a refused ``train`` created: one with no checkpoint and no
    logged step holds only what the refusal left (the lock, config.yaml)."""
    log = run_dir / "metrics.jsonl"
    if list_checkpoints(run_dir) or (log.exists() and log.stat().st_size):
        return
    for name in (".lock", "config.yaml", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    for folder in (checkpoint_dir(run_dir), run_dir):
        try:
            folder.rmdir()  # only when empty: anything else in it is not ours to remove
        except OSError:
            pass


def _kept_steps(run_dir: Path) -> list[int]:
    return [_step_in_name(path) for path in list_checkpoints(run_dir)]


def best_validated_step(run_dir: str | Path) -> int:
    """Among the run's kept checkpoints, the step whose validation record in metrics.jsonl has
    the highest majority vote (the validation split only, never the test split; a tie goes to
    the later step)."""
    run_dir = Path(run_dir)
    best = _best_validated_or_none(run_dir)
    if best is None:
        raise WeightgenError(
            f"{run_dir}: no validation record for any kept checkpoint "
            f"(steps {_steps_text(_kept_steps(run_dir))}); give a step number"
        )
    return best


def _best_validated_or_none(run_dir: Path) -> int | None:
    kept = set(_kept_steps(run_dir))
    votes = {
        r["step"]: r["ensemble_majority_vote"]
        for r in MetricsLog(run_dir / "metrics.jsonl").records()
        if r.get("kind") == "validation"
        and r.get("step") in kept
        and _is_vote(r.get("ensemble_majority_vote"))
    }
    return max(votes, key=lambda step: (votes[step], step)) if votes else None


def _is_vote(value: Any) -> bool:
    """A usable validation vote: a finite number (a damaged record's text or NaN is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _steps_text(steps: list[int]) -> str:
    return ", ".join(map(str, steps)) or "none"


def load_step(
    run_dir: str | Path, step: int | str, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Checkpoint ``step`` of a run (a step number, or ``"best"``: :func:`best_validated_step`),
    checked like :func:`load_latest` but never replaced by another step."""
    run_dir = Path(run_dir)
    if step == "best":
        step = best_validated_step(run_dir)
    elif isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise WeightgenError(f"step must be a checkpoint's step number or 'best', not {step!r}")
    path = checkpoint_dir(run_dir) / f"step-{step:07d}.pt"
    if not path.is_file():
        raise WeightgenError(
            f"{run_dir}: no checkpoint of step {step} (kept: {_steps_text(_kept_steps(run_dir))})"
        )
    payload = load_checkpoint(path, map_location)
    run_config = saved_config(run_dir) if (run_dir / "config.yaml").is_file() else None
    check_belongs(path, payload, run_config)
    return payload


def open_run(
    run_dir: str | Path, device: torch.device | str = "cpu", step: int | str | None = None
) -> Method:
    """The trained method of a run folder (any method), from its newest good checkpoint or
    checkpoint ``step`` (a number or ``"best"``, :func:`load_step`), or of a shipped generator
    (``pretrained:NAME``, one step); its ``step`` says which. Checkpoints of the toy problem
    made before they held their config are read with config.yaml's."""
    run_dir = pretrained.resolve(run_dir)
    if pretrained.is_pretrained_folder(run_dir):
        config = config_from_dict(saved_config(run_dir))
        state: dict[str, Any] | None = {
            "model": {k: v.to(device) for k, v in pretrained.load_weights(run_dir).items()}
        }
        shipped = pretrained.card(run_dir)["step"]
        if step not in (None, "best", shipped):
            raise WeightgenError(
                f"{run_dir.name}: a shipped generator holds step {shipped} only, not {step}"
            )
        step = shipped
    else:
        if not run_dir.is_dir():
            raise WeightgenError(f"{run_dir}: no such run folder")
        if not (run_dir / "config.yaml").is_file() and not list_checkpoints(run_dir):
            raise WeightgenError(f"{run_dir}: not a run folder (no config.yaml)")
        state = (
            load_latest(run_dir, map_location=device)
            if step is None
            else load_step(run_dir, step, map_location=device)
        )
        if state is None:
            raise WeightgenError(f"{run_dir}: no checkpoint (train first)")
        config = config_from_dict(
            state["config"] if isinstance(state.get("config"), dict) else saved_config(run_dir)
        )
        step = state["step"]
    method = build_method(config, device)
    method.load_state(state)
    method.step = int(step)
    method.module.eval()
    return method


def run_cost(method: Method, run_dir: Path) -> dict:
    """The counted training cost of a run up to its loaded step, and the wall time of its
    steps where its log records it (runs trained before it did: None)."""
    seconds = [
        r["train_seconds"]
        for r in MetricsLog(run_dir / "metrics.jsonl").records()
        if r.get("kind") == "train" and r["step"] <= method.step and "train_seconds" in r
    ]
    return {
        "steps": method.step,
        **training_cost(method.spec, method.passes_per_step(), method.step),
        "train_seconds": seconds[-1] if seconds else None,
    }
