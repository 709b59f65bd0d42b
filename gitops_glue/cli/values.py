"""glue get / glue set: read and edit one value in a YAML file."""

import json
from pathlib import Path
from typing import Annotated

import typer

from gitops_glue.cli.app import State, app
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
    from gitops_glue.repo import files

    value = files.get_value(State.directory / file, key_path, document=document)
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
    from gitops_glue.repo import files

    result = files.set_value(
        State.directory / file,  # -C DIR: FILE as if glue started in DIR (like git -C)
        key_path,
        value,
        create=create,
        force_string=string,
        document=document,
        dry_run=dry_run,
    )
    if dry_run:
        text = result.diff or f"{file}: {key_path} already {value!r}"
    else:
        text = "" if result.changed else f"{file}: {key_path} unchanged"
    emit(output, result.to_json(), text)
