"""The one Kubernetes access layer: every call glue makes to the API server.

This is the only module that imports the Kubernetes client library (lazily,
inside its functions: ``glue --help`` never loads it). Everything it hands
out is plain data (the dataclasses below, or a Pod as the API serves it in
JSON), so the rest of glue does not know which client is behind it.

Configuration as kubectl finds it: ``$KUBECONFIG`` (or ``--kubeconfig``),
``~/.kube/config``, or the in-cluster service account when glue runs in a
Pod (a Helm hook Job).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gitops_glue.errors import OperationError, UsageError

T = TypeVar("T")

MANAGED_BY = {"app.kubernetes.io/managed-by": "gitops-glue"}


@dataclass(frozen=True)
class ConfigMap:
    name: str
    namespace: str
    data: dict[str, str]
    resource_version: str | None = None


@dataclass(frozen=True)
class Secret:
    name: str
    labels: dict[str, str]
    data: dict[str, str]  # base64, as the API serves it
    created: dt.datetime | None = None


@dataclass(frozen=True)
class LeaseSpec:
    holder: str | None
    duration: int = 0
    acquire_time: dt.datetime | None = None
    renew_time: dt.datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Lease:
    name: str
    namespace: str
    spec: LeaseSpec
    resource_version: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def warm_up() -> None:
    """Start importing the Kubernetes client on a background thread.

    The import takes a few tenths of a second; a command that will need the
    client calls this first thing, so the import overlaps with its own start-up
    work (config, helm and helmfile subprocesses) instead of following it.
    """
    import threading

    def load() -> None:
        from kubernetes import client, config  # noqa: F401

        # Attribute access loads these API modules lazily in newer clients.
        client.CoreV1Api  # noqa: B018
        client.CoordinationV1Api  # noqa: B018

    threading.Thread(target=load, daemon=True).start()


def _status(exc: BaseException) -> object:
    return getattr(exc, "status", None)


def is_not_found(exc: BaseException) -> bool:
    return _status(exc) == 404


def is_conflict(exc: BaseException) -> bool:
    return _status(exc) in (409, 422)


def unreachable(action: str, exc: BaseException) -> OperationError:
    """The API server could not be reached at all."""
    reason = getattr(exc, "reason", None) or exc
    return OperationError(
        f"{action}: cannot reach the Kubernetes API ({reason})",
        hint="check the kubeconfig's server address, the network and the cluster",
    )


def api_error(action: str, exc: BaseException) -> OperationError:
    """An API failure as glue reports it (RBAC refusals get a hint)."""
    status = getattr(exc, "status", "?")
    reason = getattr(exc, "reason", "") or str(exc)
    if status == 403:
        return OperationError(
            f"{action}: forbidden by RBAC ({reason})",
            hint="see README 'Permissions' for the Role glue needs",
        )
    return OperationError(f"{action}: the API answered {status} {reason}")


class Kube:
    """One cluster, and the operations glue performs on it."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            if (
                kubeconfig
                or os.environ.get("KUBECONFIG")
                or not os.environ.get("KUBERNETES_SERVICE_HOST")
            ):
                api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
            else:
                config.load_incluster_config()
                api_client = client.ApiClient()
        except (ConfigException, FileNotFoundError, OSError) as exc:
            raise UsageError(
                f"no usable Kubernetes configuration: {exc}",
                hint="set KUBECONFIG or pass --kubeconfig",
            ) from None
        self._api = api_client
        self._core = client.CoreV1Api(api_client)
        self._coordination = client.CoordinationV1Api(api_client)

    # ------------------------------------------------------------------ the helpers

    def get_or_none(self, read: Callable[[], T], action: str) -> T | None:
        """``read()``, or None when the object does not exist (404); other errors raise."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return read()
        except ApiException as exc:
            if is_not_found(exc):
                return None
            raise api_error(action, exc) from None
        except HTTPError as exc:
            raise unreachable(action, exc) from None

    def _call(self, call: Callable[[], T], action: str) -> T:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return call()
        except ApiException as exc:
            raise api_error(action, exc) from None
        except HTTPError as exc:
            raise unreachable(action, exc) from None

    def _try(self, call: Callable[[], object], action: str) -> bool:
        """``call()``; False when it lost a race (conflict), True when done."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            call()
        except ApiException as exc:
            if is_conflict(exc):
                return False
            raise api_error(action, exc) from None
        except HTTPError as exc:
            raise unreachable(action, exc) from None
        return True

    @staticmethod
    def _meta(
        name: str,
        namespace: str,
        labels: Mapping[str, str] | None = None,
        resource_version: str | None = None,
    ) -> Any:
        from kubernetes import client

        return client.V1ObjectMeta(
            name=name,
            namespace=namespace,
            labels=dict(labels) if labels is not None else None,
            resource_version=resource_version,
        )

    # ------------------------------------------------------------------ namespaces

    def ensure_namespace(self, namespace: str) -> None:
        """Create ``namespace`` when it does not exist (a first deploy)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self._core.read_namespace(namespace)
            return
        except ApiException as exc:
            if not is_not_found(exc):
                return  # no right to read namespaces: assume it exists
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        self._try(
            lambda: self._core.create_namespace(body), f"creating namespace {namespace}"
        )  # a conflict: someone else just created it

    # ------------------------------------------------------------------ config maps

    def read_config_map(self, namespace: str, name: str) -> ConfigMap | None:
        cm = self.get_or_none(
            lambda: self._core.read_namespaced_config_map(name, namespace),
            f"reading ConfigMap {namespace}/{name}",
        )
        if cm is None:
            return None
        return ConfigMap(name, namespace, dict(cm.data or {}), cm.metadata.resource_version)

    def create_config_map(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        from kubernetes import client

        body = client.V1ConfigMap(metadata=self._meta(name, namespace, labels), data=dict(data))
        self._call(
            lambda: self._core.create_namespaced_config_map(namespace, body),
            f"creating ConfigMap {namespace}/{name}",
        )

    def update_config_map(self, cm: ConfigMap, data: Mapping[str, str]) -> None:
        """Set ``data``'s keys in ``cm`` (refused if it changed since it was read).

        An ``update`` of the object as stored (labels, Helm's ownership annotations
        kept): a hook Job's Role grants ``get`` and ``update`` on its ConfigMap, no ``patch``.
        """

        def replace() -> None:
            current = self._core.read_namespaced_config_map(cm.name, cm.namespace)
            if cm.resource_version:
                current.metadata.resource_version = cm.resource_version
            current.data = {**(current.data or {}), **data}
            self._core.replace_namespaced_config_map(cm.name, cm.namespace, current)

        self._call(replace, f"updating ConfigMap {cm.namespace}/{cm.name}")

    def put_config_map(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        """Create or replace a ConfigMap glue owns."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        body = client.V1ConfigMap(metadata=self._meta(name, namespace, labels), data=dict(data))
        try:
            self._core.replace_namespaced_config_map(name, namespace, body)
            return
        except ApiException as exc:
            if not is_not_found(exc):
                raise api_error(f"writing ConfigMap {namespace}/{name}", exc) from None
        self.create_config_map(namespace, name, data, labels)

    # ------------------------------------------------------------------ secrets

    def list_secrets(self, namespace: str, selector: str) -> list[Secret]:
        """Secrets matching a label selector; none when the namespace does not exist."""
        found = self.get_or_none(
            lambda: self._core.list_namespaced_secret(namespace, label_selector=selector).items,
            f"listing Secrets {selector} in {namespace}",
        )
        return [
            Secret(
                s.metadata.name,
                dict(s.metadata.labels or {}),
                dict(s.data or {}),
                s.metadata.creation_timestamp,
            )
            for s in found or []
        ]

    # ------------------------------------------------------------------ leases

    def read_lease(self, namespace: str, name: str) -> Lease | None:
        lease = self.get_or_none(
            lambda: self._coordination.read_namespaced_lease(name, namespace),
            f"reading Lease {namespace}/{name}",
        )
        if lease is None:
            return None
        spec = lease.spec
        return Lease(
            name,
            namespace,
            LeaseSpec(
                holder=spec.holder_identity if spec else None,
                duration=(spec.lease_duration_seconds or 0) if spec else 0,
                acquire_time=spec.acquire_time if spec else None,
                renew_time=spec.renew_time if spec else None,
                transitions=(spec.lease_transitions or 0) if spec else 0,
            ),
            lease.metadata.resource_version,
            dict(lease.metadata.labels or {}),
        )

    def _lease_body(
        self,
        namespace: str,
        name: str,
        spec: LeaseSpec,
        labels: Mapping[str, str],
        resource_version: str | None,
    ) -> Any:
        from kubernetes import client

        return client.V1Lease(
            metadata=self._meta(name, namespace, labels, resource_version),
            spec=client.V1LeaseSpec(
                holder_identity=spec.holder,
                lease_duration_seconds=spec.duration,
                acquire_time=spec.acquire_time,
                renew_time=spec.renew_time,
                lease_transitions=spec.transitions,
            ),
        )

    def create_lease(
        self, namespace: str, name: str, spec: LeaseSpec, labels: Mapping[str, str]
    ) -> bool:
        """Create the Lease; False when another one got there first."""
        body = self._lease_body(namespace, name, spec, labels, None)
        return self._try(
            lambda: self._coordination.create_namespaced_lease(namespace, body),
            f"creating Lease {namespace}/{name}",
        )

    def replace_lease(self, lease: Lease, spec: LeaseSpec) -> bool:
        """Replace ``lease`` as read; False when it changed since (someone else won)."""
        body = self._lease_body(
            lease.namespace, lease.name, spec, lease.labels or MANAGED_BY, lease.resource_version
        )
        return self._try(
            lambda: self._coordination.replace_namespaced_lease(lease.name, lease.namespace, body),
            f"updating Lease {lease.namespace}/{lease.name}",
        )

    def delete_lease(self, namespace: str, name: str, resource_version: str | None = None) -> bool:
        """Delete the Lease (only as of ``resource_version`` when given); False if gone/changed."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        body = (
            client.V1DeleteOptions(
                preconditions=client.V1Preconditions(resource_version=resource_version)
            )
            if resource_version
            else None
        )
        try:
            self._coordination.delete_namespaced_lease(name, namespace, body=body)
        except ApiException as exc:
            if is_not_found(exc) or is_conflict(exc):
                return False
            raise api_error(f"deleting Lease {namespace}/{name}", exc) from None
        return True

    # ------------------------------------------------------------------ pods

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods matching a label selector, as the API serves them in JSON (camelCase)."""
        pods = self._call(
            lambda: self._core.list_namespaced_pod(namespace, label_selector=selector).items,
            f"listing Pods {selector} in {namespace}",
        )
        return [self._api.sanitize_for_serialization(p) for p in pods]

    def pod_log(
        self, namespace: str, pod: str, container: str, *, tail: int, previous: bool = False
    ) -> list[str]:
        """The last ``tail`` lines a container wrote."""
        text = self._call(
            lambda: self._core.read_namespaced_pod_log(
                pod, namespace, container=container, tail_lines=tail, previous=previous
            ),
            f"reading the log of {namespace}/{pod} [{container}]",
        )
        return str(text).splitlines()[-tail:]
