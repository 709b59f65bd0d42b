"""glue notify: tell Slack about a deployment."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitops_glue.cli.app import State, app
from gitops_glue.cli.options import (
    DryRunOpt,
    EnvOpt,
    KubeconfigOpt,
    KubeContextOpt,
    MessageOutput,
    MessageOutputOpt,
    Thread,
)
from gitops_glue.cli.render import note
from gitops_glue.messages.phase import Phase

if TYPE_CHECKING:
    from gitops_glue.messages.notify import NotifyResult


@app.command("notify")
def notify_cmd(
    phase: Annotated[Phase, typer.Option(envvar="GLUE_PHASE", help="the deployment's phase")],
    env: EnvOpt,
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
        Thread | None,
        typer.Option(
            envvar="GLUE_NOTIFY_THREAD",
            help="bot token: finish messages reply in the start's thread or update it "
            "(default: glue.yaml's, else reply)",
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
    kube_context: KubeContextOpt = None,
    dry_run: DryRunOpt = False,
    output: MessageOutputOpt = MessageOutput.text,
) -> None:
    """Tell Slack that a deployment of ENV started, finished, failed or was rolled back."""
    from gitops_glue.messages import notify

    request = notify.NotifyRequest(
        phase=phase,
        environment=env,
        directory=State.directory,
        services=tuple(service or ()),
        tag=tag,
        revision=revision,
        source_repo=source_repo,
        release=release,
        record_namespace=record_namespace,
        actor=actor,
        pipeline_url=pipeline_url,
        quiet_when_unchanged=quiet_when_unchanged,
        thread=None if thread is None else ("update" if thread is Thread.update else "reply"),
        template=template,
        apply_report=apply_report,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        channel=channel,
    )
    try:
        result = notify.run(request, dry_run=dry_run, progress=lambda m: note(f"glue: {m}"))
    except Exception as exc:
        if not best_effort:
            raise
        from gitops_glue.redact import redact

        note(f"glue: warning: no notification sent (--best-effort): {redact(str(exc))}")
        return
    render_result(result, output)


def render_result(result: "NotifyResult", output: MessageOutput) -> None:
    for text in result.notes:
        note(f"glue: note: {text}")
    if output is MessageOutput.json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    elif output is MessageOutput.slack:
        typer.echo(json.dumps(result.message.payload(), indent=2, ensure_ascii=False))
    elif result.posted is not None:
        how = (
            " (updated the start message)"
            if result.updated
            else (" (in the start message's thread)" if result.thread_ts else "")
        )
        typer.echo(f"notified {result.sent_to}{how}: {result.message.text}")
    else:
        typer.echo(result.message.plain_text())
    if result.skipped and output is not MessageOutput.json:
        note(f"glue: {result.skipped}: nothing was sent")
