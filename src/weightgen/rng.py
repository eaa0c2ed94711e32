"""Counter-based seeding: every random draw is a function of (seed, purpose, counter), so a run
resumed from any step reproduces exactly the draws of an uninterrupted one."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from the run seed and any keys, distinct for distinct key tuples."""
    text = ":".join(str(part) for part in (seed, *keys))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def seeded_generator(seed: int, *keys: object) -> torch.Generator:
    """A CPU generator seeded from (seed, *keys)."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))
