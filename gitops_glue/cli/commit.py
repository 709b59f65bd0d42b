"""Commands that commit to the deployment repository: bump-tag, promote, release, rollback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from gitops_glue.cli.app import app, loaded
from gitops_glue.cli.options import (
    BranchOpt,
    DryRunOpt,
    InsecureOpt,
    KnownHostsOpt,
    MaxAttemptsOpt,
    Output,
    OutputOpt,
    RemoteOpt,
    SshKeyFileOpt,
)
from gitops_glue.cli.render import emit, note
from gitops_glue.errors import UsageError


@app.command("bump-tag")
def bump_tag_cmd(
    service: Annotated[str, typer.Argument(help="service name from glue.yaml")],
    tag: Annotated[str, typer.Argument(help="the new image tag")],
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    revision: Annotated[
        str | None, typer.Option(envvar="GLUE_REVISION", help="source git revision of the image")
    ] = None,
    upstream_repo: Annotated[
        str | None,
        typer.Option(envvar="GLUE_UPSTREAM_REPO", help="the service's repository, for the commit"),
    ] = None,
    remote: Annotated[
        str | None,
        typer.Option(
            envvar="GLUE_REMOTE",
            help="deployment repo URL: bump there, no checkout "
            "needed (ssh://..., git@host:path or https://...)",
        ),
    ] = None,
    branch: Annotated[
        str, typer.Option(envvar="GLUE_BRANCH", help="branch of --remote to commit to")
    ] = "main",
    ssh_key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="GLUE_SSH_KEY_FILE",
            help="deploy key file (or GLUE_SSH_KEY with the key text; passphrase in "
            "GLUE_SSH_KEY_PASSPHRASE)",
        ),
    ] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(
            "--known-hosts",
            help="known_hosts file with the server's host key "
            "(or GLUE_SSH_KNOWN_HOSTS with the lines)",
        ),
    ] = None,
    insecure_no_host_key_check: Annotated[
        bool,
        typer.Option(
            "--insecure-no-host-key-check",
            help="DANGEROUS: accept any SSH host key (man-in-the-middle possible)",
        ),
    ] = False,
    max_attempts: Annotated[
        int,
        typer.Option(
            envvar="GLUE_MAX_ATTEMPTS",
            min=1,
            max=50,
            help="pushes to try when other pipelines push at the same time",
        ),
    ] = 20,
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
            help="SOURCE_BRANCH: bump only if glue.yaml's auto_release sends new tags of this "
            "branch to ENV (else do nothing, status skipped, exit 0)",
        ),
    ] = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Set SERVICE's image tag in ENV's values file and commit it (and push, with --remote)."""
    connection = None
    if remote:
        from gitops_glue.repo.remote import Connection, RemoteSpec

        spec = RemoteSpec(remote, branch, max_attempts)
        auth = _remote_auth(remote, ssh_key_file, known_hosts, insecure_no_host_key_check)
        # The fetch starts now and runs while the rest of glue loads.
        connection = Connection(spec, auth, push=not dry_run)
    try:
        from gitops_glue.integrations import ci
        from gitops_glue.repo.bump import BumpRequest, bump_local

        ctx = ci.detect()
        req = BumpRequest(
            service=service,
            tag=tag,
            env=env,
            revision=revision,
            upstream_repo=upstream_repo or (ctx.repository or None),
            ci=ctx,
            if_auto_release=if_auto_release,
        )
        if connection is not None:
            from gitops_glue.repo.remote import bump_remote

            result = bump_remote(
                req,
                spec,
                auth,
                dry_run=dry_run,
                progress=lambda m: note(f"glue: {m}"),
                connection=connection,
            )
        else:
            result = bump_local(loaded(), req, dry_run=dry_run)
    finally:
        if connection is not None:
            connection.close()
    for text in result.plan.notes:
        note(f"glue: note: {text}")
    data = result.to_json()
    if dry_run and result.plan.edit:
        data["diff"] = result.plan.edit.diff()
    ci.write_outputs(
        {
            k: "" if v is None else str(v)
            for k, v in data.items()
            if k in ("status", "service", "environment", "file", "old_tag", "new_tag", "commit")
        },
        dotenv=str(dotenv) if dotenv else None,
    )
    emit(output, data, result.summary())


