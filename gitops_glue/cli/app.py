"""The ``glue`` Typer app, its global options, and what every command shares.

Kept thin on purpose: every command collects its options and calls one typed
function in the module for its concern. Errors of the user's (``GlueError``)
become one message on stderr and the exit code of :class:`ExitCode`; nothing
here imports pygit2, requests or jinja2 at module level, so ``glue --help``
stays fast.
"""

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gitops_glue.config import LoadedConfig

app = typer.Typer(
    name="glue",
    help="Glue between CI pipelines and Helm/helmfile deployments, with Git as the source "
    "of truth.\n\nExit codes: 0 ok, 1 operation failed, 2 bad input or usage, "
    "3 diff found changes, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class State:
    directory: Path = Path()


def _version(value: bool) -> None:
    if value:
        from gitops_glue import __version__  # reads package metadata: only when asked

        typer.echo(f"glue {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    directory: Annotated[
        Path,
        typer.Option(
            "-C",
            "--directory",
            envvar="GLUE_DIRECTORY",
            help="run as if started in DIR (where glue.yaml is looked for)",
        ),
    ] = Path(),
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    State.directory = _openable(directory)


def _openable(directory: Path) -> Path:
    """``-C DIR`` as given, once glue can look into it: a path the system refuses
    (too long, a symlink loop, no permission) is a usage error here, not a traceback
    wherever a command first touches it. A folder that does not exist is left to the
    command, which says there is no glue.yaml there."""
    from gitops_glue.errors import UsageError

    try:
        resolved = directory.resolve()
        for path in (resolved, resolved / "glue.yaml"):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.stat(path)
    except (OSError, RuntimeError) as exc:  # RuntimeError: pathlib's symlink loop (< 3.13)
        text = str(directory)
        shown = text if len(text) <= 80 else f"{text[:40]}...{text[-30:]} ({len(text)} characters)"
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "symbolic link loop"
        raise UsageError(
            f"-C {shown}: {reason}", hint="point -C (GLUE_DIRECTORY) at a folder glue can open"
        ) from None
    return directory


def loaded() -> "LoadedConfig":
    """glue.yaml as found from ``-C`` (or the current folder)."""
    from gitops_glue.config import load_config

    return load_config(State.directory)
