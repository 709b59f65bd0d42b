"""Git plumbing with pygit2: read trees, build commits without a work tree.

Commits are built from trees (not from the index), so a bump never picks up
whatever else a user had staged, and the same code builds commits on a
freshly fetched remote tip where there is no work tree at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue.config import Author
from gitops_glue.errors import Interrupted, OperationError, UsageError
from gitops_glue.files import atomic_write_text, checkpoint
from gitops_glue.repo.commit import HistoryCommit, Reverted

if TYPE_CHECKING:
    import pygit2

    from gitops_glue.repo.versions import Reader


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


def worktree_reader(root: Path, *, within: Path | None = None) -> Reader:
    """Read files below ``root``; None for a missing file, an error for a folder.

    ``within``: refuse files that resolve outside this folder (the git work tree)
    through a symbolic link, so nothing outside the repository is read into a commit.
    """
    from gitops_glue.files import read_text

    def read(rel: str) -> str | None:
        path = root.joinpath(*rel.split("/"))
        if path.is_dir():
            raise UsageError(f"{rel}: is a directory, not a file")
        if not path.is_file():
            return None
        if within is not None and not path.resolve().is_relative_to(within.resolve()):
            raise UsageError(
                f"{rel}: is a symbolic link to {path.resolve()}, outside the repository; "
                "glue will not read or commit it",
                hint="replace the link with the file itself",
            )
        return read_text(path)

    return read


def tree_reader(repo: pygit2.Repository, tree: pygit2.Tree) -> Reader:
    import pygit2

    def read(rel: str) -> str | None:
        try:
            obj = tree[rel]
        except KeyError:
            return None
        if obj.filemode == pygit2.enums.FileMode.LINK:
            raise UsageError(
                f"{rel}: is a symbolic link in the repository; glue reads and edits only "
                "regular files",
                hint="commit the file itself instead of a link",
            )
        blob = repo[obj.id]
        if not isinstance(blob, pygit2.Blob):
            if isinstance(blob, pygit2.Tree):
                raise UsageError(f"{rel}: is a directory, not a file")
            return None
        try:
            return blob.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{rel}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None

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
                    elif existing.filemode != pygit2.enums.FileMode.BLOB:
                        raise UsageError(
                            f"{prefix}{head}: is not a regular file in the repository "
                            "(a symbolic link, folder or submodule); glue will not replace it"
                        )
                builder.insert(head, repo.create_blob(text.encode("utf-8")), mode)
        for name, sub in nested.items():
            subtree = None
            if tree is not None and name in tree:
                obj = repo[tree[name].id]
                if not isinstance(obj, pygit2.Tree):
                    raise UsageError(
                        f"{prefix}{name}: is not a folder in the repository (a symbolic "
                        "link or a file); glue will not replace it"
                    )
                subtree = obj
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


#: The journal of a local commit in progress, in the git folder: a commit killed
#: half way is rolled back by the next glue run (see :func:`recover_checkout`).
JOURNAL = "glue-commit-in-progress.json"
#: glue's own lock in the git folder: one glue commit at a time per checkout.
LOCK = "glue.lock"
LOCK_WAIT_SECONDS = 60.0


@contextlib.contextmanager
def checkout_lock(repo: pygit2.Repository) -> Iterator[None]:
    """Hold glue's lock of this checkout; refuse when git's own locks are taken.

    The lock is an ``flock`` on ``.git/glue.lock``: the kernel drops it when its
    holder dies, so a killed glue never blocks the next one. Another glue waits
    (up to :data:`LOCK_WAIT_SECONDS`) and then plans on the branch as it is then.
    """
    import fcntl

    gitdir = Path(repo.path)
    fd = os.open(gitdir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperationError(
                        f"another glue has been committing in {repo.workdir} for "
                        f"{LOCK_WAIT_SECONDS:.0f} s; nothing was changed",
                        hint="wait for it to finish and run the command again",
                    ) from None
                time.sleep(0.05)
        refuse_git_locks(repo)
        yield
    finally:
        os.close(fd)


def refuse_git_locks(repo: pygit2.Repository) -> None:
    """Refuse to commit while git's lock files say a git command is at work (or crashed)."""
    gitdir = Path(repo.path)
    names = ["index.lock", "HEAD.lock"]
    if not repo.head_is_detached:
        names.append(f"{repo.head.name}.lock")
    for name in names:
        if (gitdir / name).exists():
            raise OperationError(
                f"git's lock file {gitdir / name} exists: another git command is running "
                "(or one was killed); nothing was changed",
                hint="if no git command is running, remove that file and run glue again",
            )


def _journal_path(repo: pygit2.Repository) -> Path:
    return Path(repo.path) / JOURNAL


