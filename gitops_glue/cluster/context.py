"""Which cluster an environment lives on: its kubeconfig file and context.

Teams commonly run staging and production on different clusters (helmfile's
per-environment ``kubeContext``). Every cluster access glue makes for an
environment (the deploy lock, the deploy record, stuck-release recovery,
diagnostics, ``status --cluster``, ``notify``, ``changed``, ``unlock``) and
the helm/helmfile it runs go through the :class:`ClusterRef` resolved here.

The context, first found wins:

1. ``--kube-context`` / ``GLUE_KUBE_CONTEXT`` (one environment's commands only);
2. the environment's ``kube_context`` in ``glue.yaml``;
3. helmfile's own view of the environment, read safely (:mod:`gitops_glue.helmview`:
   ``helmfile list`` in a sandbox, so no hook of the repository runs): the
   environment's ``kubeContext``, else ``helmDefaults.kubeContext``; nothing
   when there is no helmfile to ask (no state file, no binary), or its view cannot be
   read and its files never say ``kubeContext``; an error when they do (a guess could be
   another cluster);
4. none: the kubeconfig's current context.

The file: the environment's ``kubeconfig`` in ``glue.yaml`` (relative to the
repository root; ``~`` and ``$VARS`` expanded), else ``--kubeconfig`` /
``$KUBECONFIG``, else ``~/.kube/config``. helm and helmfile get the same file
through ``KUBECONFIG`` (a ``:``-separated list works there too) and the same
context through ``--kube-context``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from gitops_glue.cluster.kube import Kube
    from gitops_glue.config import LoadedConfig
    from gitops_glue.tools import Tools


@dataclass(frozen=True)
class ClusterRef:
    """One environment's cluster as glue reaches it."""

    kubeconfig: str | None = None  # None: $KUBECONFIG, ~/.kube/config or in-cluster
    context: str | None = None  # None: the kubeconfig's current context
    source: str = "current context"  # where the context came from, for messages

    def kube(self) -> Kube:
        from gitops_glue.cluster.kube import Kube

        return Kube(self.kubeconfig, self.context)

    @property
    def args(self) -> tuple[str, ...]:
        """helm's and helmfile's flags for this cluster."""
        return ("--kube-context", self.context) if self.context else ()

    def tool_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment helm/helmfile run in: ``base`` (default: os.environ) with
        this cluster's kubeconfig file."""
        env = dict(os.environ if base is None else base)
        if self.kubeconfig:
            env["KUBECONFIG"] = self.kubeconfig
        return env

    def describe(self) -> str:
        return f"context {self.context} ({self.source})" if self.context else self.source


def _expand(root: Path, path: str) -> str:
    expanded = Path(os.path.expandvars(os.path.expanduser(path)))
    return str(expanded if expanded.is_absolute() else root / expanded)


def for_environment(
    loaded: LoadedConfig,
    env_name: str,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    tools: Tools | None = None,
    helmfile_context: Callable[[str], str | None] | None = None,
) -> ClusterRef:
    """The cluster of ``env_name`` (see the module's docstring for the order).
    ``helmfile_context``: how to ask helmfile for an environment's kube context
    (default: :func:`gitops_glue.helmview.kube_context`; ``status --cluster`` passes
    one that reuses the view it reads anyway)."""
    env = loaded.config.environment(env_name)
    file = _expand(loaded.root, env.kubeconfig) if env.kubeconfig else kubeconfig
    if context:
        return ClusterRef(file, context, "--kube-context")
    if env.kube_context:
        return ClusterRef(file, env.kube_context, "glue.yaml")
    if helmfile_context is None:
        from gitops_glue import helmview
        from gitops_glue.tools import Tools

        found = helmview.kube_context(loaded.root, env.name, tools or Tools.from_env())
    else:
        found = helmfile_context(env.name)
    return ClusterRef(file, found, "helmfile kubeContext") if found else ClusterRef(file)


def per_environment(
    loaded: LoadedConfig,
    *,
    kubeconfig: str | None = None,
    tools: Tools | None = None,
    helmfile_context: Callable[[str], str | None] | None = None,
) -> Callable[[str], Kube]:
    """``kube(env)``: each environment's cluster client, one per distinct cluster."""
    made: dict[tuple[str | None, str | None], Kube] = {}

    def kube(env: str) -> Kube:
        ref = for_environment(
            loaded, env, kubeconfig=kubeconfig, tools=tools, helmfile_context=helmfile_context
        )
        key = (ref.kubeconfig, ref.context)
        if key not in made:
            made[key] = ref.kube()
        return made[key]

    return kube
