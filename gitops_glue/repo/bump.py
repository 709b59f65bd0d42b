"""``glue bump-tag``: set one service's image tag in one environment, as a commit.

The edit itself (:func:`plan_bump`) works on file texts handed in by a reader,
so the same code serves a local checkout and a freshly fetched remote tree;
on a lost push race it is simply run again on the new tip.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from gitops_glue.config import GlueConfig, LoadedConfig
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import envfiles, values
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
class FileEdit:
    path: str  # repository-relative, with forward slashes
    old_text: str
    new_text: str

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.old_text.splitlines(keepends=True),
                self.new_text.splitlines(keepends=True),
                fromfile=f"a/{self.path}",
                tofile=f"b/{self.path}",
            )
        )


@dataclass(frozen=True)
class BumpPlan:
    env: str
    service: str
    file: str
    old_tag: str | None
    new_tag: str
    old_revision: str | None
    new_revision: str | None
    edit: FileEdit | None  # None: already in place
    message: str
    notes: tuple[str, ...] = ()
    skipped: str | None = None  # why nothing was done (auto-release policy says no)

    @property
    def changed(self) -> bool:
        return self.edit is not None

    def files(self) -> dict[str, str]:
        """What to commit (see :class:`gitops_glue.change.Change`)."""
        return {self.edit.path: self.edit.new_text} if self.edit else {}


@dataclass(frozen=True)
class BumpResult:
    plan: BumpPlan
    commit: str | None  # the new commit id; None when unchanged or dry run
    dry_run: bool
    pushed_to: str | None = None  # remote URL (secrets masked) when pushed
    attempts: int = 1

    @property
    def status(self) -> str:
        if self.plan.skipped:
            return "skipped"
        if not self.plan.changed:
            return "unchanged"
        return "would-change" if self.dry_run else "changed"

    def summary(self) -> str:
        """What happened, in a few lines for a person."""
        p = self.plan
        title = p.message.splitlines()[0]
        if p.skipped:
            return f"skipped: {p.skipped}"
        if not p.changed:
            return f"unchanged: {p.service} is already {p.new_tag} in {p.env} ({p.file})"
        if self.dry_run:
            diff = p.edit.diff() if p.edit else ""
            return f"{diff}\n(dry run) would commit: {title}"
        lines = [title, f"  {p.file}: {p.old_tag} -> {p.new_tag}", f"  commit {self.commit}"]
        if self.pushed_to:
            lines.append(f"  pushed to {self.pushed_to} after {self.attempts} attempt(s)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        p = self.plan
        return {
            "status": self.status,
            "service": p.service,
            "environment": p.env,
            "file": p.file,
            "old_tag": p.old_tag,
            "new_tag": p.new_tag,
            "old_revision": p.old_revision,
            "new_revision": p.new_revision,
            "commit": self.commit,
            "dry_run": self.dry_run,
            "remote": self.pushed_to,
            "attempts": self.attempts,
            "notes": list(p.notes),
            "skipped": p.skipped,
        }


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


def plan_bump(config: GlueConfig, req: BumpRequest, read: envfiles.Reader) -> BumpPlan:
    """Work out the edit for a bump; touches nothing."""
    env = config.environment(req.env)
    service = config.service(req.service)
    if req.if_auto_release is not None and not config.auto_release_allows(
        req.if_auto_release, env.name
    ):
        return BumpPlan(
            env=env.name,
            service=req.service,
            file=env.own_file,
            old_tag=None,
            new_tag=req.tag,
            old_revision=None,
            new_revision=req.revision,
            edit=None,
            message=commit_message(req, None),
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
    edit = None if unchanged or new_text == text else FileEdit(own, text, new_text)
    return BumpPlan(
        env=env.name,
        service=req.service,
        file=own,
        old_tag=old_tag,
        new_tag=req.tag,
        old_revision=old_revision,
        new_revision=new_revision,
        edit=edit,
        message=commit_message(req, old_tag),
        notes=tuple(notes),
    )


def bump_local(loaded: LoadedConfig, req: BumpRequest, *, dry_run: bool = False) -> BumpResult:
    """Bump in a local checkout of the deployment repository and commit there."""
    from gitops_glue.repo import gitrepo

    root = loaded.root
    repo = gitrepo.open_checkout(root)
    plan = plan_bump(loaded.config, req, gitrepo.worktree_reader(root))
    if plan.edit is None or dry_run:
        return BumpResult(plan, None, dry_run)
    gitrepo.require_clean(repo, [plan.edit.path])
    commit = gitrepo.commit_to_checkout(
        repo, root, {plan.edit.path: plan.edit.new_text}, plan.message, loaded.config.git.author
    )
    return BumpResult(plan, commit, dry_run)
