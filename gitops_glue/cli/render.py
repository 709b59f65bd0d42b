"""Turning results into output: text for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import typer

from gitops_glue.cli.options import Output

if TYPE_CHECKING:
    from gitops_glue.repo.commit import CommitResult, D


def emit(output: Output, data: Mapping[str, object], text: str) -> None:
    """A command's result on stdout; every secret glue knows is masked in it (data that
    came in from CI, a commit title, can carry one)."""
    from gitops_glue.redact import redact

    if output is Output.json:
        typer.echo(redact(json.dumps(data, indent=2, sort_keys=False)))
    elif text:
        typer.echo(redact(text))


def note(message: str) -> None:
    from gitops_glue.redact import redact

    typer.echo(redact(message), err=True)


def render_result(output: Output, result: CommitResult[D]) -> None:
    """A commit command's result, after its warnings and notes on stderr."""
    for text in result.change.warnings:
        note(f"glue: warning: {text}")
    for text in result.change.notes:
        note(f"glue: note: {text}")
    emit(output, result.to_json(), result.summary())
