"""What the command-line tools share: one exit-code rule, one-line errors, helps with defaults.

Exit codes, in every tool: 0 done; 2 bad usage (an option, a target, an output path, a busy
port), always as one ``error: ...`` line on stderr; 1 only for ``codegen --check`` finding
stale files. A target whose module raises while importing is the user's own bug: its traceback
is shown, then one ``error:`` line, and the exit code is 2.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import traceback
from typing import Any, NoReturn

from .loading import LoadError, load_attribute

USAGE_ERROR = 2


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


class _DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (or "required"); an option whose default is
    ``None`` says what that means in its own text."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if not action.option_strings or "default" in help_text:
            return help_text
        if action.required:
            return f"{help_text} (required)"
        if action.default is None or action.default == argparse.SUPPRESS:
            return help_text
        if action.default is False:
            return f"{help_text} (default: off)"
        return f"{help_text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (and a pointer to --help) instead of usage + error."""

    def __init__(self, prog: str, description: str | None, **kwargs: Any) -> None:
        super().__init__(
            prog=prog, description=description, formatter_class=_DefaultsFormatter, **kwargs
        )

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)")


def load_target(target: str, app_dir: str) -> Any:
    """``MODULE:ATTR`` from ``app_dir``: a bad target fails in one line; a module that raises
    while importing shows its own traceback first."""
    try:
        return load_attribute(target, app_dir)
    except LoadError as exc:
        fail(str(exc))
    except Exception as exc:
        traceback.print_exc()
        module = target.partition(":")[0]
        fail(f"importing {module!r} raised {type(exc).__name__} (traceback above)")


def _free_port(host: str, near: int) -> int | None:
    for port in range(near + 1, near + 20):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    return None


def bind(host: str, port: int, change_port: str) -> socket.socket:
    """A listening socket on ``host:port``, or one line saying why not. ``change_port`` says how
    the user picks another port, e.g. ``"--port {port}"``; a free one is suggested."""
    from .local.server import listening_socket

    try:
        return listening_socket(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            free = _free_port(host, port)
            hint = change_port.format(port=free if free else 0)
            fail(f"port {port} on {host} is in use: pick another with {hint}")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
