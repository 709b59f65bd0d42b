"""The ``glue`` command line: parse options, call a core function, print, exit.

Kept thin on purpose: every command collects its options and calls one typed
function in the module for its concern. Errors of the user's (``GlueError``)
become one message on stderr and the exit code of :class:`ExitCode`; nothing
here imports pygit2, requests or jinja2 at module level, so ``glue --help``
stays fast.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

# Plain click help: rich's formatter costs ~0.1 s at every start and garbles CI logs.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from . import __version__
from .errors import ExitCode, GlueError, UsageError

app = typer.Typer(
    name="glue",
    help="Glue between CI pipelines and Helm/helmfile deployments, with Git as the source "
    "of truth.\n\nExit codes: 0 ok, 1 operation failed, 2 bad input or usage, "
    "3 diff found changes, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Output(str, enum.Enum):
    text = "text"
    json = "json"


OutputOpt = Annotated[
    Output,
    typer.Option("--output", "-o", envvar="GLUE_OUTPUT", help="text for people, json for scripts"),
]
DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", envvar="GLUE_DRY_RUN", help="show what would change; write nothing"),
]


class State:
    directory: Path = Path()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"glue {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    directory: Annotated[
        Path,
        typer.Option(
            "-C",
            "--directory",
            envvar="GLUE_DIRECTORY",
            help="run as if started in DIR (where glue.yaml is looked for)",
        ),
    ] = Path(),
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    State.directory = directory


def _emit(output: Output, data: dict[str, Any], text: str) -> None:
    if output is Output.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=False))
    elif text:
        typer.echo(text)


def _note(message: str) -> None:
    typer.echo(message, err=True)


# --------------------------------------------------------------------------- get / set


@app.command("get")
def get_cmd(
    file: Annotated[Path, typer.Argument(help="a YAML file")],
    key_path: Annotated[str, typer.Argument(help='like a.image.tag, containers.0.image, x["a.b"]')],
    document: Annotated[
        int | None, typer.Option(help="document number in a multi-document file (from 0)")
    ] = None,
    output: OutputOpt = Output.text,
) -> None:
    """Print the value at KEY_PATH in FILE."""
    from . import values
    from .fsutil import read_text

    value = values.get_value(read_text(file), key_path, filename=str(file), document=document)
    if output is Output.json:
        typer.echo(json.dumps(value))
    elif isinstance(value, (dict, list)):
        typer.echo(json.dumps(value, indent=2))
    elif isinstance(value, bool):
        typer.echo("true" if value else "false")
    else:
        typer.echo("null" if value is None else str(value))


@app.command("set")
def set_cmd(
    file: Annotated[Path, typer.Argument(help="a YAML file")],
    key_path: Annotated[str, typer.Argument(help='like a.image.tag, containers.0.image, x["a.b"]')],
    value: Annotated[str, typer.Argument(help="the new value")],
    create: Annotated[bool, typer.Option("--create", help="add the key if it is missing")] = False,
    string: Annotated[
        bool, typer.Option("--string", help="always store VALUE as a string (quote if needed)")
    ] = False,
    document: Annotated[
        int | None, typer.Option(help="document number in a multi-document file (from 0)")
    ] = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Change the value at KEY_PATH in FILE; nothing else in the file changes."""
    import difflib

    from . import values
    from .fsutil import atomic_write_text, read_text

    text = read_text(file)
    result = values.set_value(
        text,
        key_path,
        value,
        filename=str(file),
        create=create,
        document=document,
        force_string=string,
    )
    if result.changed and not dry_run:
        atomic_write_text(file, result.text)
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(True), result.text.splitlines(True), f"a/{file}", f"b/{file}"
        )
    )
    status = "unchanged" if not result.changed else ("would-change" if dry_run else "changed")
    data = {
        "status": status,
        "file": str(file),
        "key": key_path,
        "old": result.old,
        "new": value,
        "created": result.created,
        "line": result.line,
        "dry_run": dry_run,
    }
    if dry_run:
        _emit(output, {**data, "diff": diff}, diff or f"{file}: {key_path} already {value!r}")
    else:
        _emit(output, data, "" if result.changed else f"{file}: {key_path} unchanged")


