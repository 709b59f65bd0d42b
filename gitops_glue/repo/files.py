"""``glue get`` / ``glue set``: read or change one value in one YAML file on disk.

The YAML work is :mod:`gitops_glue.repo.values`; this adds the file: reading it,
the atomic write (only when something changes and it is not a dry run) and a
typed result with a unified diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SetStatus = Literal["changed", "would-change", "unchanged"]


def get_value(file: Path, key_path: str, *, document: int | None = None) -> object:
    """The value at ``key_path`` in ``file``: a scalar, or a dict/list for collections."""
    from gitops_glue.files import read_text
    from gitops_glue.repo import values

    value: object = values.get_value(
        read_text(file), key_path, filename=str(file), document=document
    )
    return value


@dataclass(frozen=True)
class SetResult:
    status: SetStatus
    file: Path
    key: str
    old: object  # the previous value (None when created)
    new: str
    created: bool
    line: int  # 1-based line of the changed scalar
    dry_run: bool
    diff: str  # unified diff of the change ("" when unchanged)

    @property
    def changed(self) -> bool:
        return self.status != "unchanged"

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "status": self.status,
            "file": str(self.file),
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "created": self.created,
            "line": self.line,
            "dry_run": self.dry_run,
        }
        if self.dry_run:
            data["diff"] = self.diff
        return data


def set_value(
    file: Path,
    key_path: str,
    value: str,
    *,
    create: bool = False,
    force_string: bool = False,
    document: int | None = None,
    dry_run: bool = False,
) -> SetResult:
    """Change the value at ``key_path`` in ``file``; nothing else in the file changes."""
    import difflib

    from gitops_glue.files import atomic_write_text, read_text
    from gitops_glue.repo import values

    text = read_text(file)
    edit = values.set_value(
        text,
        key_path,
        value,
        filename=str(file),
        create=create,
        document=document,
        force_string=force_string,
    )
    if edit.changed and not dry_run:
        atomic_write_text(file, edit.text)
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(True), edit.text.splitlines(True), f"a/{file}", f"b/{file}"
        )
    )
    status: SetStatus = (
        "unchanged" if not edit.changed else ("would-change" if dry_run else "changed")
    )
    old: object = edit.old
    return SetResult(status, file, key_path, old, value, edit.created, edit.line, dry_run, diff)
