"""User-facing errors: one line of text and an exit code, raised by any module, printed by cli.

An error names a setting with ``setting("size")`` or ``setting("codec", "prores")``, never a flag:
the command line words it as its flag (``--size``, ``--codec prores``), the API and the studio as
the keyword (``size``, ``codec=prores``). ``str(err)`` is the API's wording; ``err.on_command_line()``
the command line's."""

from __future__ import annotations

import re

_OPEN, _CLOSE = "\ue000", "\ue001"  # (private-use characters: no path or name a user gives has them)
_NAMED = re.compile("\ue000([a-z_0-9]+)(?:=([^\ue001]*))?\ue001")
# The commands' own options, which are not settings: (the command line's words, the API's).
OPTIONS = {"overwrite": ("--overwrite (or -y)", "overwrite=True"), "restart": ("--restart", "restart=True"),
           "output": ("-o", "output"), "config": ("--config", "config")}


def setting(name: str, value: object | None = None) -> str:
    """A setting (its flat name, as in YAML) named in an error's text, with the value to give it
    (a bool: on or off)."""
    return f"{_OPEN}{name}{'' if value is None else '=' + str(value)}{_CLOSE}"


def worded(text: str, flags: bool) -> str:
    """``text`` with the settings it names as the command line's flags (``flags``) or as keywords."""
    def one(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        if name in OPTIONS:
            word = OPTIONS[name][0 if flags else 1]
            return word if value is None else f"{word} {value}" if flags else f"{word}={value}"
        if not flags:
            return name if value is None else f"{name}={value}"
        flag = "--" + name.replace("_", "-")
        if value in ("True", "False"):
            return flag if value == "True" else "--no-" + flag[2:]
        return flag if value is None else f"{flag} {value}"
    return _NAMED.sub(one, text)


def in_flags(exc: BaseException) -> str:
    """``exc``'s message in the command line's words (for a front end that shows a command line,
    as the studio does); any other exception's as it is."""
    return exc.on_command_line() if isinstance(exc, VideostyleError) else str(exc)


NO_STYLE = f"no style image given; pass {setting('style', 'IMAGE')}"


class VideostyleError(Exception):
    """An error the user can fix; the CLI prints ``err.on_command_line()`` on one line and exits
    ``exit_code``; ``str(err)`` words it for the API."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        self.text = " ".join(message.split())
        super().__init__(worded(self.text, flags=False))
        if exit_code is not None:
            self.exit_code = exit_code

    def on_command_line(self) -> str:
        """The message with the settings it names as flags."""
        return worded(self.text, flags=True)


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