# --------------------------------------------------------------------------- deployment repo


def _loaded() -> Any:
    from .config import load_config

    return load_config(State.directory)


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
        from .remote import Connection, RemoteSpec

        spec = RemoteSpec(remote, branch, max_attempts)
        auth = _remote_auth(remote, ssh_key_file, known_hosts, insecure_no_host_key_check)
        # The fetch starts now and runs while the rest of glue loads.
        connection = Connection(spec, auth, push=not dry_run)
    try:
        from . import ci
        from .bump import BumpRequest, bump_local

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
            from .remote import bump_remote

            result = bump_remote(
                req,
                spec,
                auth,
                dry_run=dry_run,
                progress=lambda m: _note(f"glue: {m}"),
                connection=connection,
            )
        else:
            result = bump_local(_loaded(), req, dry_run=dry_run)
    finally:
        if connection is not None:
            connection.close()
    for note in result.plan.notes:
        _note(f"glue: note: {note}")
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
    _emit(output, data, result.summary())


def _remote_auth(url: str, key_file: Path | None, known_hosts: Path | None, insecure: bool) -> Any:
    from .fsutil import read_text
    from .remote import Auth, is_ssh_url

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
            from .remote import host_key_error

            raise host_key_error(url)
        if insecure:
            _note(
                "glue: WARNING: --insecure-no-host-key-check: the SSH server's identity is "
                "NOT verified"
            )
    return auth


@app.command("status")
def status_cmd(
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="also what each environment runs (deploy records, Helm's storage); flag drift",
        ),
    ] = False,
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="kubeconfig file (with --cluster)")
    ] = None,
    output: OutputOpt = Output.text,
) -> None:
    """Show which tag (and revision) each service has in each environment."""
    from . import gitrepo, status

    loaded = _loaded()
    if cluster:
        from . import deploy
        from .kube import Kube

        def namespaces(env: str) -> dict[str, str]:
            target = deploy.Target(env=env, root=loaded.root, tools=deploy.Tools.from_env())
            return {r.name: r.namespace for r in deploy.list_releases(target)}

        view = status.collect_cluster(
            loaded.config, gitrepo.worktree_reader(loaded.root), Kube(kubeconfig), namespaces
        )
        _emit(output, view.to_json(), view.table())
        return
    report = status.collect(loaded.config, gitrepo.worktree_reader(loaded.root))
    _emit(output, report.to_json(), report.table())


# --------------------------------------------------------------------------- images


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
    dry_run: Annotated[
        bool, typer.Option("--dry-run", envvar="GLUE_DRY_RUN", help="print; send nothing")
    ] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Announce a new image in Slack and hand its details to the next CI job."""
    from . import ci, slack
    from .announce import AnnounceRequest, announce

    ctx = ci.detect()
    if ctx.system == "" and not (revision or branch):
        ctx = _local_git_context(ctx)
    req = AnnounceRequest(
        image=image,
        tag=tag,
        service=service,
        verify=verify,
        revision=revision,
        branch=branch,
        author=author,
        commit_title=commit_title or _commit_title(ctx),
        template=template or _repo_template("announce"),
    )
    result = announce(
        req,
        ctx,
        slack.Target.from_env(channel=channel),
        dry_run=dry_run,
        progress=lambda m: _note(f"glue: {m}"),
    )
    ci.write_outputs(result.announcement.outputs(), dotenv=str(dotenv) if dotenv else None)
    if output is Output.json:
        _emit(output, result.to_json(), "")
        return
    a = result.announcement
    if result.posted is not None:
        typer.echo(
            f"announced {a.service} {a.tag} to {result.sent_to}"
            + (f" (digest {a.digest})" if a.digest else "")
        )
        return
    typer.echo(result.message.text)
    for block in result.message.payload().get("blocks", []):
        if block["type"] == "section" and "text" in block:
            typer.echo(block["text"]["text"])
    if dry_run:
        _note("glue: dry run: nothing was sent")
    else:
        _note(
            "glue: Slack is not configured (set SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN and "
            "SLACK_CHANNEL): the message was printed, not sent"
        )


def _local_git_context(ctx: Any) -> Any:
    """Outside CI: the current git checkout's HEAD commit and branch, if any."""
    import dataclasses

    try:
        import pygit2

        repo = pygit2.Repository(str(Path.cwd()))
        head = repo.head.peel(pygit2.Commit)
    except Exception:  # not a checkout, or no commits: announce without it
        return ctx
    branch = "" if repo.head_is_detached else repo.head.shorthand
    return dataclasses.replace(
        ctx,
        commit=str(head.id),
        ref=branch,
        commit_title=head.message.splitlines()[0] if head.message else "",
        commit_author=head.author.name,
    )


