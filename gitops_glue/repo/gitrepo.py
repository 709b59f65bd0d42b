"""Git plumbing with pygit2: read trees, build commits without a work tree.

Commits are built from trees (not from the index), so a bump never picks up
whatever else a user had staged, and the same code builds commits on a
freshly fetched remote tip where there is no work tree at all.

Each file goes into a commit as ``git add`` would store it, and into the work
tree as ``git checkout`` would write it: git's line-ending conversion
(``text``/``eol`` attributes, ``core.autocrlf``) and ``ident`` are applied
through libgit2 (:func:`to_git`, :func:`to_worktree`), with the attributes of
the checkout, or of the commit built on (a remote tip). A file under a
``filter`` driver (Git LFS and the like) or a ``working-tree-encoding`` is
refused: libgit2 cannot run those the way git does. So is a file inside a
submodule: it belongs to another repository.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue.checkpoints import checkpoint
from gitops_glue.config import Author
from gitops_glue.errors import Interrupted, OperationError, UsageError
from gitops_glue.files import atomic_write_bytes, atomic_write_text
from gitops_glue.repo.commit import HistoryCommit, Reverted

if TYPE_CHECKING:
    import pygit2

    from gitops_glue.repo.signing import Signer
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


def tip(repo: pygit2.Repository) -> pygit2.Commit:
    """The commit the checkout's branch points at."""
    import pygit2

    return repo.head.peel(pygit2.Commit)


@dataclass(frozen=True)
class LocalHead:
    """What a checkout's HEAD says, for reports and messages outside CI."""

    commit: str
    branch: str | None  # None: HEAD is detached
    title: str
    author: str


def local_head(root: Path) -> LocalHead | None:
    """The HEAD of the checkout ``root`` is in; None when it is none or has no commit."""
    import pygit2

    try:
        repo = pygit2.Repository(str(root))
        head = tip(repo)
    except (pygit2.GitError, KeyError, ValueError):
        return None
    return LocalHead(
        commit=str(head.id),
        branch=None if repo.head_is_detached else repo.head.shorthand,
        title=head.message.splitlines()[0] if head.message else "",
        author=head.author.name,
    )


def commit_message(root: Path, rev: str) -> tuple[str, str] | None:
    """The full id and message of commit ``rev`` of the checkout ``root`` is in (None:
    no such commit, or no repository)."""
    import pygit2

    try:
        repo = pygit2.Repository(str(root))
        commit = repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return str(commit.id), commit.message


def origin_url(root: Path) -> str | None:
    """The URL of the checkout's ``origin`` remote (None: none)."""
    import pygit2

    try:
        repo = pygit2.Repository(str(root))
        return repo.remotes["origin"].url
    except (KeyError, ValueError, pygit2.GitError):
        return None


def git_user_name() -> str:
    """git's global ``user.name``; empty when unset or unreadable."""
    import pygit2

    try:
        return str(pygit2.Config.get_global_config()["user.name"])
    except (KeyError, OSError, pygit2.GitError):
        return ""


def checkout_history(root: Path) -> GitHistory | None:
    """The history of the checkout ``root`` is in, from HEAD, with paths relative to
    ``root``; None when ``root`` is not in a checkout or it has no commit."""
    import pygit2

    try:
        repo = pygit2.Repository(str(root))
        head = tip(repo)
    except (pygit2.GitError, KeyError, ValueError):
        return None
    prefix = Path(repo.workdir or root).resolve()
    rel = root.resolve().relative_to(prefix).as_posix() if root.resolve() != prefix else ""
    return GitHistory(repo, head, rel)


def export_revision(root: Path, rev: str, dest: Path) -> tuple[str, Path] | None:
    """Write the files of ``rev`` (a commit, tag or branch of the checkout ``root`` is in)
    into ``dest``; returns the full commit id and the folder that stands for ``root``
    there. None when ``rev`` (or the repository) is not there."""
    import pygit2

    try:
        repo = pygit2.Repository(str(root))
        commit = repo.revparse_single(rev).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    _export_tree(repo, commit.tree, dest)
    # The deployment repo may sit in a subfolder of the git repository.
    workdir = Path(repo.workdir or root).resolve()
    return str(commit.id), dest / root.resolve().relative_to(workdir)


