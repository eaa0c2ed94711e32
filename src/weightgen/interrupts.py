"""Ctrl-C and SIGTERM as exceptions that cannot be lost.

The command turns SIGTERM (what batch schedulers send before SIGKILL) into :class:`Terminated`,
a KeyboardInterrupt. Python drops an exception raised while a finaliser runs ("Exception
ignored in ..."), and long commands run many (matplotlib's figures, for one), so the signal is
also remembered: :func:`check`, called between units of work, raises it again.
"""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: training saves a checkpoint on its way out."""


_pending: list[int] = []  # signals received and not yet acted on


def raise_for_signal(signum: int, frame: object = None) -> None:
    """A signal handler for SIGINT and SIGTERM: remember the signal, raise its exception."""
    _pending.append(signum)
    _raise(signum)


def _raise(signum: int) -> None:
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def check() -> None:
    """Raise the exception of a signal received earlier whose first raise was swallowed."""
    if _pending:
        _raise(_pending[0])


def clear() -> None:
    """Forget received signals (the command has acted on them)."""
    _pending.clear()
