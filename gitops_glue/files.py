"""Atomic file writes: a killed glue never leaves half a file."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from gitops_glue.checkpoints import checkpoint
from gitops_glue.errors import ConfigError, OperationError, UsageError

CONFIG_NAME = "glue.yaml"


def find_config(start: Path) -> Path:
    """``glue.yaml`` in ``start`` or the nearest folder above it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_NAME} in {start} or any folder above it",
        hint="run glue inside a deployment repository, or point at one with -C DIR",
    )


def read_text(path: Path) -> str:
    """Read a text file exactly (no newline translation); clear errors."""
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            return fh.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise UsageError(f"{path}: not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def refuse_link(path: Path, *, root: Path | None = None) -> None:
    """Refuse to edit ``path`` when it, or a folder on the way from ``root``, is a symlink.

    Editing through a link would write (or commit) whatever the link points at,
    possibly outside the repository; ``root`` also bounds where the file may resolve.
    """
    if root is not None:
        try:
            rel = path.relative_to(root)
        except ValueError:
            rel = None
        if rel is not None:
            here = root
            for part in rel.parts[:-1]:
                here = here / part
                if here.is_symlink():
                    raise UsageError(
                        f"{path}: the folder {here} is a symbolic link; glue edits only "
                        "files inside the repository, never through links",
                        hint="replace the link with a real folder",
                    )
    if path.is_symlink():
        raise UsageError(
            f"{path}: is a symbolic link; glue edits only regular files, never through links",
            hint="replace the link with the file itself",
        )
    if root is not None and not path.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"{path}: resolves outside the repository {root}; glue will not edit it")


def _remove_stale_temps(path: Path) -> None:
    """Remove temp files that a killed earlier write of ``path`` left behind.

    A writer holds an exclusive lock on its temp file while it exists, so a temp
    file whose lock can be taken belongs to a process that no longer runs.
    """
    import fcntl

    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f".{path.name}.*.glue-tmp"):
            try:
                fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a running glue is writing it
            else:
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
            finally:
                os.close(fd)


def _read_only(path: Path) -> bool:
    """Is ``path`` (or, when it does not exist, its folder) on a read-only mount?"""
    for candidate in (path, path.parent):
        with contextlib.suppress(OSError):
            return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
    return False


def _read_only_error(path: Path) -> UsageError:
    return UsageError(
        f"{path}: is on a read-only file system; glue cannot write it",
        hint="run glue in a writable copy of the repository",
    )


def atomic_write_text(path: Path, text: str, *, temp_dir: Path | None = None) -> None:
    """Replace ``path`` with ``text`` (UTF-8, exactly): see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), temp_dir=temp_dir)


def atomic_write_bytes(path: Path, data: bytes, *, temp_dir: Path | None = None) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename.

    The file's permission bits and owner are kept. A file glue may not write,
    and a symbolic link, are refused before anything changes. Temp files left
    by a killed earlier write of the same file are removed first. ``temp_dir``:
    where the temp file goes instead of the file's folder (same file system; a
    checkout's git folder, so ``git status`` never shows one).
    """
    import fcntl

    refuse_link(path)
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    mode = stat.S_IMODE(st.st_mode) if st else 0o644
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path}: is a directory, not a file")
    if st is not None and not os.access(path, os.W_OK):
        if _read_only(path):
            raise _read_only_error(path)
        raise UsageError(
            f"{path}: not writable (permission denied)",
            hint="fix the file's permissions or run as its owner",
        )
    directory = temp_dir or path.parent
    _remove_stale_temps(directory / path.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".glue-tmp", dir=directory)
    except PermissionError:
        raise UsageError(
            f"{directory}: folder not writable, so {path.name} cannot be replaced safely"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise _read_only_error(path) from None
        raise OperationError(f"{path}: could not write: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                # Only root (or the owner, for the group) can do this; others keep
                # the file as their own, as any editor would.
                with contextlib.suppress(PermissionError):
                    os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, mode)  # after chown, which may clear set-id bits
            checkpoint("write-temp")
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OperationError(f"{path}: could not write: {exc.strerror}") from None
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
