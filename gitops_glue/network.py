"""The one bound on every network wait: ``GLUE_NETWORK_TIMEOUT`` seconds (default 60).

Each network operation (a Slack post, an SSH/HTTPS fetch, a push, a registry
request) ends within that many seconds, however the peer behaves: a port that
accepts and never speaks, an answer trickling one byte at a time, a server
that takes the request and goes silent. libraries' own timeouts bound a single
read; :func:`run_with_deadline` bounds the whole operation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from gitops_glue.errors import OperationError, UsageError

DEFAULT_TIMEOUT = 60.0
ENV_VAR = "GLUE_NETWORK_TIMEOUT"
T = TypeVar("T")


class DeadlineExceeded(OperationError):
    """A network operation did not end within the deadline (its outcome is unknown)."""


def timeout_from_env(environ: Mapping[str, str]) -> float:
    """``GLUE_NETWORK_TIMEOUT`` in seconds (a positive number), or the default."""
    raw = (environ.get(ENV_VAR) or "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise UsageError(
            f"{ENV_VAR}={raw[:40]!r} is not a number of seconds",
            hint=f"set {ENV_VAR} to a positive number of seconds (default {DEFAULT_TIMEOUT:.0f})",
        )
    return value


def span(seconds: float) -> str:
    return f"{seconds:g}s"


def run_with_deadline(fn: Callable[[], T], seconds: float, what: str) -> T:
    """``fn()``, or :class:`DeadlineExceeded` once ``seconds`` have passed.

    ``fn`` runs on a daemon thread: a library blocked in a socket read cannot
    be interrupted from outside, so it is left behind (the process ends soon
    after an error) rather than waited for.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    thread = threading.Thread(target=target, name=f"glue-net: {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise DeadlineExceeded(
            f"{what} did not end within {span(seconds)}",
            hint=f"the server accepted the connection but did not finish answering; "
            f"{ENV_VAR} sets this deadline",
        )
    if error:
        raise error[0]
    return result[0]
