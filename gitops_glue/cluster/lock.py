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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gitops_glue.cluster.kube import MANAGED_BY, LeaseSpec
from gitops_glue.errors import OperationError

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube

LABELS = dict(MANAGED_BY)

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


def holder_of(spec: LeaseSpec, now: dt.datetime) -> Holder | None:
    """Who holds a Lease and for how much longer; None when nobody does."""
    if not spec.holder:
        return None
    renewed = spec.renew_time or spec.acquire_time
    left = spec.duration - (now - renewed).total_seconds() if renewed else -1.0
    return Holder(spec.holder, left)


def blocked_by(current: Holder | None, me: str) -> Holder | None:
    """The holder that keeps ``me`` from taking the Lease, or None when it may be taken
    (free, expired, or already ``me``'s)."""
    if current is None or current.identity == me or current.expires_in <= 0:
        return None
    return current


def taken_spec(holder: str, duration: int, transitions: int, now: dt.datetime) -> LeaseSpec:
    """The Lease's spec once ``holder`` has taken it."""
    return LeaseSpec(holder, duration, now, now, transitions)


_RACE_LOST = Holder("another deploy (just took it)", 1.0)


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

    def try_acquire(self) -> Holder | None:
        """Take the lease if free or expired; the current holder when it is not."""
        lease = self.kube.read_lease(self.namespace, self.name)
        now = _now()
        if lease is None:
            self.kube.ensure_namespace(self.namespace)
            spec = taken_spec(self.holder, self.duration, 0, now)
            taken = self.kube.create_lease(self.namespace, self.name, spec, LABELS)
            return None if taken else _RACE_LOST
        current = holder_of(lease.spec, now)
        blocking = blocked_by(current, self.holder)
        if blocking is not None:
            return blocking
        spec = taken_spec(self.holder, self.duration, lease.spec.transitions + 1, now)
        if not self.kube.replace_lease(lease, spec):
            return _RACE_LOST
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
        while not self._stop.wait(self.duration / 3):
            try:
                lease = self.kube.read_lease(self.namespace, self.name)
                if lease is None or lease.spec.holder != self.holder:
                    self.lost.set()
                    return
                self.kube.replace_lease(lease, replace(lease.spec, renew_time=_now()))
            except OperationError:
                continue  # try again next period; expiry protects the others

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            lease = self.kube.read_lease(self.namespace, self.name)
            if lease is None or lease.spec.holder != self.holder:
                return  # gone already, or taken over: nothing of ours to release
            self.kube.delete_lease(self.namespace, self.name, lease.resource_version)
        except OperationError:
            return  # the lease expires by itself

    def __enter__(self) -> DeployLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def unlock(kube: Kube, namespace: str, env: str) -> Holder | None:
    """Delete the environment's lock whoever holds it; the holder it had."""
    name = lease_name(env)
    lease = kube.read_lease(namespace, name)
    if lease is None:
        return None
    kube.delete_lease(namespace, name)
    return holder_of(lease.spec, _now())
