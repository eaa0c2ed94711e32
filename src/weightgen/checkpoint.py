"""Checkpoints: atomic, loadable without running code, newest good one found on resume."""

from __future__ import annotations

import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import WeightgenError
from .fileio import atomic_path
from .runfolder import first_difference, saved_config

FORMAT = "weightgen-checkpoint/1"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    return sorted(checkpoint_dir(run_dir).glob("step-*.pt"))


def save_checkpoint(run_dir: str | Path, step: int, payload: dict[str, Any], keep: int) -> Path:
    """Write ``payload`` as checkpoint ``step`` (temporary file, fsync, rename); keep the newest
    ``keep`` checkpoints."""
    path = checkpoint_dir(run_dir) / f"step-{step:07d}.pt"
    with atomic_path(path) as tmp:
        try:
            torch.save({"format": FORMAT, "step": step, **payload}, tmp)
        except RuntimeError as err:  # torch's writer reports a full disk as RuntimeError
            raise OSError(f"checkpoint not written ({str(err).splitlines()[0]})") from None
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint with ``weights_only=True``: a file that would run code is refused,
    and so is one without a step and a model (or trained filters)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise WeightgenError(f"{path}: no such checkpoint") from None
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError,
            ValueError, AttributeError, KeyError) as err:
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
        raise WeightgenError(f"{path} holds step {payload['step']}, not the step of its name "
                             f"(renamed or copied from elsewhere?); move it out of "
                             f"{path.parent}")
    if run_config is not None and isinstance(payload.get("config"), dict):
        difference = first_difference(run_config, payload["config"], shared_keys_only=True)
        if difference is not None:
            key, ours, theirs = difference
            raise WeightgenError(f"{path} belongs to another run ({key} is {theirs!r} there, "
                                 f"{ours!r} in config.yaml); move it out of {path.parent}")


def load_latest(run_dir: str | Path, map_location: str | torch.device = "cpu"
                ) -> dict[str, Any] | None:
    """The newest checkpoint that loads and belongs to the run (:func:`check_belongs`, against
    config.yaml when there is one); a corrupt newer one is reported in one line and skipped.
    None when the run has no checkpoint."""
    candidates = list_checkpoints(run_dir)
    run_config = saved_config(run_dir) if (Path(run_dir) / "config.yaml").is_file() else None
    for path in reversed(candidates):
        try:
            payload = load_checkpoint(path, map_location)
        except WeightgenError as err:
            print(f"weightgen: warning: {err}; using the previous checkpoint", file=sys.stderr)
            continue
        check_belongs(path, payload, run_config)
        return payload
    if candidates:
        raise WeightgenError(f"{checkpoint_dir(run_dir)}: no readable checkpoint")
    return None