def checkout_of(source: Path, ref: str, dest: Path, branch: str) -> str:
    """Make the empty folder ``dest`` a checkout of ``branch`` at ``ref`` of the repository
    at ``source`` (a local one: its objects are copied, history included); the commit id.
    ``glue sync`` deploys from such a checkout of what it fetched."""
    import pygit2

    repo = pygit2.init_repository(str(dest), bare=False, initial_head=branch)
    repo.remotes.create("origin", str(source))
    repo.remotes["origin"].fetch([f"+{ref}:refs/remotes/origin/{branch}"])
    commit = repo.references[f"refs/remotes/origin/{branch}"].peel(pygit2.Commit)
    repo.create_branch(branch, commit)
    repo.checkout(f"refs/heads/{branch}")
    return str(commit.id)


def _export_tree(repo: pygit2.Repository, tree: pygit2.Tree, dest: Path) -> None:
    """Write ``tree``'s files into ``dest`` (symlinks and executable bits kept)."""
    import pygit2

    modes = pygit2.enums.FileMode
    for entry in tree:
        target = dest / str(entry.name)
        obj = repo[entry.id]
        if isinstance(obj, pygit2.Tree):
            target.mkdir()
            _export_tree(repo, obj, target)
        elif isinstance(obj, pygit2.Blob):
            if entry.filemode == modes.LINK:
                os.symlink(obj.data.decode(), target)
            else:
                target.write_bytes(obj.data)
                if entry.filemode == modes.BLOB_EXECUTABLE:
                    target.chmod(0o755)


#: The tree whose ``.gitattributes`` a bare repository's index holds (see :func:`attributes_from`).
_ATTRIBUTES_TREE: weakref.WeakKeyDictionary[pygit2.Repository, str] = weakref.WeakKeyDictionary()


def attributes_from(repo: pygit2.Repository, tree: pygit2.Tree) -> None:
    """Make git's attributes for ``repo`` those of ``tree`` when it has no work tree.

    git (and libgit2) read ``.gitattributes`` from the work tree and the index; a
    bare repository (a fetched remote tip) has neither, so the tree is loaded into
    its index, in memory only. A checkout keeps its own work tree and index.
    """
    if not repo.is_bare or _ATTRIBUTES_TREE.get(repo) == str(tree.id):
        return
    repo.index.read_tree(tree)
    _ATTRIBUTES_TREE[repo] = str(tree.id)


def refuse_filters(repo: pygit2.Repository, rel: str) -> None:
    """Refuse a file that git runs through a conversion glue cannot apply as git does.

    libgit2 applies line-ending conversion and ``ident`` exactly as git does, but
    not ``filter`` drivers (Git LFS, git-crypt...) or ``working-tree-encoding``:
    committing such a file would store its full content where git stores what the
    driver makes of it.
    """
    driver = repo.get_attr(rel, "filter")
    if isinstance(driver, str):
        raise UsageError(
            f"{rel}: is under the git filter {driver!r} (filter={driver} in .gitattributes); "
            "glue cannot apply a filter driver the way git does, so it will not edit or "
            "commit the file",
            hint="keep the values files glue edits out of filter drivers (e.g. Git LFS) "
            "in .gitattributes",
        )
    encoding = repo.get_attr(rel, "working-tree-encoding")
    if isinstance(encoding, str) and encoding.replace("-", "").lower() != "utf8":
        raise UsageError(
            f"{rel}: has working-tree-encoding={encoding} in .gitattributes; glue edits "
            "only UTF-8 files and cannot re-encode them the way git does",
            hint="keep the values files glue edits in UTF-8",
        )


def _convert(repo: pygit2.Repository, rel: str, data: bytes, *, to_odb: bool) -> bytes:
    import pygit2

    mode = pygit2.enums.FilterMode.TO_ODB if to_odb else pygit2.enums.FilterMode.TO_WORKTREE
    try:
        filters = repo.load_filter_list(rel, mode)
        if filters is None or not data:
            return data
        if b"\0" in data:
            # libgit2's buffer comes back as a C string: a NUL would cut it short.
            raise UsageError(f"{rel}: contains a NUL byte; glue edits only text files")
        return filters.apply_to_buffer(data)
    except pygit2.GitError as exc:
        # e.g. core.safecrlf=true and a file whose line endings git would not round-trip
        raise UsageError(
            f"{rel}: git refuses to convert its line endings: {exc}",
            hint="give the file one kind of line ending, as .gitattributes asks",
        ) from None


