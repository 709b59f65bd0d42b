"""glue status: which tag each service has in each environment."""

from __future__ import annotations

from typing import Annotated

import typer

from gitops_glue.cli.app import app, loaded
from gitops_glue.cli.options import Output, OutputOpt
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
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="kubeconfig file (with --cluster)")
    ] = None,
    output: OutputOpt = Output.text,
) -> None:
    """Show which tag (and revision) each service has in each environment."""
    from gitops_glue.repo import gitrepo, status

    cfg = loaded()
    if cluster:
        from gitops_glue.cluster.kube import Kube
        from gitops_glue.deploy import helmfile as deploy

        def namespaces(env: str) -> dict[str, str]:
            target = deploy.Target(env=env, root=cfg.root, tools=deploy.Tools.from_env())
            return {r.name: r.namespace for r in deploy.list_releases(target)}

        view = status.collect_cluster(
            cfg.config, gitrepo.worktree_reader(cfg.root), Kube(kubeconfig), namespaces
        )
        emit(output, view.to_json(), view.table())
        return
    report = status.collect(cfg.config, gitrepo.worktree_reader(cfg.root))
    emit(output, report.to_json(), report.table())
