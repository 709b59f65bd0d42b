"""``glue notify``: tell people a deployment started, finished, failed or was rolled back.

The message says what changes: each service's old and new tag (linked to its
source revision, with a compare link for GitHub/GitLab source repositories),
the services that stay the same (collapsed), who triggered it and from which
pipeline.

* **Old** versions come from the cluster, never from the command line: the
  release's record ConfigMap ``glue-deployed-<env>.<release>`` (rendered by the
  chart when its notify hooks are on) wins over the environment's deploy record
  ``glue-deployed-<env>`` (written by ``glue apply``); neither means "first
  deployment".
* **New** versions are what is being deployed: the effective values of the
  environment in a checkout of the deployment repository, or (in a Helm hook
  Job, which has no checkout) one service's tag and revision handed over by the
  chart.
* A start phase keeps what it saw (old and new versions, and with a bot token
  the Slack message ``ts``) in a small state ConfigMap, so the finish message
  of the same deployment reports the same change and threads under (or
  updates) the start message, even though the record has moved on by then.

Everything here returns values; nothing prints or exits.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gitops_glue.cluster import record
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import commit_url
from gitops_glue.messages import slack, templates
from gitops_glue.naming import default_namespace
from gitops_glue.service_version import ServiceVersion

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.config import GlueConfig, LoadedConfig
    from gitops_glue.integrations.ci import CiContext
    from gitops_glue.repo.versions import Reader

START_PHASES = ("pre-install", "pre-upgrade")
FINISH_PHASES = ("post-install", "post-upgrade")
PHASES = (*START_PHASES, *FINISH_PHASES, "post-rollback", "failed")
Kind = Literal["start", "finish", "rollback", "failed"]
Status = Literal["changed", "added", "removed", "unchanged"]
ThreadMode = Literal["reply", "update"]

#: How many changed services a short message names before "and N more".
SHORT_LIST = 5
#: How many unchanged services the collapsed line names before "and N more".
UNCHANGED_LIST = 20

_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def phase_kind(phase: str) -> Kind:
    if phase in START_PHASES:
        return "start"
    if phase in FINISH_PHASES:
        return "finish"
    if phase == "post-rollback":
        return "rollback"
    if phase == "failed":
        return "failed"
    raise UsageError(f"unknown phase {phase!r}", hint=f"use one of: {', '.join(PHASES)}")


# --------------------------------------------------------------------------- what changes


def _git_ref(v: ServiceVersion | None) -> str:
    """The source revision of a version: its revision, or a tag that is a commit SHA.

    A tag that is a commit SHA wins over a revision that is another commit (a
    revision left over from an older tag): never link a tag to a stale commit.
    """
    if v is None:
        return ""
    sha_tag = v.tag if v.tag and _SHA.match(v.tag) else ""
    if (
        v.revision
        and sha_tag
        and not (v.revision.startswith(sha_tag) or sha_tag.startswith(v.revision))
    ):
        return sha_tag
    return v.revision or sha_tag


def compare_url(repo_url: str | None, old: str, new: str) -> str:
    """Web link comparing two revisions on GitHub (``/compare/``) or GitLab (``/-/compare/``)."""
    if not repo_url or not old or not new or old == new:
        return ""
    base = repo_url.rstrip("/")
    return (
        f"{base}/compare/{old}...{new}" if "github" in base else f"{base}/-/compare/{old}...{new}"
    )


@dataclass(frozen=True)
class ServiceChange:
    service: str
    status: Status
    old: ServiceVersion | None
    new: ServiceVersion | None
    source_repo: str | None = None
    held: bool = False  # glue hold holds it in this environment
    #: The soak its promotion passed (``45m in staging``), from the ``Glue-Proven`` trailer.
    proven: str | None = None

    @property
    def revision_only(self) -> bool:
        """Same tag, different source revision (a rebuilt image)."""
        return (
            self.status == "changed"
            and self.old is not None
            and self.new is not None
            and (self.old.tag == self.new.tag)
        )

    def old_url(self) -> str:
        return commit_url(self.source_repo, _git_ref(self.old))

    def new_url(self) -> str:
        return commit_url(self.source_repo, _git_ref(self.new))

    def compare_url(self) -> str:
        if self.status != "changed":
            return ""
        return compare_url(self.source_repo, _git_ref(self.old), _git_ref(self.new))

    def summary(self) -> str:
        """Plain text: ``a 3f9c2e1 -> 4e5f6a7`` (`` (held)`` when glue hold holds it)."""
        proven = f" (proven: {self.proven})" if self.proven else ""
        return self._summary() + proven + (" (held)" if self.held else "")

    def _summary(self) -> str:
        o, n = self.old, self.new
        if self.status == "added":
            return f"{self.service} {n.tag if n else ''} (new)"
        if self.status == "removed":
            return f"{self.service} {o.tag if o else ''} (removed)"
        if self.status == "unchanged":
            return f"{self.service} {n.tag if n else ''}"
        assert o is not None and n is not None
        if self.revision_only:
            return (
                f"{self.service} {n.tag} (revision {(o.revision or '')[:7]} → "
                f"{(n.revision or '')[:7]})"
            )
        return f"{self.service} {o.tag} → {n.tag}"

    def to_json(self) -> dict[str, Any]:
        def side(v: ServiceVersion | None) -> dict[str, Any] | None:
            return None if v is None else {"tag": v.tag, "revision": v.revision}

        data = {
            "service": self.service,
            "status": self.status,
            "old": side(self.old),
            "new": side(self.new),
            "source_repo": self.source_repo,
            "old_url": self.old_url(),
            "new_url": self.new_url(),
            "compare_url": self.compare_url(),
        }
        if self.proven:
            data["proven"] = self.proven
        return data

    def template_vars(self) -> dict[str, Any]:
        o, n = self.old, self.new
        return {
            "service": self.service,
            "status": self.status,
            "revision_only": self.revision_only,
            "old_tag": o.tag if o else None,
            "new_tag": n.tag if n else None,
            "old_revision": o.revision if o else None,
            "new_revision": n.revision if n else None,
            "old_url": self.old_url(),
            "new_url": self.new_url(),
            "compare_url": self.compare_url(),
            "source_repo": self.source_repo,
            "held": self.held,
            "proven": self.proven,
        }


@dataclass(frozen=True)
class ChangeSet:
    environment: str
    first_deployment: bool
    services: list[ServiceChange]

    @property
    def changed(self) -> list[ServiceChange]:
        return [s for s in self.services if s.status != "unchanged"]

    @property
    def unchanged(self) -> list[ServiceChange]:
        return [s for s in self.services if s.status == "unchanged"]

    @property
    def has_changes(self) -> bool:
        return bool(self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "first_deployment": self.first_deployment,
            "changed": [s.service for s in self.changed],
            "unchanged": [s.service for s in self.unchanged],
            "services": [s.to_json() for s in self.services],
        }


def _same_revision(old: ServiceVersion, new: ServiceVersion) -> bool:
    # A revision known on one side only (an older record) is no evidence of a change.
    return not (old.revision and new.revision and old.revision != new.revision)


def compute(
    environment: str,
    old: Mapping[str, ServiceVersion] | None,
    new: Mapping[str, ServiceVersion],
    *,
    sources: Mapping[str, str | None] | None = None,
    scope: Collection[str] | None = None,
    held: Collection[str] = (),
    proven: Mapping[str, str] | None = None,
) -> ChangeSet:
    """Compare the recorded versions (``old``; None: nothing recorded) with ``new``.

    ``scope``: only these services are being deployed (a single release): the
    record's other services are neither "removed" nor listed.
    """
    sources = sources or {}
    recorded = dict(old or {})
    if scope is not None:
        recorded = {k: v for k, v in recorded.items() if k in scope}
    changes = []
    for name in sorted(set(recorded) | set(new)):
        o, n = recorded.get(name), new.get(name)
        status: Status
        if o is None:
            status = "added"
        elif n is None:
            status = "removed"
        elif o.tag == n.tag and _same_revision(o, n):
            status = "unchanged"
        else:
            status = "changed"
        soak = (proven or {}).get(name) if status in ("changed", "added") else None
        changes.append(ServiceChange(name, status, o, n, sources.get(name), name in held, soak))
    return ChangeSet(environment, old is None, changes)


# --------------------------------------------------------------------------- the message


@dataclass(frozen=True)
class Notice:
    """Everything a message is built from."""

    phase: str
    changes: ChangeSet
    actor: str = ""
    pipeline_url: str = ""
    full: bool | None = None  # None: full for start messages, short for the others
    failure: tuple[str, ...] = ()  # failing pods and the error, for failed messages

    @property
    def kind(self) -> Kind:
        return phase_kind(self.phase)

    @property
    def is_full(self) -> bool:
        return self.kind == "start" if self.full is None else self.full

    def title(self) -> str:
        env = self.changes.environment
        kind = self.kind
        if kind == "start":
            return (
                f"First deployment to {env}"
                if self.changes.first_deployment
                else f"Deploying to {env}"
            )
        if kind == "finish":
            return f"Deployed to {env}"
        if kind == "failed":
            return f"Deployment to {env} failed"
        return f"Rolled back {env}"

    def emoji(self) -> str:
        return {"start": "🚀", "finish": "✅", "failed": "❌", "rollback": "↩️"}[self.kind]

    def template_context(self) -> dict[str, Any]:
        c = self.changes
        return {
            "phase": self.phase,
            "kind": self.kind,
            "full": self.is_full,
            "title": self.title(),
            "emoji": self.emoji(),
            "environment": c.environment,
            "first_deployment": c.first_deployment,
            "has_changes": c.has_changes,
            "changed": [s.template_vars() for s in c.changed],
            "unchanged": [s.template_vars() for s in c.unchanged],
            "actor": self.actor,
            "pipeline_url": self.pipeline_url,
            "short_list": SHORT_LIST,
            "unchanged_list": UNCHANGED_LIST,
        }


def fallback_text(n: Notice) -> str:
    c = n.changes
    if not c.has_changes:
        what = "nothing changes" if n.kind == "start" else "nothing changed"
        return f"{n.title()}: {what}"
    shown = [s.summary() for s in c.changed[:SHORT_LIST]]
    more = len(c.changed) - len(shown)
    return f"{n.title()}: {', '.join(shown)}" + (f" and {more} more" if more else "")


def _sections(body: str) -> list[slack.Block]:
    """The body as section blocks: paragraphs packed into Slack's 3,000 characters."""
    blocks: list[slack.Block] = []
    chunk: list[str] = []
    size = 0
    for line in body.splitlines():
        if chunk and size + len(line) + 1 > slack.MAX_SECTION:
            blocks.append(slack.section("\n".join(chunk).strip("\n")))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if "\n".join(chunk).strip():
        blocks.append(slack.section("\n".join(chunk).strip("\n")))
    return blocks


