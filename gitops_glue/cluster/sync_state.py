"""What ``glue sync`` last saw and did, kept in the cluster next to the deploy record.

One ConfigMap per environment, ``glue-sync-<env>`` in the environment's namespace,
written by ``glue sync`` after every round and read by ``glue status --cluster``.
The deploy record's ``git-revision`` stays the one truth of what is deployed; this
adds what only the puller knows. Format (``data``):

``branch``           the branch it pulls (``remote``: its URL, credentials masked)
``seen-revision``    the branch tip at the last round, ``checked-at`` when
``applied-revision`` the last revision sync itself applied, ``applied-at`` when
``failing-revision`` the revision whose sync fails (empty: none), ``error`` why,
                     ``failures`` consecutive failed rounds, ``failing-since``
``alerted-revision`` the failing revision already alerted about: one alert per
                     failing revision, also across restarts and CronJob runs
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube

LABELS = {"app.kubernetes.io/managed-by": "gitops-glue", "gitops-glue.dev/kind": "sync-state"}


def state_name(env: str) -> str:
    return f"glue-sync-{env}"


@dataclass(frozen=True)
class SyncState:
    branch: str = ""
    remote: str = ""
    seen_revision: str = ""
    checked_at: str = ""
    applied_revision: str = ""
    applied_at: str = ""
    failing_revision: str = ""
    failing_since: str = ""
    error: str = ""
    failures: int = 0
    alerted_revision: str = ""

    @property
    def failing(self) -> bool:
        return self.failures > 0 or bool(self.failing_revision)

    def to_data(self) -> dict[str, str]:
        return {k.replace("_", "-"): str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_data(cls, data: dict[str, str]) -> SyncState:
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = data.get(f.name.replace("_", "-"), "")
            if f.name == "failures":
                values[f.name] = int(raw) if raw.isdigit() else 0
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]


def read(kube: Kube, namespace: str, env: str) -> SyncState | None:
    """The state, or None when sync never ran for ``env``."""
    cm = kube.read_config_map(namespace, state_name(env))
    return None if cm is None else SyncState.from_data(dict(cm.data))


def write(kube: Kube, namespace: str, env: str, state: SyncState) -> None:
    kube.put_config_map(namespace, state_name(env), state.to_data(), LABELS)
