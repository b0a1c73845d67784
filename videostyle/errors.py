"""User-facing errors: one line of text and an exit code, raised by any module, printed by cli."""

from __future__ import annotations


class VideostyleError(Exception):
    """An error the user can fix; the CLI prints ``str(err)`` on one line and exits ``exit_code``."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(VideostyleError):
    """A missing, unreadable or unsuitable input file."""


class ConfigError(VideostyleError):
    """A bad option or configuration value."""

    exit_code = 2


class WeightsError(VideostyleError):
    """Model weights cannot be found or loaded."""

    exit_code = 2


class OutputError(VideostyleError):
    """The output cannot be written."""


class PipeClosed(OutputError):
    """The reader of standard output went away (``| head``): exit as a shell's SIGPIPE would."""

    exit_code = 141


class RenderInterrupted(VideostyleError):
    """Ctrl-C, SIGTERM or SIGHUP stopped a render; finished frames are kept for a resume. A batch
    stops too (exit code 130, or 128 + the signal's number)."""

    exit_code = 130


class DivergedError(VideostyleError):
    """The optimisation diverged and could not be recovered."""
