"""The deploy record: what was deployed to an environment, kept in the cluster.

One ConfigMap per environment, ``glue-deployed-<env>`` in the environment's
namespace, written by ``glue apply`` after every successful deploy and read by
``glue notify`` (in CI or in a Helm hook Job, with only ``get`` on that one
ConfigMap) as the "old" side of a change. Format (``data``):

``environment``   the environment name
``services.json`` ``{"<service>": {"tag": ..., "revision": ..., "release": ...,
                  "digest": ..., "since": ...}}``: ``digest`` the image digest where the
                  service has a ``digest_key``; ``since`` the UTC time this tag (and
                  digest) was first deployed successfully (kept by redeploys of it)
``failed.json``   ``{"<service>": {"tag": ..., "at": ..., "reason": ..., "logs": [...]}}``:
                  services whose last deploy attempt failed, or failed its verification
                  (``glue apply --verify``: the reason and the failing container's last
                  log lines, redacted); cleared by the next successful deploy of it
``verified.json`` ``{"<service>": {"tag": ..., "at": ...}}``: services whose running tag
                  passed ``glue apply --verify`` (dropped when another tag is deployed)
``git-revision``  the deployment repository commit that was deployed
``deployed-at``   UTC ISO-8601 time
``deployed-by``   pipeline URL or user@host
``recoveries.json`` stuck releases glue recovered before this deploy (list)
``freeze.json``   only for a deploy in one of the environment's freeze windows: the
                  windows, ``until``, ``at`` and either ``override`` (``reason``, ``by``:
                  ``--override-freeze``) or ``rollback`` (the rollback commit deployed)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitops_glue.durations import parse_instant
from gitops_glue.service_version import ServiceVersion

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube

__all__ = ["DeployRecord", "FailedDeploy", "ServiceVersion", "Verified"]

LABELS = {"app.kubernetes.io/managed-by": "gitops-glue", "gitops-glue.dev/kind": "deploy-record"}


def record_name(env: str) -> str:
    return f"glue-deployed-{env}"


@dataclass(frozen=True)
class FailedDeploy:
    """A deploy attempt of a service that failed: the tag it tried, when, and why
    (empty when helmfile failed; the verification's finding when that failed)."""

    tag: str | None
    at: str
    reason: str = ""
    logs: tuple[str, ...] = ()  # the failing container's last log lines (verification)


def still_failing(failed: FailedDeploy | None, since: str | None) -> bool:
    """Whether ``failed`` is a service's last word: no successful deploy of it (its
    ``since``) is known to have come after the failed attempt."""
    if failed is None:
        return False
    at, ok = parse_instant(failed.at), parse_instant(since)
    return at is None or ok is None or at >= ok


@dataclass(frozen=True)
class Verified:
    """The running tag of a service passed ``glue apply --verify`` at ``at``."""

    tag: str | None
    at: str


@dataclass(frozen=True)
class DeployRecord:
    environment: str
    services: dict[str, ServiceVersion]
    git_revision: str = ""
    deployed_at: str = ""
    deployed_by: str = ""
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, FailedDeploy] = field(default_factory=dict)
    verified: dict[str, Verified] = field(default_factory=dict)
    #: A ``via: merge-request`` environment: the deployed commit's review (the reviewed
    #: and deployed plan digests, where the review was found, ``accepted_unreviewed``).
    review: dict[str, Any] = field(default_factory=dict)
    #: A deploy in a freeze window: the windows, and the override or rollback that let it.
    freeze: dict[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, str]:
        return {
            "environment": self.environment,
            "services.json": json.dumps(
                {k: v.to_json() for k, v in sorted(self.services.items())},
                sort_keys=True,
            ),
            "failed.json": json.dumps(
                {
                    k: {
                        "tag": v.tag,
                        "at": v.at,
                        **({"reason": v.reason} if v.reason else {}),
                        **({"logs": list(v.logs)} if v.logs else {}),
                    }
                    for k, v in sorted(self.failed.items())
                },
                sort_keys=True,
            ),
            "verified.json": json.dumps(
                {k: {"tag": v.tag, "at": v.at} for k, v in sorted(self.verified.items())},
                sort_keys=True,
            ),
            "git-revision": self.git_revision,
            "deployed-at": self.deployed_at,
            "deployed-by": self.deployed_by,
            "recoveries.json": json.dumps(self.recoveries, sort_keys=True),
            **({"review.json": json.dumps(self.review, sort_keys=True)} if self.review else {}),
            **({"freeze.json": json.dumps(self.freeze, sort_keys=True)} if self.freeze else {}),
        }

    @classmethod
    def from_data(cls, data: dict[str, str]) -> DeployRecord:
        raw = json.loads(data.get("services.json") or "{}")
        return cls(
            environment=data.get("environment", ""),
            services={
                k: ServiceVersion(
                    v.get("tag"),
                    v.get("revision"),
                    v.get("release"),
                    v.get("digest"),
                    v.get("since"),
                )
                for k, v in raw.items()
            },
            failed={
                k: FailedDeploy(
                    v.get("tag"),
                    str(v.get("at") or ""),
                    str(v.get("reason") or ""),
                    tuple(str(line) for line in v.get("logs") or ()),
                )
                for k, v in json.loads(data.get("failed.json") or "{}").items()
            },
            verified={
                k: Verified(v.get("tag"), str(v.get("at") or ""))
                for k, v in json.loads(data.get("verified.json") or "{}").items()
            },
            git_revision=data.get("git-revision", ""),
            deployed_at=data.get("deployed-at", ""),
            deployed_by=data.get("deployed-by", ""),
            recoveries=json.loads(data.get("recoveries.json") or "[]"),
            review=json.loads(data.get("review.json") or "{}"),
            freeze=json.loads(data.get("freeze.json") or "{}"),
        )


def read(kube: Kube, namespace: str, env: str) -> DeployRecord | None:
    """The record, or None before the first deploy."""
    cm = kube.read_config_map(namespace, record_name(env))
    return None if cm is None else DeployRecord.from_data(cm.data)


def write(kube: Kube, namespace: str, record: DeployRecord) -> None:
    """Create or replace the record ConfigMap."""
    kube.put_config_map(namespace, record_name(record.environment), record.to_data(), LABELS)


def release_record_name(env: str, release: str) -> str:
    """The record a chart with notify hooks keeps for one release (``glue-deployed-dev.a``)."""
    return f"{record_name(env)}.{release}"


def read_release(kube: Kube, namespace: str, env: str, release: str) -> DeployRecord | None:
    """One release's record (same format as the environment's), or None."""
    cm = kube.read_config_map(namespace, release_record_name(env, release))
    return None if cm is None else DeployRecord.from_data(cm.data)
