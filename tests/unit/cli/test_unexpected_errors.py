"""An error glue did not foresee (a bug, an OSError no code explained) still ends as one
``glue: error:`` line with the exit code that fits, and, with ``--output json``, one JSON
object on stdout; secrets masked.

The bug is a command of the test's own, registered on glue's app for the test: what is
under test is the one error handler every command's exceptions go through.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator

import pytest

from gitops_glue import redact
from gitops_glue.cli.app import app
from gitops_glue.cli.options import Output, OutputOpt
from tests.unit.cli.conftest import Glue

SECRET = "xoxb-not-for-your-eyes-123"


@pytest.fixture
def buggy_command() -> Iterator[str]:
    def buggy(output: OutputOpt = Output.text) -> None:
        raise KeyError(f"https://hooks.example.com/services/{SECRET}")

    before = list(app.registered_commands)
    app.command("test-buggy")(buggy)
    redact.register(SECRET)
    try:
        yield "test-buggy"
    finally:
        app.registered_commands[:] = before


def test_an_unexpected_error_is_one_error_line_without_a_traceback(
    glue_in_process: Glue, buggy_command: str
) -> None:
    run = glue_in_process(buggy_command)
    assert run.code == 1
    lines = run.err.splitlines()
    assert lines[0].startswith("glue: error: unexpected error: KeyError: ")
    assert lines[1:] == [
        "  hint: this is a bug in glue: please report it (GLUE_DEBUG=1 shows where it happened)"
    ]
    assert "Traceback" not in run.err and SECRET not in run.err


def test_an_unexpected_error_is_a_json_object_with_exit_1(
    glue_in_process: Glue, buggy_command: str
) -> None:
    run = glue_in_process(buggy_command, "-o", "json")
    assert run.code == 1
    error = json.loads(run.out)
    assert error["exit"] == 1 and error["error"].startswith("unexpected error: KeyError: ")
    assert "GLUE_DEBUG=1" in error["hint"]
    assert SECRET not in run.out + run.err


def test_glue_debug_shows_the_traceback(glue_in_process: Glue, buggy_command: str) -> None:
    with pytest.raises(KeyError):
        glue_in_process(buggy_command, env={"GLUE_DEBUG": "1"})


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/deploy/.git/glue.lock"), 1, "Read-only"),
        (OSError(errno.ENOSPC, "No space left on device", "/deploy/a.yaml"), 1, "No space"),
        (OSError(errno.ENAMETOOLONG, "File name too long", "/d/" + "x" * 5000), 2, "too long"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links", "/d/loop"), 2, "levels"),
    ],
)
def test_an_os_error_no_code_explained_names_the_path_and_the_reason(
    glue_in_process: Glue, error: OSError, code: int, says: str
) -> None:
    def broken(output: OutputOpt = Output.text) -> None:
        raise error

    before = list(app.registered_commands)
    app.command("test-os-error")(broken)
    try:
        run = glue_in_process("test-os-error", "-o", "json")
    finally:
        app.registered_commands[:] = before
    assert run.code == code
    first, hint = run.err.splitlines()
    assert first.startswith("glue: error: /d") and says in first and len(first) < 200
    assert hint.startswith("  hint: ") and "Traceback" not in run.err
    assert json.loads(run.out)["exit"] == code
