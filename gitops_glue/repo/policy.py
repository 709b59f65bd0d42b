"""Tag policy: which image tags an environment accepts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gitops_glue.errors import PolicyError

if TYPE_CHECKING:
    from gitops_glue.config import TagPolicy

#: The OCI distribution spec's tag grammar.
#: ``fullmatch``: ``$`` with ``match`` would accept a trailing newline.
_TAG_SYNTAX = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_tag(tag: str, policy: TagPolicy, env: str) -> None:
    """Raise :class:`PolicyError` unless ``env`` accepts ``tag``."""
    if not _TAG_SYNTAX.fullmatch(tag):
        shown = tag if len(tag) <= 60 else tag[:60] + "..."
        raise PolicyError(
            f"{shown!r} is not a valid image tag",
            hint="tags are up to 128 letters, digits, '_', '.' and '-', not starting with . or -",
        )
    if tag.lower() in (t.lower() for t in policy.mutable_tags) and not policy.allow_mutable:
        raise PolicyError(
            f"environment {env!r} refuses the mutable tag {tag!r}: it can point at a different "
            "image tomorrow, so git would no longer say what runs",
            hint="bump to an immutable tag such as the commit SHA, or set "
            "tag_policy.allow_mutable: true for this environment in glue.yaml",
        )
    if policy.allow is not None and not re.fullmatch(policy.allow, tag):
        raise PolicyError(
            # The pattern as written in glue.yaml: repr() would double its backslashes.
            f"environment {env!r} refuses tag {tag!r}: it does not match the policy "
            f"'{policy.allow}'",
            hint="use a tag that matches, or change tag_policy.allow in glue.yaml",
        )
