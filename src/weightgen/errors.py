"""The one exception type a user can cause; the command prints it as one line."""


class WeightgenError(Exception):
    """A problem with the user's input (path, config value, file); never a bug."""


def check_config(ok: bool, key: str, why: str) -> None:
    """Refuse a config value in one line naming its key: ``config: KEY WHY``."""
    if not ok:
        raise WeightgenError(f"config: {key} {why}")
