"""``glue promote`` and ``glue release``: move versions between environments.

``promote`` copies a service's tag (and revision) from one environment to the
next in ``glue.yaml``'s order; ``--all`` promotes every service that differs
in one commit. ``release`` puts a given tag into an environment directly (a
hotfix), optionally the newest tag the registry has for a branch.

Like a bump, a plan is computed from file texts handed in by a reader, so the
same code runs on a checkout and on each freshly fetched remote tip. Every
commit carries trailers, one group per service, that ``glue rollback`` and
``glue notify`` read::

    Glue-Environment: staging
    Glue-Action: promote
    Glue-Source-Environment: dev
    Glue-Service: a
    Glue-Tag: 4e5f6a7
    Glue-Previous-Tag: 3f9c2e1
    Upstream-Revision: 4e5f6a7b8c9d
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitops_glue.config import GlueConfig, LoadedConfig
from gitops_glue.errors import PolicyError, UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import envfiles, values
from gitops_glue.repo.bump import BumpPlan, BumpRequest, BumpResult, FileEdit, plan_bump
from gitops_glue.repo.policy import check_tag

if TYPE_CHECKING:
    from gitops_glue.repo.remote import Auth, RemoteSpec


@dataclass(frozen=True)
class Promotion:
    service: str
    old_tag: str | None
    new_tag: str
    old_revision: str | None
    new_revision: str | None

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PromotePlan:
    source: str
    target: str
    file: str
    promotions: tuple[Promotion, ...]  # the services that change
    unchanged: tuple[str, ...]  # services already at the source's version
    edit: FileEdit | None
    message: str
    notes: tuple[str, ...] = ()

    def files(self) -> dict[str, str]:
        return {self.edit.path: self.edit.new_text} if self.edit else {}

    @property
    def changed(self) -> bool:
        return self.edit is not None


@dataclass(frozen=True)
class PromoteResult:
    plan: PromotePlan
    commit: str | None
    dry_run: bool
    pushed_to: str | None = None
    attempts: int = 1

    @property
    def status(self) -> str:
        if not self.plan.changed:
            return "unchanged"
        return "would-change" if self.dry_run else "changed"

    def summary(self) -> str:
        p = self.plan
        if not p.changed:
            return (
                f"unchanged: {', '.join(p.unchanged) or 'nothing'} already as in {p.source} "
                f"({p.target})"
            )
        if self.dry_run:
            diff = p.edit.diff() if p.edit else ""
            return f"{diff}\n(dry run) would commit: {p.message.splitlines()[0]}"
        lines = [p.message.splitlines()[0]]
        lines += [f"  {x.service}: {x.old_tag} -> {x.new_tag}" for x in p.promotions]
        lines.append(f"  commit {self.commit}")
        if self.pushed_to:
            lines.append(f"  pushed to {self.pushed_to} after {self.attempts} attempt(s)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        p = self.plan
        return {
            "status": self.status,
            "source": p.source,
            "environment": p.target,
            "file": p.file,
            "promoted": [x.to_json() for x in p.promotions],
            "unchanged": list(p.unchanged),
            "commit": self.commit,
            "dry_run": self.dry_run,
            "remote": self.pushed_to,
            "attempts": self.attempts,
            "notes": list(p.notes),
        }


def source_of(config: GlueConfig, target: str, source: str | None) -> str:
    """``source`` if given, else the environment before ``target`` in promotion order."""
    config.environment(target)
    if source is not None:
        config.environment(source)
        if source == target:
            raise UsageError(f"--from {source} is the target environment itself")
        return source
    names = config.environment_names()
    index = names.index(target)
    if index == 0:
        raise UsageError(
            f"{target!r} is the first environment in glue.yaml: there is nothing before it "
            "to promote from",
            hint="name the source with --from ENV, or use glue release / bump-tag",
        )
    return names[index - 1]


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def promotion_message(source: str, target: str, promotions: list[Promotion], ci: CiContext) -> str:
    names = [p.service for p in promotions]
    if len(promotions) == 1:
        title = f"feat({target}): promote {names[0]} to {promotions[0].new_tag} from {source}"
    else:
        title = f"feat({target}): promote {', '.join(names)} from {source}"
    lines = [title, ""]
    lines += [f"{p.service} in {target}: {p.old_tag or '-'} -> {p.new_tag}" for p in promotions]
    lines += [
        "",
        f"Glue-Environment: {target}",
        "Glue-Action: promote",
        f"Glue-Source-Environment: {source}",
    ]
    for p in promotions:
        group = [
            ("Glue-Service", p.service),
            ("Glue-Tag", p.new_tag),
            ("Glue-Previous-Tag", p.old_tag or ""),
            ("Upstream-Revision", p.new_revision or ""),
        ]
        lines += [f"{k}: {v}" for k, v in group if v]
    lines += [
        f"{k}: {v}" for k, v in (("Pipeline", ci.pipeline_url), ("Triggered-By", ci.actor)) if v
    ]
    return "\n".join(lines) + "\n"


def plan_promote(
    config: GlueConfig,
    read: envfiles.Reader,
    *,
    target: str,
    services: list[str] | None,  # None: every service
    source: str | None = None,
    ci: CiContext | None = None,
) -> PromotePlan:
    """Work out the promotion commit; touches nothing. Refuses the whole promotion
    when the target's tag policy refuses any of the tags."""
    src_name = source_of(config, target, source)
    src, dst = config.environment(src_name), config.environment(target)
    envfiles.require_files(read, src)
    envfiles.require_files(read, dst)
    names = list(config.services) if services is None else services
    for name in names:
        config.service(name)
    own = dst.own_file
    text = read(own)
    assert text is not None
    new_text = text
    promotions: list[Promotion] = []
    unchanged: list[str] = []
    notes: list[str] = []
    refused: list[str] = []
    for name in names:
        svc = config.service(name)
        tag = _opt(envfiles.effective(read, src, svc.tag_key).value)
        if tag is None:
            if services is not None:
                raise UsageError(
                    f"service {name!r} has no tag in {src_name!r} ({svc.tag_key}): nothing "
                    "to promote"
                )
            notes.append(f"{name}: no tag in {src_name}; skipped")
            continue
        try:
            check_tag(tag, config.policy_for(dst), dst.name)
        except PolicyError as exc:
            refused.append(f"{name} {tag}: {exc.message}")
            continue
        rev = (
            _opt(envfiles.effective(read, src, svc.revision_key).value)
            if svc.revision_key
            else None
        )
        old_tag = _opt(envfiles.effective(read, dst, svc.tag_key).value)
        old_rev = (
            _opt(envfiles.effective(read, dst, svc.revision_key).value)
            if svc.revision_key
            else None
        )
        if old_tag == tag and (rev is None or old_rev == rev):
            unchanged.append(name)
            continue
        new_text = values.set_value(
            new_text, svc.tag_key, tag, filename=own, create=True, force_string=True
        ).text
        if svc.revision_key and rev is not None:
            new_text = values.set_value(
                new_text, svc.revision_key, rev, filename=own, create=True, force_string=True
            ).text
        promotions.append(
            Promotion(name, old_tag, tag, old_rev, rev if rev is not None else old_rev)
        )
    if refused:
        raise PolicyError(
            f"promotion to {dst.name!r} refused; nothing was changed:\n  " + "\n  ".join(refused),
            hint="promote the other services by name, or change the tag policy in glue.yaml",
        )
    edit = FileEdit(own, text, new_text) if promotions and new_text != text else None
    return PromotePlan(
        source=src_name,
        target=dst.name,
        file=own,
        promotions=tuple(promotions),
        unchanged=tuple(unchanged),
        edit=edit,
        message=promotion_message(src_name, dst.name, promotions, ci or CiContext()),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- release


@dataclass(frozen=True)
class ReleaseRequest:
    service: str
    tag: str
    env: str
    revision: str | None = None
    upstream_repo: str | None = None
    branch: str | None = None  # the source branch the tag was found for
    ci: CiContext = field(default_factory=CiContext)


def release_message(req: ReleaseRequest, old_tag: str | None) -> str:
    lines = [f"fix({req.env}): release {req.service} {req.tag}", ""]
    how = f" (newest tag of branch {req.branch})" if req.branch else ""
    lines += [f"{req.service} in {req.env}: {old_tag or '-'} -> {req.tag}{how}", ""]
    trailers = [
        ("Glue-Environment", req.env),
        ("Glue-Action", "release"),
        ("Glue-Service", req.service),
        ("Glue-Tag", req.tag),
        ("Glue-Previous-Tag", old_tag or ""),
        ("Glue-Source-Branch", req.branch or ""),
        ("Upstream-Repository", req.upstream_repo or ""),
        ("Upstream-Revision", req.revision or ""),
        ("Pipeline", req.ci.pipeline_url),
        ("Triggered-By", req.ci.actor),
    ]
    lines += [f"{k}: {v}" for k, v in trailers if v]
    return "\n".join(lines) + "\n"


def plan_release(config: GlueConfig, req: ReleaseRequest, read: envfiles.Reader) -> BumpPlan:
    """A bump (same edit, same policy checks) with a release commit message."""
    plan = plan_bump(
        config,
        BumpRequest(req.service, req.tag, req.env, req.revision, req.upstream_repo, req.ci),
        read,
    )
    return dataclasses.replace(plan, message=release_message(req, plan.old_tag))


# --------------------------------------------------------------------------- run


def promote_local(
    loaded: LoadedConfig,
    *,
    target: str,
    services: list[str] | None,
    source: str | None = None,
    ci: CiContext | None = None,
    dry_run: bool = False,
) -> PromoteResult:
    """Promote in a local checkout and commit there."""
    from gitops_glue.repo import gitrepo
    from gitops_glue.repo.commit import commit_local

    plan = plan_promote(
        loaded.config,
        gitrepo.worktree_reader(loaded.root),
        target=target,
        services=services,
        source=source,
        ci=ci,
    )
    if not plan.changed or dry_run:
        return PromoteResult(plan, None, dry_run)
    return PromoteResult(plan, commit_local(loaded.root, plan, loaded.config.git.author), False)


def promote_remote(
    spec: RemoteSpec,
    auth: Auth,
    *,
    target: str,
    services: list[str] | None,
    source: str | None = None,
    ci: CiContext | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PromoteResult:
    """Promote in the remote deployment repository (re-planned on each new tip)."""
    from gitops_glue.repo.remote import push_edit

    pushed = push_edit(
        spec,
        auth,
        lambda config, read: plan_promote(
            config, read, target=target, services=services, source=source, ci=ci
        ),
        dry_run=dry_run,
        progress=progress,
    )
    return PromoteResult(pushed.plan, pushed.commit, dry_run, pushed.remote, pushed.attempts)


def release_local(
    loaded: LoadedConfig, req: ReleaseRequest, *, dry_run: bool = False
) -> BumpResult:
    from gitops_glue.repo import gitrepo
    from gitops_glue.repo.commit import commit_local

    plan = plan_release(loaded.config, req, gitrepo.worktree_reader(loaded.root))
    if not plan.changed or dry_run:
        return BumpResult(plan, None, dry_run)
    return BumpResult(plan, commit_local(loaded.root, plan, loaded.config.git.author), False)


def release_remote(
    spec: RemoteSpec,
    auth: Auth,
    req: ReleaseRequest,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BumpResult:
    from gitops_glue.repo.remote import push_edit

    pushed = push_edit(
        spec,
        auth,
        lambda config, read: plan_release(config, req, read),
        dry_run=dry_run,
        progress=progress,
    )
    return BumpResult(pushed.plan, pushed.commit, dry_run, pushed.remote, pushed.attempts)


# --------------------------------------------------------------------------- branch tags


@dataclass(frozen=True)
class BranchTag:
    tag: str
    revision: str | None
    considered: int  # how many of the registry's tags matched the scheme


def tag_branch(branch: str) -> str:
    """A branch name as image tags spell it (docker/metadata-action's rule)."""
    import re

    return re.sub(r"[^a-z0-9_.-]", "-", branch.lower())


def pick_branch_tag(tags: list[str], scheme: str, branch: str) -> BranchTag | None:
    """The newest of ``tags`` built from ``branch`` by ``scheme`` (see Service.branch_tags)."""
    import re

    pattern = re.compile(scheme.replace("{branch}", re.escape(tag_branch(branch))))
    matches = [(m, t) for t in tags for m in [pattern.fullmatch(t)] if m]
    if not matches:
        return None

    def key(item: tuple[re.Match[str], str]) -> tuple[int, int, str]:
        order = item[0].group("order") or ""
        return (1, int(order), "") if order.isdigit() else (0, 0, order)

    best, tag = max(matches, key=key)
    revision = best.groupdict().get("revision")
    return BranchTag(tag, revision, len(matches))


def newest_branch_tag(config: GlueConfig, service: str, branch: str) -> BranchTag:
    """Ask the registry for ``service``'s tags; the newest one built from ``branch``."""
    from gitops_glue.integrations import oci

    svc = config.service(service)
    if not svc.image:
        raise UsageError(
            f"service {service!r} has no image in glue.yaml, so its tags cannot be listed",
            hint=f"set services.{service}.image: REGISTRY/NAME, or pass --tag",
        )
    tags = oci.list_tags(svc.image)
    found = pick_branch_tag(tags, svc.branch_tags, branch)
    if found is None:
        raise UsageError(
            f"{svc.image} has no tag built from branch {branch!r} "
            f"(scheme {svc.branch_tags!r}; {len(tags)} tag(s) in the registry)",
            hint=f"check the branch name, or services.{service}.branch_tags in glue.yaml",
        )
    return found
