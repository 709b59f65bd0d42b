"""Commands that commit to the deployment repository: bump-tag, promote, release, rollback.

Each parses its options into a typed request, builds the commit target (a
checkout, or with ``--remote`` a remote branch), makes one call into
:mod:`gitops_glue.repo` and renders the :class:`~gitops_glue.repo.commit.CommitResult`.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitops_glue.cli.app import State, app
from gitops_glue.cli.options import (
    DryRunOpt,
    EnvOpt,
    FreezeReasonOpt,
    KubeconfigOpt,
    Output,
    OutputOpt,
    OverrideFreezeOpt,
)
from gitops_glue.cli.render import emit, note, render_result
from gitops_glue.cli.target import CHECKOUT, RepoOptions, read_options, review_options
from gitops_glue.durations import parse_duration
from gitops_glue.errors import UsageError

if TYPE_CHECKING:
    from gitops_glue.repo.commit import Guard

ToEnvOpt = Annotated[str, typer.Option("--to", envvar="GLUE_ENV", help="the environment")]
OverrideHoldOpt = Annotated[
    bool,
    typer.Option(
        "--override-hold",
        envvar="GLUE_OVERRIDE_HOLD",
        help="change a service even where glue hold holds it (said in the commit)",
    ),
]
RevisionOpt = Annotated[
    str | None, typer.Option(envvar="GLUE_REVISION", help="source git revision of the image")
]


def freeze_guard(override: bool, reason: str | None, *, rollback: bool = False) -> "Guard":
    """The freeze windows' rule for this command (the clock: GLUE_NOW, else the real one)."""
    from gitops_glue import freeze
    from gitops_glue.integrations import ci
    from gitops_glue.repo import frozen

    clock = freeze.clock()
    if clock.overridden:
        note(f"glue: note: {clock.note()}")
    if rollback:
        return frozen.guard(frozen.FreezeRule(clock, rollback=True))
    return frozen.guard(frozen.FreezeRule(clock, frozen.override_of(override, reason, ci.detect())))


