"""Git plumbing with pygit2: read trees, build commits without a work tree.

Commits are built from trees (not from the index), so a bump never picks up
whatever else a user had staged, and the same code builds commits on a
freshly fetched remote tip where there is no work tree at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue.config import Author
from gitops_glue.errors import OperationError, UsageError
from gitops_glue.files import atomic_write_text
from gitops_glue.repo.commit import HistoryCommit, Reverted

if TYPE_CHECKING:
    import pygit2

    from gitops_glue.repo.envfiles import Reader


def open_checkout(root: Path) -> pygit2.Repository:
    import pygit2

    try:
        repo = pygit2.Repository(str(root))
    except pygit2.GitError:
        raise UsageError(
            f"{root} is not a git checkout",
            hint="run glue inside a clone of the deployment repository",
        ) from None
    if repo.is_bare:
        raise UsageError(f"{root} is a bare repository; glue needs a checkout")
    if repo.head_is_unborn:
        raise UsageError(
            f"{root}: the current branch has no commits yet",
            hint="commit the deployment repository once first",
        )
    if repo.head_is_detached:
        raise UsageError(f"{root}: HEAD is detached", hint="check out the branch to commit to")
    return repo


def worktree_reader(root: Path) -> Reader:
    from gitops_glue.files import read_text

    def read(rel: str) -> str | None:
        path = root.joinpath(*rel.split("/"))
        return read_text(path) if path.is_file() else None

    return read


def tree_reader(repo: pygit2.Repository, tree: pygit2.Tree) -> Reader:
    import pygit2

    def read(rel: str) -> str | None:
        try:
            obj = tree[rel]
        except KeyError:
            return None
        blob = repo[obj.id]
        if not isinstance(blob, pygit2.Blob):
            return None
        try:
            return blob.data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{rel}: not UTF-8 text") from None

    return read


def require_clean(repo: pygit2.Repository, paths: list[str]) -> None:
    """Refuse to commit files that have uncommitted changes of the user's."""
    import pygit2

    for rel in paths:
        try:
            flags = repo.status_file(rel)
        except KeyError:
            continue
        if flags not in (pygit2.enums.FileStatus.CURRENT, pygit2.enums.FileStatus.IGNORED):
            raise UsageError(
                f"{rel} has uncommitted changes; glue commits only its own edit",
                hint="commit or stash your changes to that file first",
            )


def tree_with(repo: pygit2.Repository, base: pygit2.Tree, files: Mapping[str, str]) -> pygit2.Oid:
    """A new tree: ``base`` with ``files`` (path -> text) written into it."""
    import pygit2

    def build(tree: pygit2.Tree | None, prefix: str, changes: dict[str, str]) -> pygit2.Oid:
        builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
        nested: dict[str, dict[str, str]] = {}
        for rel, text in changes.items():
            head, sep, rest = rel.partition("/")
            if sep:
                nested.setdefault(head, {})[rest] = text
            else:
                mode = pygit2.enums.FileMode.BLOB
                if tree is not None and head in tree:
                    existing = tree[head]
                    if existing.filemode == pygit2.enums.FileMode.BLOB_EXECUTABLE:
                        mode = pygit2.enums.FileMode.BLOB_EXECUTABLE
                builder.insert(head, repo.create_blob(text.encode("utf-8")), mode)
        for name, sub in nested.items():
            subtree = None
            if tree is not None and name in tree:
                obj = repo[tree[name].id]
                subtree = obj if isinstance(obj, pygit2.Tree) else None
            builder.insert(
                name, build(subtree, f"{prefix}{name}/", sub), pygit2.enums.FileMode.TREE
            )
        return builder.write()

    return build(base, "", dict(files))


def signature(author: Author) -> pygit2.Signature:
    import pygit2

    offset = -time.timezone // 60 if not time.localtime().tm_isdst else -time.altzone // 60
    return pygit2.Signature(author.name, author.email, int(time.time()), offset)


def create_commit(
    repo: pygit2.Repository,
    parent: pygit2.Commit,
    files: Mapping[str, str],
    message: str,
    author: Author,
    ref: str | None,
) -> pygit2.Oid:
    """A commit of ``files`` on top of ``parent``; moves ``ref`` when given."""
    tree = tree_with(repo, parent.tree, files)
    sig = signature(author)
    return repo.create_commit(ref, sig, sig, message, tree, [parent.id])


def commit_to_checkout(
    repo: pygit2.Repository, root: Path, files: Mapping[str, str], message: str, author: Author
) -> str:
    """Commit ``files`` on the checked-out branch and bring work tree and index along."""
    import pygit2

    head = repo.head.peel(pygit2.Commit)
    branch_ref = repo.head.name
    try:
        oid = create_commit(repo, head, files, message, author, None)
        repo.references[branch_ref].set_target(oid, f"glue: {message.splitlines()[0]}")
    except pygit2.GitError as exc:
        raise OperationError(f"could not commit: {exc}") from None
    index = repo.index
    for rel, text in files.items():
        atomic_write_text(root.joinpath(*rel.split("/")), text)
        index.add(rel)
    index.write()
    return str(oid)


class GitHistory:
    """:class:`gitops_glue.repo.commit.History` over a pygit2 repository, from ``tip``."""

    def __init__(self, repo: pygit2.Repository, tip: pygit2.Commit) -> None:
        self.repo = repo
        self.tip = tip

    def _commit(self, sha: str) -> pygit2.Commit:
        import pygit2

        return self.repo.revparse_single(sha).peel(pygit2.Commit)

    def first_parents(self) -> Iterator[HistoryCommit]:
        commit: pygit2.Commit | None = self.tip
        while commit is not None:
            yield HistoryCommit(
                str(commit.id), commit.message, tuple(str(p) for p in commit.parent_ids)
            )
            commit = commit.parents[0] if commit.parents else None

    def resolve(self, rev: str) -> str | None:
        import pygit2

        try:
            return str(self._commit(rev).id)
        except (KeyError, ValueError, pygit2.GitError):
            return None

    def changed_paths(self, sha: str) -> tuple[str, ...]:
        commit = self._commit(sha)
        diff = commit.parents[0].tree.diff_to_tree(commit.tree)
        paths = set()
        for delta in diff.deltas:
            paths.add(delta.old_file.path)
            paths.add(delta.new_file.path)
        return tuple(sorted(paths))

    def revert(self, shas: Sequence[str]) -> Reverted:
        import pygit2

        tree = self.tip.tree
        paths: set[str] = set()
        for sha in shas:
            c = self._commit(sha)
            paths.update(self.changed_paths(sha))
            index = self.repo.merge_trees(c.tree, tree, c.parents[0].tree)
            if index.conflicts is not None:
                clashing = sorted(
                    {e.path for entries in index.conflicts for e in entries if e is not None}
                )
                return Reverted(conflict=str(c.id), conflict_paths=tuple(clashing))
            tree = self.repo[index.write_tree(self.repo)].peel(pygit2.Tree)
        old, new = tree_reader(self.repo, self.tip.tree), tree_reader(self.repo, tree)
        return Reverted(
            old_texts={p: old(p) for p in sorted(paths)},
            new_texts={p: new(p) for p in sorted(paths)},
        )
