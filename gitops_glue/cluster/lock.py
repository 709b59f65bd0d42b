"""One deploy per environment: a ``coordination.k8s.io/v1`` Lease as the lock.

The Lease ``glue-deploy-<env>`` (in the environment's namespace) names its
holder (pipeline URL or user@host), a duration, and is renewed while the
deploy runs. A second deploy waits for it; a Lease whose holder stopped
renewing (a job killed without warning) expires and is taken over. All
updates carry the Lease's resourceVersion, so two takers cannot both win.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitops_glue.errors import OperationError

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube

Progress = Callable[[str], None]


def lease_name(env: str) -> str:
    return f"glue-deploy-{env}"


def identity(pipeline_url: str = "") -> str:
    """Who holds the lock: the pipeline URL in CI, user@host otherwise (plus the pid)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    who = pipeline_url or f"{user}@{socket.gethostname()}"
    return f"{who} (pid {os.getpid()})"


@dataclass(frozen=True)
class Holder:
    identity: str
    expires_in: float  # seconds; negative when expired


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _holder(lease: Any) -> Holder | None:
    spec = lease.spec
    if spec is None or not spec.holder_identity:
        return None
    renewed = spec.renew_time or spec.acquire_time
    duration = spec.lease_duration_seconds or 0
    left = duration - (_now() - renewed).total_seconds() if renewed else -1.0
    return Holder(spec.holder_identity, left)


class DeployLock:
    """Context manager: acquire on enter (waiting up to ``timeout``), release on exit."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        env: str,
        *,
        holder: str,
        duration: int = 60,
        timeout: float = 600,
        progress: Progress | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = lease_name(env)
        self.holder = holder
        self.duration = duration
        self.timeout = timeout
        self.say = progress or (lambda _m: None)
        self.took_over: str | None = None  # the expired holder we replaced
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ acquire

    def _body(self, resource_version: str | None, transitions: int) -> Any:
        from kubernetes import client

        now = _now()
        return client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                resource_version=resource_version,
                labels={"app.kubernetes.io/managed-by": "gitops-glue"},
            ),
            spec=client.V1LeaseSpec(
                holder_identity=self.holder,
                lease_duration_seconds=self.duration,
                acquire_time=now,
                renew_time=now,
                lease_transitions=transitions,
            ),
        )

    def try_acquire(self) -> Holder | None:
        """Take the lease if free or expired; the current holder when it is not."""
        from kubernetes.client.exceptions import ApiException

        api = self.kube.coordination
        try:
            lease = api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if not self.kube.is_not_found(exc):
                raise self.kube.api_error(
                    f"reading Lease {self.namespace}/{self.name}", exc
                ) from None
            self.kube.ensure_namespace(self.namespace)
            try:
                api.create_namespaced_lease(self.namespace, self._body(None, 0))
                return None
            except ApiException as exc2:
                if self.kube.is_conflict(exc2):
                    return Holder("another deploy (just took it)", 1.0)
                raise self.kube.api_error(
                    f"creating Lease {self.namespace}/{self.name}", exc2
                ) from None
        current = _holder(lease)
        if current is not None and current.identity != self.holder and current.expires_in > 0:
            return current
        transitions = (lease.spec.lease_transitions or 0) + 1
        try:
            api.replace_namespaced_lease(
                self.name, self.namespace, self._body(lease.metadata.resource_version, transitions)
            )
        except ApiException as exc:
            if self.kube.is_conflict(exc):
                return Holder("another deploy (just took it)", 1.0)
            raise self.kube.api_error(f"taking Lease {self.namespace}/{self.name}", exc) from None
        if current is not None and current.identity != self.holder:
            self.took_over = current.identity
        return None

    def acquire(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Take the lock, waiting up to ``timeout``; False when ``stop()`` said to give up."""
        deadline = time.monotonic() + self.timeout
        last_said = 0.0
        while True:
            if stop():
                return False
            holder = self.try_acquire()
            if holder is None:
                if self.took_over:
                    self.say(f"took over the expired deploy lock of {self.took_over}")
                self._start_renewal()
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                raise OperationError(
                    f"another deploy holds the lock for this environment: {holder.identity}",
                    hint=f"waited {int(self.timeout)}s (--lock-timeout); if that job is gone, "
                    f"its lock expires in {max(0, int(holder.expires_in))}s, or run "
                    "glue unlock --env ENV",
                )
            if time.monotonic() - last_said >= 10 or last_said == 0:
                self.say(
                    f"waiting for the deploy lock held by {holder.identity} ({int(left)}s left)"
                )
                last_said = time.monotonic()
            wake = time.monotonic() + min(2.0, max(left, 0.1))
            while time.monotonic() < wake and not stop():
                time.sleep(0.1)

    # ------------------------------------------------------------------ renew / release

    def _start_renewal(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="glue-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        from kubernetes.client.exceptions import ApiException

        api = self.kube.coordination
        while not self._stop.wait(self.duration / 3):
            try:
                lease = api.read_namespaced_lease(self.name, self.namespace)
                if lease.spec.holder_identity != self.holder:
                    self.lost.set()
                    return
                lease.spec.renew_time = _now()
                api.replace_namespaced_lease(self.name, self.namespace, lease)
            except ApiException:
                continue  # try again next period; expiry protects the others

    def release(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            lease = self.kube.coordination.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.holder:
                return
            self.kube.coordination.delete_namespaced_lease(
                self.name,
                self.namespace,
                body=client.V1DeleteOptions(
                    preconditions=client.V1Preconditions(
                        resource_version=lease.metadata.resource_version
                    )
                ),
            )
        except ApiException:
            return  # gone already, or taken over: nothing of ours to release

    def __enter__(self) -> DeployLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def unlock(kube: Kube, namespace: str, env: str) -> Holder | None:
    """Delete the environment's lock whoever holds it; the holder it had."""
    from kubernetes.client.exceptions import ApiException

    name = lease_name(env)
    try:
        lease = kube.coordination.read_namespaced_lease(name, namespace)
    except ApiException as exc:
        if kube.is_not_found(exc):
            return None
        raise kube.api_error(f"reading Lease {namespace}/{name}", exc) from None
    holder = _holder(lease)
    try:
        kube.coordination.delete_namespaced_lease(name, namespace)
    except ApiException as exc:
        if not kube.is_not_found(exc):
            raise kube.api_error(f"deleting Lease {namespace}/{name}", exc) from None
    return holder