def build_message(n: Notice, template: Path | None = None) -> slack.Message:
    """The Slack message; the body is the ``notify.md.j2`` template (or ``template``)."""
    body = templates.render("notify.md.j2", n.template_context(), template)
    text = fallback_text(n)
    if n.failure:
        lines = "\n".join(f"• {slack.escape(line)}" for line in n.failure[:20])
        body = f"{body}\n*Why:*\n{lines}"
    if not n.changes.has_changes or not n.is_full:
        # One line ("nothing changed") or a short confirmation: no header, no context.
        return slack.Message(text, _sections(body))
    trail = []
    if n.actor:
        trail.append(f"Triggered by {slack.escape(n.actor)}")
    if n.pipeline_url:
        trail.append(slack.link(n.pipeline_url, "pipeline"))
    return slack.Message(
        text, [slack.header(f"{n.emoji()} {n.title()}"), *_sections(body), slack.context(trail)]
    )


# --------------------------------------------------------------------------- cluster state


def state_name(env: str, release: str | None = None) -> str:
    """The notify state ConfigMap: per release in a hook Job, per environment from CI."""
    return f"glue-notify-{env}.{release}" if release else f"glue-notify-{env}"


@dataclass(frozen=True)
class SavedStart:
    """What a start phase saw, for the finish phase of the same deployment."""

    phase: str
    old: dict[str, ServiceVersion] | None
    new: dict[str, ServiceVersion]
    ts: str | None = None
    channel: str | None = None

    def to_data(self) -> dict[str, str]:
        def enc(m: Mapping[str, ServiceVersion]) -> dict[str, Any]:
            return {k: {"tag": v.tag, "revision": v.revision} for k, v in sorted(m.items())}

        return {
            "state.json": json.dumps(
                {
                    "phase": self.phase,
                    "old": None if self.old is None else enc(self.old),
                    "new": enc(self.new),
                    "ts": self.ts,
                    "channel": self.channel,
                },
                sort_keys=True,
            )
        }

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> SavedStart | None:
        try:
            raw = json.loads(data.get("state.json") or "null")
        except ValueError:
            return None
        if not isinstance(raw, dict):
            return None

        def dec(m: Any) -> dict[str, ServiceVersion]:
            return {
                str(k): ServiceVersion(v.get("tag"), v.get("revision"))
                for k, v in (m or {}).items()
            }

        return cls(
            phase=str(raw.get("phase", "")),
            old=None if raw.get("old") is None else dec(raw["old"]),
            new=dec(raw.get("new")),
            ts=raw.get("ts") or None,
            channel=raw.get("channel") or None,
        )

    def same_deployment(self, new: Mapping[str, ServiceVersion]) -> bool:
        return {k: (v.tag, v.revision) for k, v in self.new.items()} == {
            k: (v.tag, v.revision) for k, v in new.items()
        }


