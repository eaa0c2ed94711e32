"""The one exception type a user can cause; the command prints it as one line."""

from __future__ import annotations

import re
from typing import Any


class WeightgenError(Exception):
    """A problem with the user's input (path, config value, file); never a bug."""


class ArgumentError(WeightgenError, ValueError):
    """An argument of a Python API call out of range or of the wrong type."""


def check_argument(ok: bool, message: str) -> None:
    """Refuse a bad API argument in one line."""
    if not ok:
        raise ArgumentError(message)


def check_config(ok: bool, key: str, why: str) -> None:
    """Refuse a config value in one line naming its key: ``config: KEY WHY``."""
    if not ok:
        raise WeightgenError(f"config: {key} {why}")


_RULE = re.compile(r"(>=|<=|>|<) (\S+)|in ([\[(])(\S+), (\S+)([\])])")


def check_value(key: str, value: Any, rule: str, why: str = "") -> None:
    """Refuse a config value outside ``rule`` (">= 1", "> 0", "in (0, 1]"; a list or tuple is
    checked element by element) in the one style of config errors:
    ``config: KEY must be RULE (WHY), got VALUE``."""
    match = _RULE.fullmatch(rule)
    if match is None:
        raise ValueError(f"unknown rule {rule!r}")  # a bug, not user input
    op, bound, left, low, high, right = match.groups()

    def ok(v: float) -> bool:
        if op is not None:
            b = float(bound)
            return {">=": v >= b, "<=": v <= b, ">": v > b, "<": v < b}[op]
        above = v >= float(low) if left == "[" else v > float(low)
        below = v <= float(high) if right == "]" else v < float(high)
        return above and below

    values = value if isinstance(value, (list, tuple)) else [value]
    if not all(ok(v) for v in values):
        note = f" ({why})" if why else ""
        raise WeightgenError(f"config: {key} must be {rule}{note}, got {value!r}")
