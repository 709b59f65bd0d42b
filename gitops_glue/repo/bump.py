"""``glue bump-tag``: set one service's image tag in one environment, as a commit.

:func:`plan_bump` is a pure planner on file texts handed in by a reader, so
the same code serves a local checkout and a freshly fetched remote tree; on a
lost push race it is simply run again on the new tip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops_glue.config import GlueConfig
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import check, envfiles, inputs, values
from gitops_glue.repo.commit import (
    Change,
    CommitResult,
    CommitTarget,
    FileEdit,
    View,
    commit_change,
)
from gitops_glue.repo.policy import check_tag


@dataclass(frozen=True)
class BumpRequest:
    service: str
    tag: str
    env: str
    revision: str | None = None
    upstream_repo: str | None = None
    ci: CiContext = field(default_factory=CiContext)
    #: Only bump when glue.yaml's ``auto_release`` sends this source branch to ``env``.
    if_auto_release: str | None = None


@dataclass(frozen=True)
class TagChange:
    """One service's tag (and revision) in one environment, before and after."""

    env: str
    service: str
    file: str
    old_tag: str | None
    new_tag: str
    old_revision: str | None
    new_revision: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "environment": self.env,
            "file": self.file,
            "old_tag": self.old_tag,
            "new_tag": self.new_tag,
            "old_revision": self.old_revision,
            "new_revision": self.new_revision,
        }

    def unchanged_text(self) -> str:
        return f"unchanged: {self.service} is already {self.new_tag} in {self.env} ({self.file})"

    def changed_lines(self) -> list[str]:
        return [f"  {self.file}: {self.old_tag} -> {self.new_tag}"]

    def dry_run_lines(self) -> list[str]:
        return []


BumpChange = Change[TagChange]
BumpResult = CommitResult[TagChange]


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def commit_message(req: BumpRequest, old_tag: str | None) -> str:
    """``feat(ENV): update SERVICE to TAG`` with trailers that say where it came from."""
    lines = [f"feat({req.env}): update {req.service} to {req.tag}", ""]
    if old_tag and old_tag != req.tag:
        lines += [f"{req.service} in {req.env}: {old_tag} -> {req.tag}", ""]
    trailers = [
        ("Glue-Environment", req.env),
        ("Glue-Service", req.service),
        ("Glue-Tag", req.tag),
        ("Glue-Previous-Tag", old_tag or ""),
        ("Upstream-Repository", req.upstream_repo or ""),
        ("Upstream-Revision", req.revision or ""),
        ("Pipeline", req.ci.pipeline_url),
        ("Triggered-By", req.ci.actor),
    ]
    lines += [f"{k}: {v}" for k, v in trailers if v]
    return "\n".join(lines) + "\n"


def check_request(req: BumpRequest) -> None:
    """Refuse control characters in every value that goes into the commit or the file."""
    inputs.check_lines(
        {
            "service": req.service,
            "environment": req.env,
            "tag": req.tag,
            "--revision": req.revision,
            "--upstream-repo": req.upstream_repo,
            "--if-auto-release": req.if_auto_release,
            "the CI pipeline URL": req.ci.pipeline_url,
            "the CI actor": req.ci.actor,
        }
    )


def plan_bump(config: GlueConfig, read: envfiles.Reader, req: BumpRequest) -> BumpChange:
    """Work out the edit for a bump; touches nothing."""
    check_request(req)
    env = config.environment(req.env)
    service = config.service(req.service)
    if req.if_auto_release is not None and not config.auto_release_allows(
        req.if_auto_release, env.name
    ):
        details = TagChange(env.name, req.service, env.own_file, None, req.tag, None, req.revision)
        return Change(
            edits=(),
            message=commit_message(req, None),
            details=details,
            skipped=f"glue.yaml auto_release does not send new tags of branch "
            f"{req.if_auto_release!r} to {env.name!r}",
        )
    check_tag(req.tag, config.policy_for(env), env.name)
    envfiles.require_files(read, env)

    current = envfiles.effective(read, env, service.tag_key)
    if current.file is None:
        raise UsageError(
            f"service {req.service!r}: key {service.tag_key} is in none of environment "
            f"{env.name!r}'s values files ({', '.join(env.values)})",
            hint=f"fix services.{req.service}.tag_key in glue.yaml, or add the key",
        )
    check.refuse_overridden_key(read, env, service.tag_key, env.own_file)
    notes: list[str] = []
    old_revision: str | None = None
    if req.revision is not None and service.revision_key is None:
        notes.append(f"--revision ignored: service {req.service!r} has no revision_key")
    elif service.revision_key is not None:
        old_revision = _str(envfiles.effective(read, env, service.revision_key).value)

    own = env.own_file
    text = read(own)
    assert text is not None  # require_files checked it
    new_text = values.set_value(
        text, service.tag_key, req.tag, filename=own, create=True, force_string=True
    ).text
    new_revision = old_revision
    if req.revision is not None and service.revision_key is not None:
        new_revision = req.revision
        new_text = values.set_value(
            new_text,
            service.revision_key,
            req.revision,
            filename=own,
            create=True,
            force_string=True,
        ).text
    old_tag = _str(current.value)
    unchanged = old_tag == req.tag and new_revision == old_revision
    edits = () if unchanged or new_text == text else (FileEdit(own, text, new_text),)
    return Change(
        edits=edits,
        message=commit_message(req, old_tag),
        details=TagChange(env.name, req.service, own, old_tag, req.tag, old_revision, new_revision),
        notes=tuple(notes),
    )


def bump(target: CommitTarget, req: BumpRequest, *, dry_run: bool = False) -> BumpResult:
    """``glue bump-tag``: plan on the target's tip and commit there."""

    def plan(view: View) -> BumpChange:
        return plan_bump(view.config, view.read, req)

    return commit_change(target, plan, dry_run=dry_run)
