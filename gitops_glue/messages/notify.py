"""``glue notify``: tell people a deployment started, finished, failed or was rolled back.

The message says what changes (:mod:`gitops_glue.messages.changes`): each service's
old and new tag, linked to its source revision, the services that stay the same,
who triggered it and from which pipeline (:mod:`gitops_glue.messages.notice`).

* **Old** versions come from the cluster, never from the command line: the
  release's record ConfigMap ``glue-deployed-<env>.<release>`` (rendered by the
  chart when its notify hooks are on) wins over the environment's deploy record
  ``glue-deployed-<env>`` (written by ``glue apply``); neither means "first
  deployment".
* **New** versions are what is being deployed (:class:`Deployment`): the
  effective values of the environment in a checkout of the deployment repository,
  or (in a Helm hook Job, which has no checkout) one service's tag and revision
  handed over by the chart.
* A start phase keeps what it saw in the cluster
  (:mod:`gitops_glue.cluster.notify_state`), so the finish message of the same
  deployment reports the same change and threads under (or updates) the start
  message, even though the record has moved on by then.

Everything here returns values; nothing prints or exits.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gitops_glue.cluster import record
from gitops_glue.cluster.diagnose import FailureReport
from gitops_glue.cluster.notify_state import SavedStart, read_state, save_state, state_name
from gitops_glue.errors import UsageError
from gitops_glue.messages import slack
from gitops_glue.messages.changes import compute
from gitops_glue.messages.notice import Notice, build_message
from gitops_glue.messages.phase import Phase
from gitops_glue.naming import default_namespace
from gitops_glue.service_version import ServiceVersion

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.config import LoadedConfig
    from gitops_glue.integrations.ci import CiContext

ThreadMode = Literal["reply", "update"]


@dataclass(frozen=True)
class NotifyRequest:
    """What ``glue notify`` was asked; glue.yaml, the CI and the defaults fill the rest
    (:func:`with_defaults`)."""

    phase: Phase
    environment: str
    #: Where glue.yaml is looked for (a hook Job has none: then ``tag`` is needed).
    directory: Path = Path()
    #: Only these services; with ``tag``: the one service being deployed.
    services: tuple[str, ...] = ()
    #: Hook mode: the tag being deployed (no checkout, no glue.yaml needed).
    tag: str | None = None
    revision: str | None = None
    source_repo: str | None = None
    release: str | None = None
    record_namespace: str | None = None
    actor: str | None = None
    pipeline_url: str | None = None
    quiet_when_unchanged: bool | None = None
    thread: ThreadMode | None = None
    template: Path | None = None
    #: ``glue apply --report`` file: the failed phase names the failing pods.
    apply_report: Path | None = None
    kubeconfig: str | None = None
    #: Overrides the environment's kube context (glue.yaml, helmfile).
    kube_context: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Deployment:
    """What is being deployed: the new versions, and where the old ones are recorded."""

    record_namespace: str
    #: The versions being deployed, by service.
    new: dict[str, ServiceVersion]
    #: Service -> helm release, for the per-release records.
    releases: dict[str, str]
    sources: dict[str, str | None] = field(default_factory=dict)
    #: Only these services are deployed (a hook Job's release); None: the whole environment.
    scope: list[str] | None = None
    #: The release a hook Job notifies for (per-release state); None: per environment.
    state_release: str | None = None
    #: Services held in the environment (``glue hold``): marked in the message.
    held: tuple[str, ...] = ()
    #: ``(service, "45m in staging")``: the soak each promoted version passed.
    proven: tuple[tuple[str, str], ...] = ()
    #: Why the deploy failed (``glue apply --report`` lines), for the failed phase.
    failure: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotifyResult:
    notice: Notice
    message: slack.Message
    sent_to: str
    posted: slack.Posted | None
    dry_run: bool
    skipped: str  # why nothing was sent ("" when sent or not configured)
    thread_ts: str | None
    updated: bool
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.notice.phase.value,
            **self.notice.changes.to_json(),
            "sent": self.posted is not None,
            "sent_to": self.sent_to,
            "skipped": self.skipped or None,
            "slack_ts": self.posted.ts if self.posted else None,
            "thread_ts": self.thread_ts,
            "updated": self.updated,
            "dry_run": self.dry_run,
            "notes": self.notes,
            "message": self.message.payload(),
        }


def notify(
    req: NotifyRequest,
    what: Deployment,
    kube: Kube,
    target: slack.Target,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> NotifyResult:
    """Compare ``what`` with the record (or the start's state), build the message, send it;
    a start phase keeps what it saw for the finish message. ``req`` has its defaults
    (:func:`with_defaults`)."""
    kind = req.phase.kind
    notes: list[str] = []
    ns = what.record_namespace
    sname = state_name(req.environment, what.state_release)
    saved: SavedStart | None = None
    if kind != "start":
        saved = read_state(kube, ns, sname)
        if saved is not None and kind != "rollback" and not saved.same_deployment(what.new):
            notes.append(f"ConfigMap {ns}/{sname} describes another deployment: not used")
            saved = None
    if kind == "start":
        old = read_old(kube, ns, req.environment, what.releases)
    elif saved is None:
        # A release's own record was applied by this very deploy: only the
        # environment's record can still tell what ran before.
        old = read_old(kube, ns, req.environment, {})
    elif kind == "rollback":
        # Rolling back: what ran before is what the interrupted deployment put there.
        old = saved.new
    else:
        old = saved.old
    changes = compute(
        req.environment,
        old,
        what.new,
        sources=what.sources,
        scope=what.scope,
        held=what.held,
        proven=dict(what.proven),
    )
    notice = Notice(
        req.phase,
        changes,
        req.actor or "",
        req.pipeline_url or "",
        failure=what.failure,
    )
    thread_ts = saved.ts if saved and target.uses_bot else None
    update = bool(thread_ts) and req.thread == "update"
    if update:
        notice = dataclasses.replace(notice, full=True)
    message = build_message(notice, req.template)

    skipped = ""
    if req.quiet_when_unchanged and not changes.has_changes:
        skipped = "nothing changed (quiet_when_unchanged)"
    elif dry_run:
        skipped = "dry run"
    elif not target.configured:
        skipped = "Slack is not configured"
    posted = None
    if not skipped:
        if update and saved and saved.channel:
            posted = slack.post(
                dataclasses.replace(target, channel=saved.channel),
                message,
                update_ts=thread_ts,
                progress=progress,
            )
        else:
            posted = slack.post(target, message, thread_ts=thread_ts, progress=progress)
    if kind == "start" and not dry_run:
        state = SavedStart(
            req.phase.value,
            None if old is None else dict(old),
            dict(what.new),
            posted.ts if posted else None,
            posted.channel if posted else None,
        )
        try:
            save_state(kube, ns, sname, state, create=what.state_release is None)
        except Exception as exc:  # the message went out; the finish message loses its thread
            notes.append(f"could not keep the start for the finish message: {exc}")
    return NotifyResult(
        notice,
        message,
        target.describe() if target.configured else "",
        posted,
        dry_run,
        skipped,
        thread_ts if posted else None,
        update and posted is not None,
        notes,
    )


def read_old(
    kube: Kube, namespace: str, env: str, releases: Mapping[str, str]
) -> dict[str, ServiceVersion] | None:
    """Recorded versions: per-release records over the environment's record; None if none."""

    env_record = record.read(kube, namespace, env)
    found = env_record is not None
    old = dict(env_record.services) if env_record else {}
    for rel in sorted(set(releases.values())):
        rec = record.read_release(kube, namespace, env, rel)
        if rec is None:
            continue
        found = True
        for service, release in releases.items():
            if release == rel and service in rec.services:
                v = rec.services[service]
                old[service] = ServiceVersion(v.tag, v.revision or None, v.release)
    return old if found else None


def config_for(req: NotifyRequest) -> LoadedConfig | None:
    """The deployment repo's glue.yaml; in hook mode (``tag``) it may be missing.

    A hook Job has no checkout: when no glue.yaml is found the config module (the
    glue.yaml model) is never imported.
    """
    from gitops_glue.errors import ConfigError
    from gitops_glue.files import find_config

    try:
        find_config(req.directory)
    except ConfigError:
        if req.tag is None:
            raise
        return None
    from gitops_glue.config import load_config

    return load_config(req.directory)


def with_defaults(req: NotifyRequest, ci: CiContext, loaded: LoadedConfig | None) -> NotifyRequest:
    """``req`` with what it leaves open taken from glue.yaml (``loaded``: its ``notify``
    settings and template) and from the CI (who deployed, the pipeline)."""
    settings = loaded.config.notify if loaded else None
    quiet = req.quiet_when_unchanged
    if quiet is None:
        quiet = bool(settings and settings.quiet_when_unchanged)
    return dataclasses.replace(
        req,
        actor=req.actor or ci.actor,
        pipeline_url=req.pipeline_url or ci.pipeline_url,
        quiet_when_unchanged=quiet,
        thread=req.thread or (settings.thread if settings else "reply"),
        template=req.template or (loaded.template("notify") if loaded else None),
    )


def deployment(req: NotifyRequest, loaded: LoadedConfig | None) -> Deployment:
    """Hook mode: the one service's ``tag``; else the checkout's versions of the environment.

    ``loaded``: :func:`config_for` ``req``.
    """
    env = req.environment
    if req.tag is not None:
        if len(req.services) != 1:
            raise UsageError("--tag needs exactly one --service: the service it is for")
        name = req.services[0]
        rel = req.release or name
        namespace = (
            loaded.config.environment(env).record_namespace if loaded else default_namespace(env)
        )
        what = Deployment(
            record_namespace=req.record_namespace or namespace,
            new={name: ServiceVersion(req.tag, req.revision or None, rel)},
            releases={name: rel},
            sources={name: req.source_repo or None},
            scope=[name],
            state_release=rel,
        )
    else:
        assert loaded is not None  # without tag, a missing glue.yaml was raised already
        from gitops_glue.repo import holds, versions
        from gitops_glue.repo.gitrepo import worktree_reader
        from gitops_glue.repo.proof import proven_in_checkout

        config = loaded.config
        environment = config.environment(env)
        read = worktree_reader(loaded.root)
        versions.require_files(read, config, environment)
        found = versions.deployed_all(read, config, environment, req.services)
        new = {name: v for name, v in found.items() if v.tag is not None}
        proven = proven_in_checkout(loaded.root, env, {k: v.tag for k, v in new.items() if v.tag})
        what = Deployment(
            record_namespace=req.record_namespace or environment.record_namespace,
            new=new,
            releases={name: config.service(name).release_name(name) for name in found},
            sources={name: config.service(name).source_repo for name in found},
            scope=list(req.services) if req.services else None,
            held=tuple(sorted(s for (e, s) in holds.load(read).holds if e == env)),
            proven=tuple(sorted(proven.items())),
        )
    if req.phase is Phase.failed:
        what = dataclasses.replace(what, failure=read_apply_report(req.apply_report))
    return what


def failure_lines(report: FailureReport) -> tuple[str, ...]:
    """The failing pods (and the error when no pod explains it), one line each."""
    lines = []
    for pod in report.failing_pods:
        text = pod.headline()
        if pod.logs:
            text += " | last log: " + " / ".join(pod.logs[-3:])
        lines.append(text)
    if not lines and report.error:
        lines = report.error.strip().splitlines()[-5:]
    return tuple(lines)


def read_apply_report(path: Path | None) -> tuple[str, ...]:
    """:func:`failure_lines` of a ``glue apply --report`` file; nothing when there is none."""
    from gitops_glue.files import read_text

    if path is None or not path.is_file():
        return ()
    try:
        data = json.loads(read_text(path))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a glue apply report (JSON)")
    return failure_lines(FailureReport.from_json(data))


def run(
    req: NotifyRequest,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> NotifyResult:
    """``glue notify``: fill in the request, then :func:`notify` through the cluster and Slack."""
    from gitops_glue.cluster import context
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.integrations import ci

    loaded = config_for(req)
    what = deployment(req, loaded)
    req = with_defaults(req, ci.detect(), loaded)
    kube = (
        context.for_environment(
            loaded, req.environment, kubeconfig=req.kubeconfig, context=req.kube_context
        ).kube()
        if loaded is not None  # the environment's own cluster
        else Kube(req.kubeconfig, req.kube_context)  # a hook Job: in-cluster config
    )
    return notify(
        req,
        what,
        kube,
        slack.Target.from_env(channel=req.channel),
        dry_run=dry_run,
        progress=progress,
    )
