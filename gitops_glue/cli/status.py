"""glue status: which tag each service has in each environment."""

from __future__ import annotations

from typing import Annotated

import typer

from gitops_glue.cli.app import State, app
from gitops_glue.cli.options import KubeconfigOpt, Output, OutputOpt
from gitops_glue.cli.render import emit


@app.command("status")
def status_cmd(
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="also what each environment runs (deploy records, Helm's storage); flag drift",
        ),
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Show which tag (and revision) each service has in each environment."""
    from gitops_glue.repo import status

    view = (
        status.cluster_status(State.directory, kubeconfig)
        if cluster
        else status.status(State.directory)
    )
    emit(output, view.to_json(), view.table())
