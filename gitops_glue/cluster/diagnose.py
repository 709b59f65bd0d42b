"""Why a deploy failed: the release's pods that are not Ready, and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitops_glue.errors import OperationError
from gitops_glue.redact import redact

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube


@dataclass(frozen=True)
class PodProblem:
    namespace: str
    pod: str
    container: str | None
    reason: str  # CrashLoopBackOff, ImagePullBackOff, Unschedulable, NotReady...
    message: str
    logs: list[str] = field(default_factory=list)
    release: str = ""  # the Helm release the pod belongs to, when known

    def headline(self) -> str:
        """``NS/POD [CONTAINER]: REASON: MESSAGE``, one line."""
        where = f"{self.namespace}/{self.pod}" + (f" [{self.container}]" if self.container else "")
        return f"{where}: {self.reason}" + (f": {self.message}" if self.message else "")

    def describe(self) -> str:
        text = self.headline()
        if self.logs:
            text += "\n" + "\n".join(f"    | {line}" for line in self.logs)
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "namespace": self.namespace,
            "pod": self.pod,
            "container": self.container,
            "reason": self.reason,
            "message": self.message,
            "logs": self.logs,
            "release": self.release,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PodProblem:
        """A problem as :meth:`to_json` wrote it."""
        return cls(
            str(data.get("namespace") or ""),
            str(data.get("pod") or ""),
            data.get("container") or None,
            str(data.get("reason") or ""),
            str(data.get("message") or ""),
            [str(line) for line in data.get("logs") or []],
            str(data.get("release") or ""),
        )


@dataclass(frozen=True)
class FailureReport:
    """Why a deploy failed, as ``glue apply --report`` writes it and ``glue notify``
    reads it back: the pods that are not Ready and helmfile's last output lines."""

    failing_pods: list[PodProblem] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return {"failing_pods": [p.to_json() for p in self.failing_pods], "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailureReport:
        pods = [PodProblem.from_json(p) for p in data.get("failing_pods") or []]
        return cls(pods, str(data.get("error") or ""))


Pod = Mapping[str, Any]  # as the API serves it in JSON


def containers(pod: Pod) -> list[Mapping[str, Any]]:
    """The pod's container statuses, init containers first."""
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def problems_of(pod: Pod) -> list[tuple[str | None, str, str]]:
    """(container or None, reason, message) for everything wrong with a Pod."""
    status = pod.get("status") or {}
    found: list[tuple[str | None, str, str]] = []
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") != "True":
            found.append((None, cond.get("reason") or "Unschedulable", cond.get("message") or ""))
    for cs in containers(pod):
        state = cs.get("state") or {}
        waiting = state.get("waiting")
        terminated = state.get("terminated")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            found.append((cs.get("name"), waiting["reason"], waiting.get("message") or ""))
        elif terminated and terminated.get("exitCode") not in (0, None):
            found.append(
                (
                    cs.get("name"),
                    terminated.get("reason") or "Error",
                    f"exit code {terminated['exitCode']}",
                )
            )
        elif not cs.get("ready") and state.get("running"):
            found.append((cs.get("name"), "NotReady", "running but failing its readiness probe"))
    phase = status.get("phase")
    if not found and phase not in ("Running", "Succeeded"):
        found.append(
            (None, phase or "Unknown", status.get("reason") or status.get("message") or "")
        )
    return found


def is_ready(pod: Pod) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") == "Succeeded":
        return True
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def not_ready_pods(
    kube: Kube, namespace: str, release: str, log_lines: int = 20
) -> list[PodProblem]:
    """Pods of ``release`` (Helm's ``app.kubernetes.io/instance`` label) that are not Ready."""
    try:
        pods = kube.list_pods(namespace, f"app.kubernetes.io/instance={release}")
    except OperationError:
        return []
    problems = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or is_ready(pod):
            continue
        for container, reason, message in problems_of(pod):
            logs: list[str] = []
            if container:
                try:
                    logs = kube.pod_log(
                        namespace,
                        meta["name"],
                        container,
                        tail=log_lines,
                        previous=reason == "CrashLoopBackOff",
                    )
                except OperationError:
                    logs = []
            # What glue forwards (output, record, report, Slack) is masked at the source.
            lines = [redact(line) for line in logs]
            problems.append(
                PodProblem(
                    namespace, meta["name"], container, reason, redact(message), lines, release
                )
            )
    return problems