def _remote_auth(url: str, key_file: Path | None, known_hosts: Path | None, insecure: bool) -> Any:
    from gitops_glue.files import read_text
    from gitops_glue.repo.remote import Auth, is_ssh_url

    key = read_text(key_file) if key_file else os.environ.get("GLUE_SSH_KEY")
    hosts = read_text(known_hosts) if known_hosts else os.environ.get("GLUE_SSH_KNOWN_HOSTS")
    auth = Auth(
        ssh_key=key,
        ssh_key_passphrase=os.environ.get("GLUE_SSH_KEY_PASSPHRASE"),
        known_hosts=hosts,
        insecure_skip_host_key_check=insecure,
        token=os.environ.get("GLUE_GIT_TOKEN"),
        username=os.environ.get("GLUE_GIT_USERNAME", "x-access-token"),
    )
    if is_ssh_url(url):
        if not key:
            raise UsageError(
                "an SSH remote needs a deploy key",
                hint="pass --ssh-key-file FILE or set GLUE_SSH_KEY to the key text",
            )
        if not hosts and not insecure:
            from gitops_glue.repo.remote import host_key_error

            raise host_key_error(url)
        if insecure:
            note(
                "glue: WARNING: --insecure-no-host-key-check: the SSH server's identity is "
                "NOT verified"
            )
    return auth


def _remote_spec(
    remote: str,
    branch: str,
    max_attempts: int,
    ssh_key_file: Path | None,
    known_hosts: Path | None,
    insecure: bool,
) -> tuple[Any, Any]:
    from gitops_glue.repo.remote import RemoteSpec

    auth = _remote_auth(remote, ssh_key_file, known_hosts, insecure)
    return RemoteSpec(remote, branch, max_attempts), auth


@app.command("promote")
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
    remote: RemoteOpt = None,
    branch: BranchOpt = "main",
    ssh_key_file: SshKeyFileOpt = None,
    known_hosts: KnownHostsOpt = None,
    insecure_no_host_key_check: InsecureOpt = False,
    max_attempts: MaxAttemptsOpt = 20,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Set ENV's tag and revision of SERVICE to the previous environment's, in one commit."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo import promote

    if not to:
        raise UsageError("--to ENV is required: the environment to promote to")
    if bool(service) == all_services:
        raise UsageError("name the service(s) to promote, or pass --all (not both)")
    services = None if all_services else list(service or [])
    ctx = ci.detect()
    if remote:
        spec, auth = _remote_spec(
            remote, branch, max_attempts, ssh_key_file, known_hosts, insecure_no_host_key_check
        )
        result = promote.promote_remote(
            spec,
            auth,
            target=to,
            services=services,
            source=from_env,
            ci=ctx,
            dry_run=dry_run,
            progress=lambda m: note(f"glue: {m}"),
        )
    else:
        result = promote.promote_local(
            loaded(), target=to, services=services, source=from_env, ci=ctx, dry_run=dry_run
        )
    for text in result.plan.notes:
        note(f"glue: note: {text}")
    data = result.to_json()
    if dry_run and result.plan.edit:
        data["diff"] = result.plan.edit.diff()
    emit(output, data, result.summary())


