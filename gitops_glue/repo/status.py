"""``glue status``: which tag and revision each service has in each environment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gitops_glue.cluster.record import still_failing
from gitops_glue.config import GlueConfig
from gitops_glue.durations import parse_instant
from gitops_glue.repo import history, holds, versions
from gitops_glue.repo.proof import short

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.cluster.record import FailedDeploy, Verified
    from gitops_glue.freeze import Freeze
    from gitops_glue.service_version import ServiceVersion


@dataclass(frozen=True)
class Cell:
    env: str
    service: str
    tag: str | None
    revision: str | None
    file: str | None  # where the tag is set
    why_empty: str | None = None  # why there is no tag: a missing file, the key set nowhere
    hold: holds.Mark | None = None  # glue hold: who, when, why
    digest: str | None = None  # the digest pinned next to the tag (digest_key)
    #: ``--verify-digests``: the registry's digest of the tag when it differs (moved tag)
    registry_digest: str | None = None


@dataclass(frozen=True)
class StatusReport:
    environments: list[str]
    services: list[str]
    cells: list[Cell]
    rejected: dict[tuple[str, str], holds.Mark] = field(default_factory=dict)
    #: holds on an environment or service glue.yaml does not list: (ENV, SERVICE) -> mark
    unlisted_holds: dict[tuple[str, str], holds.Mark] = field(default_factory=dict)
    #: each service's recent glue commits, and when each tag was set (the git history)
    history: history.Recent = field(default_factory=lambda: history.Recent({}, {}))
    #: service -> its source repository's web URL (glue.yaml ``source_repo``)
    source_repos: dict[str, str] = field(default_factory=dict)
    #: the freeze of each environment with freeze windows: in force now, and the next
    freezes: list[Freeze] = field(default_factory=list)

    def cell(self, service: str, env: str) -> Cell:
        return next(c for c in self.cells if c.service == service and c.env == env)

    def to_json(self) -> dict[str, object]:
        rejected: dict[str, dict[str, object]] = {}
        for (service, tag), mark in sorted(self.rejected.items()):
            rejected.setdefault(service, {})[tag] = mark.to_json()
        data: dict[str, object] = {
            "environments": self.environments,
            "services": {
                s: {
                    e: {
                        "tag": c.tag,
                        "revision": c.revision,
                        "file": c.file,
                    }
                    | ({"why_empty": c.why_empty} if c.why_empty else {})
                    | ({"hold": c.hold.to_json()} if c.hold else {})
                    | ({"digest": c.digest} if c.digest else {})
                    | ({"digest_mismatch": c.registry_digest} if c.registry_digest else {})
                    for e in self.environments
                    for c in [self.cell(s, e)]
                }
                for s in self.services
            },
        }
        if rejected:
            data["rejected"] = rejected
        unlisted: dict[str, dict[str, object]] = {}
        for (env, service), mark in sorted(self.unlisted_holds.items()):
            unlisted.setdefault(env, {})[service] = mark.to_json()
        if unlisted:
            data["unlisted_holds"] = unlisted
        if self.freezes:
            data["freeze"] = {f.env: f.to_json() for f in self.freezes}
        return data | _history_json(self.history, self.source_repos)

    def table(self) -> str:
        def show(c: Cell) -> str:
            text = c.tag if c.tag is not None else f"- ({c.why_empty or 'not set'})"
            if c.revision and c.tag and not c.revision.startswith(c.tag):
                text += f" @{c.revision[:7]}"
            if c.hold:
                text += " (held)"
            if c.digest:
                text += f" {short(c.digest)}"
            if c.registry_digest:
                text += " DIGEST-MISMATCH"
            return text

        header = ["SERVICE", *self.environments]
        rows = [[s, *(show(self.cell(s, e)) for e in self.environments)] for s in self.services]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(col.ljust(w) for col, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *rows]
        ]
        marks = [(c.env, c.service, c.hold) for c in self.cells if c.hold]
        if marks or self.rejected or self.unlisted_holds or self.freezes:
            lines.append("")
        lines += [f.text() for f in self.freezes if f.frozen]
        lines += [f.next_text() for f in self.freezes]
        lines += [f"held: {s} in {e} {m.text()}" for e, s, m in marks]
        for (e, s), m in sorted(self.unlisted_holds.items()):
            unknown = e if e not in self.environments else s
            lines.append(
                f"held: {s} in {e} {m.text()} ({unknown} is not in glue.yaml; "
                f"glue unhold {s} --env {e} removes the hold)"
            )
        lines += [f"rejected: {s} {t} {m.text()}" for (s, t), m in sorted(self.rejected.items())]
        lines += [
            f"digest mismatch: {c.env}/{c.service}: the registry has {c.tag} at "
            f"{c.registry_digest}, the files pin {c.digest}"
            for c in self.cells
            if c.registry_digest
        ]
        return "\n".join(lines)

    @property
    def digest_mismatch(self) -> bool:
        return any(c.registry_digest for c in self.cells)


def verify_digests(config: GlueConfig, report: StatusReport) -> StatusReport:
    """``report`` with every pinned digest checked against the registry's for its tag."""
    import dataclasses

    from gitops_glue.integrations import oci

    cells = []
    for cell in report.cells:
        image = config.service(cell.service).image
        if cell.digest and cell.tag and image:
            _ref, now = oci.resolve(image, cell.tag)
            if now != cell.digest:
                moved = now or "(tag not in the registry)"
                cell = dataclasses.replace(cell, registry_digest=moved)  # noqa: PLW2901
        cells.append(cell)
    return dataclasses.replace(report, cells=cells)