def _put_back(repo: pygit2.Repository, workdir: Path, paths: Sequence[str], old: str) -> None:
    """Put ``paths`` in the work tree and the index back as commit ``old`` has them."""
    import pygit2

    tree = repo[old].peel(pygit2.Commit).tree
    index = repo.index
    index.read(False)
    for rel in paths:
        path = workdir.joinpath(*rel.split("/"))
        try:
            entry = tree[rel]
        except KeyError:
            entry = None
        if entry is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(KeyError, OSError, pygit2.GitError):
                index.remove(rel)
            continue
        blob = repo[entry.id]
        assert isinstance(blob, pygit2.Blob)
        if not path.is_file() or path.read_bytes() != blob.data:
            atomic_write_text(path, blob.data.decode("utf-8"), temp_dir=Path(repo.path))
        index.add(rel)
    index.write()


def recover_checkout(repo: pygit2.Repository, workdir: Path) -> None:
    """Finish what a killed local commit left: its journal says what it was doing.

    The branch still at the old commit: the files and the index are put back as
    it has them (nothing was committed). The branch at the new commit: the
    commit is whole; only the journal is left to remove. Run under
    :func:`checkout_lock`.
    """
    path = _journal_path(repo)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ref, old, new = str(data["ref"]), str(data["old"]), str(data["new"])
        paths = [str(p) for p in data["paths"]]
    except FileNotFoundError:
        return
    except (ValueError, KeyError, TypeError, OSError):
        path.unlink(missing_ok=True)
        return
    try:
        current = str(repo.references[ref].target)
    except KeyError:
        current = None
    if current == old:
        _put_back(repo, workdir, paths, old)
    elif current == new:
        _put_back(repo, workdir, paths, new)
    path.unlink(missing_ok=True)


def commit_to_checkout(
    repo: pygit2.Repository, root: Path, files: Mapping[str, str], message: str, author: Author
) -> str:
    """Commit ``files`` on the checked-out branch and bring work tree and index along.

    ``files`` are relative to the git work tree ``root``. The order makes a kill at
    any instant harmless: the commit object first (unreferenced), a journal, the
    files, the index, and only then the branch. Before the branch moves the work
    tree holds the bump uncommitted (never a staged revert), and the next glue run
    puts it back (:func:`recover_checkout`); an error or Ctrl-C puts it back at once.
    Run under :func:`checkout_lock`.
    """
    import pygit2

    head = repo.head.peel(pygit2.Commit)
    branch_ref = repo.head.name
    try:
        oid = create_commit(repo, head, files, message, author, None)
    except pygit2.GitError as exc:
        raise OperationError(f"could not commit: {exc}") from None
    checkpoint("commit-object")
    journal = _journal_path(repo)
    atomic_write_text(
        journal,
        json.dumps({"ref": branch_ref, "old": str(head.id), "new": str(oid), "paths": list(files)}),
    )
    checkpoint("journal")
    moved = False
    try:
        for rel, text in files.items():
            atomic_write_text(root.joinpath(*rel.split("/")), text, temp_dir=Path(repo.path))
            checkpoint("file")
        index = repo.index
        index.read(False)
        for rel in files:
            index.add(rel)
        index.write()
        checkpoint("index")
        if repo.references[branch_ref].target != head.id:
            raise OperationError(
                f"the branch {branch_ref} moved while glue was committing; nothing was committed",
                hint="run the command again",
            )
        repo.references[branch_ref].set_target(oid, f"glue: {message.splitlines()[0]}")
        moved = True
        checkpoint("branch")
    except BaseException as exc:
        if not moved:
            _put_back(repo, root, list(files), str(head.id))
            journal.unlink(missing_ok=True)
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(
                    "nothing was committed; the files and the index are as they were"
                ) from None
            if isinstance(exc, pygit2.GitError):
                raise OperationError(
                    f"could not commit: {exc}; nothing was committed, the files and the "
                    "index are as they were"
                ) from None
        raise
    journal.unlink(missing_ok=True)
    checkpoint("done")
    return str(oid)


class GitHistory:
    """:class:`gitops_glue.repo.commit.History` over a pygit2 repository, from ``tip``.

    Paths are relative to ``prefix``, the folder of glue.yaml inside the repository
    (``""``: its root), like every other path a planner sees; a path outside it is
    given as ``../`` and its path from the root, so it matches no values file.
    """

    def __init__(self, repo: pygit2.Repository, tip: pygit2.Commit, prefix: str = "") -> None:
        self.repo = repo
        self.tip = tip
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    def _rel(self, path: str) -> str:
        if not self.prefix:
            return path
        return path[len(self.prefix) :] if path.startswith(self.prefix) else f"../{path}"

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
            paths.add(self._rel(delta.old_file.path))
            paths.add(self._rel(delta.new_file.path))
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
                    {
                        self._rel(e.path)
                        for entries in index.conflicts
                        for e in entries
                        if e is not None
                    }
                )
                return Reverted(conflict=str(c.id), conflict_paths=tuple(clashing))
            tree = self.repo[index.write_tree(self.repo)].peel(pygit2.Tree)
        old, new = tree_reader(self.repo, self.tip.tree), tree_reader(self.repo, tree)
        full = {
            p: p if self.prefix == "" or p.startswith("../") else self.prefix + p for p in paths
        }
        return Reverted(
            old_texts={p: old(full[p]) for p in sorted(paths)},
            new_texts={p: new(full[p]) for p in sorted(paths)},
        )
