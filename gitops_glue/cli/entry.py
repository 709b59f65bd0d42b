"""The console entry point: the one place that turns exceptions into exit codes.

Every way a command can end badly ends here, as one ``glue: error:`` line (plus a
``hint:`` line) on stderr and the exit code ``glue --help`` documents; with
``--output json`` (``GLUE_OUTPUT=json``) also as one JSON object on stdout,
``{"error": ..., "hint": ..., "exit": N}``. Both pass through redaction. Standard
output is part of the job: when it is closed, or a write to it fails (a full disk,
an I/O error), the command failed (exit 1), it did not quietly succeed.

It also knows every command and the module that defines it (:data:`COMMANDS`): a run
imports the module of its command alone and turns that one command's signature into
options; ``glue --help`` lists the commands from their docstrings.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import os
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TextIO, runtime_checkable

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from gitops_glue.cli.app import app
from gitops_glue.cli.options import Chosen
from gitops_glue.errors import ExitCode, GlueError, Interrupted, OperationError

if TYPE_CHECKING:
    # typer 0.28 vendors click here (the project pins typer<0.29).
    from typer._click.core import Command, Context
    from typer._click.formatting import HelpFormatter

#: ``GLUE_DEBUG=1``: an unexpected error (a bug) shows Python's traceback too.
DEBUG = "GLUE_DEBUG"

#: Every command, in the order ``glue --help`` lists them, and the module below
#: ``gitops_glue.cli`` that defines it (``@app.command("NAME")``). A run imports the
#: module of its command only; a new command is one line here.
COMMANDS = {
    "init": "adopt",
    "check": "adopt",
    "bump-tag": "commit",
    "promote": "commit",
    "release": "commit",
    "rollback": "commit",
    "should-release": "commit",
    "diff": "deploy",
    "apply": "deploy",
    "unlock": "deploy",
    "changed": "deploy",
    "sync": "sync",
    "hold": "holds",
    "unhold": "holds",
    "reject": "holds",
    "announce": "images",
    "wait-image": "images",
    "notify": "notify",
    "status": "status",
    "review": "review",
    "verify-history": "audit",
    "get": "values",
    "set": "values",
}


def command() -> TyperGroup:
    """The ``glue`` command: the app's options and help, and its commands as they are used."""
    return get_group_from_info(
        TyperInfo(app, cls=_Glue),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )


def _registered(name: str) -> CommandInfo | None:
    """The command ``name`` as its module registered it on the app (importing the module
    first, for a command of :data:`COMMANDS`); None for no such command."""
    if name in COMMANDS:
        importlib.import_module(f"gitops_glue.cli.{COMMANDS[name]}")
    for info in reversed(app.registered_commands):
        if _name(info) == name:
            return info
    return None


def _name(info: CommandInfo) -> str:
    assert info.callback is not None
    return info.name or typer.main.get_command_name(info.callback.__name__)


class _Commands(MutableMapping[str, "Command"]):
    """The commands by name. Each is built (its signature turned into click's options,
    typer's slowest step) the first time it is asked for: when it runs or shows its help."""

    def __init__(self, built: MutableMapping[str, Command]) -> None:
        self.built = built  # those registered before the group was made: built already

    def __iter__(self) -> Iterator[str]:
        others = [_name(info) for info in app.registered_commands]
        return iter(dict.fromkeys([*COMMANDS, *others]))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getitem__(self, name: str) -> Command:
        if name not in self.built:
            info = _registered(name)
            if info is None:
                raise KeyError(name)
            self.built[name] = get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
        return self.built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]


class _Glue(TyperGroup):
    """typer's group, with :class:`_Commands`: its help lists the commands with the
    first line of their help and builds none of them."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        listed = [c for c in map(_summary, self.list_commands(ctx)) if c and not c.hidden]
        if listed:
            limit = formatter.width - 6 - max(len(str(c.name)) for c in listed)
            with formatter.section("Commands"):
                formatter.write_dl([(str(c.name), c.get_short_help_str(limit)) for c in listed])


def _summary(name: str) -> TyperCommand | None:
    """The command ``name`` as help lists it: its help, none of its options."""
    info = _registered(name)
    if info is None:
        return None
    return TyperCommand(
        name=name,
        help=inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help),
        short_help=info.short_help,
        hidden=info.hidden,
        deprecated=info.deprecated,
    )


@runtime_checkable
class _ClickUsageError(Protocol):
    """click's UsageError (typer vendors its own click: matched by shape, not class)."""

    def show(self) -> None: ...

    def format_message(self) -> str: ...


