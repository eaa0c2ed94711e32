"""Trained generators shipped inside the package: ``pretrained:NAME`` works wherever a run
folder does (``weightgen sample``, ``evaluate``, ``report``, ``weightgen.load``), offline.

Each lives in ``weightgen/pretrained/NAME/``: ``generator.safetensors`` (the trained weights
only, no optimizer state; loads without running code), ``config.yaml`` (the config that
trained it) and ``card.json`` (the commit, command and machine that trained it, its step, and
its measured test numbers). ``scripts/export_pretrained.py`` writes one from a run folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import WeightgenError
from .fileio import atomic_path, atomic_write_text

PREFIX = "pretrained:"
FOLDER = Path(__file__).parent / "pretrained"
WEIGHTS, CARD = "generator.safetensors", "card.json"

if TYPE_CHECKING:  # torch is imported where weights are read: `weightgen --help` stays fast
    import torch


def available() -> list[str]:
    """Names of the shipped generators."""
    return sorted(p.parent.name for p in FOLDER.glob(f"*/{WEIGHTS}"))


def resolve(source: str | Path) -> Path:
    """The folder of ``pretrained:NAME``; any other source unchanged."""
    text = str(source)
    if not text.startswith(PREFIX):
        return Path(source)
    name = text[len(PREFIX) :]
    if name not in available():
        raise WeightgenError(
            f"no pretrained generator {name!r}; shipped: {', '.join(available()) or 'none'}"
        )
    return FOLDER / name


def is_pretrained_folder(folder: Path) -> bool:
    return (folder / WEIGHTS).is_file() and (folder / "config.yaml").is_file()


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The generator's state dict (a checkpoint's ``model``)."""
    from safetensors.torch import load_file

    return load_file(folder / WEIGHTS)


def card(folder: Path) -> dict:
    return json.loads((folder / CARD).read_text())


def export(state: dict[str, torch.Tensor], config_yaml: str, info: dict, out: Path) -> None:
    """Write a shipped generator: weights, its config and its card."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp))
        os.chmod(tmp, 0o644)  # safetensors writes owner-only files; this one ships
    atomic_write_text(out / "config.yaml", config_yaml)
    atomic_write_text(out / CARD, json.dumps(info, indent=2) + "\n")
