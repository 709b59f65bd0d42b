"""After the deploy: watch the pods of the releases that changed, for a window.

``helm --wait`` ends when pods are Ready; the failure that hurts often comes seconds
later (the container cannot reach its database and exits). :func:`verify` watches the
releases' pods (one Kubernetes watch per namespace: the pods as they are, then every
change) and fails as soon as one of them

- restarts a container (its restart count goes up; for a pod created by this deploy,
  any restart at all; a pod from before the deploy that was failing already when the
  watch began counts only for what changes in it, as it is usually going away),
- waits in a state that will not heal by itself (CrashLoopBackOff, ImagePullBackOff,
  ErrImagePull, CreateContainerConfigError, ...), or ends a container with an error
  (Error, OOMKilled, a non-zero exit code),

or, once the window has passed, when a pod is still not Ready (the final verdict is on a
fresh list of the pods, so a watch that went quiet cannot pass a deploy). A healthy
deploy costs the window; a failing one ends at the first sign. Each failure carries the last lines
of the failing container's log (its previous run's, after a restart).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitops_glue.cluster.diagnose import PodProblem, containers, is_ready, problems_of
from gitops_glue.durations import parse_instant
from gitops_glue.errors import OperationError
from gitops_glue.redact import redact

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube

#: The label Helm charts put on a release's pods (``app.kubernetes.io/instance``).
INSTANCE = "app.kubernetes.io/instance"

#: Waiting reasons that do not heal without a change (kubelet's own names).
STUCK = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)

Pod = Mapping[str, Any]


@dataclass(frozen=True)
class Failure:
    """One thing wrong with one container (or the pod: ``container`` None)."""

    container: str | None
    reason: str
    message: str
    previous: bool = False  # the log to show is the container's previous run


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` saw: ``failures`` empty means the releases stayed healthy."""

    window: float
    releases: tuple[str, ...]  # namespace/release
    pods: int
    seconds: float
    failures: tuple[PodProblem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.ok:
            return (
                f"verified: {self.pods} pod(s) of {', '.join(self.releases)} stayed Ready "
                f"for {self.window:g}s"
            )
        return f"verification failed after {self.seconds:.0f}s: {self.failures[0].headline()}"

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "window_seconds": self.window,
            "releases": list(self.releases),
            "pods": self.pods,
            "seconds": round(self.seconds, 1),
            "failures": [p.to_json() for p in self.failures],
        }


def _created(pod: Pod) -> dt.datetime | None:
    return parse_instant((pod.get("metadata") or {}).get("creationTimestamp"))


def restart_counts(pod: Pod) -> dict[str, int]:
    return {str(c.get("name")): int(c.get("restartCount") or 0) for c in containers(pod)}


def failures_now(pod: Pod, baseline: Mapping[str, int]) -> list[Failure]:
    """What in ``pod`` fails verification as it is now; ``baseline``: each container's
    restart count when the watch began (a container not in it counts from 0)."""
    found: list[Failure] = []
    for cs in containers(pod):
        name = str(cs.get("name"))
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        restarts = int(cs.get("restartCount") or 0)
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        if waiting.get("reason") in STUCK:
            why = waiting.get("message") or ""
            if last:
                why = (
                    f"last exit: {last.get('reason') or 'Error'} (exit code {last.get('exitCode')})"
                )
            found.append(Failure(name, str(waiting["reason"]), why, previous=bool(last)))
        elif terminated and terminated.get("exitCode") not in (0, None):
            code = terminated.get("exitCode")
            found.append(Failure(name, terminated.get("reason") or "Error", f"exit code {code}"))
        elif restarts > baseline.get(name, 0):
            reason = last.get("reason") or "Restarted"
            found.append(
                Failure(
                    name,
                    str(reason),
                    f"restarted {restarts} time(s) (exit code {last.get('exitCode', '?')})",
                    previous=True,
                )
            )
    return found


def not_ready(pod: Pod) -> list[Failure]:
    """Why ``pod`` is not Ready, once the window has passed (nothing when it is)."""
    if is_ready(pod):
        return []
    found = [Failure(c, r, m) for c, r, m in problems_of(pod)]
    return found or [Failure(None, "NotReady", "not Ready when the window ended")]


