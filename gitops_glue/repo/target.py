"""A local checkout as a commit target (the remote one is in :mod:`gitops_glue.repo.remote`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
        import os

        from gitops_glue.files import refuse_link
        from gitops_glue.repo import gitrepo, holds, signing

        repo = gitrepo.open_checkout(self.root)
        # A missing or unusable signing key is found before anything is written.
        signer = None if dry_run else signing.signer_for(self.loaded.config.git, os.environ)
        workdir = Path(repo.workdir).resolve()
        root = self.root.resolve()
        prefix = root.relative_to(workdir).as_posix() if root != workdir else ""
        # One glue commit at a time in this checkout; plan on the branch as it is
        # once the lock is held, so a second bump builds on the first.
        lock = gitrepo.checkout_lock(repo) if not dry_run else _no_lock()
        with lock:
            if not dry_run:
                gitrepo.recover_checkout(repo, workdir)
            tip = gitrepo.tip(repo)
            view = View(
                self.loaded.config,
                gitrepo.worktree_reader(
                    self.root,
                    within=workdir,
                    regular=(holds.PATH,),
                    tracked=lambda rel: (f"{prefix}/{rel}" if prefix else rel) in repo.index,
                ),
                gitrepo.GitHistory(repo, tip, prefix),
            )
            change = plan(view)
            if not change.changed or dry_run:
                return Landed(change, None)
            # Paths in the commit are relative to the git work tree, which may be
            # above the folder of glue.yaml.
            files = {
                (f"{prefix}/{rel}" if prefix else rel): text for rel, text in change.files().items()
            }
            for rel in files:
                refuse_link(workdir.joinpath(*rel.split("/")), root=workdir)
            gitrepo.require_clean(repo, sorted(files))
            commit = gitrepo.commit_to_checkout(
                repo, workdir, files, change.message, self.loaded.config.git.author, signer
            )
            return Landed(change, commit)


@contextlib.contextmanager
def _no_lock() -> Iterator[None]:
    yield
