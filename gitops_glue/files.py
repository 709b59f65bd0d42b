"""Atomic file writes: a killed glue never leaves half a file."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

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


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temp file in the same folder, fsync, rename.

    The file's permission bits are kept. A file glue may not write is refused
    before anything changes.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(
            f"{path}: not writable (permission denied)",
            hint="fix the file's permissions or run as its owner",
        )
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".glue-tmp", dir=directory)
    except PermissionError:
        raise UsageError(
            f"{directory}: folder not writable, so {path.name} cannot be replaced safely"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OperationError(f"{path}: could not write: {exc.strerror}") from None
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