def read_state(kube: Kube, namespace: str, name: str) -> tuple[SavedStart | None, bool]:
    """The saved start (or None) and whether the ConfigMap exists."""
    cm = kube.read_config_map(namespace, name)
    if cm is None:
        return None, False
    return SavedStart.from_data(cm.data), True


def save_state(kube: Kube, namespace: str, name: str, state: SavedStart, *, create: bool) -> None:
    """Update the state ConfigMap; create it only when ``create`` (a chart owns the hook's)."""
    from gitops_glue.errors import OperationError

    cm = kube.read_config_map(namespace, name)
    if cm is not None:
        kube.update_config_map(cm, state.to_data())
        return
    if not create:
        raise OperationError(
            f"ConfigMap {namespace}/{name} does not exist",
            hint="the chart creates it when notify.enabled is true",
        )
    # From CI, the start message may come before the first deploy created the namespace.
    kube.ensure_namespace(namespace)
    kube.create_config_map(
        namespace,
        name,
        state.to_data(),
        {"app.kubernetes.io/managed-by": "gitops-glue", "gitops-glue.dev/kind": "notify-state"},
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


# --------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class NotifyRequest:
    phase: str
    environment: str
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
    actor: str = ""
    pipeline_url: str = ""
    quiet_when_unchanged: bool = False
    thread: ThreadMode = "reply"
    template: Path | None = None
    #: Why the deploy failed (``glue apply --report`` lines), for the failed phase.
    failure: tuple[str, ...] = ()
    #: Services held in the environment (``glue hold``): marked in the message.
    held: tuple[str, ...] = ()
    #: ``(service, "45m in staging")``: the soak each promoted version passed.
    proven: tuple[tuple[str, str], ...] = ()


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
            "phase": self.notice.phase,
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
    kube: Kube,
    target: slack.Target,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> NotifyResult:
    kind = phase_kind(req.phase)
    notes: list[str] = []
    ns = req.record_namespace
    sname = state_name(req.environment, req.state_release)
    saved: SavedStart | None = None
    if kind != "start":
        saved, _ = read_state(kube, ns, sname)
        if saved is not None and kind != "rollback" and not saved.same_deployment(req.new):
            notes.append(f"ConfigMap {ns}/{sname} describes another deployment: not used")
            saved = None
    if kind == "start":
        old = read_old(kube, ns, req.environment, req.releases)
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
        req.new,
        sources=req.sources,
        scope=req.scope,
        held=req.held,
        proven=dict(req.proven),
    )
    notice = Notice(
        req.phase,
        changes,
        req.actor,
        req.pipeline_url,
        failure=req.failure if kind == "failed" else (),
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
            req.phase,
            None if old is None else dict(old),
            dict(req.new),
            posted.ts if posted else None,
            posted.channel if posted else None,
        )
        try:
            save_state(kube, ns, sname, state, create=req.state_release is None)
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


