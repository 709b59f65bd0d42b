"""Why a deploy failed: the release's pods that are not Ready, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

    def describe(self) -> str:
        where = f"{self.namespace}/{self.pod}" + (f" [{self.container}]" if self.container else "")
        text = f"{where}: {self.reason}" + (f": {self.message}" if self.message else "")
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
        }


def _problems_of(pod: Any) -> list[tuple[str | None, str, str]]:
    status = pod.status
    found: list[tuple[str | None, str, str]] = []
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status != "True":
            found.append((None, cond.reason or "Unschedulable", cond.message or ""))
    for cs in (status.init_container_statuses or []) + (status.container_statuses or []):
        state = cs.state
        if (
            state
            and state.waiting
            and state.waiting.reason not in (None, "ContainerCreating", "PodInitializing")
        ):
            found.append((cs.name, state.waiting.reason, state.waiting.message or ""))
        elif state and state.terminated and state.terminated.exit_code not in (0, None):
            found.append(
                (
                    cs.name,
                    state.terminated.reason or "Error",
                    f"exit code {state.terminated.exit_code}",
                )
            )
        elif not cs.ready and state and state.running:
            found.append((cs.name, "NotReady", "running but failing its readiness probe"))
    if not found and status.phase not in ("Running", "Succeeded"):
        found.append((None, status.phase or "Unknown", status.reason or status.message or ""))
    return found


def _ready(pod: Any) -> bool:
    if pod.status.phase == "Succeeded":
        return True
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def not_ready_pods(
    kube: Kube, namespace: str, release: str, log_lines: int = 20
) -> list[PodProblem]:
    """Pods of ``release`` (Helm's ``app.kubernetes.io/instance`` label) that are not Ready."""
    from kubernetes.client.exceptions import ApiException

    try:
        pods = kube.core.list_namespaced_pod(
            namespace, label_selector=f"app.kubernetes.io/instance={release}"
        ).items
    except ApiException:
        return []
    problems = []
    for pod in pods:
        if pod.metadata.deletion_timestamp or _ready(pod):
            continue
        for container, reason, message in _problems_of(pod):
            logs: list[str] = []
            if container:
                try:
                    text = kube.core.read_namespaced_pod_log(
                        pod.metadata.name,
                        namespace,
                        container=container,
                        tail_lines=log_lines,
                        previous=reason == "CrashLoopBackOff",
                    )
                    logs = str(text).splitlines()[-log_lines:]
                except ApiException:
                    logs = []
            problems.append(
                PodProblem(namespace, pod.metadata.name, container, reason, message, logs)
            )
    return problems