def to_git(repo: pygit2.Repository, rel: str, text: str) -> bytes:
    """``text`` of ``rel`` as ``git add`` would store it (eol conversion, ``ident``)."""
    refuse_filters(repo, rel)
    return _convert(repo, rel, text.encode("utf-8"), to_odb=True)


def to_worktree(repo: pygit2.Repository, rel: str, data: bytes) -> bytes:
    """A blob's ``data`` as ``git checkout`` would write ``rel`` into the work tree."""
    return _convert(repo, rel, data, to_odb=False)


def _submodule_of(tree: pygit2.Tree, rel: str) -> str | None:
    """The folder on the way to ``rel`` (or ``rel`` itself) that is a submodule, if any."""
    import pygit2

    parts = rel.split("/")
    here: pygit2.Tree | None = tree
    for depth, name in enumerate(parts):
        if here is None or name not in here:
            return None
        entry = here[name]
        if entry.filemode == pygit2.enums.FileMode.COMMIT:
            return "/".join(parts[: depth + 1])
        here = entry if isinstance(entry, pygit2.Tree) else None
    return None


def submodule_error(rel: str, submodule: str) -> UsageError:
    return UsageError(
        f"{rel}: is inside the git submodule {submodule}, another repository; glue edits "
        "and commits only files of the repository it runs in",
        hint=f"keep the values files in this repository, or run glue in the submodule's "
        f"own clone ({submodule})",
    )


def worktree_reader(
    root: Path,
    *,
    within: Path | None = None,
    regular: Collection[str] = (),
    tracked: Callable[[str], bool] | None = None,
) -> Reader:
    """Read files below ``root``; None for a missing file, an error for a folder or a
    symbolic link that points nowhere.

    ``within``: refuse files that resolve outside this folder (the git work tree)
    through a symbolic link, so nothing outside the repository is read into a commit.
    ``regular``: paths that must be files, never links (glue's own files, which a
    remote's tree reader refuses as links too).
    ``tracked``: whether git tracks a path; a tracked file missing from the work tree (a
    sparse checkout leaves it out, or it was deleted) is an error, not a missing file.
    """
    from gitops_glue.files import read_text

    def read(rel: str) -> str | None:
        path = root.joinpath(*rel.split("/"))
        if rel in regular and path.is_symlink():
            raise UsageError(
                f"{rel}: is a symbolic link; glue reads and writes this file only as a "
                "regular file",
                hint="replace the link with the file itself",
            )
        if path.is_dir():
            raise UsageError(f"{rel}: is a directory, not a file")
        if not path.is_file():
            if path.is_symlink():  # a dangling link is a broken file, not a missing one
                raise UsageError(
                    f"{rel}: is a symbolic link to {os.readlink(path)}, which is not a file",
                    hint="replace the link with the file itself",
                )
            if tracked is not None and tracked(rel):
                folder = rel.rpartition("/")[0] or "."
                raise UsageError(
                    f"{rel} is in the branch but not in the work tree: a sparse checkout "
                    "leaves it out, or it was deleted; glue edits the values files in the "
                    "work tree",
                    hint=f"bring it back (git sparse-checkout add {folder}, or git restore "
                    f"{rel}), then run glue again",
                )
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
            obj = None
        submodule = _submodule_of(tree, rel)
        if submodule is not None:
            raise submodule_error(rel, submodule)
        if obj is None:
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
        attributes_from(repo, tree)
        refuse_filters(repo, rel)
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
    """A new tree: ``base`` with ``files`` (path -> text) written into it.

    Each text is stored as git would store it (:func:`to_git`), with the
    attributes of the checkout, or of ``base`` in a bare repository.
    """
    import pygit2

    attributes_from(repo, base)

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
                data = to_git(repo, f"{prefix}{head}", text)
                builder.insert(head, _stored(repo, repo.create_blob(data)), mode)
        for name, sub in nested.items():
            subtree = None
            if tree is not None and name in tree:
                if tree[name].filemode == pygit2.enums.FileMode.COMMIT:
                    raise submodule_error(f"{prefix}{name}/{next(iter(sub))}", f"{prefix}{name}")
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
        return _stored(repo, builder.write())

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
    signer: Signer | None = None,
) -> pygit2.Oid:
    """A commit of ``files`` on top of ``parent``; moves ``ref`` when given.

    ``signer``: sign it as git does (the commit's text signed, the signature in its
    ``gpgsig`` header), so ``git verify-commit`` accepts it."""
    import pygit2

    try:
        tree = tree_with(repo, parent.tree, files)
        sig = signature(author)
        if signer is None:
            return _stored(repo, repo.create_commit(ref, sig, sig, message, tree, [parent.id]))
        # pygit2's stubs say Oid; it returns the commit object's text.
        content = str(repo.create_commit_string(sig, sig, message, tree, [parent.id]))
        oid = _stored(
            repo, repo.create_commit_with_signature(content, signer.sign(content.encode()))
        )
        if ref is not None:
            repo.references.create(ref, oid, force=True)
        return oid
    except (pygit2.GitError, OSError, _NotStored) as exc:
        # The object database could not be written: a full disk, a read-only mount.
        raise _not_stored(repo, exc) from None