# --------------------------------------------------------------------------- building requests


def from_checkout(
    config: GlueConfig,
    read: Reader,
    env: str,
    *,
    services: Collection[str] = (),
) -> tuple[dict[str, ServiceVersion], dict[str, str], dict[str, str | None], str]:
    """New versions, releases and source repos of ``env`` from a deployment repo checkout.

    Returns ``(new, releases, sources, record_namespace)``; ``services`` limits them.
    """
    from gitops_glue.repo import versions

    environment = config.environment(env)
    versions.require_files(read, config, environment)
    names = list(services) or list(config.services)
    new: dict[str, ServiceVersion] = {}
    releases: dict[str, str] = {}
    sources: dict[str, str | None] = {}
    for name in names:
        svc = config.service(name)
        version = versions.deployed(read, config, environment, name)
        releases[name] = svc.release_name(name)
        sources[name] = svc.source_repo
        if version.tag is None:
            continue  # not deployed to this environment
        new[name] = dataclasses.replace(version, digest=None)
    return new, releases, sources, environment.record_namespace


def failure_lines(report: Mapping[str, Any]) -> tuple[str, ...]:
    """The failing pods (and the error when no pod explains it) from ``glue apply --report``."""
    lines = []
    for pod in report.get("failing_pods") or []:
        where = f"{pod.get('namespace')}/{pod.get('pod')}"
        if pod.get("container"):
            where += f" [{pod['container']}]"
        text = f"{where}: {pod.get('reason')}"
        if pod.get("message"):
            text += f": {pod['message']}"
        logs = [str(x) for x in pod.get("logs") or []][-3:]
        if logs:
            text += " | last log: " + " / ".join(logs)
        lines.append(text)
    if not lines and report.get("error"):
        lines = str(report["error"]).strip().splitlines()[-5:]
    return tuple(lines)


