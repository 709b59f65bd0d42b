"""glue status: which tag each service has in each environment."""

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from gitops_glue.cli.app import State, app
from gitops_glue.cli.options import KubeconfigOpt, Output, OutputOpt
from gitops_glue.cli.render import emit, note
from gitops_glue.errors import UsageError


@app.command("status")
def status_cmd(
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="also what each environment runs (deploy records, Helm's storage), "
            "whether it passed --verify, its holds; flag drift",
        ),
    ] = False,
    verify_digests: Annotated[
        bool,
        typer.Option(
            "--verify-digests",
            help="ask the registry for each pinned tag's digest; exit 1 when a tag was "
            "moved (re-pushed) since its digest was written",
        ),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="DIR",
            help="write the status board, a static site (DIR/index.html and its assets), "
            "built from the same data as --output json",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Show which tag (and revision, short digest) each service has in each environment,
    and the environments' freeze windows (frozen now, the next)."""
    from gitops_glue import freeze
    from gitops_glue.repo import status

    if cluster and verify_digests:
        raise UsageError("--verify-digests goes without --cluster")
    clock = freeze.clock()
    if clock.overridden:
        note(f"glue: note: {clock.note()}")
    if cluster:
        view = status.cluster_status(State.directory, kubeconfig, now=clock.now)
        if html is not None:
            _board(output, view.to_json(), html, cluster=True, now=clock.now)
        else:
            emit(output, view.to_json(), view.table())
        return
    # The table shows no history: reading it is left to --output json and --html.
    wanted = output is Output.json or html is not None
    report = status.status(State.directory, verify=verify_digests, now=clock.now, history=wanted)
    if html is not None:
        _board(output, report.to_json(), html, cluster=False, now=clock.now)
    else:
        emit(output, report.to_json(), report.table())
    if report.digest_mismatch:
        raise typer.Exit(1)


def _board(
    output: Output,
    data: dict[str, object],
    directory: Path,
    *,
    cluster: bool,
    now: dt.datetime | None = None,
) -> None:
    from gitops_glue.board.render import write_board

    index = write_board(data, directory, cluster=cluster, now=now)
    emit(output, {"board": str(index)}, f"status board: {index}")
