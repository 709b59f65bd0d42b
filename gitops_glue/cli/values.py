"""glue get / glue set: read and edit one value in a YAML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gitops_glue.cli.app import app
from gitops_glue.cli.options import DryRunOpt, Output, OutputOpt
from gitops_glue.cli.render import emit


@app.command("get")
def get_cmd(
    file: Annotated[Path, typer.Argument(help="a YAML file")],
    key_path: Annotated[str, typer.Argument(help='like a.image.tag, containers.0.image, x["a.b"]')],
    document: Annotated[
        int | None, typer.Option(help="document number in a multi-document file (from 0)")
    ] = None,
    output: OutputOpt = Output.text,
) -> None:
    """Print the value at KEY_PATH in FILE."""
    from gitops_glue.files import read_text
    from gitops_glue.repo import values

    value = values.get_value(read_text(file), key_path, filename=str(file), document=document)
    if output is Output.json:
        typer.echo(json.dumps(value))
    elif isinstance(value, (dict, list)):
        typer.echo(json.dumps(value, indent=2))
    elif isinstance(value, bool):
        typer.echo("true" if value else "false")
    else:
        typer.echo("null" if value is None else str(value))


@app.command("set")
def set_cmd(
    file: Annotated[Path, typer.Argument(help="a YAML file")],
    key_path: Annotated[str, typer.Argument(help='like a.image.tag, containers.0.image, x["a.b"]')],
    value: Annotated[str, typer.Argument(help="the new value")],
    create: Annotated[bool, typer.Option("--create", help="add the key if it is missing")] = False,
    string: Annotated[
        bool, typer.Option("--string", help="always store VALUE as a string (quote if needed)")
    ] = False,
    document: Annotated[
        int | None, typer.Option(help="document number in a multi-document file (from 0)")
    ] = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Change the value at KEY_PATH in FILE; nothing else in the file changes."""
    import difflib

    from gitops_glue.files import atomic_write_text, read_text
    from gitops_glue.repo import values

    text = read_text(file)
    result = values.set_value(
        text,
        key_path,
        value,
        filename=str(file),
        create=create,
        document=document,
        force_string=string,
    )
    if result.changed and not dry_run:
        atomic_write_text(file, result.text)
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(True), result.text.splitlines(True), f"a/{file}", f"b/{file}"
        )
    )
    status = "unchanged" if not result.changed else ("would-change" if dry_run else "changed")
    data = {
        "status": status,
        "file": str(file),
        "key": key_path,
        "old": result.old,
        "new": value,
        "created": result.created,
        "line": result.line,
        "dry_run": dry_run,
    }
    if dry_run:
        emit(output, {**data, "diff": diff}, diff or f"{file}: {key_path} already {value!r}")
    else:
        emit(output, data, "" if result.changed else f"{file}: {key_path} unchanged")
