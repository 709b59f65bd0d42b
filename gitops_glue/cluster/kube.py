"""Kubernetes API access: the official client, loaded only when needed.

Configuration as kubectl finds it: ``$KUBECONFIG`` (or ``--kubeconfig``),
``~/.kube/config``, or the in-cluster service account when glue runs in a
Pod (a Helm hook Job).
"""

from __future__ import annotations

import os
from typing import Any

from gitops_glue.errors import OperationError, UsageError


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


class Kube:
    """The API groups glue uses, bound to one cluster."""

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
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)

    def ensure_namespace(self, namespace: str) -> None:
        """Create ``namespace`` when it does not exist (a first deploy)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.read_namespace(namespace)
        except ApiException as exc:
            if not self.is_not_found(exc):
                return  # no right to read namespaces: assume it exists
            try:
                self.core.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
                )
            except ApiException as exc2:
                if not self.is_conflict(exc2):
                    raise self.api_error(f"creating namespace {namespace}", exc2) from None

    @staticmethod
    def is_not_found(exc: BaseException) -> bool:
        return getattr(exc, "status", None) == 404

    @staticmethod
    def is_conflict(exc: BaseException) -> bool:
        return getattr(exc, "status", None) in (409, 422)

    def api_error(self, action: str, exc: Any) -> OperationError:
        status = getattr(exc, "status", "?")
        reason = getattr(exc, "reason", "") or str(exc)
        if status == 403:
            return OperationError(
                f"{action}: forbidden by RBAC ({reason})",
                hint="see README 'Permissions' for the Role glue needs",
            )
        return OperationError(f"{action}: the API answered {status} {reason}")
