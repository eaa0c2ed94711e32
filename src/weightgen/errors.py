"""The one exception type a user can cause; the command prints it as one line."""


class WeightgenError(Exception):
    """A problem with the user's input (path, config value, file); never a bug."""
