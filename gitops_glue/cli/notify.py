"""glue notify: tell Slack about a deployment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gitops_glue.cli.app import State, app, loaded
from gitops_glue.cli.images import repo_template
from gitops_glue.cli.options import KubeconfigOpt
from gitops_glue.cli.render import note
from gitops_glue.errors import UsageError


@app.command("notify")
def notify_cmd(
    phase: Annotated[
        str,
        typer.Option(
            envvar="GLUE_PHASE",
            help="pre-install, pre-upgrade, post-install, post-upgrade, post-rollback or failed",
        ),
    ],
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    service: Annotated[
        list[str] | None,
        typer.Option(
            envvar="GLUE_NOTIFY_SERVICE",
            help="only this service (repeat); with --tag: the one service being deployed",
        ),
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_NOTIFY_TAG",
            help="the tag being deployed (Helm hook Jobs: no checkout, no glue.yaml needed)",
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option(envvar="GLUE_NOTIFY_REVISION", help="its source revision")
    ] = None,
    source_repo: Annotated[
        str | None,
        typer.Option(envvar="GLUE_NOTIFY_SOURCE_REPO", help="its source repository web URL"),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(envvar="GLUE_NOTIFY_RELEASE", help="its helm release (default: service)"),
    ] = None,
    record_namespace: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_RECORD_NAMESPACE",
            help="namespace of the deploy record (default: glue.yaml's, else glue-ENV)",
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(envvar="GLUE_ACTOR", help="who deployed (default: CI's)")
    ] = None,
    pipeline_url: Annotated[
        str | None, typer.Option(envvar="GLUE_PIPELINE_URL", help="pipeline link (default: CI's)")
    ] = None,
    channel: Annotated[
        str | None, typer.Option(envvar="SLACK_CHANNEL", help="channel (with SLACK_BOT_TOKEN)")
    ] = None,
    thread: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_NOTIFY_THREAD",
            help="bot token: finish messages 'reply' in the start's thread or 'update' it",
        ),
    ] = None,
    quiet_when_unchanged: Annotated[
        bool | None,
        typer.Option(
            "--quiet-when-unchanged/--not-quiet",
            envvar="GLUE_QUIET_WHEN_UNCHANGED",
            help="send nothing when no service changes",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option(envvar="GLUE_NOTIFY_TEMPLATE", help="Jinja2 template for the message body"),
    ] = None,
    best_effort: Annotated[
        bool,
        typer.Option(
            "--best-effort",
            envvar="GLUE_BEST_EFFORT",
            help="report errors as warnings and exit 0 (hook Jobs: never block a deploy)",
        ),
    ] = False,
    apply_report: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_APPLY_REPORT",
            help="glue apply --report file: the failed phase names the failing pods",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", envvar="GLUE_DRY_RUN", help="print; send nothing")
    ] = False,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            envvar="GLUE_OUTPUT",
            help="text for people, json for scripts, slack: the Slack payload",
        ),
    ] = "text",
) -> None:
    """Tell Slack that a deployment of ENV started, finished, failed or was rolled back."""
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.cluster.record import ServiceVersion
    from gitops_glue.errors import ConfigError
    from gitops_glue.files import find_config
    from gitops_glue.integrations import ci
    from gitops_glue.messages import notify, slack

    if output not in ("text", "json", "slack"):
        raise UsageError(f"--output {output!r}: use text, json or slack")
    if thread not in (None, "reply", "update"):
        raise UsageError(f"--thread {thread!r}: use reply or update")
    notify.phase_kind(phase)
    try:
        ctx = ci.detect()
        config = None
        try:
            find_config(State.directory)
            config = loaded()
        except ConfigError:
            if tag is None:
                raise
        if tag is not None:
            if len(service or []) != 1:
                raise UsageError("--tag needs exactly one --service: the service it is for")
            name = (service or [""])[0]
            rel = release or name
            new = {name: ServiceVersion(tag, revision or None, rel)}
            releases, sources = {name: rel}, {name: source_repo or None}
            namespace = record_namespace or (
                config.config.environment(env).record_namespace if config else f"glue-{env}"
            )
            scope: list[str] | None = [name]
            state_release: str | None = rel
        else:
            assert config is not None
            from gitops_glue.repo.gitrepo import worktree_reader

            new, releases, sources, namespace = notify.from_checkout(
                config.config, worktree_reader(config.root), env, services=service or ()
            )
            namespace = record_namespace or namespace
            scope, state_release = (list(service) if service else None, None)
        settings = config.config.notify if config else None
        req = notify.NotifyRequest(
            phase=phase,
            environment=env,
            record_namespace=namespace,
            new=new,
            releases=releases,
            sources=sources,
            scope=scope,
            state_release=state_release,
            actor=actor or ctx.actor,
            pipeline_url=pipeline_url or ctx.pipeline_url,
            quiet_when_unchanged=quiet_when_unchanged
            if quiet_when_unchanged is not None
            else bool(settings and settings.quiet_when_unchanged),
            thread="update"
            if (thread or (settings.thread if settings else "")) == "update"
            else "reply",
            template=template or (repo_template("notify") if config else None),
            failure=_failure_lines(apply_report) if phase == "failed" else (),
        )
        result = notify.notify(
            req,
            Kube(kubeconfig),
            slack.Target.from_env(channel=channel),
            dry_run=dry_run,
            progress=lambda m: note(f"glue: {m}"),
        )
    except Exception as exc:
        if not best_effort or isinstance(exc, typer.Exit):
            raise
        from gitops_glue.redact import redact

        note(f"glue: warning: no notification sent (--best-effort): {redact(str(exc))}")
        return
    for text in result.notes:
        note(f"glue: note: {text}")
    if output == "json":
        typer.echo(json.dumps(result.to_json(), indent=2))
    elif output == "slack":
        typer.echo(json.dumps(result.message.payload(), indent=2, ensure_ascii=False))
    elif result.posted is not None:
        how = (
            " (updated the start message)"
            if result.updated
            else (" (in the start message's thread)" if result.thread_ts else "")
        )
        typer.echo(f"notified {result.sent_to}{how}: {result.message.text}")
    else:
        typer.echo(result.message.text)
        for block in result.message.payload().get("blocks", []):
            if block["type"] == "section" and "text" in block:
                typer.echo(block["text"]["text"])
    if result.skipped and output != "json":
        note(f"glue: {result.skipped}: nothing was sent")


def _failure_lines(path: Path | None) -> tuple[str, ...]:
    from gitops_glue.files import read_text
    from gitops_glue.messages import notify

    if path is None or not path.is_file():
        return ()
    try:
        return notify.failure_lines(json.loads(read_text(path)))
    except ValueError:
        raise UsageError(f"{path}: not a glue apply report (JSON)") from None
