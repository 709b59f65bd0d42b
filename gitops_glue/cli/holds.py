"""glue hold / unhold / reject: holds and rejected versions in the deployment repository.

``unhold`` (not ``release-hold``): it pairs with ``hold`` and cannot be mistaken
for ``glue release``, which puts a tag into an environment.
"""

from typing import Annotated

import typer

from gitops_glue.cli.app import app
from gitops_glue.cli.options import DryRunOpt, EnvOpt, Output, OutputOpt
from gitops_glue.cli.render import render_result
from gitops_glue.cli.target import CHECKOUT, RepoOptions, repo_options

ServiceArg = Annotated[str, typer.Argument(help="a service from glue.yaml", show_default=False)]
ReasonOpt = Annotated[
    str, typer.Option("--reason", help="why (required; kept with the hold or rejection)")
]
ReplaceHoldOpt = Annotated[
    bool,
    typer.Option(
        "--override-hold",
        envvar="GLUE_OVERRIDE_HOLD",
        help="replace another person's hold on SERVICE in ENV (said in the commit)",
    ),
]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="GLUE_ACTOR",
        help="who sets it (default: the CI actor, else git's user.name)",
    ),
]


@app.command("hold")
@repo_options
def hold_cmd(
    service: ServiceArg,
    env: EnvOpt,
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    override_hold: ReplaceHoldOpt = False,
    repo: RepoOptions = CHECKOUT,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Hold SERVICE in ENV: bump-tag, promote, release and rollback refuse to change it
    there (exit 2) until glue unhold, unless --override-hold. Kept in glue-holds.yaml.
    Another person's hold is not replaced (exit 2, naming it) unless --override-hold."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo.holds import HoldRequest, hold

    req = HoldRequest(
        service, env, reason=reason, actor=actor, ci=ci.detect(), override_hold=override_hold
    )
    with repo.target() as target:
        result = hold(target, req, dry_run=dry_run)
    render_result(output, result)


@app.command("unhold")
@repo_options
def unhold_cmd(
    service: ServiceArg,
    env: EnvOpt,
    repo: RepoOptions = CHECKOUT,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Release the hold on SERVICE in ENV (one commit; the old hold is said in it), also
    one left on an environment or service glue.yaml no longer lists."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo.holds import HoldRequest, hold

    req = HoldRequest(service, env, release=True, ci=ci.detect())
    with repo.target() as target:
        result = hold(target, req, dry_run=dry_run)
    render_result(output, result)


@app.command("reject")
@repo_options
def reject_cmd(
    service: ServiceArg,
    tag: Annotated[str, typer.Argument(help="the image tag to reject", show_default=False)],
    reason: ReasonOpt = "",
    actor: ActorOpt = None,
    repo: RepoOptions = CHECKOUT,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Reject TAG of SERVICE for good: no command puts it into any environment again (exit 2,
    with the reason). Kept in glue-holds.yaml."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo.holds import RejectRequest, reject

    req = RejectRequest(service, tag, reason, actor=actor, ci=ci.detect())
    with repo.target() as target:
        result = reject(target, req, dry_run=dry_run)
    render_result(output, result)