class _NotStored(Exception):
    """libgit2 returned an object id without storing the object (it does on a full disk)."""


def _stored(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Oid:
    if oid not in repo:
        raise _NotStored(str(oid))
    return oid


#: Free space below which a failed git write is put down to a full disk: libgit2
#: then often reports a stale message ("object not found") or none at all.
LOW_SPACE_MARGIN = 256 * 1024


def _disk_full(repo: pygit2.Repository) -> bool:
    """Is the disk of the git folder too full for git to rewrite its index?"""
    try:
        st = os.statvfs(repo.path)
        index_size = (Path(repo.path) / "index").stat().st_size
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < index_size + LOW_SPACE_MARGIN


def _why(exc: BaseException, repo: pygit2.Repository | None = None) -> str:
    """What went wrong, in a few words (a full disk named as such)."""
    import errno

    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, (OperationError, UsageError)):
        return exc.message
    if repo is not None and _disk_full(repo):
        return os.strerror(errno.ENOSPC)
    return str(exc) or type(exc).__name__


def _not_stored(repo: pygit2.Repository, exc: Exception) -> OperationError:
    reason = _why(exc, repo)
    if isinstance(exc, _NotStored) and reason == str(exc):
        reason = "git's object database did not keep the new objects"
    return OperationError(
        f"could not write the commit into {repo.path}: {reason}; nothing was committed",
        hint="free some space (or fix the file system) and run the command again",
    )


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
    try:
        fd = os.open(gitdir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise unwritable(gitdir, exc) from None
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


def unwritable(gitdir: Path, exc: OSError) -> UsageError | OperationError:
    """The error for a git folder glue cannot write in (its lock is the first write)."""
    import errno

    if exc.errno == errno.EROFS:
        return UsageError(
            f"{gitdir}: is on a read-only file system; glue cannot commit in this checkout",
            hint="run glue in a writable clone, or with --dry-run to see the change",
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return UsageError(
            f"{gitdir}: not writable (permission denied); glue cannot commit in this checkout",
            hint="run glue as the checkout's owner, or with --dry-run to see the change",
        )
    return OperationError(
        f"{gitdir}: could not create glue's lock file: {exc.strerror}; nothing was changed"
    )


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


def _put_back(
    repo: pygit2.Repository,
    workdir: Path,
    paths: Sequence[str],
    old: str,
    originals: Mapping[str, bytes | None] | None = None,
) -> None:
    """Put ``paths`` in the work tree and the index back as commit ``old`` has them.

    ``originals``: the files' bytes before glue wrote them (None: no file), put back
    exactly; without them (after a kill) each file is written as ``git checkout``
    would write it. The index is written only when it no longer matches ``old``.
    """
    import pygit2

    tree = repo[old].peel(pygit2.Commit).tree
    index = repo.index
    index.read(True)  # what is on disk: an index write that failed changed nothing
    changed = False
    for rel in paths:
        path = workdir.joinpath(*rel.split("/"))
        try:
            entry = tree[rel]
        except KeyError:
            entry = None
        if entry is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if rel in index:
                index.remove(rel)
                changed = True
            continue
        blob = repo[entry.id]
        assert isinstance(blob, pygit2.Blob)
        original = originals.get(rel) if originals is not None else None
        wanted = original if original is not None else to_worktree(repo, rel, blob.data)
        if not path.is_file() or path.read_bytes() != wanted:
            atomic_write_bytes(path, wanted, temp_dir=Path(repo.path))
        if rel not in index or index[rel].id != entry.id:
            index.add(rel)
            changed = True
    if changed:
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


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OperationError(f"{path}: could not read: {exc.strerror}") from None


def commit_to_checkout(
    repo: pygit2.Repository,
    root: Path,
    files: Mapping[str, str],
    message: str,
    author: Author,
    signer: Signer | None = None,
) -> str:
    """Commit ``files`` on the checked-out branch and bring work tree and index along.

    ``files`` are relative to the git work tree ``root``, as the work tree has them.
    The commit stores each as ``git add`` would, the work tree gets it as ``git
    checkout`` would write it, and the index must then hold exactly the committed
    blob (anything else: a conversion glue does not know, and nothing is
    committed), so the checkout is clean afterwards. The order makes a kill at
    any instant harmless: the commit object first (unreferenced), a journal, the
    files, the index, and only then the branch. Before the branch moves the work
    tree holds the bump uncommitted (never a staged revert), and the next glue run
    puts it back (:func:`recover_checkout`); an error or Ctrl-C puts the files and
    the index back at once, byte for byte. Run under :func:`checkout_lock`.
    ``signer``: sign the commit (see :func:`create_commit`).
    """
    import pygit2

    head = repo.head.peel(pygit2.Commit)
    branch_ref = repo.head.name
    oid = create_commit(repo, head, files, message, author, None, signer)
    tree = repo[oid].peel(pygit2.Commit).tree
    checked_out: dict[str, bytes] = {}
    for rel in files:
        blob = repo[tree[rel].id]
        assert isinstance(blob, pygit2.Blob)
        checked_out[rel] = to_worktree(repo, rel, blob.data)
    originals = {rel: _read_bytes(root.joinpath(*rel.split("/"))) for rel in files}
    checkpoint("commit-object")
    journal = _journal_path(repo)
    atomic_write_text(
        journal,
        json.dumps({"ref": branch_ref, "old": str(head.id), "new": str(oid), "paths": list(files)}),
    )
    checkpoint("journal")
    moved = False
    try:
        for rel, data in checked_out.items():
            atomic_write_bytes(root.joinpath(*rel.split("/")), data, temp_dir=Path(repo.path))
            checkpoint("file")
        index = repo.index
        index.read(False)
        for rel in files:
            index.add(rel)
        for rel in files:
            if index[rel].id != tree[rel].id:
                raise UsageError(
                    f"{rel}: git would store the file differently from what glue committed "
                    "(a conversion in git's attributes or configuration glue cannot apply); "
                    "nothing was committed",
                    hint="check .gitattributes and core.autocrlf / core.eol for that file",
                )
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
            try:
                _put_back(repo, root, list(files), str(head.id), originals)
            except (pygit2.GitError, OSError, OperationError, UsageError) as again:
                raise OperationError(
                    f"could not commit ({_why(exc, repo)}), nor put the files back "
                    f"({_why(again, repo)}); "
                    "nothing was committed",
                    hint="free space or fix the file system, then run glue again: it puts "
                    "the files and the index back first",
                ) from None
            journal.unlink(missing_ok=True)
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(
                    "nothing was committed; the files and the index are as they were"
                ) from None
            if isinstance(exc, (pygit2.GitError, OSError)):
                raise OperationError(
                    f"could not commit: {_why(exc, repo)}; nothing was committed, the files and "
                    "the index are as they were"
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

    @property
    def shallow(self) -> bool:
        """A shallow clone: its oldest commits have parents that are not in it."""
        return bool(self.repo.is_shallow)

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
            when = dt.datetime.fromtimestamp(commit.commit_time, dt.timezone.utc)
            yield HistoryCommit(
                str(commit.id),
                commit.message,
                tuple(str(p) for p in commit.parent_ids),
                when.isoformat(timespec="seconds").replace("+00:00", "Z"),
                commit.author.raw_name.decode("utf-8", "replace"),
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


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class LoggedCommit:
    """A commit as ``glue verify-history`` reports it."""

    sha: str
    parents: tuple[str, ...]
    message: str
    author: str  # ``name <email>``
    committed: str  # the committer's date, ISO 8601 with its offset

    @property
    def title(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


class AuditHistory:
    """The history of the checkout ``root`` is in, as ``glue verify-history`` reads it:
    commits, the paths each changes and the files at each commit, with paths relative
    to ``root`` (the folder of glue.yaml; a path outside it is ``../`` and its path from
    the repository's root)."""

    def __init__(self, root: Path) -> None:
        import pygit2

        try:
            self.repo = pygit2.Repository(str(root))
        except pygit2.GitError:
            raise UsageError(
                f"{root} is not in a git checkout",
                hint="run glue verify-history in a clone of the deployment repository",
            ) from None
        if self.repo.head_is_unborn:
            raise UsageError(f"{root}: the current branch has no commits yet")
        self.workdir = Path(self.repo.workdir or self.repo.path).resolve()
        resolved = root.resolve()
        rel = resolved.relative_to(self.workdir).as_posix() if resolved != self.workdir else ""
        self.prefix = f"{rel}/" if rel else ""

    @property
    def shallow(self) -> bool:
        """A shallow clone: its oldest commits have parents that are not in it."""
        return bool(self.repo.is_shallow)

    def resolve(self, rev: str) -> str | None:
        """The commit ``rev`` names (a branch, tag, commit...), or None."""
        import pygit2

        try:
            return str(self.repo.revparse_single(rev).peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError):
            return None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        import pygit2

        if ancestor == descendant:
            return True
        return bool(self.repo.descendant_of(pygit2.Oid(hex=descendant), pygit2.Oid(hex=ancestor)))

    def commits(self, tip: str, since: str | None) -> list[LoggedCommit]:
        """Every commit reachable from ``tip`` and not from ``since``, newest first."""
        import datetime as dt

        import pygit2

        walker = self.repo.walk(pygit2.Oid(hex=tip), pygit2.enums.SortMode.TOPOLOGICAL)
        if since is not None:
            walker.hide(pygit2.Oid(hex=since))
        out: list[LoggedCommit] = []
        for c in walker:
            zone = dt.timezone(dt.timedelta(minutes=c.committer.offset))
            when = dt.datetime.fromtimestamp(c.committer.time, zone).isoformat()
            out.append(
                LoggedCommit(
                    str(c.id),
                    tuple(str(p) for p in c.parent_ids),
                    c.message,
                    f"{c.author.name} <{c.author.email}>",
                    when,
                )
            )
        return out

    def _commit(self, sha: str) -> pygit2.Commit:
        import pygit2

        return self.repo[pygit2.Oid(hex=sha)].peel(pygit2.Commit)

    def _rel(self, path: str) -> str:
        if not self.prefix:
            return path
        return path[len(self.prefix) :] if path.startswith(self.prefix) else f"../{path}"

    def changed(self, sha: str) -> set[str]:
        """The paths commit ``sha`` changes against its first parent (all of its files
        for a commit without parents)."""
        commit = self._commit(sha)
        if commit.parents:
            diff = commit.parents[0].tree.diff_to_tree(commit.tree)
        else:
            diff = commit.tree.diff_to_tree(swap=True)
        paths: set[str] = set()
        for delta in diff.deltas:
            paths.add(self._rel(delta.old_file.path))
            paths.add(self._rel(delta.new_file.path))
        return paths

    def blob_id(self, sha: str, rel: str) -> str | None:
        """The id of the object at ``rel`` in commit ``sha`` (None: nothing there)."""
        try:
            return str(self._commit(sha).tree[self.prefix + rel].id)
        except KeyError:
            return None

    def reader(self, sha: str) -> Reader:
        """Read files of commit ``sha`` (paths relative to ``root``)."""
        read = tree_reader(self.repo, self._commit(sha).tree)
        return lambda rel: read(self.prefix + rel)
