"""What makes a run folder one run: its config.yaml, the config changes it accepts on resume,
the lock that keeps a second writer out, and the clean-up of torn temporary files.

A run folder holds ``config.yaml``, ``metrics.jsonl``, ``checkpoints/step-NNNNNNN.pt`` and,
while a process trains in it, a lock held on ``.lock``.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

from .errors import WeightgenError

# (section, key) pairs a run may change when it is continued; the top-level name is free too
RESUMABLE_CHANGES = {("train", "steps"), ("train", "checkpoint_every"), ("toy", "steps"),
                     ("direct", "steps"), ("mnfg", "steps")}
LOCK_FILE = ".lock"


def first_difference(saved: dict, new: dict, shared_keys_only: bool = False
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


def run_method(path: str | Path) -> str | None:
    """The ``method`` of a run folder's config, or None when ``path`` is not a run folder."""
    if not (Path(path) / "config.yaml").is_file():
        return None
    return saved_config(path).get("method", "hypernetwork")


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

    def __enter__(self) -> "RunLock":
        path = self.run_dir / LOCK_FILE
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise WeightgenError(f"cannot create run folder {self.run_dir}: "
                                 f"{err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder_text(os.pread(fd, 4096, 0).decode(errors="replace"))
            os.close(fd)
            raise WeightgenError(f"{self.run_dir} is in use by another weightgen process "
                                 f"({holder}); wait for it to finish or use another --out"
                                 ) from None
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous:
            print(f"weightgen: taking over the stale lock of {self.run_dir} "
                  f"({_holder_text(previous)}, no longer running)", file=sys.stderr)
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