def _commit_title(ctx: Any) -> str | None:
    return str(ctx.commit_title) or None


def _repo_template(name: str) -> Path | None:
    """The template glue.yaml names for ``name``, when a glue.yaml is found."""
    from .config import parse_config
    from .errors import ConfigError
    from .fsutil import find_config, read_text

    try:
        path = find_config(State.directory)
    except ConfigError:
        return None
    chosen = getattr(parse_config(read_text(path), str(path)).templates, name)
    return path.parent / chosen if chosen else None


@app.command("wait-image")
def wait_image_cmd(
    image: Annotated[str, typer.Option(envvar="GLUE_IMAGE", help="REGISTRY/NAME of the image")],
    tag: Annotated[str, typer.Option(envvar="GLUE_TAG", help="the tag to wait for")],
    timeout: Annotated[str, typer.Option(help="how long to wait: 90s, 10m, 1h")] = "10m",
    interval: Annotated[str, typer.Option(help="time between checks")] = "5s",
    output: OutputOpt = Output.text,
) -> None:
    """Wait until IMAGE:TAG exists in its registry; print its digest."""
    from . import oci

    digest = oci.wait_for(
        image,
        tag,
        oci.parse_duration(timeout),
        oci.parse_duration(interval),
        progress=lambda m: _note(f"glue: {m}"),
    )
    _emit(output, {"image": image, "tag": tag, "digest": digest}, digest)


# --------------------------------------------------------------------------- deploy

SelectorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--selector",
        "-l",
        envvar="GLUE_SELECTOR",
        help="helmfile release selector (repeat: OR), like service=a",
    ),
]
KubeconfigOpt = Annotated[
    str | None, typer.Option(envvar="KUBECONFIG", help="kubeconfig file (default: kubectl's)")
]
ExtraArgs = Annotated[list[str] | None, typer.Argument(help="extra helmfile arguments, after --")]


def _target(env: str, selector: list[str] | None, extra: list[str] | None) -> Any:
    """What helmfile deploys; glue.yaml is found but not read (that is :func:`_env_config`)."""
    from .deploy import Target, Tools
    from .fsutil import find_config

    return Target(
        env=env,
        root=find_config(State.directory).parent,
        selectors=tuple(selector or ()),
        extra_args=tuple(extra or ()),
        tools=Tools.from_env(),
    )


def _env_config(env: str) -> Any:
    """glue.yaml, refusing an environment it does not name."""
    loaded = _loaded()
    loaded.config.environment(env)
    return loaded


