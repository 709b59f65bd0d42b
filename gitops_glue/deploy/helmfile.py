"""helmfile as glue drives it: the binaries (Tools), what to deploy (Target),
the environment helmfile runs in, and the releases it would touch.

``glue diff`` is in :mod:`gitops_glue.deploy.diff`, ``glue apply`` in
:mod:`gitops_glue.deploy.apply`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitops_glue.errors import OperationError, UsageError

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Tools:
    helmfile: str = "helmfile"
    helm: str = "helm"

    @classmethod
    def from_env(cls) -> Tools:
        return cls(os.environ.get("GLUE_HELMFILE", "helmfile"), os.environ.get("GLUE_HELM", "helm"))

    def helm_major(self) -> int:
        out = _run_quiet([self.helm, "version", "--template", "{{.Version}}"])
        match = re.match(r"v?(\d+)\.", out.strip())
        if not match:
            raise UsageError(f"cannot tell the version of {self.helm}: {out.strip()[:200]}")
        return int(match.group(1))

    def helmfile_version(self) -> tuple[int, ...]:
        out = _run_quiet([self.helmfile, "version", "-o", "short"], helmfile_env())
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
        return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)

    def check(self) -> int:
        """The helm major version; refuse combinations that cannot work."""
        major = self.helm_major()
        # Only asked when it matters: `helmfile version` also checks GitHub for updates.
        if major >= 4 and self.helmfile_version() < (1, 0, 0):
            raise UsageError(
                f"helmfile {'.'.join(map(str, self.helmfile_version()))} cannot drive Helm "
                f"{major} (it calls 'helm version --client', which Helm 4 removed)",
                hint="use helmfile >= 1.0 with Helm 4, or Helm 3 (GLUE_HELM=path/to/helm3)",
            )
        return major


def helmfile_env(helm_major: int = 3) -> dict[str, str]:
    """The environment helmfile runs in.

    No colour codes in what glue parses; no update check against GitHub; and for
    Helm 4, helm-diff (3.9.x) must dry-run through ``helm upgrade``, because Helm 4
    refuses the ``template --validate --dry-run=client`` it uses otherwise.
    """
    env = {**os.environ, "HELM_DIFF_COLOR": "false", "HELMFILE_UPGRADE_NOTICE_DISABLED": "1"}
    return {**helm_diff_env(helm_major), **env}


def helm_diff_env(helm_major: int) -> dict[str, str]:
    """What helm-diff needs for this Helm major version (the caller's environment wins)."""
    return {"HELM_DIFF_USE_UPGRADE_DRY_RUN": "true"} if helm_major >= 4 else {}


def _run_quiet(args: list[str], env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=60, check=False, env=env
        )
    except FileNotFoundError:
        raise UsageError(
            f"{args[0]} not found", hint="install it or point GLUE_HELM / GLUE_HELMFILE at it"
        ) from None
    return proc.stdout + proc.stderr


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
    proc = subprocess.run(
        target.helmfile_args("list", "--output", "json"),
        env=helmfile_env(),
        cwd=target.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
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


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a tool's output, without colour codes."""
    return "\n".join(ANSI.sub("", text).strip().splitlines()[-lines:])