def collect(
    config: GlueConfig, read: versions.Reader, now: dt.datetime | None = None
) -> StatusReport:
    """The tags, holds and rejections of ``config``'s environments; with ``now``, their
    freeze windows at that instant too."""
    from gitops_glue import freeze

    ledger = holds.load(read)
    cells = []
    for env in config.environments:
        for name in config.services:
            v = versions.read_version(read, config, env, name)
            cells.append(
                Cell(
                    env.name,
                    name,
                    v.tag,
                    v.revision,
                    v.file,
                    v.why_empty,
                    ledger.hold(env.name, name),
                    v.digest,
                )
            )
    listed = {(e.name, s) for e in config.environments for s in config.services}
    return StatusReport(
        config.environment_names(),
        list(config.services),
        cells,
        dict(ledger.rejected),
        {k: m for k, m in ledger.holds.items() if k not in listed},
        freezes=[freeze.of_environment(e, now) for e in config.environments if e.freeze and now],
    )


def _history_json(recent: history.Recent, sources: dict[str, str]) -> dict[str, object]:
    """``history`` (service -> its last glue commits, newest first), ``changed_at``
    (service -> env -> when glue last set its tag) and ``source_repos``."""
    changed: dict[str, dict[str, str]] = {}
    for (service, env), at in sorted(recent.changed_at.items()):
        changed.setdefault(service, {})[env] = at
    return {
        "history": {s: [e.to_json() for e in events] for s, events in recent.events.items()},
        "changed_at": changed,
        "source_repos": dict(sorted(sources.items())),
    }


_R = TypeVar("_R", "StatusReport", "ClusterReport")


def with_history(config: GlueConfig, root: Path, report: _R) -> _R:
    """``report`` with the checkout's history at ``root`` (none outside a checkout)."""
    import dataclasses

    from gitops_glue.repo.gitrepo import checkout_history

    found = checkout_history(root)
    recent = history.recent(
        found.first_parents() if found else (), config.services, config.environment_names()
    )
    sources = {n: s.source_repo for n, s in config.services.items() if s.source_repo}
    return dataclasses.replace(report, history=recent, source_repos=sources)


# --------------------------------------------------------------------------- cluster view

#: The reason shown for a failed deploy the record gives none for: helmfile failed.
HELMFILE_FAILED = "helmfile apply failed"


@dataclass(frozen=True)
class Verification:
    """``glue apply --verify``'s verdict on a service in an environment, from the record:
    ``verified`` (``tag`` passed at ``at``), ``failed`` (``tag`` failed at ``at``, for
    ``reason``) or ``unverified`` (neither: deployed without ``--verify``, or never)."""

    state: str
    tag: str | None = None
    at: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"state": self.state, "tag": self.tag, "at": self.at, "reason": self.reason}


def verification_state(
    running: ServiceVersion | None,
    failed: FailedDeploy | None,
    verified: Verified | None,
) -> Verification:
    """The verdict on a service from its deploy record entries: ``running`` (what the
    record says runs, ``services.json``), its ``failed`` and ``verified`` entries.

    ``failed`` when the failed attempt is not older than the running version's
    ``since`` (or nothing of it ever ran, or ``since`` is unknown); else ``verified``
    when the verified tag is the running tag; else ``unverified``.
    """
    if failed is not None and still_failing(failed, running.since if running else None):
        return Verification("failed", failed.tag, failed.at, failed.reason or HELMFILE_FAILED)
    if running is not None and verified is not None and verified.tag == running.tag:
        return Verification("verified", verified.tag, verified.at)
    return Verification("unverified")


