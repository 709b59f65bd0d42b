"""glue announce / glue wait-image: new images."""

from pathlib import Path
from typing import Annotated

import typer

from gitops_glue.cli.app import State, app
from gitops_glue.cli.options import DryRunOpt, Output, OutputOpt
from gitops_glue.cli.render import emit, note


@app.command("announce")
def announce_cmd(
    image: Annotated[str, typer.Option(envvar="GLUE_IMAGE", help="REGISTRY/NAME of the image")],
    tag: Annotated[str, typer.Option(envvar="GLUE_TAG", help="the new tag")],
    service: Annotated[
        str | None, typer.Option(envvar="GLUE_SERVICE", help="service name (default: image name)")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            envvar="GLUE_VERIFY",
            help="ask the registry that the tag exists; report its digest",
        ),
    ] = False,
    revision: Annotated[
        str | None, typer.Option(envvar="GLUE_REVISION", help="source commit (default: CI's)")
    ] = None,
    branch: Annotated[str | None, typer.Option(help="source branch (default: CI's)")] = None,
    author: Annotated[str | None, typer.Option(help="who made the change (default: CI's)")] = None,
    commit_title: Annotated[str | None, typer.Option(help="first line of the commit")] = None,
    channel: Annotated[
        str | None, typer.Option(envvar="SLACK_CHANNEL", help="channel (with SLACK_BOT_TOKEN)")
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option(envvar="GLUE_ANNOUNCE_TEMPLATE", help="Jinja2 template for the message body"),
    ] = None,
    dotenv: Annotated[
        Path | None, typer.Option(envvar="GLUE_DOTENV", help="also write outputs to this dotenv")
    ] = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Announce a new image in Slack and hand its details to the next CI job."""
    from gitops_glue.integrations import ci
    from gitops_glue.messages import announce

    req = announce.AnnounceRequest(
        image=image,
        tag=tag,
        service=service,
        verify=verify,
        revision=revision,
        branch=branch,
        author=author,
        commit_title=commit_title,
        template=template,
    )
    result = announce.run(
        req,
        directory=State.directory,
        channel=channel,
        dry_run=dry_run,
        progress=lambda m: note(f"glue: {m}"),
    )
    ci.write_outputs(result.announcement.outputs(), dotenv=str(dotenv) if dotenv else None)
    if output is Output.json:
        emit(output, result.to_json(), "")
        return
    a = result.announcement
    if result.posted is not None:
        typer.echo(
            f"announced {a.service} {a.tag} to {result.sent_to}"
            + (f" (digest {a.digest})" if a.digest else "")
        )
        return
    typer.echo(result.message.plain_text())
    if dry_run:
        note("glue: dry run: nothing was sent")
    else:
        note(
            "glue: Slack is not configured (set SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN and "
            "SLACK_CHANNEL): the message was printed, not sent"
        )


@app.command("wait-image")
def wait_image_cmd(
    image: Annotated[str, typer.Option(envvar="GLUE_IMAGE", help="REGISTRY/NAME of the image")],
    tag: Annotated[str, typer.Option(envvar="GLUE_TAG", help="the tag to wait for")],
    timeout: Annotated[str, typer.Option(help="how long to wait: 90s, 10m, 1h")] = "10m",
    interval: Annotated[str, typer.Option(help="time between checks")] = "5s",
    output: OutputOpt = Output.text,
) -> None:
    """Wait until IMAGE:TAG exists in its registry; print its digest."""
    from gitops_glue.durations import parse_duration
    from gitops_glue.integrations import oci

    digest = oci.wait_for(
        image,
        tag,
        parse_duration(timeout),
        parse_duration(interval),
        progress=lambda m: note(f"glue: {m}"),
    )
    emit(output, {"image": image, "tag": tag, "digest": digest}, digest)
