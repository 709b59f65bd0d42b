"""Values of services across an environment's values files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gitops_glue.config import Environment
from gitops_glue.errors import UsageError
from gitops_glue.repo import keypath, values

#: Reads a repository-relative file; returns None when the file does not exist.
Reader = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Found:
    value: Any  # None when no file sets it
    file: str | None  # the file the effective value comes from


def effective(read: Reader, env: Environment, key: str) -> Found:
    """The value helm would see: the last of the environment's files that sets ``key``."""
    path = keypath.parse(key)
    for name in reversed(env.values):
        text = read(name)
        if text is None:
            continue
        docs = _parsed(text, name)
        found = values.lookup(docs, path)
        if found.node is not None:
            return Found(values.to_python(docs[found.document], found.node), name)
    return Found(None, None)


@lru_cache(maxsize=128)
def _parsed(text: str, name: str) -> list[values.Document]:
    """Parsed documents, cached by content: status reads each file once."""
    return values.parse_documents(text, name)


def require_files(read: Reader, env: Environment) -> None:
    for name in env.values:
        if read(name) is None:
            raise UsageError(
                f"environment {env.name!r}: values file {name} does not exist",
                hint="create it, or fix environments[].values in glue.yaml",
            )
