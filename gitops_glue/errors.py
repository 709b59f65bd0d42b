"""Exit codes and the exception hierarchy that the CLI turns into them.

Logic functions raise these; only ``cli/entry.py`` prints them and exits.
Which to raise: the user's input (arguments, glue.yaml, the files it names) is wrong
-> :class:`UsageError` (2); the input is fine but the world is not (git, the network,
the cluster, a missing or unsupported helm/helmfile) -> :class:`OperationError` (1).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Every exit code ``glue`` uses. Documented in README.md."""

    OK = 0
    #: The operation was attempted and failed (git refused a push, helm failed or is
    #: missing or unsupported...).
    FAILED = 1
    #: Bad input or usage: nothing was changed, the message says what to fix.
    BAD_INPUT = 2
    #: ``glue diff``: the deployment would change something (not an error).
    CHANGES = 3
    #: Interrupted by SIGINT/SIGTERM (128 + SIGINT).
    INTERRUPTED = 130


class GlueError(Exception):
    """Base of every error meant for the user: one message, no traceback."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(GlueError):
    """Bad input: a wrong argument, file, key, or configuration."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(UsageError):
    """``glue.yaml`` is missing or invalid."""


class YamlEditError(UsageError):
    """A YAML file cannot be read or the key path does not fit it."""


class PolicyError(UsageError):
    """A tag refused by the environment's tag policy."""


class OperationError(GlueError):
    """The operation was valid but did not succeed (I/O, git, remote)."""

    exit_code = ExitCode.FAILED


class Interrupted(GlueError):
    """Stopped by Ctrl-C (SIGINT); the message says what was left as it was."""

    exit_code = ExitCode.INTERRUPTED
