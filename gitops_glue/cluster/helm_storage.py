"""Helm releases as Helm stores them, and recovery of releases stuck pending.

Helm keeps one Secret per revision (``sh.helm.release.v1.NAME.vN``, labels
``owner=helm``, ``name``, ``status``, ``version``). A release whose latest
revision is ``pending-*`` blocks every later operation ("another operation
(install/upgrade/rollback) is in progress"), and ``--force`` does not help.
Recovery rolls back explicitly to the newest ``deployed``/``superseded``
revision (never Helm's default N-1, which may be the failed one) or, for a
release that never deployed, uninstalls it.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitops_glue.errors import OperationError

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
GOOD = ("deployed", "superseded")


@dataclass(frozen=True)
class Revision:
    number: int
    status: str
    created: dt.datetime


@dataclass(frozen=True)
class ReleaseState:
    name: str
    namespace: str
    revisions: list[Revision]  # oldest first

    @property
    def latest(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None

    @property
    def pending(self) -> bool:
        return self.latest is not None and self.latest.status in PENDING

    @property
    def last_good(self) -> Revision | None:
        good = [r for r in self.revisions if r.status in GOOD]
        return good[-1] if good else None


@dataclass(frozen=True)
class Recovery:
    release: str
    namespace: str
    stuck_revision: int
    stuck_status: str
    action: str  # "rollback" or "uninstall"
    to_revision: int | None
    reason: str

    def describe(self) -> str:
        target = f" to revision {self.to_revision}" if self.to_revision else ""
        return (
            f"recovered {self.namespace}/{self.release}: revision {self.stuck_revision} was "
            f"{self.stuck_status} ({self.reason}); {self.action}{target}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "release": self.release,
            "namespace": self.namespace,
            "stuck_revision": self.stuck_revision,
            "stuck_status": self.stuck_status,
            "action": self.action,
            "to_revision": self.to_revision,
            "reason": self.reason,
        }


def state(kube: Kube, name: str, namespace: str) -> ReleaseState:
    """The release's revisions from Helm's storage Secrets."""
    revisions = []
    for secret in kube.list_secrets(namespace, f"owner=helm,name={name}"):
        try:
            number = int(secret.labels.get("version", ""))
        except ValueError:
            continue
        created = secret.created or dt.datetime.now(dt.timezone.utc)
        revisions.append(Revision(number, secret.labels.get("status", "unknown"), created))
    revisions.sort(key=lambda r: r.number)
    return ReleaseState(name, namespace, revisions)


def plan_recovery(
    release: ReleaseState, *, lock_held: bool, timeout: float, now: dt.datetime | None = None
) -> Recovery | None:
    """What to do about a pending release; None when it is not stuck (or not stale)."""
    latest = release.latest
    if latest is None or latest.status not in PENDING:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    age = (now - latest.created).total_seconds()
    if lock_held:
        reason = "glue holds the environment's deploy lock, so no deploy is running"
    elif age > timeout:
        reason = f"pending for {int(age)}s, longer than the deploy timeout of {int(timeout)}s"
    else:
        return None
    good = release.last_good
    if good is None:
        return Recovery(
            release.name,
            release.namespace,
            latest.number,
            latest.status,
            "uninstall",
            None,
            reason + "; it never deployed",
        )
    return Recovery(
        release.name,
        release.namespace,
        latest.number,
        latest.status,
        "rollback",
        good.number,
        reason,
    )


def recover(
    recovery: Recovery,
    helm: str,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    kube_args: tuple[str, ...] = (),
) -> None:
    """Carry out a recovery with the helm binary (``kube_args``: the environment's
    ``--kube-context``; ``env`` carries its ``KUBECONFIG``)."""
    if recovery.action == "rollback":
        args = [
            helm,
            *kube_args,
            "rollback",
            recovery.release,
            str(recovery.to_revision),
            "--namespace",
            recovery.namespace,
            "--timeout",
            f"{int(timeout)}s",
        ]
    else:
        args = [
            helm,
            *kube_args,
            "uninstall",
            recovery.release,
            "--namespace",
            recovery.namespace,
            "--timeout",
            f"{int(timeout)}s",
        ]
    proc = subprocess.run(
        args, capture_output=True, text=True, env=env, check=False, timeout=timeout + 30
    )
    if proc.returncode != 0:
        raise OperationError(
            f"could not recover {recovery.namespace}/{recovery.release} "
            f"({' '.join(args[1 + len(kube_args) : 3 + len(kube_args)])}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}",
            hint=f"inspect it with: helm history {recovery.release} -n {recovery.namespace}",
        )
