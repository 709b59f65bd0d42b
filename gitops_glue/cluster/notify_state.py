"""The notify state: what a start message saw, kept in the cluster for the finish message.

``glue notify`` for a start phase keeps the old and new versions it compared (and,
with a bot token, the Slack message's ``ts`` and channel) in a ConfigMap,
``glue-notify-<env>`` from CI or ``glue-notify-<env>.<release>`` in a Helm hook Job
(created by the chart). The finish phase of the same deployment reports the same
change and threads under (or updates) the start message, even though the deploy
record has moved on by then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitops_glue.errors import OperationError
from gitops_glue.service_version import ServiceVersion

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube

LABELS = {"app.kubernetes.io/managed-by": "gitops-glue", "gitops-glue.dev/kind": "notify-state"}


def state_name(env: str, release: str | None = None) -> str:
    """The notify state ConfigMap: per release in a hook Job, per environment from CI."""
    return f"glue-notify-{env}.{release}" if release else f"glue-notify-{env}"


@dataclass(frozen=True)
class SavedStart:
    """What a start phase saw, for the finish phase of the same deployment."""

    phase: str
    old: dict[str, ServiceVersion] | None
    new: dict[str, ServiceVersion]
    ts: str | None = None
    channel: str | None = None

    def to_data(self) -> dict[str, str]:
        def enc(m: Mapping[str, ServiceVersion]) -> dict[str, Any]:
            return {k: {"tag": v.tag, "revision": v.revision} for k, v in sorted(m.items())}

        return {
            "state.json": json.dumps(
                {
                    "phase": self.phase,
                    "old": None if self.old is None else enc(self.old),
                    "new": enc(self.new),
                    "ts": self.ts,
                    "channel": self.channel,
                },
                sort_keys=True,
            )
        }

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> SavedStart | None:
        try:
            raw = json.loads(data.get("state.json") or "null")
        except ValueError:
            return None
        if not isinstance(raw, dict):
            return None

        def dec(m: Any) -> dict[str, ServiceVersion]:
            return {
                str(k): ServiceVersion(v.get("tag"), v.get("revision"))
                for k, v in (m or {}).items()
            }

        return cls(
            phase=str(raw.get("phase", "")),
            old=None if raw.get("old") is None else dec(raw["old"]),
            new=dec(raw.get("new")),
            ts=raw.get("ts") or None,
            channel=raw.get("channel") or None,
        )

    def same_deployment(self, new: Mapping[str, ServiceVersion]) -> bool:
        return {k: (v.tag, v.revision) for k, v in self.new.items()} == {
            k: (v.tag, v.revision) for k, v in new.items()
        }


def read_state(kube: Kube, namespace: str, name: str) -> SavedStart | None:
    """The saved start; None when there is none (or it cannot be read back)."""
    cm = kube.read_config_map(namespace, name)
    return None if cm is None else SavedStart.from_data(cm.data)


def save_state(kube: Kube, namespace: str, name: str, state: SavedStart, *, create: bool) -> None:
    """Update the state ConfigMap; create it only when ``create`` (a chart owns the hook's)."""
    cm = kube.read_config_map(namespace, name)
    if cm is not None:
        kube.update_config_map(cm, state.to_data())
        return
    if not create:
        raise OperationError(
            f"ConfigMap {namespace}/{name} does not exist",
            hint="the chart creates it when notify.enabled is true",
        )
    # From CI, the start message may come before the first deploy created the namespace.
    kube.ensure_namespace(namespace)
    kube.create_config_map(
        namespace,
        name,
        state.to_data(),
        LABELS,
    )
