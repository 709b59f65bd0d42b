"""The one Kubernetes access layer: every call glue makes to the API server.

This is the only module that imports the Kubernetes client library, lightkube
(lazily, inside its functions: ``glue --help`` never loads it). Everything it hands
out is plain data (the dataclasses below, or a Pod as the API serves it in
JSON), so the rest of glue does not know which client is behind it.

Configuration as kubectl finds it: ``$KUBECONFIG`` (or ``--kubeconfig``),
``~/.kube/config``, or the in-cluster service account when glue runs in a
Pod (a Helm hook Job). ``$KUBECONFIG`` may list several files (``:``-separated):
they are merged as kubectl does, the first file to define a name wins.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gitops_glue.errors import OperationError, UsageError

if TYPE_CHECKING:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.coordination_v1 import Lease as KubeLease

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


def _status(exc: BaseException) -> int | None:
    """The HTTP status of an API error (lightkube's ApiError or a non-JSON answer)."""
    code = getattr(getattr(exc, "status", None), "code", None)
    if isinstance(code, int):
        return code
    status_code = getattr(getattr(exc, "response", None), "status_code", None)
    return status_code if isinstance(status_code, int) else None


def is_not_found(exc: BaseException) -> bool:
    return _status(exc) == 404


def is_conflict(exc: BaseException) -> bool:
    return _status(exc) in (409, 422)


def unreachable(action: str, exc: BaseException) -> OperationError:
    """The API server could not be reached at all."""
    reason = str(exc) or type(exc).__name__
    return OperationError(
        f"{action}: cannot reach the Kubernetes API ({reason})",
        hint="check the kubeconfig's server address, the network and the cluster",
    )


def api_error(action: str, exc: BaseException) -> OperationError:
    """An API failure as glue reports it (RBAC refusals get a hint)."""
    status = _status(exc) or "?"
    reason = getattr(getattr(exc, "status", None), "message", None) or str(exc)
    if status == 403:
        return OperationError(
            f"{action}: forbidden by RBAC ({reason})",
            hint="see README 'Permissions' for the Role glue needs",
        )
    return OperationError(f"{action}: the API answered {status} {reason}")


def _merged_kubeconfig(files: list[str]) -> dict[str, Any]:
    """Several kubeconfig files as one, as kubectl merges them: the first to define wins."""
    import yaml  # type: ignore[import-untyped]

    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {key: set() for key in ("clusters", "users", "contexts")}
    for file in files:
        path = Path(file).expanduser()
        if not path.is_file():
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict):
            raise UsageError(f"no usable Kubernetes configuration: {file} is not a kubeconfig")
        for key, names in seen.items():
            for item in doc.get(key) or []:
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and name not in names:
                    names.add(name)
                    merged[key].append(_absolute_paths(item, path.parent))
        if not merged.get("current-context") and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    return merged


_FILE_FIELDS = ("certificate-authority", "client-certificate", "client-key", "tokenFile")


