"""Atomic file writes (a reader sees the old file or the whole new one, never a torn one) and
the JSON-lines metrics log of a run."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import WeightgenError


@contextmanager
def atomic_path(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``
    (with ``replace`` False: put it there only if no file appeared at ``path`` meanwhile)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary file, not mkstemp's owner-only mode
    except OSError as err:
        raise WeightgenError(f"cannot write to {path.parent}: {err.strerror}") from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp_path, path)
        else:
            os.link(tmp_path, path)  # atomic, and fails where a file exists
        _fsync_dir(path.parent)
    except FileExistsError:
        raise WeightgenError(
            f"{path} appeared while this command ran (another process wrote "
            f"it); it was left as it is, nothing was written"
        ) from None
    except OSError as err:
        raise WeightgenError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str, replace: bool = True) -> None:
    with atomic_path(path, replace) as tmp:
        tmp.write_text(text)


@contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the right to write a user's output file ``path`` (``sample -o``, ``evaluate
    --json``) for the block: a second writer of the same path is refused at once, and the
    temporary files that killed writers of it left are removed. The lock is an advisory
    ``flock`` on ``.NAME.lock`` beside it, removed afterwards."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666)
    except OSError as err:
        raise WeightgenError(f"cannot write to {path.parent}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WeightgenError(
                f"{path} is being written by another weightgen process; "
                f"wait for it or choose another file"
            ) from None
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)  # no live writer: it would hold the lock
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MetricsLog:
    """Append-only JSON-lines log that can be cut back to a checkpoint's step on resume."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if (record := _record(line)) is not None and record["step"] <= step
        ]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def records(self) -> list[dict[str, Any]]:
        """The logged records, oldest first (a torn last line is skipped); [] without a log."""
        if not self.path.exists():
            return []
        text = self.path.read_bytes().decode("utf-8", errors="replace")  # a damaged line is
        return [
            record
            for line in text.splitlines()  # skipped, not fatal
            if (record := _record(line)) is not None
        ]

    def write(self, record: dict[str, Any]) -> None:
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as err:
            raise WeightgenError(f"cannot write {self.path}: {err.strerror}") from None


def _record(line: str) -> dict[str, Any] | None:
    """One line of the log as a record with an integer step; None for a torn or blank line."""
    try:
        record = json.loads(line)
        record["step"] = int(record["step"])
    except (ValueError, KeyError, TypeError):
        return None
    return record
