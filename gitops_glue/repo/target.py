"""A local checkout as a commit target (the remote one is in :mod:`gitops_glue.repo.remote`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue.repo.commit import CommitTarget, D, Landed, Plan, View

if TYPE_CHECKING:
    from gitops_glue.config import GlueConfig, LoadedConfig


class Checkout(CommitTarget):
    """The checked-out branch of a clone: plan on its work tree, commit on its branch.

    The commit is built from the branch's tree plus the change (never from the
    index, so staged work of the user's stays out), then the work tree and the
    index are brought along. Files with uncommitted changes are refused.
    """

    remote = None

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded

    @property
    def root(self) -> Path:
        return self.loaded.root

    def config(self) -> GlueConfig:
        return self.loaded.config

    def land(self, plan: Plan[D], *, dry_run: bool, history: bool) -> Landed[D]:
        import pygit2

        from gitops_glue.repo import gitrepo

        repo = gitrepo.open_checkout(self.root)
        tip = repo.head.peel(pygit2.Commit)
        view = View(
            self.loaded.config, gitrepo.worktree_reader(self.root), gitrepo.GitHistory(repo, tip)
        )
        change = plan(view)
        if not change.changed or dry_run:
            return Landed(change, None)
        files = change.files()
        gitrepo.require_clean(repo, sorted(files))
        commit = gitrepo.commit_to_checkout(
            repo, self.root, files, change.message, self.loaded.config.git.author
        )
        return Landed(change, commit)