@app.command("bump-tag")
@review_options
def bump_tag_cmd(
    services: Annotated[
        list[str],
        typer.Argument(
            metavar="SERVICE=TAG[@REVISION]...",
            help="services and their new tags (one commit, all or nothing; @REVISION names "
            "a service's own source revision), or the one-service form: SERVICE TAG",
            show_default=False,
        ),
    ],
    env: EnvOpt,
    revision: RevisionOpt = None,
    upstream_repo: Annotated[
        str | None,
        typer.Option(envvar="GLUE_UPSTREAM_REPO", help="the service's repository, for the commit"),
    ] = None,
    repo: RepoOptions = CHECKOUT,
    dotenv: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_DOTENV",
            help="also write the results to this dotenv file (GitLab reports: dotenv)",
        ),
    ] = None,
    if_auto_release: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_IF_AUTO_RELEASE",
            metavar="SOURCE_BRANCH",
            help="bump only if glue.yaml's auto_release sends new tags of this source "
            "branch to ENV (else do nothing, status skipped, exit 0)",
        ),
    ] = None,
    resolve_digest: Annotated[
        bool,
        typer.Option(
            "--resolve-digest",
            envvar="GLUE_RESOLVE_DIGEST",
            help="ask the registry for each tag's digest and write it at the service's "
            "digest_key (always done for a service with a digest_key)",
        ),
    ] = False,
    override_hold: OverrideHoldOpt = False,
    override_freeze: OverrideFreezeOpt = False,
    reason: FreezeReasonOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Set services' image tags in ENV's values file in one commit (and push, with --remote).

    Without --revision (or @REVISION), a tag that is a commit SHA is its own revision and
    any other new tag clears the service's old revision (revision_key).
    """
    from gitops_glue.repo.bump import parse_service_tags
    from gitops_glue.repo.merge_request import ReviewPlace

    wanted = parse_service_tags(services, revision)
    freeze = freeze_guard(override_freeze, reason)
    with repo.target(ReviewPlace(env, tuple(t.service for t in wanted))) as target:
        target.start(push=not dry_run)  # a remote's fetch runs while the rest of glue loads
        from gitops_glue.integrations import ci
        from gitops_glue.repo.bump import BumpRequest, bump, ci_outputs

        req = BumpRequest.of(
            env,
            wanted,
            upstream_repo=upstream_repo,
            ci=ci.detect(),
            if_auto_release=if_auto_release,
            resolve_digest=resolve_digest,
        )
        result = bump(target, req, dry_run=dry_run, override_hold=override_hold, freeze=freeze)
    ci.write_outputs(ci_outputs(result), dotenv=str(dotenv) if dotenv else None)
    render_result(output, result)


@app.command("promote")
@review_options
def promote_cmd(
    service: Annotated[
        list[str] | None, typer.Argument(help="service(s) from glue.yaml (or --all)")
    ] = None,
    to: Annotated[
        str, typer.Option("--to", envvar="GLUE_ENV", help="the environment to promote to")
    ] = "",
    from_env: Annotated[
        str | None,
        typer.Option("--from", help="the source environment (default: the one before --to)"),
    ] = None,
    all_services: Annotated[
        bool, typer.Option("--all", help="every service whose version differs")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="with --all: refuse everything when the target's tag policy refuses any "
            "service (default: promote the others and list the refused ones)",
        ),
    ] = False,
    repo: RepoOptions = CHECKOUT,
    require_deployed: Annotated[
        bool,
        typer.Option(
            "--require-deployed",
            envvar="GLUE_REQUIRE_DEPLOYED",
            help="promote only versions the source environment's deploy record (in its "
            "cluster) shows deployed successfully (also ENV's require_deployed in glue.yaml)",
        ),
    ] = False,
    min_age: Annotated[
        str | None,
        typer.Option(
            "--min-age",
            envvar="GLUE_MIN_AGE",
            metavar="DURATION",
            help="with proof: the version must have run in the source at least this long, "
            "its pods there Ready and not restarted since it was deployed (30m, 2h; "
            "default: ENV's min_age in glue.yaml); implies --require-deployed",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    override_hold: OverrideHoldOpt = False,
    override_freeze: OverrideFreezeOpt = False,
    reason: FreezeReasonOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Set ENV's tag and revision of SERVICE to the previous environment's, in one commit."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo.promote import PromoteRequest, promote

    req = PromoteRequest.of(
        to,
        service or (),
        every=all_services,
        source=from_env,
        ci=ci.detect(),
        strict=strict,
        require_deployed=require_deployed,
        min_age=None if min_age is None else parse_duration(min_age),
    )
    freeze = freeze_guard(override_freeze, reason)
    from gitops_glue.repo.merge_request import ReviewPlace

    with repo.target(ReviewPlace(to, tuple(service or ()))) as target:
        from gitops_glue.repo.proof import ClusterEvidence

        evidence = ClusterEvidence(State.directory, kubeconfig)
        result = promote(
            target,
            req,
            dry_run=dry_run,
            override_hold=override_hold,
            freeze=freeze,
            records=evidence.records,
            pods=evidence.pods,
        )
    render_result(output, result)


SourceBranchOpt = Annotated[
    str | None,
    typer.Option(
        "--source-branch",
        envvar="GLUE_SOURCE_BRANCH",
        help="the image's source branch (not the deployment repository's: that is --branch); "
        "release: take the newest registry tag built from it (the service's branch_tags)",
    ),
]


@app.command("release")
@review_options
def release_cmd(
    services: Annotated[
        list[str],
        typer.Argument(
            metavar="SERVICE[=TAG[@REVISION]]...",
            help="one service (with --tag or --source-branch), or several SERVICE=TAG in "
            "one commit, all or nothing",
            show_default=False,
        ),
    ],
    to: ToEnvOpt,
    tag: Annotated[str | None, typer.Option(envvar="GLUE_TAG", help="the tag to release")] = None,
    source_branch: SourceBranchOpt = None,
    revision: RevisionOpt = None,
    repo: RepoOptions = CHECKOUT,
    override_hold: OverrideHoldOpt = False,
    override_freeze: OverrideFreezeOpt = False,
    reason: FreezeReasonOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Put TAG (or the newest tag of a source branch) of SERVICE into ENV: a hotfix release."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo.release import ReleaseRequest, release

    req = ReleaseRequest.from_args(
        services, to, tag=tag, source_branch=source_branch, revision=revision, ci=ci.detect()
    )
    freeze = freeze_guard(override_freeze, reason)
    from gitops_glue.repo.merge_request import ReviewPlace

    names = (req.service, *(t.service for t in req.also))
    with repo.target(ReviewPlace(to, names)) as target:
        result = release(target, req, dry_run=dry_run, override_hold=override_hold, freeze=freeze)
    render_result(output, result)


@app.command("rollback")
@review_options
def rollback_cmd(
    env: EnvOpt,
    to_commit: Annotated[
        str | None,
        typer.Option(
            "--to-commit",
            envvar="GLUE_TO_COMMIT",
            metavar="REV",
            help="roll back every glue change of ENV after this commit (default: the last)",
        ),
    ] = None,
    repo: RepoOptions = CHECKOUT,
    hold: Annotated[
        bool,
        typer.Option("--hold", help="also hold the rolled-back services in ENV (needs --reason)"),
    ] = False,
    reject: Annotated[
        bool,
        typer.Option("--reject", help="also reject the tags rolled back from (needs --reason)"),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why, for --hold and --reject")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", envvar="GLUE_ACTOR", help="who holds/rejects (default: CI actor)"),
    ] = None,
    override_hold: OverrideHoldOpt = False,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Revert ENV's last glue bump/promote/release (or all after --to-commit) as a new commit."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo.rollback import RollbackRequest, rollback

    req = RollbackRequest.of(
        env, to_commit, ci=ci.detect(), hold=hold, reject=reject, reason=reason, actor=actor
    )
    freeze = freeze_guard(False, None, rollback=True)
    from gitops_glue.repo.merge_request import ReviewPlace

    with repo.target(ReviewPlace(env, kind="rollback")) as target:
        result = rollback(target, req, dry_run=dry_run, override_hold=override_hold, freeze=freeze)
    render_result(output, result)


@app.command("should-release")
@read_options
def should_release_cmd(
    env: EnvOpt,
    source_branch: SourceBranchOpt = None,
    repo: RepoOptions = CHECKOUT,
    output: OutputOpt = Output.text,
) -> None:
    """Print true if glue.yaml's auto_release sends new tags of the source branch to ENV."""
    from gitops_glue.repo.release import should_release

    if not source_branch:
        raise UsageError("--source-branch BRANCH is required: the image's source branch")
    with repo.target() as target:
        decision = should_release(target, source_branch, env)
    emit(output, decision.to_json(), decision.summary())
