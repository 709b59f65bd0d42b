"""``glue release`` and ``glue should-release``: a tag straight into an environment.

``release`` is a hotfix: it puts a given tag (or the newest registry tag built
from a source branch, see :func:`pick_branch_tag`) into an environment, with
the same edit and policy checks as a bump but its own commit message.
``should-release`` answers whether ``glue.yaml``'s ``auto_release`` sends new
tags of a source branch to an environment.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from gitops_glue import inputs
from gitops_glue.config import GlueConfig
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import holds, versions
from gitops_glue.repo.bump import (
    BumpChange,
    BumpRequest,
    BumpResult,
    ServiceTag,
    TagChange,
    parse_service_tags,
    plan_bump,
)
from gitops_glue.repo.commit import CommitTarget, Guard, View, commit_change
from gitops_glue.repo.message import (
    MessageParts,
    ServiceLine,
    ServiceTrailer,
    compose,
    version_trailers,
)


@dataclass(frozen=True)
class ReleaseRequest:
    service: str
    env: str
    tag: str | None = None  # None: the newest tag built from ``source_branch``
    source_branch: str | None = None  # the image's source branch
    revision: str | None = None
    upstream_repo: str | None = None
    ci: CiContext = field(default_factory=CiContext)
    #: More services for the same commit (``glue release --to ENV a=1 b=1``).
    also: tuple[ServiceTag, ...] = ()

    @classmethod
    def from_args(
        cls,
        args: Sequence[str],
        env: str,
        *,
        tag: str | None = None,
        source_branch: str | None = None,
        revision: str | None = None,
        ci: CiContext | None = None,
    ) -> ReleaseRequest:
        """One ``SERVICE`` with ``--tag`` or ``--source-branch``, or several
        ``SERVICE=TAG[@REVISION]`` without them; the repository is CI's."""
        ci = ci or CiContext()
        upstream_repo = ci.repository or None
        if len(args) == 1 and "=" not in args[0]:
            return cls(args[0], env, tag, source_branch, revision, upstream_repo, ci)
        if tag is not None or source_branch is not None:
            raise UsageError(
                "give either SERVICE with --tag/--source-branch, or SERVICE=TAG ... without them"
            )
        first, *rest = parse_service_tags(args, revision)
        return cls(
            first.service, env, first.tag, None, first.revision, upstream_repo, ci, tuple(rest)
        )


def release_message(config: GlueConfig, req: ReleaseRequest, details: TagChange) -> str:
    bumps = details.bumps
    if len(bumps) == 1:
        title = f"fix({req.env}): release {bumps[0].service} {bumps[0].new_tag}"
    else:
        title = f"fix({req.env}): release " + ", ".join(f"{b.service} {b.new_tag}" for b in bumps)
    how = f" (newest tag of branch {req.source_branch})" if req.source_branch else ""
    body = tuple(f"{b.service} in {req.env}: {b.old_tag or '-'} -> {b.new_tag}{how}" for b in bumps)
    items = (ServiceTag(req.service, req.tag or "", req.revision), *req.also)
    revisions = {x.revision for x in items}
    shared = next(iter(revisions)) if len(revisions) == 1 else None
    trailers = version_trailers(
        req.env,
        [
            ServiceTrailer(b.service, b.new_tag, b.old_tag, item.revision)
            for b, item in zip(bumps, items, strict=True)
        ],
        ci=req.ci,
        action="release",
        source_branch=req.source_branch,
        upstream_repo=req.upstream_repo,
    )
    parts = MessageParts(
        action="release",
        environment=req.env,
        title=title,
        body=body,
        services=tuple(
            ServiceLine(b.service, b.old_tag, b.new_tag, b.old_revision, b.new_revision)
            for b in bumps
        ),
        trailers=trailers,
        ci=req.ci,
        source_branch=req.source_branch,
        upstream_repo=req.upstream_repo,
        upstream_revision=shared,
    )
    return compose(config.git, parts)


def plan_release(config: GlueConfig, read: versions.Reader, req: ReleaseRequest) -> BumpChange:
    """A bump (same edit, same policy checks) with a release commit message.

    ``req.tag`` must be set (see :func:`release` for picking a branch's tag).
    """
    if req.tag is None:
        raise UsageError("glue release needs a tag: pass --tag, or --source-branch to pick one")
    inputs.check_lines({"--source-branch": req.source_branch})
    bump = BumpRequest(
        req.service, req.tag, req.env, req.revision, req.upstream_repo, req.ci, also=req.also
    )
    change = plan_bump(config, read, bump)
    return dataclasses.replace(change, message=release_message(config, req, change.details))


def release(
    target: CommitTarget,
    req: ReleaseRequest,
    *,
    dry_run: bool = False,
    override_hold: bool = False,
    freeze: Guard | None = None,
) -> BumpResult:
    """``glue release``: pick the branch's newest tag if asked, then commit like a bump."""
    if (req.tag is None) == (req.source_branch is None):
        raise UsageError("give exactly one of --tag TAG and --source-branch BRANCH")
    if req.also and req.source_branch is not None:
        raise UsageError(
            "--source-branch picks one service's tag: release several services as "
            "SERVICE=TAG, or one at a time with --source-branch"
        )
    inputs.check_lines({"--source-branch": req.source_branch})
    notes: tuple[str, ...] = ()
    if req.tag is None:
        assert req.source_branch is not None
        found = newest_branch_tag(target.config(), req.service, req.source_branch)
        notes = (f"newest tag of {req.service} for branch {req.source_branch}: {found.tag}",)
        req = dataclasses.replace(req, tag=found.tag, revision=req.revision or found.revision)

    def plan(view: View) -> BumpChange:
        change = plan_release(view.config, view.read, req)
        return dataclasses.replace(change, notes=notes + change.notes)

    return commit_change(
        target,
        plan,
        guards=holds.guards(override_hold=override_hold, freeze=freeze),
        dry_run=dry_run,
    )


# --------------------------------------------------------------------------- branch tags


@dataclass(frozen=True)
class BranchTag:
    tag: str
    revision: str | None
    considered: int  # how many of the registry's tags matched the scheme


def tag_branch(branch: str) -> str:
    """A branch name as image tags spell it (docker/metadata-action's rule)."""
    return re.sub(r"[^a-z0-9_.-]", "-", branch.lower())


def pick_branch_tag(tags: list[str], scheme: str, branch: str) -> BranchTag | None:
    """The newest of ``tags`` built from ``branch`` by ``scheme`` (see Service.branch_tags)."""
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
            f"(scheme '{svc.branch_tags}'; {len(tags)} tag(s) in the registry)",
            hint=f"check the branch name, or services.{service}.branch_tags in glue.yaml",
        )
    return found


# --------------------------------------------------------------------------- should-release


@dataclass(frozen=True)
class ReleaseDecision:
    source_branch: str
    env: str
    release: bool

    def to_json(self) -> dict[str, object]:
        return {
            "source_branch": self.source_branch,
            "environment": self.env,
            "release": self.release,
        }

    def summary(self) -> str:
        return "true" if self.release else "false"


def should_release(target: CommitTarget, source_branch: str, env: str) -> ReleaseDecision:
    """Whether ``glue.yaml`` (of the target) auto-releases ``source_branch`` to ``env``."""
    config = target.config()
    config.environment(env)
    return ReleaseDecision(source_branch, env, config.auto_release_allows(source_branch, env))
