"""``python -m weightgen``."""

from .cli import run

run()
