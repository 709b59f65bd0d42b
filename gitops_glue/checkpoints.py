"""Named points between the steps of a write, where the crash-safety tests stop glue.

Test-only: ``GLUE_TEST_KILL_AT=<step>`` makes glue send itself SIGKILL when it reaches
:func:`checkpoint` ``<step>`` (``<step>:INT`` sends SIGINT, ``<step>:STOP`` SIGSTOP).
The tests use it to stop glue deterministically between the steps of a commit;
nothing else sets it, and without it a checkpoint does nothing.
"""

from __future__ import annotations

import os
import signal

TEST_KILL_AT = "GLUE_TEST_KILL_AT"


def checkpoint(step: str) -> None:
    """A named point between two steps of a write, where the crash tests may stop glue."""
    wanted = os.environ.get(TEST_KILL_AT)
    if not wanted:
        return
    name, _, how = wanted.partition(":")
    if name == step:
        sig = {"INT": signal.SIGINT, "STOP": signal.SIGSTOP}.get(how, signal.SIGKILL)
        os.kill(os.getpid(), sig)