class OutputFailed(OperationError):
    """Standard output cannot take what the command writes."""


class _Stdout:
    """``sys.stdout`` while a command runs: a failed write is :class:`OutputFailed`.

    A reader that went away (``BrokenPipeError``, ``glue status | head``) stays what
    it is; everything else the stream does is the stream's own.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failure(exc) from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: OSError) -> OutputFailed:
        self.failed = True
        return OutputFailed(
            f"cannot write to standard output: {exc.strerror or exc}",
            hint="the command's result is incomplete; send glue's output somewhere "
            "it can be written",
        )

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: the one place that turns exceptions into exit codes."""
    _run(sys.argv[1:] if argv is None else argv)


def _run(args: list[str]) -> NoReturn:
    Chosen.output = None  # a run in this process before this one chose its own
    if not _stdout_is_open():
        _discard_stdout()  # fd 1 is free: nothing glue opens may land on it
        _fail(
            ExitCode.FAILED,
            "standard output is closed: glue writes its results there",
            "run glue with stdout open (redirect it to /dev/null to throw the output away)",
            args=args,
            stdout=None,
        )
    from gitops_glue.redact import register_environment

    # The environment's secrets (CI tokens, a *_PASSWORD a pod's log may print too) are
    # masked in everything glue says or forwards, whichever command runs.
    register_environment(os.environ)
    out = _Stdout(sys.stdout)
    sys.stdout = out  # a stand-in for the TextIO it wraps
    try:
        _invoke(args, out)
    finally:
        sys.stdout = out.stream


def _invoke(args: list[str], out: _Stdout) -> NoReturn:
    try:
        # Without standalone mode click returns typer.Exit's code instead of raising it.
        code = command().main(args=args, prog_name="glue", standalone_mode=False)
        out.flush()
    except Interrupted as exc:
        _fail(exc.exit_code, exc.message, exc.hint, args=args, stdout=out, label="interrupted")
    except GlueError as exc:
        if out.failed:
            _discard_stdout()  # what could not be written must not fail again at exit
        _fail(exc.exit_code, exc.message, exc.hint, args=args, stdout=out, result=exc)
    except (KeyboardInterrupt, typer.Abort):
        _interrupted(args, out)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        _discard_stdout()
        sys.exit(int(ExitCode.FAILED))
    except OSError as exc:
        _system_refused(exc, args, out)
    except Exception as exc:
        if isinstance(exc, _ClickUsageError):
            _usage_error(exc, args, out)
        if os.environ.get(DEBUG) == "1":
            raise
        _fail(
            ExitCode.FAILED,
            f"unexpected error: {type(exc).__name__}: {exc}",
            f"this is a bug in glue: please report it ({DEBUG}=1 shows where it happened)",
            args=args,
            stdout=out,
        )
    if code == ExitCode.INTERRUPTED:
        _interrupted(args, out)  # typer turns Ctrl-C into exit code 130 and says nothing
    sys.exit(code if isinstance(code, int) else int(ExitCode.OK))


def _fail(
    code: int,
    message: str,
    hint: str | None,
    *,
    args: Sequence[str],
    stdout: _Stdout | None,
    label: str = "error",
    result: object = None,
) -> NoReturn:
    """One ``glue: LABEL:`` line (and the hint) on stderr; with ``--output json`` also
    one JSON object on stdout; exit ``code``. Everything said is redacted first."""
    from gitops_glue.redact import redact

    message, hint = redact(message), (redact(hint) if hint else None)
    typer.echo(f"glue: {label}: {message}" + (f"\n  hint: {hint}" if hint else ""), err=True)
    if stdout is not None and not stdout.failed and _wants_json(args):
        error: dict[str, object] = {"error": message, "hint": hint, "exit": int(code)}
        details = getattr(getattr(result, "result", None), "to_json", None)
        if callable(details):
            error["result"] = json.loads(redact(json.dumps(details())))
        try:
            stdout.write(json.dumps(error, indent=2) + "\n")
            stdout.flush()
        except (OSError, OutputFailed):
            _discard_stdout()
    sys.exit(int(code))


