"""``glue rollback``: revert an environment's last glue change(s) as a new commit.

A glue commit is recognised by its trailers, never by its wording or author:
``Glue-Environment: ENV`` (every bump, promote and release has it) and
``Glue-Action`` (``promote``, ``release``, ``rollback``; absent on a bump).
History is walked along first parents from the branch tip:

- without ``--to``: the newest glue commit of ENV that is not already rolled
  back is reverted;
- with ``--to COMMIT``: every such commit after COMMIT is reverted, newest
  first, in one commit.

Rollback commits say what they reverted (``Glue-Reverts: SHA``, one per
commit), so a second rollback goes one further back instead of undoing the
first. Commits without ENV's trailers are never reverted; a glue commit that
touches files outside ENV's values files, or whose lines were changed again by
a later commit, is refused (the revert would take someone else's change with
it, or guess). The revert is git's three-way revert on trees, so unrelated
later changes to the same file stay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo.commit import parse_trailers

if TYPE_CHECKING:
    import pygit2

    from gitops_glue.config import GlueConfig, LoadedConfig
    from gitops_glue.repo.remote import Auth, RemoteSpec


@dataclass(frozen=True)
class GlueCommit:
    sha: str
    title: str
    action: str  # bump, promote, release or rollback
    services: tuple[str, ...]
    reverts: tuple[str, ...]  # what a rollback commit reverted

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.sha,
            "title": self.title,
            "action": self.action,
            "services": list(self.services),
        }


def describe(commit: pygit2.Commit, env: str) -> GlueCommit | None:
    """``commit`` as a glue commit of ``env``, or None when it is not one."""
    trailers = parse_trailers(commit.message)
    if ("Glue-Environment", env) not in trailers:
        return None
    get = [v for k, v in trailers if k == "Glue-Action"]
    return GlueCommit(
        sha=str(commit.id),
        title=commit.message.splitlines()[0] if commit.message else "",
        action=get[0] if get else "bump",
        services=tuple(v for k, v in trailers if k == "Glue-Service"),
        reverts=tuple(v for k, v in trailers if k == "Glue-Reverts"),
    )


@dataclass(frozen=True)
class RollbackPlan:
    env: str
    reverted: tuple[GlueCommit, ...]  # newest first
    skipped: int  # commits of others (or other environments) left alone on the way
    old_texts: dict[str, str]
    new_texts: dict[str, str]
    message: str

    def files(self) -> dict[str, str]:
        return dict(self.new_texts)

    @property
    def changed(self) -> bool:
        return bool(self.new_texts)

    def diff(self) -> str:
        from gitops_glue.repo.bump import FileEdit

        return "".join(
            FileEdit(p, self.old_texts[p], t).diff() for p, t in sorted(self.new_texts.items())
        )


@dataclass(frozen=True)
class RollbackResult:
    plan: RollbackPlan
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
        listing = [f"  {c.sha[:10]} {c.title}" for c in p.reverted]
        if not p.reverted:
            return f"nothing to roll back in {p.env}"
        if not p.changed:
            return "unchanged: the changes of these commits are already undone:\n" + "\n".join(
                listing
            )
        if self.dry_run:
            return (
                f"{p.diff()}\n(dry run) would revert in {p.env}:\n"
                + "\n".join(listing)
                + f"\n(dry run) would commit: {p.message.splitlines()[0]}"
            )
        lines = [p.message.splitlines()[0], "  reverted:", *listing, f"  commit {self.commit}"]
        if self.pushed_to:
            lines.append(f"  pushed to {self.pushed_to} after {self.attempts} attempt(s)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "environment": self.plan.env,
            "reverted": [c.to_json() for c in self.plan.reverted],
            "files": sorted(self.plan.new_texts),
            "commit": self.commit,
            "dry_run": self.dry_run,
            "remote": self.pushed_to,
            "attempts": self.attempts,
        }


def _changed_paths(repo: pygit2.Repository, commit: pygit2.Commit) -> list[str]:
    parent = commit.parents[0]
    diff = parent.tree.diff_to_tree(commit.tree)
    paths = set()
    for delta in diff.deltas:
        paths.add(delta.old_file.path)
        paths.add(delta.new_file.path)
    return sorted(paths)


def _resolve(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    import pygit2

    try:
        return repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        raise UsageError(
            f"--to {rev!r}: no such commit in the deployment repository",
            hint="give a commit id from git log of the deployment branch",
        ) from None


def rollback_message(env: str, reverted: list[GlueCommit], ci: CiContext) -> str:
    if len(reverted) == 1:
        title = f"revert({env}): roll back {reverted[0].title}"
    else:
        title = f"revert({env}): roll back {len(reverted)} changes"
    lines = [title, "", "Reverts:"]
    lines += [f"- {c.sha[:10]} {c.title}" for c in reverted]
    lines += ["", f"Glue-Environment: {env}", "Glue-Action: rollback"]
    lines += [f"Glue-Reverts: {c.sha}" for c in reverted]
    services = sorted({s for c in reverted for s in c.services})
    lines += [f"Glue-Service: {s}" for s in services]
    lines += [
        f"{k}: {v}" for k, v in (("Pipeline", ci.pipeline_url), ("Triggered-By", ci.actor)) if v
    ]
    return "\n".join(lines) + "\n"


def plan_rollback(
    repo: pygit2.Repository,
    tip: pygit2.Commit,
    config: GlueConfig,
    env: str,
    *,
    to: str | None = None,
    ci: CiContext | None = None,
) -> RollbackPlan:
    """Find what to revert and build the reverted file texts; touches nothing."""
    import pygit2

    environment = config.environment(env)
    stop = _resolve(repo, to) if to else None
    undone: set[str] = set()
    targets: list[tuple[GlueCommit, pygit2.Commit]] = []
    skipped = 0
    commit: pygit2.Commit | None = tip
    found_stop = False
    while commit is not None:
        if stop is not None and commit.id == stop.id:
            found_stop = True
            break
        info = describe(commit, env)
        if info is not None and info.action == "rollback":
            undone.update(info.reverts)
        elif info is not None and info.sha not in undone:
            targets.append((info, commit))
            if stop is None:
                break
        else:
            skipped += 1
        commit = commit.parents[0] if commit.parents else None
    if stop is not None and not found_stop:
        raise UsageError(
            f"--to {to}: {str(stop.id)[:10]} is not in the history of the branch "
            "(first-parent line)",
            hint="give a commit of the deployment branch that is older than the changes",
        )
    reverted = [info for info, _c in targets]
    if stop is None and not targets:
        raise UsageError(
            f"no glue change of {env!r} to roll back on this branch",
            hint="glue rolls back commits with a Glue-Environment trailer (bump-tag, promote, "
            "release); other commits need git revert",
        )
    own = set(environment.values)
    tree = tip.tree
    for info, c in targets:
        if len(c.parents) != 1:
            raise UsageError(f"{info.sha[:10]} is a merge commit: not reverting it")
        outside = [p for p in _changed_paths(repo, c) if p not in own]
        if outside:
            raise UsageError(
                f"{info.sha[:10]} ({info.title}) has glue trailers but also changes "
                f"{', '.join(outside)}, outside {env}'s values files: not reverting it",
                hint="revert it by hand with git revert",
            )
        index = repo.merge_trees(c.tree, tree, c.parents[0].tree)
        if index.conflicts is not None:
            paths = sorted(
                {e.path for entries in index.conflicts for e in entries if e is not None}
            )
            raise UsageError(
                f"cannot roll back {info.sha[:10]} ({info.title}): later commits changed the "
                f"same lines of {', '.join(paths)}",
                hint="a later change would be reverted with it; edit the file by hand or "
                "bump the tag you want",
            )
        tree = repo[index.write_tree(repo)].peel(pygit2.Tree)
    old_texts: dict[str, str] = {}
    new_texts: dict[str, str] = {}
    for path in sorted({p for _i, c in targets for p in _changed_paths(repo, c)}):
        old = _text(repo, tip.tree, path)
        new = _text(repo, tree, path)
        if new is None:
            raise UsageError(f"rolling back would delete {path}: not doing that")
        if old != new:
            old_texts[path] = old or ""
            new_texts[path] = new
    return RollbackPlan(
        env=env,
        reverted=tuple(reverted),
        skipped=skipped,
        old_texts=old_texts,
        new_texts=new_texts,
        message=rollback_message(env, reverted, ci or CiContext()),
    )


def _text(repo: pygit2.Repository, tree: pygit2.Tree, path: str) -> str | None:
    from gitops_glue.repo import gitrepo

    return gitrepo.tree_reader(repo, tree)(path)


def rollback_local(
    loaded: LoadedConfig,
    env: str,
    *,
    to: str | None = None,
    ci: CiContext | None = None,
    dry_run: bool = False,
) -> RollbackResult:
    import pygit2

    from gitops_glue.repo import gitrepo
    from gitops_glue.repo.commit import commit_local

    repo = gitrepo.open_checkout(loaded.root)
    tip = repo.head.peel(pygit2.Commit)
    plan = plan_rollback(repo, tip, loaded.config, env, to=to, ci=ci)
    if not plan.changed or dry_run:
        return RollbackResult(plan, None, dry_run)
    return RollbackResult(plan, commit_local(loaded.root, plan, loaded.config.git.author), False)


def rollback_remote(
    spec: RemoteSpec,
    auth: Auth,
    env: str,
    *,
    to: str | None = None,
    ci: CiContext | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RollbackResult:
    from gitops_glue.repo import gitrepo
    from gitops_glue.repo.remote import config_at, push_change

    def make(repo: pygit2.Repository, tip: pygit2.Commit) -> RollbackPlan:
        config = config_at(gitrepo.tree_reader(repo, tip.tree), spec.branch)
        return plan_rollback(repo, tip, config, env, to=to, ci=ci)

    pushed = push_change(spec, auth, make, dry_run=dry_run, progress=progress, history=True)
    return RollbackResult(pushed.plan, pushed.commit, dry_run, pushed.remote, pushed.attempts)
