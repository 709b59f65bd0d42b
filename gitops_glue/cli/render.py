"""Turning results into output: text for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping

import typer

from gitops_glue.cli.options import Output


def emit(output: Output, data: Mapping[str, object], text: str) -> None:
    if output is Output.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=False))
    elif text:
        typer.echo(text)


def note(message: str) -> None:
    typer.echo(message, err=True)