@dataclass(frozen=True)
class ClusterCell:
    env: str
    service: str
    git_tag: str | None  # what the checkout says
    deployed_tag: str | None  # the deploy record (what glue apply last deployed)
    release: str
    namespace: str | None
    helm_revision: int | None  # latest deployed revision in Helm's storage
    images: tuple[str, ...]  # container images in that revision's manifest
    problems: tuple[str, ...]  # drift: the cluster is not what glue deployed
    pending: bool  # git differs from what is deployed (not drift: not deployed yet)
    verification: Verification = Verification("unverified")
    hold: holds.Mark | None = None  # glue hold on the service in the environment
    digest: str | None = None  # the digest git pins next to the tag (digest_key)

    def to_json(self) -> dict[str, object]:
        return {
            "git": self.git_tag,
            **({"digest": self.digest} if self.digest else {}),
            "deployed": self.deployed_tag,
            "release": self.release,
            "namespace": self.namespace,
            "helm_revision": self.helm_revision,
            "images": list(self.images),
            "drift": list(self.problems),
            "pending_deploy": self.pending,
            "verification": self.verification.to_json(),
            "hold": self.hold.to_json() if self.hold else None,
        }


@dataclass(frozen=True)
class ClusterReport:
    environments: list[str]
    services: list[str]
    cells: list[ClusterCell]
    records: dict[str, dict[str, str]]  # env -> git revision / deployed at / by
    history: history.Recent = field(default_factory=lambda: history.Recent({}, {}))
    source_repos: dict[str, str] = field(default_factory=dict)
    #: env -> what ``glue sync`` last did there (environments it pulls only).
    syncs: dict[str, dict[str, object]] = field(default_factory=dict)
    #: git's side that the cluster does not change: rejected tags, freeze windows
    rejected: dict[tuple[str, str], holds.Mark] = field(default_factory=dict)
    freezes: list[Freeze] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return any(c.problems for c in self.cells)

    def to_json(self) -> dict[str, object]:
        return (
            {
                "environments": {
                    e: {
                        "record": self.records.get(e),
                        "sync": self.syncs.get(e),
                        "services": {c.service: c.to_json() for c in self.cells if c.env == e},
                    }
                    for e in self.environments
                },
                "drift": self.drift,
            }
            | _git_facts(self.rejected, self.freezes)
            | _history_json(self.history, self.source_repos)
        )

    def table(self) -> str:
        def show(c: ClusterCell) -> str:
            text = f"{c.git_tag or '-'}"
            if c.deployed_tag != c.git_tag:
                text += f" (runs {c.deployed_tag or 'nothing'})"
            if c.problems:
                text += " DRIFT"
            if c.verification.state == "failed":
                text += " FAILED"
            elif c.deployed_tag is not None:  # something runs: verified or not
                text += f" {c.verification.state}"
            if c.hold:
                text += " (held)"
            return text

        header = ["SERVICE", *self.environments]
        cell = {(c.service, c.env): c for c in self.cells}
        rows = [[s, *(show(cell[(s, e)]) for e in self.environments)] for s in self.services]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(col.ljust(w) for col, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *rows]
        ]
        lines.append("")
        lines.append("git tag, (runs X) = the deploy record differs: not deployed yet")
        lines.append("verified, unverified, FAILED = glue apply --verify's verdict on what runs")
        for c in self.cells:
            for problem in c.problems:
                lines.append(f"drift: {c.env}/{c.service}: {problem}")
        for c in self.cells:
            v = c.verification
            if v.state == "failed":
                tag = v.tag or "-"
                if v.tag != c.deployed_tag:
                    tag += f" (runs {c.deployed_tag or 'nothing'})"
                lines.append(f"failed: {c.env}/{c.service} {tag}: {v.reason}, at {v.at}")
        lines += [f"held: {c.env}/{c.service} {c.hold.text()}" for c in self.cells if c.hold]
        lines += [_sync_line(e, self.syncs[e]) for e in self.environments if e in self.syncs]
        return "\n".join(lines)


