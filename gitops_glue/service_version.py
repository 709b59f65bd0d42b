"""A service's version: the one value type for it, at the bottom of the package.

What the values files say a service runs in an environment (``repo.versions``), what
``glue apply`` records as deployed (``cluster.record``) and what ``glue notify``
compares are all a :class:`ServiceVersion`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceVersion:
    tag: str | None
    revision: str | None = None
    release: str | None = None
    digest: str | None = None
    since: str | None = None  # when this tag (and digest) was first deployed successfully

    def to_json(self) -> dict[str, str | None]:
        """``digest`` and ``since`` only when known: older records stay as they were."""
        data = {"tag": self.tag, "revision": self.revision, "release": self.release}
        return data | {k: v for k, v in (("digest", self.digest), ("since", self.since)) if v}
