"""The console entry point: the one place that turns exceptions into exit codes."""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn, Protocol, runtime_checkable

import typer

# Importing the command modules registers their commands on the app.
from gitops_glue.cli import adopt, commit, deploy, holds, images, notify, status, values  # noqa: F401
from gitops_glue.cli.app import app
from gitops_glue.errors import ExitCode, GlueError, Interrupted


@runtime_checkable
class _ClickUsageError(Protocol):
    """click's UsageError (typer vendors its own click: matched by shape, not class)."""

    def show(self) -> None: ...

    def format_message(self) -> str: ...


def _fail(code: ExitCode, message: str) -> NoReturn:
    if message:
        from gitops_glue.redact import redact

        typer.echo(f"glue: error: {redact(message)}", err=True)
    sys.exit(int(code))


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: the one place that turns exceptions into exit codes."""
    if argv is None:
        # A command's run is mostly imports: tens of thousands of long-lived objects
        # that the collector, at its default threshold (700), scans again and again as
        # they load (20 ms of glue apply). A short-lived process can collect less often.
        gc.set_threshold(50_000, 10, 10)
    try:
        _run(argv)
    except SystemExit:
        if argv is None:
            # The command has finished. The interpreter's teardown garbage-collects
            # every object left (the Kubernetes client's models and modules: 60 ms
            # after glue apply); frozen, the collector skips them. Everything else at
            # exit (atexit handlers, flushing the output) runs as usual.
            gc.freeze()
        raise
    raise AssertionError("unreachable")  # _run always exits


def _run(argv: list[str] | None) -> NoReturn:
    try:
        # Without standalone mode click returns typer.Exit's code instead of raising it.
        code = app(args=argv, prog_name="glue", standalone_mode=False)
    except Interrupted as exc:
        typer.echo(f"glue: interrupted: {exc}", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except GlueError as exc:
        _fail(exc.exit_code, str(exc))
    except (KeyboardInterrupt, typer.Abort):
        _interrupted()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(int(ExitCode.FAILED))
    except Exception as exc:
        if not isinstance(exc, _ClickUsageError):
            raise
        _usage_error(exc)
    if code == ExitCode.INTERRUPTED:
        _interrupted()  # typer turns Ctrl-C into exit code 130 and says nothing
    sys.exit(code if isinstance(code, int) else int(ExitCode.OK))


def _usage_error(exc: _ClickUsageError) -> NoReturn:
    """click's usage errors (unknown option, missing option, extra argument...) as one
    ``glue: error:`` line with a hint, like every other usage error; exit 2."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()  # plain `glue`: the help text is the answer
        sys.exit(int(ExitCode.BAD_INPUT))
    message = exc.format_message().strip()  # click's words, kept as they are
    if getattr(exc, "exit_code", ExitCode.BAD_INPUT) != ExitCode.BAD_INPUT:
        _fail(ExitCode.FAILED, message)  # a ClickException that is not about usage
    ctx = getattr(exc, "ctx", None)
    command = str(getattr(ctx, "command_path", "") or "glue")
    _fail(ExitCode.BAD_INPUT, f"{message}\n  hint: see {command} --help")


def _interrupted() -> NoReturn:
    """Ctrl-C where no code said more: what holds everywhere (atomic writes)."""
    typer.echo(
        "glue: interrupted: every file glue writes is replaced whole or not at all; "
        "check `git status` before running the command again",
        err=True,
    )
    sys.exit(int(ExitCode.INTERRUPTED))
