"""Up-front memory checks: a size that cannot fit is refused in one line before any work."""

from __future__ import annotations

import os

from .errors import WeightgenError


def available_bytes() -> int:
    """Memory the system can give this process now (MemAvailable; total RAM elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def readable_bytes(count: float) -> str:
    """A byte count for people: 512 B, 3.2 KiB, 40 MiB, 1.6 GiB, 3.6 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return (
                f"{count:.0f} {unit}" if unit == "B" or abs(count) >= 100 else f"{count:.1f} {unit}"
            )
        count /= 1024
    raise AssertionError("unreachable")


def require(needed: int, what: str, advice: str) -> None:
    """Refuse ``what`` when it needs more memory than is available."""
    have = available_bytes()
    if needed > have:
        raise WeightgenError(
            f"{what} needs about {readable_bytes(needed)} of memory, "
            f"{readable_bytes(have)} are available; {advice}"
        )
