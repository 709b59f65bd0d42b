"""A change to the deployment repository: file texts plus a commit message.

Every command that commits (bump-tag, promote, release, rollback) plans a
:class:`Change` from what it reads and hands it to the same two writers: a
local checkout (:func:`commit_local`) or a remote branch
(:func:`gitops_glue.remote.push_change`, which re-plans on each new tip after
a lost push race).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from gitops_glue.config import Author


class Change(Protocol):
    """What a command wants to commit. ``files()`` empty: nothing to do."""

    @property
    def message(self) -> str: ...

    def files(self) -> Mapping[str, str]: ...


def commit_local(root: Path, change: Change, author: Author) -> str:
    """Commit ``change`` on the checked-out branch of ``root``; the new commit id."""
    from gitops_glue.repo import gitrepo

    repo = gitrepo.open_checkout(root)
    files = dict(change.files())
    gitrepo.require_clean(repo, sorted(files))
    return gitrepo.commit_to_checkout(repo, root, files, change.message, author)


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """The trailers of a commit message (the last paragraph's ``Key: value`` lines), in order."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return []
    out = []
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if not sep or not key or not key.replace("-", "").isalnum():
            return []  # not a trailer block
        out.append((key, value.strip()))
    return out
