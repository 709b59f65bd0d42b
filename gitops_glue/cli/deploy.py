"""glue diff / apply / unlock / changed: deploying with helmfile."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitops_glue.cli.app import State, app, loaded
from gitops_glue.cli.options import (
    DryRunOpt,
    EnvOpt,
    ExtraArgs,
    FreezeReasonOpt,
    KubeconfigOpt,
    KubeContextOpt,
    LockTimeoutOpt,
    Output,
    OutputOpt,
    OverrideFreezeOpt,
    SelectorOpt,
    TimeoutOpt,
)
from gitops_glue.cli.render import emit, note
from gitops_glue.cli.target import CHECKOUT, RepoOptions, repo_options
from gitops_glue.deploy.choices import OnFailure, Recover

if TYPE_CHECKING:
    from gitops_glue.config import LoadedConfig
    from gitops_glue.deploy.diff import DiffResult
    from gitops_glue.deploy.helmfile import Target


def helmfile_target(env: str, selector: list[str] | None, extra: list[str] | None) -> "Target":
    """What helmfile deploys: ENV of the deployment repo where glue.yaml is."""
    from gitops_glue.deploy.helmfile import Target
    from gitops_glue.files import find_config
    from gitops_glue.tools import Tools

    return Target(
        env=env,
        root=find_config(State.directory).parent,
        selectors=tuple(selector or ()),
        extra_args=tuple(extra or ()),
        tools=Tools.from_env(),
    )


def _config(env: str) -> "LoadedConfig":
    """glue.yaml, refusing an environment it does not name (before helmfile runs)."""
    cfg: LoadedConfig = loaded()
    cfg.config.environment(env)
    return cfg


SummaryFileOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="GLUE_SUMMARY_FILE",
        help="also write a Markdown summary here (GitLab artifacts); "
        "in GitHub Actions it goes to the step summary",
    ),
]


def _render_diff(result: "DiffResult", output: Output, summary_file: Path | None) -> None:
    from gitops_glue.integrations import ci

    ci.write_step_summary(
        result.summary_markdown(), also=str(summary_file) if summary_file else None
    )
    emit(output, result.to_json(), result.text())
    raise typer.Exit(int(result.exit_code))


@app.command("diff")
def diff_cmd(
    env: EnvOpt,
    selector: SelectorOpt = None,
    summary_file: SummaryFileOpt = None,
    kubeconfig: KubeconfigOpt = None,
    kube_context: KubeContextOpt = None,
    output: OutputOpt = Output.text,
    extra: ExtraArgs = None,
) -> None:
    """Show what a deploy of ENV would change. Exit 0: no changes, 3: changes, 1: error."""
    from gitops_glue.cluster import context
    from gitops_glue.deploy.diff import diff

    target = helmfile_target(env, selector, extra)
    where = context.for_environment(
        _config(env), env, kubeconfig=kubeconfig, context=kube_context, tools=target.tools
    )
    _render_diff(diff(target, where), output, summary_file)


@app.command("apply")
@repo_options
def apply_cmd(
    env: EnvOpt,
    selector: SelectorOpt = None,
    recover: Annotated[
        Recover,
        typer.Option(
            envvar="GLUE_RECOVER",
            help="auto: recover releases stuck pending before deploying; never: fail instead",
        ),
    ] = Recover.auto,
    timeout: TimeoutOpt = "5m",
    lock_timeout: LockTimeoutOpt = "10m",
    kubeconfig: KubeconfigOpt = None,
    kube_context: KubeContextOpt = None,
    report: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_APPLY_REPORT",
            help="also write the result (recoveries, failing pods) as JSON here, for glue notify",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", envvar="GLUE_DRY_RUN", help="run glue diff instead")
    ] = False,
    changed_only: Annotated[
        bool,
        typer.Option(
            "--changed-only",
            envvar="GLUE_CHANGED_ONLY",
            help="deploy only the releases whose inputs changed since the deployed revision "
            "(see glue changed)",
        ),
    ] = False,
    verify: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_VERIFY",
            metavar="DURATION",
            help="after helmfile succeeds, watch the pods of the releases it changed this "
            "long and fail at the first crash, with its logs (default: ENV's verify in "
            "glue.yaml; 0: off)",
        ),
    ] = None,
    rollback_on_failure: Annotated[
        bool | None,
        typer.Option(
            "--rollback-on-failure/--stop-on-failure",
            envvar="GLUE_ROLLBACK_ON_FAILURE",
            show_default=False,
            help="when verification fails: revert the failed services' commits with a hold "
            "(to --remote when given), deploy and verify that version; or only report it "
            "(default: ENV's on_failure in glue.yaml, else stop)",
        ),
    ] = None,
    accept_unreviewed: Annotated[
        bool,
        typer.Option(
            "--accept-unreviewed",
            envvar="GLUE_ACCEPT_UNREVIEWED",
            help="an environment with via: merge-request: deploy even when what would "
            "deploy is not what its review rendered (recorded in the deploy record)",
        ),
    ] = False,
    override_freeze: OverrideFreezeOpt = False,
    reason: FreezeReasonOpt = None,
    repo: RepoOptions = CHECKOUT,
    output: OutputOpt = Output.text,
    extra: ExtraArgs = None,
) -> None:
    """Deploy ENV with helmfile: locked, stuck releases recovered, safe to cancel."""
    from gitops_glue import freeze
    from gitops_glue.cluster.lock import identity
    from gitops_glue.deploy import apply
    from gitops_glue.durations import parse_duration
    from gitops_glue.integrations import ci
    from gitops_glue.repo.frozen import override_of

    clock = freeze.clock()
    if clock.overridden:
        note(f"glue: note: {clock.note()}")

    request = apply.ApplyRequest(
        target=helmfile_target(env, selector, extra),
        options=apply.ApplyOptions(
            timeout=parse_duration(timeout),
            lock_timeout=parse_duration(lock_timeout),
            recover=recover,
            holder=identity(ci.detect().pipeline_url),
            verify=None if verify is None else parse_duration(verify),
            on_failure=None
            if rollback_on_failure is None
            else OnFailure.rollback
            if rollback_on_failure
            else OnFailure.stop,
            rollback_to=repo.target,
        ),
        kubeconfig=kubeconfig,
        accept_unreviewed=accept_unreviewed,
        kube_context=kube_context,
        changed_only=changed_only,
        dry_run=dry_run,
        clock=clock,
        override_freeze=override_of(override_freeze, reason, ci.detect()),
    )
    say = note if output is Output.json else typer.echo
    try:
        result = apply.apply(_config(env), request, say)
    except (apply.DeployFailed, apply.DeployInterrupted) as exc:
        if report:
            _write_json(report, exc.result.to_json())
        raise  # with --output json, the error's JSON object carries the result
    if result.diff is not None:
        _render_diff(result.diff, output, None)
    if report and not result.nothing_changed:
        _write_json(report, result.to_json())
    emit(output, result.to_json(), result.text())


def _write_json(path: Path, data: dict[str, object]) -> None:
    from gitops_glue.files import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


@app.command("unlock")
def unlock_cmd(
    env: EnvOpt,
    kubeconfig: KubeconfigOpt = None,
    kube_context: KubeContextOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Remove ENV's deploy lock (for humans, when a dead job's lock is in the way)."""
    from gitops_glue.cluster import context, lock

    cfg = _config(env)
    environment = cfg.config.environment(env)
    kube = context.for_environment(cfg, env, kubeconfig=kubeconfig, context=kube_context).kube()
    if dry_run:
        emit(output, {"environment": env, "dry_run": True}, f"would remove the lock of {env}")
        return
    holder = lock.unlock(kube, environment.record_namespace, env)
    text = (
        f"removed the deploy lock of {env} (held by {holder.identity})"
        if holder
        else f"{env} was not locked"
    )
    emit(output, {"environment": env, "removed_holder": holder.identity if holder else None}, text)


@app.command("changed")
def changed_cmd(
    env: EnvOpt,
    since: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_SINCE",
            help="compare with this revision (default: the one deployed, from the cluster's "
            "deploy record)",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    kube_context: KubeContextOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """List ENV's releases whose inputs changed since the deployed revision; print a selector."""
    from gitops_glue.cluster import context
    from gitops_glue.deploy import changed
    from gitops_glue.tools import Tools

    cfg, tools = _config(env), Tools.from_env()
    report = changed.report(
        cfg,
        env,
        tools,
        since=since,
        kube=lambda: context.for_environment(
            cfg, env, kubeconfig=kubeconfig, context=kube_context, tools=tools
        ).kube(),
    )
    emit(output, report.to_json(), report.text())