def _sync_line(env: str, sync: Mapping[str, object]) -> str:
    """One environment's ``glue sync``, for the table."""
    applied = str(sync["applied_revision"] or "")[:10] or "nothing yet"
    text = f"sync: {env}: applied {applied}" + (
        f" at {sync['applied_at']}" if sync["applied_at"] else ""
    )
    if sync["pending"]:
        text += f"; PENDING: {sync['branch']} is at {str(sync['branch_tip'])[:10]}"
    if sync["failing"]:
        first = (str(sync["error"] or "").splitlines() or [""])[0]
        text += (
            f"; FAILING at {str(sync['failing_revision'])[:10]} since {sync['failing_since']}"
            f" ({sync['failures']} round(s) in a row): {first}"
        )
    return text + f" (checked {sync['checked_at']})"


def sync_view(kube: Kube, namespace: str, env: str, recorded: str) -> dict[str, object] | None:
    """What ``glue sync`` last did for ``env`` (None: it does not pull ``env``); pending:
    the branch was ahead of the recorded revision at its last round."""
    from gitops_glue.cluster import sync_state
    from gitops_glue.errors import GlueError

    try:
        state = sync_state.read(kube, namespace, env)
    except GlueError:
        return None  # no right to read it: glue sync is not this reader's business
    if state is None:
        return None
    return {
        "branch": state.branch,
        "applied_revision": state.applied_revision or None,
        "applied_at": state.applied_at or None,
        "branch_tip": state.seen_revision or None,
        "checked_at": state.checked_at or None,
        "pending": bool(state.seen_revision) and state.seen_revision != recorded,
        "failing": state.failing,
        "failing_revision": state.failing_revision or None,
        "failing_since": state.failing_since or None,
        "failures": state.failures,
        "error": state.error or None,
    }


def _deployed_release(kube: Kube, namespace: str, release: str) -> dict[str, Any] | None:
    """The newest ``deployed`` revision of a release, decoded from Helm's storage Secret."""
    import base64
    import gzip
    import json

    items = kube.list_secrets(namespace, f"owner=helm,name={release},status=deployed")
    if not items:
        return None
    newest = max(items, key=lambda s: int(s.labels.get("version", "0")))
    raw = base64.b64decode(base64.b64decode(newest.data["release"]))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    data: dict[str, Any] = json.loads(raw)
    return data


def _images(manifest: str) -> tuple[str, ...]:
    import re

    found = re.findall(r"^\s*-?\s*image:\s*[\"']?([^\"'\s]+)", manifest, flags=re.MULTILINE)
    return tuple(dict.fromkeys(found))


