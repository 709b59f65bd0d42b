"""``glue review``: what a change to the deployment repository does to what deploys."""

import os
from typing import Annotated

import typer

from gitops_glue.cli.app import app, loaded
from gitops_glue.cli.options import Output, OutputOpt
from gitops_glue.cli.render import emit, note
from gitops_glue.errors import ExitCode, UsageError


@app.command("review")
def review_cmd(
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            envvar="GLUE_REVIEW_BASE",
            metavar="REV",
            help="the merge request's base commit (default in GitLab merge request "
            "pipelines: CI_MERGE_REQUEST_DIFF_BASE_SHA)",
        ),
    ] = None,
    head: Annotated[
        str, typer.Option("--head", metavar="REV", help="the commit to review")
    ] = "HEAD",
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="review only these environments (default: every one)"),
    ] = None,
    merge_request: Annotated[
        int | None,
        typer.Option(
            "--merge-request",
            envvar="GLUE_MERGE_REQUEST",
            metavar="NUMBER",
            help="post the rendered diff as one comment on this merge request, updated in "
            "place on every push (default in GitLab: CI_MERGE_REQUEST_IID)",
        ),
    ] = None,
    post: Annotated[
        bool,
        typer.Option("--post/--no-post", help="post the comment when a merge request is known"),
    ] = True,
    output: OutputOpt = Output.text,
) -> None:
    """Render what helmfile would deploy on the base and the head (no cluster) and show
    the difference per environment and release; exit 3 when something would change."""
    from gitops_glue.deploy.reviewed import ReviewJob, run_review
    from gitops_glue.tools import Tools

    base = base or os.environ.get("CI_MERGE_REQUEST_DIFF_BASE_SHA") or None
    if not base:
        raise UsageError(
            "glue review needs the merge request's base commit",
            hint="pass --base REV (GLUE_REVIEW_BASE); GitLab merge request pipelines set "
            "CI_MERGE_REQUEST_DIFF_BASE_SHA, GitHub: github.event.pull_request.base.sha",
        )
    number = merge_request
    if number is None and os.environ.get("CI_MERGE_REQUEST_IID", "").isdigit():
        number = int(os.environ["CI_MERGE_REQUEST_IID"])
    checkout = loaded()
    job = ReviewJob(
        checkout.root,
        base,
        head,
        tuple(env or ()),
        number if post else None,
        Tools.from_env(),
    )
    outcome = run_review(job, checkout.config, os.environ, lambda m: note(f"glue: {m}"))
    if outcome.request is not None:
        note(f"glue: comment {outcome.comment} on {outcome.request.url or outcome.request.ref}")
    if outcome.auto_merge:
        note("glue: auto-merge asked for: it merges when the checks pass")
    emit(output, outcome.to_json(), outcome.result.body)
    if outcome.changed:
        raise typer.Exit(int(ExitCode.CHANGES))