#: What the system says about a path itself (the user's to fix): exit 2. Anything else
#: (a full disk, a read-only mount, an I/O error) is the world failing: exit 1.
_PATH_ERRNOS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
    }
)


def _system_refused(exc: OSError, args: Sequence[str], out: _Stdout) -> NoReturn:
    """An OSError no code turned into a message: say the path and the system's reason
    (a path too long, a symlink loop...) as one error, never a traceback."""
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    where = " -> ".join(_shorten(os.fsdecode(n)) for n in names if isinstance(n, (str, bytes)))
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _PATH_ERRNOS:
        code, hint = ExitCode.BAD_INPUT, "check the path: glue cannot open it"
    else:
        code, hint = (
            ExitCode.FAILED,
            "every file glue writes is replaced whole or not at all: check `git status`, "
            "fix the cause, run glue again",
        )
    _fail(code, f"{where}: {reason}" if where else reason, hint, args=args, stdout=out)


def _shorten(text: str, width: int = 80) -> str:
    """A path short enough for one line: its start and end, and its length."""
    if len(text) <= width:
        return text
    return f"{text[:40]}...{text[-30:]} ({len(text)} characters)"


def _wants_json(args: Sequence[str]) -> bool:
    """Did the user ask for ``--output json``? Click's reading when it got that far;
    else the command line as written (an error may stop click before it reads
    ``--output``), else ``GLUE_OUTPUT``."""
    if Chosen.output is not None:
        return Chosen.output == "json"
    chosen = None
    words = iter(args)
    for word in words:
        if word == "--":
            break
        if word in ("--output", "-o"):
            chosen = next(words, None)
        elif word.startswith("--output="):
            chosen = word.partition("=")[2]
        elif word.startswith("-o") and not word.startswith("--"):
            chosen = word[2:]
    if chosen is None:
        chosen = os.environ.get("GLUE_OUTPUT")
    return chosen == "json"


def _stdout_is_open() -> bool:
    """False when glue was started with stdout closed (``glue status >&-``)."""
    if sys.stdout is None:
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return True  # not a file (a test's capture): what it does with writes is its own
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null: what stdout still holds, or a file opened later, never
    lands where it should not, and the interpreter's last flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
    finally:
        if devnull != 1:
            os.close(devnull)


def _usage_error(exc: _ClickUsageError, args: Sequence[str], out: _Stdout) -> NoReturn:
    """click's usage errors (unknown option, missing option, extra argument...) as one
    ``glue: error:`` line with a hint, like every other usage error; exit 2."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()  # plain `glue`: the help text is the answer
        sys.exit(int(ExitCode.BAD_INPUT))
    message = exc.format_message().strip()  # click's words, kept as they are
    if getattr(exc, "exit_code", ExitCode.BAD_INPUT) != ExitCode.BAD_INPUT:
        # a ClickException that is not about usage
        _fail(ExitCode.FAILED, message, None, args=args, stdout=out)
    ctx = getattr(exc, "ctx", None)
    command = str(getattr(ctx, "command_path", "") or "glue")
    _fail(ExitCode.BAD_INPUT, message, f"see {command} --help", args=args, stdout=out)


def _interrupted(args: Sequence[str], out: _Stdout) -> NoReturn:
    """Ctrl-C where no code said more: what holds everywhere (atomic writes)."""
    _fail(
        ExitCode.INTERRUPTED,
        "every file glue writes is replaced whole or not at all",
        "check `git status` before running the command again",
        args=args,
        stdout=out,
        label="interrupted",
    )
