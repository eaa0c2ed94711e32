"""The one exception type a user can cause; the command prints it as one line."""


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


def check_ranges(checks: dict[str, bool]) -> None:
    """Refuse the first config key whose check is False: ``config: KEY is out of range``."""
    for key, ok in checks.items():
        check_config(ok, key, "is out of range")
