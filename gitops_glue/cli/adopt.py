"""glue init and glue check: adopt a deployment repository that has a helmfile."""

from typing import Annotated

import typer

from gitops_glue.cli.app import State, app
from gitops_glue.cli.options import DryRunOpt, Output, OutputOpt
from gitops_glue.cli.render import emit, note
from gitops_glue.errors import ExitCode


@app.command("init")
def init_cmd(
    environments: Annotated[
        str | None,
        typer.Option(
            "--environments",
            envvar="GLUE_ENVIRONMENTS",
            help="environments in promotion order, like dev,staging,prod "
            "(default: as the helmfile lists them)",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="accepted for scripts: glue init never asks")
    ] = False,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Write a commented glue.yaml from the repository's helmfile (never overwrites one)."""
    from gitops_glue.repo.init import InitRequest, plan

    names = tuple(n.strip() for n in environments.split(",") if n.strip()) if environments else None
    result = plan(InitRequest(State.directory, names, dry_run))
    for text in result.notes:
        note(f"glue: note: {text}")
    emit(output, result.to_json(), result.summary())


@app.command("check")
def check_cmd(
    helmfile: Annotated[
        bool,
        typer.Option(
            "--helmfile/--no-helmfile",
            help="also compare with helmfile's own view (values file order, releases)",
        ),
    ] = True,
    output: OutputOpt = Output.text,
) -> None:
    """Check that glue.yaml fits the repository: values files, tag keys, helmfile's view."""
    from gitops_glue.repo.check import check

    report = check(State.directory, use_helmfile=helmfile)
    if output is Output.json:
        emit(output, report.to_json(), "")
    else:
        for line in report.lines():
            typer.echo(f"glue: {line}", err=True)
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(int(ExitCode.BAD_INPUT))
