"""glue sync: the cluster pulls the deployment repository and applies what changed."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitops_glue.cli.app import app
from gitops_glue.cli.options import (
    DryRunOpt,
    EnvOpt,
    KubeconfigOpt,
    KubeContextOpt,
    LockTimeoutOpt,
    Output,
    OutputOpt,
    TimeoutOpt,
)
from gitops_glue.cli.render import emit, note
from gitops_glue.cli.target import CHECKOUT, RepoOptions, read_options

if TYPE_CHECKING:
    from gitops_glue.deploy.sync import SyncResult


@app.command("sync")
@read_options
def sync_cmd(
    env: EnvOpt,
    once: Annotated[
        bool, typer.Option("--once", help="one round, then exit (a CronJob); the default")
    ] = False,
    every: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_SYNC_EVERY",
            metavar="DURATION",
            help="run until SIGTERM, a round this often (10% jitter; longer after failures, "
            "up to --max-backoff)",
        ),
    ] = None,
    max_backoff: Annotated[
        str, typer.Option(help="the longest wait between rounds while they keep failing")
    ] = "15m",
    health_file: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_HEALTH_FILE",
            help="touched after every good round, removed after --unhealthy-after failed "
            "rounds in a row (liveness/readiness probes)",
        ),
    ] = None,
    unhealthy_after: Annotated[
        int, typer.Option(min=1, help="failed rounds in a row that remove --health-file")
    ] = 3,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_SYNC_WORK_DIR",
            help="private folder for the checkout of the fetched revision (default: a "
            "temporary one, removed at exit)",
        ),
    ] = None,
    alert: Annotated[
        bool,
        typer.Option(
            "--alert/--no-alert",
            help="tell Slack (SLACK_WEBHOOK_URL or SLACK_BOT_TOKEN) when a revision fails to "
            "sync, once per revision",
        ),
    ] = True,
    timeout: TimeoutOpt = "5m",
    lock_timeout: LockTimeoutOpt = "10m",
    verify: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_VERIFY",
            metavar="DURATION",
            help="watch the changed releases' pods this long after helmfile (default: ENV's "
            "verify in glue.yaml; 0: off)",
        ),
    ] = None,
    record_namespace: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_RECORD_NAMESPACE",
            help="namespace of the deploy record, where the sync state is kept while no "
            "glue.yaml could be fetched yet (then glue.yaml's)",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    kube_context: KubeContextOpt = None,
    dry_run: DryRunOpt = False,
    repo: RepoOptions = CHECKOUT,
    output: OutputOpt = Output.text,
) -> None:
    """Pull --remote's --branch and apply what changed since ENV's deployed revision."""
    import os
    import shutil
    import tempfile

    from gitops_glue.cluster.lock import identity
    from gitops_glue.deploy import sync
    from gitops_glue.deploy.apply import ApplyOptions
    from gitops_glue.deploy.choices import OnFailure
    from gitops_glue.durations import parse_duration
    from gitops_glue.errors import UsageError
    from gitops_glue.repo.remote import RemoteOptions
    from gitops_glue.tools import Tools

    if not repo.remote:
        raise UsageError("glue sync needs --remote: the deployment repository to pull")
    if once and every:
        raise UsageError("give --once or --every, not both")
    if dry_run and every:
        raise UsageError("--dry-run is one round: drop --every")
    folder = work_dir or Path(tempfile.mkdtemp(prefix="glue-sync-"))
    request = sync.SyncRequest(
        env=env,
        remote=RemoteOptions(
            repo.remote,
            repo.branch,
            repo.ssh_key_file,
            repo.known_hosts,
            repo.insecure_no_host_key_check,
        ),
        workdir=folder,
        options=ApplyOptions(
            timeout=parse_duration(timeout),
            lock_timeout=parse_duration(lock_timeout),
            holder=f"glue sync {identity()}",
            verify=None if verify is None else parse_duration(verify),
            # A read-only puller cannot push a revert: it reports and keeps going.
            on_failure=OnFailure.stop,
        ),
        tools=Tools.from_env(),
        environ=os.environ,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        alert=alert,
        dry_run=dry_run,
        record_namespace=record_namespace,
    )
    loop = sync.LoopOptions(
        interval=parse_duration(every) if every else 60.0,
        max_backoff=parse_duration(max_backoff),
        health_file=health_file,
        unhealthy_after=unhealthy_after,
        rounds=None if every else 1,
    )
    say = note if output is Output.json else typer.echo
    results: list[SyncResult] = []

    def report(result: "SyncResult") -> None:
        results.append(result)
        if every:  # one line (or JSON object) per round
            from gitops_glue.redact import redact

            text = json.dumps(result.to_json()) if output is Output.json else result.text()
            typer.echo(redact(text))

    try:
        sync.sync_every(request, loop, say, report)
    finally:
        if work_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    if not every:
        result = results[-1]
        emit(output, result.to_json(), result.text())
        if not result.ok:
            raise typer.Exit(result.exit_code or 1)
