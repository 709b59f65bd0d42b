"""What a deployment changes: each service's old and new version, compared.

:func:`compute` compares the recorded versions (the old side) with the versions
being deployed (the new side). A :class:`ServiceChange` knows its links: the
source revision of each side and, for GitHub and GitLab source repositories, a
compare link.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gitops_glue.integrations.ci import commit_url
from gitops_glue.service_version import ServiceVersion

Status = Literal["changed", "added", "removed", "unchanged"]

_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def _git_ref(v: ServiceVersion | None) -> str:
    """The source revision of a version: its revision, or a tag that is a commit SHA.

    A tag that is a commit SHA wins over a revision that is another commit (a
    revision left over from an older tag): never link a tag to a stale commit.
    """
    if v is None:
        return ""
    sha_tag = v.tag if v.tag and _SHA.match(v.tag) else ""
    if (
        v.revision
        and sha_tag
        and not (v.revision.startswith(sha_tag) or sha_tag.startswith(v.revision))
    ):
        return sha_tag
    return v.revision or sha_tag


def compare_url(repo_url: str | None, old: str, new: str) -> str:
    """Web link comparing two revisions on GitHub (``/compare/``) or GitLab (``/-/compare/``)."""
    if not repo_url or not old or not new or old == new:
        return ""
    base = repo_url.rstrip("/")
    return (
        f"{base}/compare/{old}...{new}" if "github" in base else f"{base}/-/compare/{old}...{new}"
    )


@dataclass(frozen=True)
class ServiceChange:
    service: str
    status: Status
    old: ServiceVersion | None
    new: ServiceVersion | None
    source_repo: str | None = None
    held: bool = False  # glue hold holds it in this environment
    #: The soak its promotion passed (``45m in staging``), from the ``Glue-Proven`` trailer.
    proven: str | None = None

    @property
    def revision_only(self) -> bool:
        """Same tag, different source revision (a rebuilt image)."""
        return (
            self.status == "changed"
            and self.old is not None
            and self.new is not None
            and (self.old.tag == self.new.tag)
        )

    def old_url(self) -> str:
        return commit_url(self.source_repo, _git_ref(self.old))

    def new_url(self) -> str:
        return commit_url(self.source_repo, _git_ref(self.new))

    def compare_url(self) -> str:
        if self.status != "changed":
            return ""
        return compare_url(self.source_repo, _git_ref(self.old), _git_ref(self.new))

    def summary(self) -> str:
        """Plain text: ``a 3f9c2e1 -> 4e5f6a7`` (`` (held)`` when glue hold holds it)."""
        proven = f" (proven: {self.proven})" if self.proven else ""
        return self._summary() + proven + (" (held)" if self.held else "")

    def _summary(self) -> str:
        o, n = self.old, self.new
        if self.status == "added":
            return f"{self.service} {n.tag if n else ''} (new)"
        if self.status == "removed":
            return f"{self.service} {o.tag if o else ''} (removed)"
        if self.status == "unchanged":
            return f"{self.service} {n.tag if n else ''}"
        assert o is not None and n is not None
        if self.revision_only:
            return (
                f"{self.service} {n.tag} (revision {(o.revision or '')[:7]} → "
                f"{(n.revision or '')[:7]})"
            )
        return f"{self.service} {o.tag} → {n.tag}"

    def to_json(self) -> dict[str, Any]:
        def side(v: ServiceVersion | None) -> dict[str, Any] | None:
            return None if v is None else {"tag": v.tag, "revision": v.revision}

        data = {
            "service": self.service,
            "status": self.status,
            "old": side(self.old),
            "new": side(self.new),
            "source_repo": self.source_repo,
            "old_url": self.old_url(),
            "new_url": self.new_url(),
            "compare_url": self.compare_url(),
        }
        if self.proven:
            data["proven"] = self.proven
        return data

    def template_vars(self) -> dict[str, Any]:
        o, n = self.old, self.new
        return {
            "service": self.service,
            "status": self.status,
            "revision_only": self.revision_only,
            "old_tag": o.tag if o else None,
            "new_tag": n.tag if n else None,
            "old_revision": o.revision if o else None,
            "new_revision": n.revision if n else None,
            "old_url": self.old_url(),
            "new_url": self.new_url(),
            "compare_url": self.compare_url(),
            "source_repo": self.source_repo,
            "held": self.held,
            "proven": self.proven,
        }


@dataclass(frozen=True)
class ChangeSet:
    environment: str
    first_deployment: bool
    services: list[ServiceChange]

    @property
    def changed(self) -> list[ServiceChange]:
        return [s for s in self.services if s.status != "unchanged"]

    @property
    def unchanged(self) -> list[ServiceChange]:
        return [s for s in self.services if s.status == "unchanged"]

    @property
    def has_changes(self) -> bool:
        return bool(self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "first_deployment": self.first_deployment,
            "changed": [s.service for s in self.changed],
            "unchanged": [s.service for s in self.unchanged],
            "services": [s.to_json() for s in self.services],
        }


def _same_revision(old: ServiceVersion, new: ServiceVersion) -> bool:
    # A revision known on one side only (an older record) is no evidence of a change.
    return not (old.revision and new.revision and old.revision != new.revision)


def compute(
    environment: str,
    old: Mapping[str, ServiceVersion] | None,
    new: Mapping[str, ServiceVersion],
    *,
    sources: Mapping[str, str | None] | None = None,
    scope: Collection[str] | None = None,
    held: Collection[str] = (),
    proven: Mapping[str, str] | None = None,
) -> ChangeSet:
    """Compare the recorded versions (``old``; None: nothing recorded) with ``new``.

    ``scope``: only these services are being deployed (a single release): the
    record's other services are neither "removed" nor listed.
    """
    sources = sources or {}
    recorded = dict(old or {})
    if scope is not None:
        recorded = {k: v for k, v in recorded.items() if k in scope}
    changes = []
    for name in sorted(set(recorded) | set(new)):
        o, n = recorded.get(name), new.get(name)
        status: Status
        if o is None:
            status = "added"
        elif n is None:
            status = "removed"
        elif o.tag == n.tag and _same_revision(o, n):
            status = "unchanged"
        else:
            status = "changed"
        soak = (proven or {}).get(name) if status in ("changed", "added") else None
        changes.append(ServiceChange(name, status, o, n, sources.get(name), name in held, soak))
    return ChangeSet(environment, old is None, changes)