def read_apply_report(path: Path | None) -> tuple[str, ...]:
    """:func:`failure_lines` of a ``glue apply --report`` file; nothing when there is none."""
    from gitops_glue.files import read_text

    if path is None or not path.is_file():
        return ()
    try:
        report = json.loads(read_text(path))
    except ValueError:
        report = None
    if not isinstance(report, dict):
        raise UsageError(f"{path}: not a glue apply report (JSON)")
    return failure_lines(report)


@dataclass(frozen=True)
class NotifyOptions:
    """What ``glue notify`` was asked; glue.yaml, the CI and the defaults fill the rest."""

    phase: str
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


def config_for(opts: NotifyOptions) -> LoadedConfig | None:
    """The deployment repo's glue.yaml; in hook mode (``tag``) it may be missing.

    A hook Job has no checkout: when no glue.yaml is found the config module (the
    glue.yaml model) is never imported.
    """
    from gitops_glue.errors import ConfigError
    from gitops_glue.files import find_config

    try:
        find_config(opts.directory)
    except ConfigError:
        if opts.tag is None:
            raise
        return None
    from gitops_glue.config import load_config

    return load_config(opts.directory)


def build_request(opts: NotifyOptions, ci: CiContext, loaded: LoadedConfig | None) -> NotifyRequest:
    """The request: hook mode (one service's ``tag``) or the checkout's versions of ``env``.

    ``loaded``: :func:`config_for` ``opts``.
    """
    kind = phase_kind(opts.phase)
    env = opts.environment
    if opts.tag is not None:
        if len(opts.services) != 1:
            raise UsageError("--tag needs exactly one --service: the service it is for")
        name = opts.services[0]
        rel = opts.release or name
        new = {name: ServiceVersion(opts.tag, opts.revision or None, rel)}
        releases: dict[str, str] = {name: rel}
        sources: dict[str, str | None] = {name: opts.source_repo or None}
        namespace = (
            loaded.config.environment(env).record_namespace if loaded else default_namespace(env)
        )
        scope: list[str] | None = [name]
        state_release: str | None = rel
        held: tuple[str, ...] = ()
        proven: tuple[tuple[str, str], ...] = ()
    else:
        assert loaded is not None  # without tag, a missing glue.yaml was raised above
        from gitops_glue.repo import holds
        from gitops_glue.repo.gitrepo import worktree_reader

        read = worktree_reader(loaded.root)
        new, releases, sources, namespace = from_checkout(
            loaded.config, read, env, services=opts.services
        )
        scope, state_release = (list(opts.services) if opts.services else None, None)
        held = tuple(sorted(s for (e, s) in holds.load(read).holds if e == env))
        proven = _proven_in_checkout(loaded.root, env, {k: v.tag for k, v in new.items() if v.tag})
    settings = loaded.config.notify if loaded else None
    quiet = opts.quiet_when_unchanged
    if quiet is None:
        quiet = bool(settings and settings.quiet_when_unchanged)
    thread: ThreadMode = opts.thread or (settings.thread if settings else "reply")
    return NotifyRequest(
        phase=opts.phase,
        environment=env,
        record_namespace=opts.record_namespace or namespace,
        new=new,
        releases=releases,
        sources=sources,
        scope=scope,
        state_release=state_release,
        actor=opts.actor or ci.actor,
        pipeline_url=opts.pipeline_url or ci.pipeline_url,
        quiet_when_unchanged=quiet,
        thread=thread,
        template=opts.template or (loaded.template("notify") if loaded else None),
        failure=read_apply_report(opts.apply_report) if kind == "failed" else (),
        held=held,
        proven=proven,
    )


def _proven_in_checkout(
    root: Path, env: str, tags: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """The soak each version in ``tags`` passed when promoted into ``env`` (from the
    checkout's history); nothing when the folder is not a git checkout."""
    from gitops_glue.repo.gitrepo import checkout_history
    from gitops_glue.repo.proof import proven_in_history

    history = checkout_history(root)
    if history is None:
        return ()
    return tuple(sorted(proven_in_history(history, env, tags).items()))


def run(
    opts: NotifyOptions,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> NotifyResult:
    """``glue notify``: build the request, then :func:`notify` through the cluster and Slack."""
    from gitops_glue.cluster import context
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.integrations import ci

    phase_kind(opts.phase)  # an unknown phase is refused before anything is read
    loaded = config_for(opts)
    req = build_request(opts, ci.detect(), loaded)
    kube = (
        context.for_environment(
            loaded, opts.environment, kubeconfig=opts.kubeconfig, context=opts.kube_context
        ).kube()
        if loaded is not None  # the environment's own cluster
        else Kube(opts.kubeconfig, opts.kube_context)  # a hook Job: in-cluster config
    )
    return notify(
        req,
        kube,
        slack.Target.from_env(channel=opts.channel),
        dry_run=dry_run,
        progress=progress,
    )
