"""Which cluster an environment lives on: its kubeconfig file and context.

Teams commonly run staging and production on different clusters (helmfile's
per-environment ``kubeContext``). Every cluster access glue makes for an
environment (the deploy lock, the deploy record, stuck-release recovery,
diagnostics, ``status --cluster``, ``notify``, ``changed``, ``unlock``) and
the helm/helmfile it runs go through the :class:`ClusterRef` resolved here.

The context, first found wins:

1. ``--kube-context`` / ``GLUE_KUBE_CONTEXT`` (one environment's commands only);
2. the environment's ``kube_context`` in ``glue.yaml``;
3. helmfile's own view of the environment (``helmfile -e ENV build``): the
   environment's ``kubeContext``, else ``helmDefaults.kubeContext``; nothing
   when helmfile is not installed or cannot render the environment;
4. none: the kubeconfig's current context.

The file: the environment's ``kubeconfig`` in ``glue.yaml`` (relative to the
repository root; ``~`` and ``$VARS`` expanded), else ``--kubeconfig`` /
``$KUBECONFIG``, else ``~/.kube/config``. helm and helmfile get the same file
through ``KUBECONFIG`` (a ``:``-separated list works there too) and the same
context through ``--kube-context``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from gitops_glue.cluster.kube import Kube
    from gitops_glue.config import LoadedConfig
    from gitops_glue.deploy.helmfile import Started, Tools


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


def start_helmfile_kube_context(root: Path, env: str, tools: Tools) -> Callable[[], str | None]:
    """The kube context helmfile uses for ``env``, from ``helmfile -e ENV build``, which
    starts now; calling what this returns waits for it."""
    from gitops_glue.deploy.helmfile import Started, helmfile_env

    args = [tools.helmfile, "--helm-binary", tools.helm, "-e", env, "build"]
    build = Started(args, cwd=root, timeout=120, env=helmfile_env())
    return lambda: _built_kube_context(build, env)


def _built_kube_context(build: Started, env: str) -> str | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        proc = build.result()
    except (OSError, subprocess.TimeoutExpired):
        return None  # no helmfile here (a hook Job, a laptop without it): no default
    if proc.returncode != 0:
        return None
    try:
        docs = list(YAML(typ="safe", pure=True).load_all(proc.stdout))
    except YAMLError:
        return None
    return kube_context_of(docs, env)


def kube_context_of(docs: list[Any], env: str) -> str | None:
    """The environment's ``kubeContext`` in helmfile's build documents, else
    ``helmDefaults.kubeContext``; None when neither is set."""
    fallback: str | None = None
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        environments = doc.get("environments")
        spec = environments.get(env) if isinstance(environments, dict) else None
        ctx = spec.get("kubeContext") if isinstance(spec, dict) else None
        if isinstance(ctx, str) and ctx:
            return ctx
        defaults = doc.get("helmDefaults")
        ctx = defaults.get("kubeContext") if isinstance(defaults, dict) else None
        if fallback is None and isinstance(ctx, str) and ctx:
            fallback = ctx
    return fallback


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
    ``helmfile_context``: how to ask helmfile (default: ``helmfile build``, which runs
    the repository's prepare hooks; commands that only read pass the safe reading of
    :mod:`gitops_glue.repo.helmview`)."""
    if helmfile_context is not None:
        env = loaded.config.environment(env_name)
        if not context and not env.kube_context:
            file = _expand(loaded.root, env.kubeconfig) if env.kubeconfig else kubeconfig
            found = helmfile_context(env.name)
            return ClusterRef(file, found, "helmfile kubeContext") if found else ClusterRef(file)
    return start_for_environment(
        loaded, env_name, kubeconfig=kubeconfig, context=context, tools=tools
    )()


def start_for_environment(
    loaded: LoadedConfig,
    env_name: str,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    tools: Tools | None = None,
) -> Callable[[], ClusterRef]:
    """:func:`for_environment` with the ``helmfile build`` it may need started now;
    calling what this returns waits for it."""
    env = loaded.config.environment(env_name)
    file = _expand(loaded.root, env.kubeconfig) if env.kubeconfig else kubeconfig
    if context:
        ref = ClusterRef(file, context, "--kube-context")
        return lambda: ref
    if env.kube_context:
        ref = ClusterRef(file, env.kube_context, "glue.yaml")
        return lambda: ref
    from gitops_glue.deploy.helmfile import Tools

    found = start_helmfile_kube_context(loaded.root, env.name, tools or Tools.from_env())

    def resolved() -> ClusterRef:
        context = found()
        return ClusterRef(file, context, "helmfile kubeContext") if context else ClusterRef(file)

    return resolved


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
