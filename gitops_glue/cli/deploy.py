"""glue diff / apply / unlock / changed: deploying with helmfile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from gitops_glue.cli.app import State, app, loaded
from gitops_glue.cli.options import (
    DryRunOpt,
    ExtraArgs,
    KubeconfigOpt,
    Output,
    OutputOpt,
    SelectorOpt,
)
from gitops_glue.cli.render import emit, note
from gitops_glue.errors import UsageError


def _target(env: str, selector: list[str] | None, extra: list[str] | None) -> Any:
    """What helmfile deploys; glue.yaml is found but not read (that is :func:`_env_config`)."""
    from gitops_glue.deploy.helmfile import Target, Tools
    from gitops_glue.files import find_config

    return Target(
        env=env,
        root=find_config(State.directory).parent,
        selectors=tuple(selector or ()),
        extra_args=tuple(extra or ()),
        tools=Tools.from_env(),
    )


def _env_config(env: str) -> Any:
    """glue.yaml, refusing an environment it does not name."""
    cfg = loaded()
    cfg.config.environment(env)
    return cfg


def _deploy_target(env: str, selector: list[str] | None, extra: list[str] | None) -> Any:
    cfg = _env_config(env)  # unknown environments fail here, before helmfile runs
    return cfg, _target(env, selector, extra)


@app.command("diff")
def diff_cmd(
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    selector: SelectorOpt = None,
    summary_file: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_SUMMARY_FILE",
            help="also write a Markdown summary here (GitLab artifacts); "
            "in GitHub Actions it goes to the step summary",
        ),
    ] = None,
    output: OutputOpt = Output.text,
    extra: ExtraArgs = None,
) -> None:
    """Show what a deploy of ENV would change. Exit 0: no changes, 3: changes, 1: error."""
    from gitops_glue.deploy import helmfile as deploy

    _loaded_config, target = _deploy_target(env, selector, extra)
    result = deploy.diff(target)
    summary = result.summary_markdown()
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    for path in (
        [step_summary] if step_summary and os.environ.get("GITHUB_ACTIONS") == "true" else []
    ) + ([str(summary_file)] if summary_file else []):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(summary)
    lines = [f"{r}: would change ({len(c)} resource(s))" for r, c in result.changes.items()]
    lines += [f"{r}: no changes" for r in result.unchanged]
    emit(
        output,
        result.to_json(),
        (result.output.rstrip() + "\n\n" if result.output.strip() else "") + "\n".join(lines),
    )
    raise typer.Exit(int(result.exit_code))


@app.command("apply")
def apply_cmd(
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    selector: SelectorOpt = None,
    recover: Annotated[
        str,
        typer.Option(
            envvar="GLUE_RECOVER",
            help="auto: recover releases stuck pending before deploying; never: fail instead",
        ),
    ] = "auto",
    timeout: Annotated[
        str,
        typer.Option(
            envvar="GLUE_TIMEOUT",
            help="deploy timeout (pending releases older than this are stale)",
        ),
    ] = "5m",
    lock_timeout: Annotated[
        str,
        typer.Option(
            envvar="GLUE_LOCK_TIMEOUT", help="how long to wait for another deploy of ENV to finish"
        ),
    ] = "10m",
    kubeconfig: KubeconfigOpt = None,
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
    output: OutputOpt = Output.text,
    extra: ExtraArgs = None,
) -> None:
    """Deploy ENV with helmfile: locked, stuck releases recovered, safe to cancel."""
    from gitops_glue.cluster import kube
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.cluster.lock import identity
    from gitops_glue.deploy import helmfile as deploy
    from gitops_glue.durations import parse_duration
    from gitops_glue.integrations import ci

    if recover not in ("auto", "never"):
        raise UsageError(f"--recover {recover!r}: use auto or never")
    if changed_only:
        if selector:
            raise UsageError("--changed-only picks the releases itself: drop --selector")
        changes = _changed_report(env, None, kubeconfig)
        if not changes.selectors:
            done = f"deployed {env}: nothing changed since {changes.since} (--changed-only)"
            emit(
                output,
                {
                    "environment": env,
                    "releases": [],
                    "changed": False,
                    "changed_only": changes.to_json(),
                },
                done,
            )
            return
        note(f"glue: --changed-only: deploying {', '.join(changes.changed)}")
        selector = changes.selectors
    if dry_run:
        diff_cmd(env=env, selector=selector, summary_file=None, output=output, extra=extra)
        return
    # helmfile starts before glue.yaml is read (apply gates it until the lock is held).
    target = _target(env, selector, extra)

    def load() -> Any:
        cfg = _env_config(env)
        kube.warm_up()
        return cfg

    opts = deploy.ApplyOptions(
        timeout=parse_duration(timeout),
        lock_timeout=parse_duration(lock_timeout),
        recover="never" if recover == "never" else "auto",
        holder=identity(ci.detect().pipeline_url),
    )
    say = (note) if output is Output.json else (typer.echo)
    try:
        result = deploy.apply(load, target, lambda: Kube(kubeconfig), opts, say)
    except (deploy.DeployFailed, deploy.DeployInterrupted) as exc:
        if report:
            _write_json(report, exc.result.to_json())
        if output is Output.json:
            typer.echo(json.dumps(exc.result.to_json(), indent=2))
        raise
    if report:
        _write_json(report, result.to_json())
    text = [
        f"deployed {env}: {', '.join(result.releases)}"
        + ("" if result.changed else " (no changes)")
    ]
    text += [f"  {r.describe()}" for r in result.recoveries]
    emit(output, result.to_json(), "\n".join(text))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from gitops_glue.files import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


@app.command("unlock")
def unlock_cmd(
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    kubeconfig: KubeconfigOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Remove ENV's deploy lock (for humans, when a dead job's lock is in the way)."""
    from gitops_glue.cluster import lock
    from gitops_glue.cluster.kube import Kube

    environment = loaded().config.environment(env)
    kube = Kube(kubeconfig)
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
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    since: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_SINCE",
            help="compare with this revision (default: the one deployed, from the cluster's "
            "deploy record)",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """List ENV's releases whose inputs changed since the deployed revision; print a selector."""
    report = _changed_report(env, since, kubeconfig)
    emit(output, report.to_json(), report.text())


def _changed_report(env: str, since: str | None, kubeconfig: str | None) -> Any:
    from gitops_glue.deploy import changed
    from gitops_glue.deploy.helmfile import Tools

    cfg = loaded()
    cfg.config.environment(env)
    source = "--since"
    if since is None:
        from gitops_glue.cluster.kube import Kube

        since = changed.deployed_revision(cfg, env, Kube(kubeconfig))
        source = "record"
    return changed.changed_releases(cfg, env, Tools.from_env(), since=since, since_source=source)
