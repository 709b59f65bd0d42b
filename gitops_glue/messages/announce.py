"""``glue announce``: tell people (and the next job) that a new image exists.

With ``verify`` the registry must confirm the tag (and gives its digest)
before anything is said: a missing tag is an error, not an announcement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext, commit_url
from gitops_glue.messages import slack, templates


@dataclass(frozen=True)
class AnnounceRequest:
    image: str
    tag: str
    service: str | None = None
    verify: bool = False
    revision: str | None = None
    branch: str | None = None
    author: str | None = None
    commit_title: str | None = None
    template: Path | None = None

    def __post_init__(self) -> None:
        """The same rules as ``glue bump-tag``'s for the tag it will be deployed with:
        a request that breaks them is refused before anything is read or sent."""
        from gitops_glue.config import TagPolicy
        from gitops_glue.inputs import check_lines
        from gitops_glue.repo.policy import check_tag

        check_lines({"--image": self.image, "--service": self.service})
        # Only the tag's syntax: a mutable tag or an environment's policy is a question
        # for the bump into that environment, not for the announcement of a new image.
        check_tag(self.tag, TagPolicy(allow_mutable=True), env="")


@dataclass(frozen=True)
class Announcement:
    service: str
    image: str
    tag: str
    digest: str | None
    revision: str | None
    revision_url: str
    branch: str | None
    author: str | None
    commit_title: str | None
    pipeline_url: str
    repository: str
    repository_url: str
    ci_system: str

    def outputs(self) -> dict[str, str]:
        """What the next job needs (``$GITHUB_OUTPUT``, dotenv)."""
        return {
            "service": self.service,
            "image": self.image,
            "tag": self.tag,
            "digest": self.digest or "",
            "revision": self.revision or "",
        }


@dataclass(frozen=True)
class AnnounceResult:
    announcement: Announcement
    message: slack.Message
    sent_to: str  # describe() of the Slack target, or "" when not configured
    posted: slack.Posted | None
    dry_run: bool

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self.announcement),
            "sent": self.posted is not None,
            "sent_to": self.sent_to,
            "slack_ts": self.posted.ts if self.posted else None,
            "slack_channel": self.posted.channel if self.posted else None,
            "dry_run": self.dry_run,
            "message": self.message.payload(),
        }


def gather(req: AnnounceRequest, ci: CiContext, digest: str | None) -> Announcement:
    service = req.service or req.image.rstrip("/").rsplit("/", 1)[-1]
    if not service:
        raise UsageError("cannot tell the service name from --image", hint="pass --service")
    revision = req.revision or ci.commit or None
    return Announcement(
        service=service,
        image=req.image,
        tag=req.tag,
        digest=digest,
        revision=revision,
        revision_url=commit_url(ci.repository_url, revision) if revision else "",
        branch=req.branch or ci.ref or None,
        author=req.author or ci.commit_author or ci.actor or None,
        commit_title=req.commit_title or ci.commit_title or None,
        pipeline_url=ci.pipeline_url,
        repository=ci.repository,
        repository_url=ci.repository_url,
        ci_system=ci.system,
    )


def build_message(a: Announcement, template: Path | None = None) -> slack.Message:
    body = templates.render("announce.md.j2", asdict(a), template)
    title = f"New image: {a.service} {a.tag}"
    fallback = f"{title} ({a.image}:{a.tag})"
    trail = []
    if a.pipeline_url:
        trail.append(slack.link(a.pipeline_url, "pipeline"))
    if a.repository:
        trail.append(slack.link(a.repository_url, a.repository))
    return slack.Message(fallback, [slack.header(title), slack.section(body), slack.context(trail)])


def announce(
    req: AnnounceRequest,
    ci: CiContext,
    target: slack.Target,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> AnnounceResult:
    digest = None
    if req.verify:
        from gitops_glue.integrations import oci

        ref, digest = oci.resolve(req.image, req.tag)
        if digest is None:
            raise UsageError(
                f"{ref}:{req.tag} does not exist in the registry",
                hint="announce after the image is pushed, or wait for it with glue wait-image",
            )
    a = gather(req, ci, digest)
    message = build_message(a, req.template)
    posted = None
    if target.configured and not dry_run:
        posted = slack.post(target, message, progress=progress)
    return AnnounceResult(
        a, message, target.describe() if target.configured else "", posted, dry_run
    )


def run(
    req: AnnounceRequest,
    *,
    directory: Path,
    channel: str | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> AnnounceResult:
    """``glue announce``: the CI context (outside CI: the checkout at ``directory``, unless
    the revision or branch is given), glue.yaml's template when there is one, then
    :func:`announce`."""
    from gitops_glue.config import repo_template
    from gitops_glue.integrations import ci

    ctx = ci.context(directory, fallback_to_git=not (req.revision or req.branch))
    if req.template is None:
        req = dataclasses.replace(req, template=repo_template(directory, "announce"))
    return announce(
        req, ctx, slack.Target.from_env(channel=channel), dry_run=dry_run, progress=progress
    )