def _watch(
    kube: Kube, namespace: str, releases: Sequence[str], seconds: int, out: queue.Queue[Any]
) -> None:
    """Put the pods of ``releases`` in ``namespace`` on ``out`` as a watch reports them,
    then ``("END", namespace)``; an error goes on ``out`` too (this runs on a thread)."""
    try:
        for kind, pod in kube.watch_pods(namespace, INSTANCE, releases, seconds):
            out.put((kind, pod))
    except OperationError as exc:
        out.put(("ERROR", exc))
    except Exception as exc:  # the caller reports it, not this thread
        out.put(("ERROR", OperationError(f"watching pods in {namespace}: {exc}")))
    out.put(("END", namespace))


def verify(
    kube: Kube,
    releases: Sequence[tuple[str, str]],
    window: float,
    *,
    since: dt.datetime | None = None,
    log_lines: int = 20,
    clock: Callable[[], float] = time.monotonic,
) -> Verification:
    """Watch the pods of ``releases`` ((namespace, release) pairs) for ``window`` seconds.

    ``since``: when the deploy started; a pod created after it is new, so any restart
    of its containers counts. Ends early at the first failure. Raises OperationError
    when the cluster cannot be watched.
    """
    start = clock()
    names = tuple(f"{ns}/{rel}" for ns, rel in releases)
    by_namespace: dict[str, list[str]] = {}
    for ns, rel in releases:
        by_namespace.setdefault(ns, []).append(rel)
    events: queue.Queue[Any] = queue.Queue()
    seconds = max(1, int(window + 0.999))
    for ns, rels in by_namespace.items():
        args = (kube, ns, rels, seconds, events)
        threading.Thread(target=_watch, args=args, name=f"glue-verify: {ns}", daemon=True).start()
    pods: dict[tuple[str, str], Pod] = {}
    baselines: dict[tuple[str, str], dict[str, int]] = {}
    # A pod from before the deploy may be failing already (the crashing one a rollback
    # replaces, going away): only what changes in it after the watch began counts.
    already: dict[tuple[str, str], set[tuple[str | None, str]]] = {}
    open_watches = len(by_namespace)
    while open_watches:
        left = window - (clock() - start)
        if left <= 0:
            break
        try:
            kind, item = events.get(timeout=left)
        except queue.Empty:
            break
        if kind == "END":
            open_watches -= 1
            continue
        if kind == "ERROR":
            raise item
        meta = item.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            pods.pop(key, None)
            continue
        if key not in baselines:
            created = _created(item)
            new = since is not None and created is not None and created >= since
            baselines[key] = {} if new else restart_counts(item)
            old = [] if new else failures_now(item, baselines[key])
            already[key] = {(f.container, f.reason) for f in old}
        pods[key] = item
        found = [
            f
            for f in failures_now(item, baselines[key])
            if (f.container, f.reason) not in already[key]
        ]
        if found:
            early = _problems(kube, item, found, log_lines)
            return Verification(window, names, len(pods), clock() - start, early)
    # The window has passed. The verdict is on the pods as a fresh list shows them, so
    # a watch that went quiet (a proxy holding the stream open) cannot pass a deploy.
    listed: dict[tuple[str, str], Pod] = {}
    for ns, rel in releases:
        for current in kube.list_pods(ns, f"{INSTANCE}={rel}"):
            meta = current.get("metadata") or {}
            if not meta.get("deletionTimestamp"):
                listed[(ns, str(meta.get("name")))] = current
    late: tuple[PodProblem, ...] = ()
    for key, final in sorted(listed.items()):
        # Still there when the window ends: a failing state counts now, old or new.
        found = failures_now(final, baselines.get(key, {})) or not_ready(final)
        late += _problems(kube, final, found, log_lines)
    return Verification(window, names, len(listed), clock() - start, late)


def _problems(
    kube: Kube, pod: Pod, found: Sequence[Failure], log_lines: int
) -> tuple[PodProblem, ...]:
    meta = pod.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    release = str((meta.get("labels") or {}).get(INSTANCE) or "")
    out = []
    for f in found:
        logs: list[str] = []
        if f.container:
            try:
                logs = kube.pod_log(
                    namespace, name, f.container, tail=log_lines, previous=f.previous
                )
            except OperationError:
                logs = []
        # What glue forwards (output, record, report, Slack) is masked at the source.
        text, lines = redact(f.message), [redact(line) for line in logs]
        out.append(PodProblem(namespace, name, f.container, f.reason, text, lines, release))
    return tuple(out)