@app.command("release")
def release_cmd(
    service: Annotated[str, typer.Argument(help="service name from glue.yaml")],
    to: Annotated[str, typer.Option("--to", envvar="GLUE_ENV", help="the environment")],
    tag: Annotated[str | None, typer.Option(envvar="GLUE_TAG", help="the tag to release")] = None,
    source_branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            envvar="GLUE_SOURCE_BRANCH",
            help="release the newest tag built from this branch of the service "
            "(registry tags matching the service's branch_tags scheme)",
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option(envvar="GLUE_REVISION", help="source git revision of the image")
    ] = None,
    remote: RemoteOpt = None,
    repo_branch: Annotated[
        str, typer.Option("--remote-branch", envvar="GLUE_BRANCH", help="branch of --remote")
    ] = "main",
    ssh_key_file: SshKeyFileOpt = None,
    known_hosts: KnownHostsOpt = None,
    insecure_no_host_key_check: InsecureOpt = False,
    max_attempts: MaxAttemptsOpt = 20,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Put TAG (or BRANCH's newest tag) of SERVICE into ENV directly: a hotfix release."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo import promote

    if (tag is None) == (source_branch is None):
        raise UsageError("give exactly one of --tag TAG and --branch BRANCH")
    ctx = ci.detect()
    if tag is None:
        assert source_branch is not None
        config = _remote_or_local_config(
            remote, repo_branch, ssh_key_file, known_hosts, insecure_no_host_key_check
        )
        found = promote.newest_branch_tag(config, service, source_branch)
        note(f"glue: newest tag of {service} for branch {source_branch}: {found.tag}")
        tag, revision = found.tag, revision or found.revision
    req = promote.ReleaseRequest(
        service=service,
        tag=tag,
        env=to,
        revision=revision,
        upstream_repo=ctx.repository or None,
        branch=source_branch,
        ci=ctx,
    )
    if remote:
        spec, auth = _remote_spec(
            remote,
            repo_branch,
            max_attempts,
            ssh_key_file,
            known_hosts,
            insecure_no_host_key_check,
        )
        result = promote.release_remote(
            spec, auth, req, dry_run=dry_run, progress=lambda m: note(f"glue: {m}")
        )
    else:
        result = promote.release_local(loaded(), req, dry_run=dry_run)
    data = result.to_json()
    if dry_run and result.plan.edit:
        data["diff"] = result.plan.edit.diff()
    emit(output, data, result.summary())


def _remote_or_local_config(
    remote: str | None,
    branch: str,
    ssh_key_file: Path | None,
    known_hosts: Path | None,
    insecure: bool,
) -> Any:
    """glue.yaml of the remote's branch tip (with --remote) or of the checkout."""
    if not remote:
        return loaded().config
    from gitops_glue.repo.remote import read_remote_config

    spec, auth = _remote_spec(remote, branch, 1, ssh_key_file, known_hosts, insecure)
    return read_remote_config(spec, auth)


@app.command("rollback")
def rollback_cmd(
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="roll back every glue change of ENV after this commit (default: the last)"
        ),
    ] = None,
    remote: RemoteOpt = None,
    branch: BranchOpt = "main",
    ssh_key_file: SshKeyFileOpt = None,
    known_hosts: KnownHostsOpt = None,
    insecure_no_host_key_check: InsecureOpt = False,
    max_attempts: MaxAttemptsOpt = 20,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Revert ENV's last glue bump/promote/release (or all after --to) as a new commit."""
    from gitops_glue.integrations import ci
    from gitops_glue.repo import rollback

    ctx = ci.detect()
    if remote:
        spec, auth = _remote_spec(
            remote, branch, max_attempts, ssh_key_file, known_hosts, insecure_no_host_key_check
        )
        result = rollback.rollback_remote(
            spec, auth, env, to=to, ci=ctx, dry_run=dry_run, progress=lambda m: note(f"glue: {m}")
        )
    else:
        result = rollback.rollback_local(loaded(), env, to=to, ci=ctx, dry_run=dry_run)
    data = result.to_json()
    if dry_run:
        data["diff"] = result.plan.diff()
    emit(output, data, result.summary())


@app.command("should-release")
def should_release_cmd(
    source_branch: Annotated[
        str, typer.Option("--branch", envvar="GLUE_SOURCE_BRANCH", help="the image's source branch")
    ],
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    remote: RemoteOpt = None,
    branch: Annotated[
        str, typer.Option("--remote-branch", envvar="GLUE_BRANCH", help="branch of --remote")
    ] = "main",
    ssh_key_file: SshKeyFileOpt = None,
    known_hosts: KnownHostsOpt = None,
    insecure_no_host_key_check: InsecureOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Print true if glue.yaml's auto_release sends new tags of BRANCH to ENV, else false."""
    config = _remote_or_local_config(
        remote, branch, ssh_key_file, known_hosts, insecure_no_host_key_check
    )
    config.environment(env)
    allowed = bool(config.auto_release_allows(source_branch, env))
    emit(
        output,
        {"branch": source_branch, "environment": env, "release": allowed},
        "true" if allowed else "false",
    )
