"""Names glue derives from others, below everything that uses them.

``config`` (the bottom of glue's model), ``cluster`` and ``integrations`` all need
these; keeping them here lets each import downward only, and keeps a hook Job's
``glue notify`` (which never loads ``config``) on the same names.
"""

from __future__ import annotations


def default_namespace(env: str) -> str:
    """Namespace of an environment's deploy record and lock when glue.yaml names none."""
    return f"glue-{env}"


def short_ref(ref: str) -> str:
    """A branch or tag name as people write it: ``refs/heads/main`` is ``main``.

    Azure Pipelines (``Build.SourceBranch``) and GitHub (``GITHUB_REF``) give full
    refs; branch rules in glue.yaml (``auto_release``) are written with short names.
    """
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref
