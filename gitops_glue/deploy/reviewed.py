"""``glue review``'s job and ``glue apply``'s plan check: the parts of review that reach
out to git and the forge (the rendering, the diff and the digests are
:mod:`gitops_glue.deploy.review`).

The review job renders the base and the head of a merge request (each exported from
git into a temporary folder, so the checkout is never written to), posts or updates
glue's one comment on the request, and, for glue's own requests with
``merge_requests.auto_merge``, asks the forge to merge once the checks pass, squashed
with glue's commit message plus the plan's ``Glue-Reviewed-Plan`` trailers.

The plan check finds what was reviewed for the commit being deployed: its own
``Glue-Reviewed-Plan`` trailers, else the comment on the merge request the commit came
from (the forge's API), renders what would deploy now, and compares.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue.errors import OperationError, UsageError
from gitops_glue.tools import Tools

if TYPE_CHECKING:
    from gitops_glue.config import GlueConfig
    from gitops_glue.deploy.review import PlanCheck, ReviewedPlan, ReviewResult
    from gitops_glue.integrations.forge import Comment, Forge, MergeRequest

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReviewJob:
    """What ``glue review`` is asked: compare ``base`` with ``head`` of the checkout at
    ``root``; post on merge request ``merge_request`` (None: print only)."""

    root: Path
    base: str
    head: str = "HEAD"
    envs: tuple[str, ...] = ()
    merge_request: int | None = None
    tools: Tools = field(default_factory=Tools)


@dataclass(frozen=True)
class ReviewOutcome:
    result: ReviewResult
    request: MergeRequest | None = None
    #: ``created``, ``updated`` or ``unchanged``: glue's comment on the request.
    comment: str = ""
    auto_merge: bool = False

    @property
    def changed(self) -> bool:
        return self.result.changed

    def to_json(self) -> dict[str, object]:
        data = self.result.to_json()
        data["merge_request"] = self.request.to_json() if self.request else None
        data["comment"] = self.comment or None
        data["auto_merge"] = self.auto_merge
        data["trailers"] = [f"{k}: {v}" for k, v in self.result.trailers]
        return data

    def summary(self) -> str:
        lines = []
        for env in self.result.environments:
            if not env.changed:
                lines.append(f"{env.env}: no change")
                continue
            counts = {"added": 0, "removed": 0, "changed": 0}
            for release in env.releases:
                for change in release.changes:
                    counts[change.change] = counts.get(change.change, 0) + 1
            releases = ", ".join(r.release for r in env.releases)
            shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
            lines.append(f"{env.env}: {shown} ({releases})")
        if self.request is not None:
            lines.append(f"comment {self.comment} on {self.request.url or self.request.ref}")
        if self.auto_merge:
            lines.append("auto-merge asked for: merges when the checks pass")
        return "\n".join(lines)


def _export(root: Path, rev: str, dest: Path, side: str) -> tuple[str, Path]:
    from gitops_glue.repo import gitrepo

    dest.mkdir(parents=True)
    exported = gitrepo.export_revision(root, rev, dest)
    if exported is None:
        raise UsageError(
            f"the {side} revision {rev!r} is not in this checkout",
            hint="fetch it first (in CI: a full clone, GIT_DEPTH: 0 / fetch-depth: 0)",
        )
    return exported


def run_review(
    job: ReviewJob,
    config: GlueConfig,
    environ: Mapping[str, str],
    progress: Progress | None = None,
) -> ReviewOutcome:
    from gitops_glue.deploy.review import COMMENT_MARKER, review

    forge = None
    if job.merge_request is not None:
        forge = forge_of(job.root, config, environ)  # a missing token: before rendering
    with tempfile.TemporaryDirectory(prefix="glue-review-") as tmp:
        base_sha, base_root = _export(job.root, job.base, Path(tmp) / "base", "base")
        head_sha, head_root = _export(job.root, job.head, Path(tmp) / "head", "head")
        result = review(
            base_root,
            head_root,
            job.envs or None,
            job.tools,
            head_sha=head_sha,
            base_sha=base_sha,
            progress=progress,
        )
    if forge is None or job.merge_request is None:
        return ReviewOutcome(result)
    request = forge.get(job.merge_request)
    before = [c for c in forge.comments(request) if COMMENT_MARKER in c.body]
    forge.upsert_comment(request, COMMENT_MARKER, result.body)
    comment = (
        "created" if not before else "unchanged" if before[0].body == result.body else "updated"
    )
    auto = False
    if config.merge_requests.auto_merge and request.head.startswith("glue/"):
        _title, message = _squash_message(job.root, head_sha, result)
        forge.auto_merge(request, _title, message)
        auto = True
    return ReviewOutcome(result, request, comment, auto)


def _squash_message(root: Path, head_sha: str, result: ReviewResult) -> tuple[str, str]:
    """glue's commit message of the request's head, with the plan's trailers added to
    its trailer paragraph: the title and the body of the squash commit."""
    from gitops_glue.repo import gitrepo
    from gitops_glue.repo.commit import glue_trailers

    found = gitrepo.commit_message(root, head_sha)
    message = found[1] if found else ""
    title, _, body = message.strip().partition("\n")
    body = body.strip()
    added = "\n".join(f"{k}: {v}" for k, v in result.trailers)
    if glue_trailers(message) is not None:
        body = f"{body}\n{added}"
    else:
        body = f"{body}\n\n{added}" if body else added
    return title, body


def forge_of(root: Path, config: GlueConfig, environ: Mapping[str, str]) -> Forge:
    from gitops_glue.integrations.forge import forge_for
    from gitops_glue.repo import gitrepo

    return forge_for(config.merge_requests, gitrepo.origin_url(root) or "", environ)


# --------------------------------------------------------------------------- apply


def reviewed_plan_of(
    root: Path, rev: str, config: GlueConfig, environ: Mapping[str, str]
) -> tuple[str, ReviewedPlan | None, str]:
    """The commit id of ``rev``, what review recorded for it (None: nothing found) and
    where that came from (``trailers`` or the merge request's URL)."""
    from gitops_glue.deploy.review import COMMENT_MARKER, reviewed_plan, trailer_plan
    from gitops_glue.repo import gitrepo

    found = gitrepo.commit_message(root, rev)
    if found is None:
        raise UsageError(f"{rev!r} is not a commit of this checkout")
    sha, message = found
    from_trailers = trailer_plan(message)
    if from_trailers is not None:
        return sha, from_trailers, "the commit's Glue-Reviewed-Plan trailers"
    forge = forge_of(root, config, environ)
    request = forge.merged_request_of(sha)
    if request is None:
        return sha, None, ""
    for comment in reversed(_trusted(forge.comments(request), config)):
        if COMMENT_MARKER in comment.body:
            plan = reviewed_plan(comment.body)
            if plan is not None:
                return sha, plan, f"the review on {request.url or request.ref}"
    return sha, None, request.url or request.ref


def _comment_plan(
    root: Path, sha: str, config: GlueConfig, environ: Mapping[str, str]
) -> ReviewedPlan | None:
    """The plan in the review comment of the merge request ``sha`` came from; None when
    there is none, or the forge cannot be asked."""
    from gitops_glue.deploy.review import COMMENT_MARKER, reviewed_plan

    try:
        forge = forge_of(root, config, environ)
        request = forge.merged_request_of(sha)
        comments = forge.comments(request) if request is not None else []
    except (UsageError, OperationError):
        return None
    for comment in reversed(_trusted(comments, config)):
        if COMMENT_MARKER in comment.body:
            return reviewed_plan(comment.body)
    return None


def _trusted(comments: list[Comment], config: GlueConfig) -> list[Comment]:
    """The comments that may hold the review: with ``merge_requests.review_author``,
    only that account's."""
    author = config.merge_requests.review_author
    return [c for c in comments if author is None or c.author == author]


@dataclass(frozen=True)
class PlanGate:
    """``glue apply``'s plan check of a ``via: merge-request`` environment."""

    check: PlanCheck | None  # None: nothing reviewed was found
    commit: str
    source: str  # where the reviewed plan came from
    accepted_unreviewed: bool = False

    @property
    def ok(self) -> bool:
        return self.check is not None and self.check.ok

    def record(self) -> dict[str, object]:
        """What the deploy record keeps of it."""
        return {
            "commit": self.commit,
            "reviewed": self.ok,
            "source": self.source,
            "reviewed_digest": self.check.reviewed_digest if self.check else None,
            "deployed_digest": self.check.current_digest if self.check else None,
            "accepted_unreviewed": self.accepted_unreviewed,
        }


def check_reviewed(
    root: Path,
    env: str,
    config: GlueConfig,
    tools: Tools,
    environ: Mapping[str, str],
    *,
    accept_unreviewed: bool,
    progress: Progress | None = None,
) -> PlanGate:
    """Would ``env`` deploy exactly what review rendered for the checkout's HEAD?

    Raises :class:`UsageError` (exit 2) with the difference when it would not, unless
    ``accept_unreviewed``; then the gate says so, for the deploy record.
    """
    from gitops_glue.deploy.review import check_plan, render

    say = progress or (lambda _m: None)
    try:
        sha, plan, source = reviewed_plan_of(root, "HEAD", config, environ)
    except (UsageError, OperationError) as exc:
        if not accept_unreviewed:
            raise UsageError(
                f"{env!r} deploys only what a review rendered, and glue cannot find the "
                f"review: {exc.message}",
                hint=exc.hint or "or pass --accept-unreviewed (recorded in the deploy record)",
            ) from None
        say(f"glue: review not found ({exc.message}); deploying unreviewed (--accept-unreviewed)")
        return PlanGate(None, "", "", accepted_unreviewed=True)
    check = None
    if plan is not None and env in plan.environments:
        say(f"glue: rendering {env} to compare with the review ({source})")
        with tempfile.TemporaryDirectory(prefix="glue-plan-") as tmp:
            _sha, exported = _export(root, sha, Path(tmp) / "head", "deployed")
            current = render(exported, env, tools)
        check = check_plan(plan, current)
        if not check.ok and plan.environments[env].resources is None:
            # Trailers are written when auto-merge is asked for, and a later push can
            # have been reviewed again since: the review comment on the merge request is
            # the last word, and it names the resources that differ.
            detailed = _comment_plan(root, sha, config, environ)
            if detailed is not None and env in detailed.environments:
                check = check_plan(detailed, current)
                source = "the review comment on the merge request"
    gate = PlanGate(check, sha, source, accepted_unreviewed=accept_unreviewed)
    if gate.ok:
        say(f"glue: {env} renders as reviewed ({source})")
        return gate
    if check is None:
        problem = (
            f"commit {sha[:12]} was not reviewed for {env!r}: no Glue-Reviewed-Plan trailer, "
            + (f"and {source} has no review of it" if source else "and no merged merge request")
        )
        hint = (
            "merge it through a merge request whose pipeline runs glue review; or deploy "
            "it anyway with --accept-unreviewed (recorded in the deploy record)"
        )
    else:
        problem, hint = check.message, check.hint or ""
    if accept_unreviewed:
        say(f"glue: WARNING: {problem}; deploying anyway (--accept-unreviewed)")
        return gate
    raise UsageError(problem, hint=hint)