def _deploy_target(env: str, selector: list[str] | None, extra: list[str] | None) -> Any:
    loaded = _env_config(env)  # unknown environments fail here, before helmfile runs
    return loaded, _target(env, selector, extra)


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
    from . import deploy

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
    _emit(
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
    from . import ci, deploy, kube
    from .kube import Kube
    from .lock import identity
    from .oci import parse_duration

    if recover not in ("auto", "never"):
        raise UsageError(f"--recover {recover!r}: use auto or never")
    if changed_only:
        if selector:
            raise UsageError("--changed-only picks the releases itself: drop --selector")
        changes = _changed_report(env, None, kubeconfig)
        if not changes.selectors:
            done = f"deployed {env}: nothing changed since {changes.since} (--changed-only)"
            _emit(
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
        _note(f"glue: --changed-only: deploying {', '.join(changes.changed)}")
        selector = changes.selectors
    if dry_run:
        diff_cmd(env=env, selector=selector, summary_file=None, output=output, extra=extra)
        return
    # helmfile starts before glue.yaml is read (apply gates it until the lock is held).
    target = _target(env, selector, extra)

    def load() -> Any:
        loaded = _env_config(env)
        kube.warm_up()
        return loaded

    opts = deploy.ApplyOptions(
        timeout=parse_duration(timeout),
        lock_timeout=parse_duration(lock_timeout),
        recover="never" if recover == "never" else "auto",
        holder=identity(ci.detect().pipeline_url),
    )
    say = (_note) if output is Output.json else (typer.echo)
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
    _emit(output, result.to_json(), "\n".join(text))


def _failure_lines(path: Path | None) -> tuple[str, ...]:
    from . import notify
    from .fsutil import read_text

    if path is None or not path.is_file():
        return ()
    try:
        return notify.failure_lines(json.loads(read_text(path)))
    except ValueError:
        raise UsageError(f"{path}: not a glue apply report (JSON)") from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from .fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


@app.command("unlock")
def unlock_cmd(
    env: Annotated[str, typer.Option("--env", "-e", envvar="GLUE_ENV", help="environment")],
    kubeconfig: KubeconfigOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Remove ENV's deploy lock (for humans, when a dead job's lock is in the way)."""
    from . import lock
    from .kube import Kube

    environment = _loaded().config.environment(env)
    kube = Kube(kubeconfig)
    if dry_run:
        _emit(output, {"environment": env, "dry_run": True}, f"would remove the lock of {env}")
        return
    holder = lock.unlock(kube, environment.record_namespace, env)
    text = (
        f"removed the deploy lock of {env} (held by {holder.identity})"
        if holder
        else f"{env} was not locked"
    )
    _emit(output, {"environment": env, "removed_holder": holder.identity if holder else None}, text)


# --------------------------------------------------------------------------- notify


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
    from . import ci, notify, slack
    from .errors import ConfigError
    from .fsutil import find_config
    from .kube import Kube
    from .record import ServiceVersion

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
            config = _loaded()
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
            from .gitrepo import worktree_reader

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
            template=template or (_repo_template("notify") if config else None),
            failure=_failure_lines(apply_report) if phase == "failed" else (),
        )
        result = notify.notify(
            req,
            Kube(kubeconfig),
            slack.Target.from_env(channel=channel),
            dry_run=dry_run,
            progress=lambda m: _note(f"glue: {m}"),
        )
    except Exception as exc:
        if not best_effort or isinstance(exc, typer.Exit):
            raise
        from .redact import redact

        _note(f"glue: warning: no notification sent (--best-effort): {redact(str(exc))}")
        return
    for note in result.notes:
        _note(f"glue: note: {note}")
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
        _note(f"glue: {result.skipped}: nothing was sent")


# --------------------------------------------------------------------------- promote / release
# (issue 9: gitops_glue/promote.py, rollback.py, changed.py)

RemoteOpt = Annotated[
    str | None,
    typer.Option(
        envvar="GLUE_REMOTE",
        help="deployment repo URL: change it there, no checkout needed "
        "(ssh://..., git@host:path or https://...)",
    ),
]
BranchOpt = Annotated[
    str, typer.Option(envvar="GLUE_BRANCH", help="branch of --remote to commit to")
]
SshKeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="GLUE_SSH_KEY_FILE",
        help="deploy key file (or GLUE_SSH_KEY with the key text)",
    ),
]
KnownHostsOpt = Annotated[
    Path | None,
    typer.Option("--known-hosts", help="known_hosts file (or GLUE_SSH_KNOWN_HOSTS with the lines)"),
]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure-no-host-key-check",
        help="DANGEROUS: accept any SSH host key (man-in-the-middle possible)",
    ),
]
MaxAttemptsOpt = Annotated[
    int,
    typer.Option(
        envvar="GLUE_MAX_ATTEMPTS", min=1, max=50, help="pushes to try when others push too"
    ),
]


def _remote_spec(
    remote: str,
    branch: str,
    max_attempts: int,
    ssh_key_file: Path | None,
    known_hosts: Path | None,
    insecure: bool,
) -> tuple[Any, Any]:
    from .remote import RemoteSpec

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
    from . import ci, promote

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
            progress=lambda m: _note(f"glue: {m}"),
        )
    else:
        result = promote.promote_local(
            _loaded(), target=to, services=services, source=from_env, ci=ctx, dry_run=dry_run
        )
    for note in result.plan.notes:
        _note(f"glue: note: {note}")
    data = result.to_json()
    if dry_run and result.plan.edit:
        data["diff"] = result.plan.edit.diff()
    _emit(output, data, result.summary())


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
    from . import ci, promote

    if (tag is None) == (source_branch is None):
        raise UsageError("give exactly one of --tag TAG and --branch BRANCH")
    ctx = ci.detect()
    if tag is None:
        assert source_branch is not None
        config = _remote_or_local_config(
            remote, repo_branch, ssh_key_file, known_hosts, insecure_no_host_key_check
        )
        found = promote.newest_branch_tag(config, service, source_branch)
        _note(f"glue: newest tag of {service} for branch {source_branch}: {found.tag}")
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
            spec, auth, req, dry_run=dry_run, progress=lambda m: _note(f"glue: {m}")
        )
    else:
        result = promote.release_local(_loaded(), req, dry_run=dry_run)
    data = result.to_json()
    if dry_run and result.plan.edit:
        data["diff"] = result.plan.edit.diff()
    _emit(output, data, result.summary())


def _remote_or_local_config(
    remote: str | None,
    branch: str,
    ssh_key_file: Path | None,
    known_hosts: Path | None,
    insecure: bool,
) -> Any:
    """glue.yaml of the remote's branch tip (with --remote) or of the checkout."""
    if not remote:
        return _loaded().config
    from .remote import read_remote_config

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
    from . import ci, rollback

    ctx = ci.detect()
    if remote:
        spec, auth = _remote_spec(
            remote, branch, max_attempts, ssh_key_file, known_hosts, insecure_no_host_key_check
        )
        result = rollback.rollback_remote(
            spec, auth, env, to=to, ci=ctx, dry_run=dry_run, progress=lambda m: _note(f"glue: {m}")
        )
    else:
        result = rollback.rollback_local(_loaded(), env, to=to, ci=ctx, dry_run=dry_run)
    data = result.to_json()
    if dry_run:
        data["diff"] = result.plan.diff()
    _emit(output, data, result.summary())


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
    _emit(output, report.to_json(), report.text())


def _changed_report(env: str, since: str | None, kubeconfig: str | None) -> Any:
    from . import changed
    from .deploy import Tools

    loaded = _loaded()
    loaded.config.environment(env)
    source = "--since"
    if since is None:
        from .kube import Kube

        since = changed.deployed_revision(loaded, env, Kube(kubeconfig))
        source = "record"
    return changed.changed_releases(loaded, env, Tools.from_env(), since=since, since_source=source)


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
    _emit(
        output,
        {"branch": source_branch, "environment": env, "release": allowed},
        "true" if allowed else "false",
    )


# --------------------------------------------------------------------------- entry point


def _fail(code: ExitCode, message: str) -> NoReturn:
    if message:
        from .redact import redact

        typer.echo(f"glue: error: {redact(message)}", err=True)
    sys.exit(int(code))


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: the one place that turns exceptions into exit codes."""
    try:
        _run(argv)
    except SystemExit as done:
        if argv is None and "kubernetes" in sys.modules and isinstance(done.code, int):
            # Tearing down the Kubernetes client's ~1000 modules takes a tenth of a
            # second at exit; the command has finished, so leave without it.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code)
        raise
    raise AssertionError("unreachable")  # _run always exits


def _run(argv: list[str] | None) -> NoReturn:
    try:
        # Without standalone mode click returns typer.Exit's code instead of raising it.
        code = app(args=argv, prog_name="glue", standalone_mode=False)
    except GlueError as exc:
        _fail(exc.exit_code, str(exc))
    except (KeyboardInterrupt, typer.Abort):
        _fail(ExitCode.INTERRUPTED, "interrupted")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(int(ExitCode.FAILED))
    except Exception as exc:
        # click's usage errors (typer may vendor its own click): print usage, exit 2.
        show = getattr(exc, "show", None)
        if show is None or not hasattr(exc, "exit_code"):
            raise
        show()
        sys.exit(int(ExitCode.BAD_INPUT))
    sys.exit(code if isinstance(code, int) else int(ExitCode.OK))