def _absolute_paths(item: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative file references in a kubeconfig entry resolved against its own file."""
    out = dict(item)
    for key in ("cluster", "user"):
        inner = out.get(key)
        if isinstance(inner, dict):
            fixed = dict(inner)
            for name in _FILE_FIELDS:
                value = fixed.get(name)
                if isinstance(value, str) and value and not Path(value).is_absolute():
                    fixed[name] = str(base / value)
            out[key] = fixed
    return out


class Kube:
    """One cluster, and the operations glue performs on it."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from lightkube import Client, ConfigError, KubeConfig

        try:
            if (
                kubeconfig
                or os.environ.get("KUBECONFIG")
                or not os.environ.get("KUBERNETES_SERVICE_HOST")
            ):
                listed = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
                files = [f for f in listed.split(os.pathsep) if f]
                if len(files) == 1:
                    config = KubeConfig.from_file(files[0])
                else:
                    config = KubeConfig.from_dict(_merged_kubeconfig(files))
                single = config.get(context)
            else:
                single = KubeConfig.from_service_account().get()
            if single is None:
                raise ConfigError("no context")
            self._client = Client(single, field_manager="gitops-glue")
        except (ConfigError, FileNotFoundError, OSError, KeyError, ValueError) as exc:
            raise UsageError(
                f"no usable Kubernetes configuration: {exc}",
                hint="set KUBECONFIG or pass --kubeconfig",
            ) from None
        self.host: str = single.cluster.server

    # ------------------------------------------------------------------ the helpers

    def get_or_none(self, read: Callable[[], T], action: str) -> T | None:
        """``read()``, or None when the object does not exist (404); other errors raise."""
        import httpx2

        try:
            return read()
        except httpx2.HTTPStatusError as exc:
            if is_not_found(exc):
                return None
            raise api_error(action, exc) from None
        except httpx2.HTTPError as exc:
            raise unreachable(action, exc) from None

    def _call(self, call: Callable[[], T], action: str) -> T:
        import httpx2

        try:
            return call()
        except httpx2.HTTPStatusError as exc:
            raise api_error(action, exc) from None
        except httpx2.HTTPError as exc:
            raise unreachable(action, exc) from None

    def _try(self, call: Callable[[], object], action: str) -> bool:
        """``call()``; False when it lost a race (conflict), True when done."""
        import httpx2

        try:
            call()
        except httpx2.HTTPStatusError as exc:
            if is_conflict(exc):
                return False
            raise api_error(action, exc) from None
        except httpx2.HTTPError as exc:
            raise unreachable(action, exc) from None
        return True

    @staticmethod
    def _meta(
        name: str,
        namespace: str | None,
        labels: Mapping[str, str] | None = None,
        resource_version: str | None = None,
    ) -> ObjectMeta:
        from lightkube.models.meta_v1 import ObjectMeta

        return ObjectMeta(
            name=name,
            namespace=namespace,
            labels=dict(labels) if labels is not None else None,
            resourceVersion=resource_version,
        )

    # ------------------------------------------------------------------ namespaces

    def ensure_namespace(self, namespace: str) -> None:
        """Create ``namespace`` when it does not exist (a first deploy)."""
        import httpx2
        from lightkube.resources.core_v1 import Namespace

        try:
            self._client.get(Namespace, namespace)
            return
        except httpx2.HTTPStatusError as exc:
            if not is_not_found(exc):
                return  # no right to read namespaces: assume it exists
        except httpx2.HTTPError as exc:
            raise unreachable(f"reading namespace {namespace}", exc) from None
        body = Namespace(metadata=self._meta(namespace, None))
        self._try(
            lambda: self._client.create(body), f"creating namespace {namespace}"
        )  # a conflict: someone else just created it

    # ------------------------------------------------------------------ config maps

    def read_config_map(self, namespace: str, name: str) -> ConfigMap | None:
        from lightkube.resources.core_v1 import ConfigMap as KubeConfigMap

        cm = self.get_or_none(
            lambda: self._client.get(KubeConfigMap, name, namespace=namespace),
            f"reading ConfigMap {namespace}/{name}",
        )
        if cm is None:
            return None
        rv = cm.metadata.resourceVersion if cm.metadata else None
        return ConfigMap(name, namespace, dict(cm.data or {}), rv)

    def create_config_map(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        from lightkube.resources.core_v1 import ConfigMap as KubeConfigMap

        body = KubeConfigMap(metadata=self._meta(name, namespace, labels), data=dict(data))
        self._call(
            lambda: self._client.create(body, namespace=namespace),
            f"creating ConfigMap {namespace}/{name}",
        )

    def update_config_map(self, cm: ConfigMap, data: Mapping[str, str]) -> None:
        """Set ``data``'s keys in ``cm`` (refused if it changed since it was read).

        An ``update`` of the object as stored (labels, Helm's ownership annotations
        kept): a hook Job's Role grants ``get`` and ``update`` on its ConfigMap, no ``patch``.
        """
        from lightkube.resources.core_v1 import ConfigMap as KubeConfigMap

        def replace() -> None:
            current = self._client.get(KubeConfigMap, cm.name, namespace=cm.namespace)
            if cm.resource_version and current.metadata is not None:
                current.metadata.resourceVersion = cm.resource_version
            current.data = {**(current.data or {}), **data}
            self._client.replace(current)

        self._call(replace, f"updating ConfigMap {cm.namespace}/{cm.name}")

    def put_config_map(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        """Create or replace a ConfigMap glue owns."""
        import httpx2
        from lightkube.resources.core_v1 import ConfigMap as KubeConfigMap

        action = f"writing ConfigMap {namespace}/{name}"
        body = KubeConfigMap(metadata=self._meta(name, namespace, labels), data=dict(data))
        try:
            self._client.replace(body)
            return
        except httpx2.HTTPStatusError as exc:
            if not is_not_found(exc):
                raise api_error(action, exc) from None
        except httpx2.HTTPError as exc:
            raise unreachable(action, exc) from None
        self.create_config_map(namespace, name, data, labels)

    # ------------------------------------------------------------------ secrets

    def list_secrets(self, namespace: str, selector: str) -> list[Secret]:
        """Secrets matching a label selector; none when the namespace does not exist."""
        from lightkube.resources.core_v1 import Secret as KubeSecret

        found = self.get_or_none(
            lambda: list(
                self._client.list(KubeSecret, namespace=namespace, labels=_labels(selector))
            ),
            f"listing Secrets {selector} in {namespace}",
        )
        secrets = []
        for s in found or []:
            meta = s.metadata
            secrets.append(
                Secret(
                    (meta.name if meta else None) or "",
                    dict((meta.labels if meta else None) or {}),
                    dict(s.data or {}),
                    meta.creationTimestamp if meta else None,
                )
            )
        return secrets

    # ------------------------------------------------------------------ leases

    def read_lease(self, namespace: str, name: str) -> Lease | None:
        from lightkube.resources.coordination_v1 import Lease as KubeLease

        lease = self.get_or_none(
            lambda: self._client.get(KubeLease, name, namespace=namespace),
            f"reading Lease {namespace}/{name}",
        )
        if lease is None:
            return None
        spec = lease.spec
        meta = lease.metadata
        return Lease(
            name,
            namespace,
            LeaseSpec(
                holder=spec.holderIdentity if spec else None,
                duration=(spec.leaseDurationSeconds or 0) if spec else 0,
                acquire_time=spec.acquireTime if spec else None,
                renew_time=spec.renewTime if spec else None,
                transitions=(spec.leaseTransitions or 0) if spec else 0,
            ),
            meta.resourceVersion if meta else None,
            dict((meta.labels if meta else None) or {}),
        )

    def _lease_body(
        self,
        namespace: str,
        name: str,
        spec: LeaseSpec,
        labels: Mapping[str, str],
        resource_version: str | None,
    ) -> KubeLease:
        from lightkube.models.coordination_v1 import LeaseSpec as KubeLeaseSpec
        from lightkube.resources.coordination_v1 import Lease as KubeLease

        return KubeLease(
            metadata=self._meta(name, namespace, labels, resource_version),
            spec=KubeLeaseSpec(
                holderIdentity=spec.holder,
                leaseDurationSeconds=spec.duration,
                acquireTime=_micro_time(spec.acquire_time),
                renewTime=_micro_time(spec.renew_time),
                leaseTransitions=spec.transitions,
            ),
        )

    def create_lease(
        self, namespace: str, name: str, spec: LeaseSpec, labels: Mapping[str, str]
    ) -> bool:
        """Create the Lease; False when another one got there first."""
        body = self._lease_body(namespace, name, spec, labels, None)
        return self._try(
            lambda: self._client.create(body, namespace=namespace),
            f"creating Lease {namespace}/{name}",
        )

    def replace_lease(self, lease: Lease, spec: LeaseSpec) -> bool:
        """Replace ``lease`` as read; False when it changed since (someone else won)."""
        body = self._lease_body(
            lease.namespace, lease.name, spec, lease.labels or MANAGED_BY, lease.resource_version
        )
        return self._try(
            lambda: self._client.replace(body),
            f"updating Lease {lease.namespace}/{lease.name}",
        )

    def delete_lease(self, namespace: str, name: str, resource_version: str | None = None) -> bool:
        """Delete the Lease (only as of ``resource_version`` when given); False if gone/changed."""
        import httpx2
        from lightkube.resources.coordination_v1 import Lease as KubeLease

        action = f"deleting Lease {namespace}/{name}"

        def delete() -> None:
            if not resource_version:
                self._client.delete(KubeLease, name, namespace=namespace)
                return
            # lightkube's delete takes no DeleteOptions body: the same request, with one.
            generic = self._client._client
            request = generic.prepare_request("delete", KubeLease, name=name, namespace=namespace)
            request.data = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": {"resourceVersion": resource_version},
            }
            response = generic.send(generic.build_adapter_request(request))
            generic.raise_for_status(response)  # type: ignore[no-untyped-call]

        try:
            delete()
        except httpx2.HTTPStatusError as exc:
            if is_not_found(exc) or is_conflict(exc):
                return False
            raise api_error(action, exc) from None
        except httpx2.HTTPError as exc:
            raise unreachable(action, exc) from None
        return True

    # ------------------------------------------------------------------ pods

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods matching a label selector, as the API serves them in JSON (camelCase)."""
        from lightkube.resources.core_v1 import Pod

        pods = self._call(
            lambda: list(self._client.list(Pod, namespace=namespace, labels=_labels(selector))),
            f"listing Pods {selector} in {namespace}",
        )
        return [p.to_dict() for p in pods]

    def watch_pods(
        self, namespace: str, label: str, values: Sequence[str], seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The pods whose ``label`` is one of ``values``: first each as it is (ADDED),
        then every change (ADDED, MODIFIED, DELETED), for ``seconds``: the API server
        ends its watch then, and this ends at the first event after that."""
        import time

        import httpx2
        from lightkube.resources.core_v1 import Pod

        action = f"watching Pods {label} in {namespace}"
        end = time.monotonic() + seconds
        try:
            for kind, pod in self._client.watch(
                Pod, namespace=namespace, labels={label: tuple(values)}, server_timeout=seconds
            ):
                yield str(kind), pod.to_dict()
                if time.monotonic() > end:
                    return
        except httpx2.HTTPStatusError as exc:
            raise api_error(action, exc) from None
        except httpx2.HTTPError as exc:
            raise unreachable(action, exc) from None

    def pod_log(
        self, namespace: str, pod: str, container: str, *, tail: int, previous: bool = False
    ) -> list[str]:
        """The last ``tail`` lines a container wrote."""
        if previous:
            return self._previous_log(namespace, pod, container, tail)
        lines = self._call(
            lambda: list(
                self._client.log(
                    pod, namespace=namespace, container=container, tail_lines=tail, newlines=False
                )
            ),
            f"reading the log of {namespace}/{pod} [{container}]",
        )
        return lines[-tail:]

    def _previous_log(self, namespace: str, pod: str, container: str, tail: int) -> list[str]:
        """The log of the container's previous run (lightkube's ``log`` has no ``previous``)."""
        from lightkube.resources.core_v1 import PodLog

        generic = self._client._client

        def read() -> str:
            request = generic.prepare_request(
                "get",
                PodLog,
                name=pod,
                namespace=namespace,
                params={"container": container, "tailLines": tail, "previous": "true"},
            )
            response = generic.send(generic.build_adapter_request(request))
            generic.raise_for_status(response)  # type: ignore[no-untyped-call]
            return str(response.text)

        text = self._call(read, f"reading the log of {namespace}/{pod} [{container}]")
        return text.splitlines()[-tail:]


def _labels(selector: str) -> dict[str, Any]:
    """An equality label selector (``a=b,c=d``, what glue uses) as lightkube takes it."""
    labels: dict[str, Any] = {}
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"unsupported label selector {selector!r}")
        labels[key.strip()] = value.strip()
    return labels


def _micro_time(value: dt.datetime | None) -> dt.datetime | None:
    """A Lease time the API server accepts: a MicroTime needs its fraction, which the
    encoder leaves out when it is zero (one microsecond later never matters here)."""
    if value is None or value.microsecond:
        return value
    return value.replace(microsecond=1)