def collect_cluster(
    config: GlueConfig,
    read: versions.Reader,
    kube_for: Callable[[str], Kube],
    namespaces: Callable[[str], dict[str, str]],
    now: dt.datetime | None = None,
) -> ClusterReport:
    """Git, the deploy records and Helm's storage side by side, drift flagged.

    ``kube_for(env)`` is the environment's cluster; ``namespaces(env)`` maps release
    names to namespaces (from helmfile).
    """
    from gitops_glue.cluster import record

    git_view = collect(config, read, now)
    cells: list[ClusterCell] = []
    records: dict[str, dict[str, str]] = {}
    syncs: dict[str, dict[str, object]] = {}
    for env in config.environments:
        kube = kube_for(env.name)
        rec = record.read(kube, env.record_namespace, env.name)
        pulled = sync_view(kube, env.record_namespace, env.name, rec.git_revision if rec else "")
        if pulled is not None:
            syncs[env.name] = pulled
        if rec:
            records[env.name] = {
                "git_revision": rec.git_revision,
                "deployed_at": rec.deployed_at,
                "deployed_by": rec.deployed_by,
            }
        where = namespaces(env.name)
        recorded_at = parse_instant(rec.deployed_at) if rec and rec.deployed_at else None
        for name, svc in config.services.items():
            git_tag = git_view.cell(name, env.name).tag
            deployed = rec.services.get(name) if rec else None
            release = (deployed.release if deployed else None) or svc.release_name(name)
            ns = where.get(release)
            problems: list[str] = []
            revision: int | None = None
            images: tuple[str, ...] = ()
            verdict = verification_state(
                deployed,
                rec.failed.get(name) if rec else None,
                rec.verified.get(name) if rec else None,
            )
            # A deploy that failed (its verification, or helmfile) is glue's, not drift:
            # Helm may run the failed tag, deployed at the failure's time.
            failed_tag = verdict.tag if verdict.state == "failed" else None
            failed_at = parse_instant(verdict.at) if failed_tag and verdict.at else None
            glue_at = max((t for t in (recorded_at, failed_at) if t), default=None)
            helm = _deployed_release(kube, ns, release) if ns and rec else None
            if helm is not None:
                revision = int(helm.get("version") or 0)
                images = _images(str(helm.get("manifest") or ""))
                tag = deployed.tag if deployed else None
                ours = [t for t in (tag, failed_tag) if t]
                if tag and images and not any(i.endswith(f":{t}") for i in images for t in ours):
                    problems.append(
                        f"release {ns}/{release} revision {revision} runs "
                        f"{', '.join(images)}, but glue deployed {tag}"
                    )
                last = parse_instant(str((helm.get("info") or {}).get("last_deployed") or ""))
                if glue_at and last and last > glue_at + dt.timedelta(seconds=2):
                    problems.append(
                        f"release {ns}/{release} was changed outside glue: revision {revision} "
                        f"deployed {last.isoformat(timespec='seconds')}, after glue's deploy "
                        f"at {glue_at.isoformat(timespec='seconds')}"
                    )
            elif rec and deployed is not None:
                problems.append(
                    f"the record says {deployed.tag} is deployed, but release {release} has no "
                    "deployed revision" + (f" in {ns}" if ns else "")
                )
            cells.append(
                ClusterCell(
                    env=env.name,
                    service=name,
                    git_tag=git_tag,
                    deployed_tag=deployed.tag if deployed else None,
                    release=release,
                    namespace=ns,
                    helm_revision=revision,
                    images=images,
                    problems=tuple(problems),
                    pending=(deployed.tag if deployed else None) != git_tag,
                    verification=verdict,
                    hold=git_view.cell(name, env.name).hold,
                    digest=git_view.cell(name, env.name).digest,
                )
            )
    return ClusterReport(
        config.environment_names(),
        list(config.services),
        cells,
        records,
        syncs=syncs,
        rejected=git_view.rejected,
        freezes=git_view.freezes,
    )


def _git_facts(
    rejected: Mapping[tuple[str, str], holds.Mark], freezes: list[Freeze]
) -> dict[str, object]:
    """``rejected`` and ``freeze`` as both reports write them (only when there are any)."""
    data: dict[str, object] = {}
    by_service: dict[str, dict[str, object]] = {}
    for (service, tag), mark in sorted(rejected.items()):
        by_service.setdefault(service, {})[tag] = mark.to_json()
    if by_service:
        data["rejected"] = by_service
    if freezes:
        data["freeze"] = {f.env: f.to_json() for f in freezes}
    return data


# --------------------------------------------------------------------------- the command


def cluster_status(
    directory: Path, kubeconfig: str | None = None, now: dt.datetime | None = None
) -> ClusterReport:
    """``glue status --cluster``: git beside what each environment runs (each from its
    own cluster), drift flagged, with each service's verification and hold. Each
    environment's kube context and release namespaces come from helmfile's view read
    safely (no hook runs; :mod:`gitops_glue.helmview`)."""
    from gitops_glue import helmview
    from gitops_glue.cluster import context
    from gitops_glue.config import load_config
    from gitops_glue.repo.gitrepo import worktree_reader
    from gitops_glue.tools import Tools

    loaded = load_config(directory)
    views = helmview.Views(loaded.root, Tools.from_env())
    report = collect_cluster(
        loaded.config,
        worktree_reader(loaded.root, regular=(holds.PATH,)),
        context.per_environment(loaded, kubeconfig=kubeconfig, helmfile_context=views.kube_context),
        views.namespaces,
        now,
    )
    return with_history(loaded.config, loaded.root, report)


def status(
    directory: Path,
    *,
    verify: bool = False,
    now: dt.datetime | None = None,
    history: bool = True,
) -> StatusReport:
    """``glue status``: the deployment repo's tags, from its glue.yaml and values files;
    ``verify``: pinned digests checked against the registry (``--verify-digests``);
    ``now``: the environments' freeze windows at that instant (None: left out);
    ``history``: each service's recent glue commits too (the table does not show them)."""
    from gitops_glue.config import load_config
    from gitops_glue.repo.gitrepo import worktree_reader

    loaded = load_config(directory)
    read = worktree_reader(loaded.root, regular=(holds.PATH,))
    report = collect(loaded.config, read, now)
    if history:
        report = with_history(loaded.config, loaded.root, report)
    return verify_digests(loaded.config, report) if verify else report
