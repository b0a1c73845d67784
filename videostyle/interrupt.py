"""SIGTERM and SIGHUP behave like Ctrl-C.

``docker stop``, systemd and batch schedulers send SIGTERM; closing a terminal sends SIGHUP. The
handler raises :class:`Terminated`, a ``KeyboardInterrupt``, in the main thread, so every render
cleans up exactly as on Ctrl-C: finished frames stay in the work folder, the partial output goes.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by ``signum``; exit with ``128 + signum``, as shells expect."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# The signal received, if any: code that catches the exception and raises a plain
# KeyboardInterrupt instead (Ray's waits do) must not turn a SIGTERM into a Ctrl-C.
received: int | None = None


def _raise(signum: int, frame: FrameType | None) -> None:
    global received
    received = signum
    # Once is enough: a second signal (or the first one's SIGHUP twin) must not interrupt the cleanup.
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def _signum(exc: BaseException) -> int | None:
    if isinstance(exc, Terminated):
        return exc.signum
    return received if isinstance(exc, KeyboardInterrupt) else None


def install() -> None:
    """Handle SIGTERM and SIGHUP like SIGINT (main thread only, where Python runs handlers)."""
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, _raise)


def installed() -> bool:
    return signal.getsignal(signal.SIGTERM) is _raise


def by(exc: BaseException) -> str:
    """' by SIGTERM' for a signal, '' for Ctrl-C: to follow the word 'interrupted'."""
    n = _signum(exc)
    return f" by {signal.Signals(n).name}" if n is not None else ""


def exit_code(exc: BaseException) -> int:
    """The shell's code for an interruption: 130 for Ctrl-C, 128 + N for signal N."""
    n = _signum(exc)
    return 128 + n if n is not None else 130
