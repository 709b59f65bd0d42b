"""helmfile as glue deploys with it: what to deploy (Target) and the releases it
would touch.

The binaries are in :mod:`gitops_glue.tools`, helmfile's view of the repository in
:mod:`gitops_glue.helmview`; ``glue diff`` is in :mod:`gitops_glue.deploy.diff`,
``glue apply`` in :mod:`gitops_glue.deploy.apply`.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitops_glue.errors import OperationError, UsageError
from gitops_glue.tools import Tools, helmfile_env, missing_tool, tail


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    labels: str = ""


@dataclass(frozen=True)
class Target:
    """What to deploy: an environment of a deployment repo, maybe narrowed by selectors."""

    env: str
    root: Path
    selectors: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    tools: Tools = field(default_factory=Tools)
    #: The environment's cluster (``--kube-context``/``--kubeconfig``), see cluster.context.
    kube_args: tuple[str, ...] = ()

    def helmfile_args(self, *sub: str) -> list[str]:
        args = [self.tools.helmfile, "--helm-binary", self.tools.helm, *self.kube_args]
        args += ["-e", self.env]
        for sel in self.selectors:
            args += ["--selector", sel]
        return [*args, *sub, *self.extra_args]


def list_releases(target: Target) -> list[Release]:
    """The releases helmfile would touch (``helmfile list --output json``)."""
    try:
        proc = subprocess.run(
            target.helmfile_args("list", "--output", "json"),
            env=helmfile_env(),
            cwd=target.root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except FileNotFoundError:
        raise missing_tool(target.tools.helmfile) from None
    out, err = proc.stdout, proc.stderr
    if proc.returncode != 0 and target.extra_args and "unknown flag" in err:
        # The extra arguments were meant for apply or diff, not for list:
        # the releases are the same without them.
        return list_releases(replace(target, extra_args=()))
    if proc.returncode != 0:
        raise UsageError(
            f"helmfile cannot read the deployment for {target.env!r}: {tail(err or out)}"
        )
    try:
        items = json.loads(out or "[]")
    except ValueError:
        raise OperationError(f"helmfile list gave no JSON: {tail(out)}") from None
    return [
        Release(i["name"], i.get("namespace") or "default", i.get("labels", ""))
        for i in items
        if i.get("enabled", True) and i.get("installed", True)
    ]
