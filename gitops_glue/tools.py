"""helm and helmfile, the binaries glue runs: which ones (:class:`Tools`), whether
they can work together, the environment helmfile runs in, and what glue says when
one is missing.

Both the deploy side (:mod:`gitops_glue.deploy`) and the reading side
(:mod:`gitops_glue.helmview`) use these; this module imports nothing of glue's but
its errors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gitops_glue.errors import OperationError

ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: What :meth:`Tools.check` accepts, for hints.
SUPPORTED_TOOLS = "Helm 3.x with helmfile 0.x or 1.x, or Helm 4.x with helmfile >= 1.0"


def missing_tool(path: str) -> OperationError:
    """A helm or helmfile that cannot be started: the environment's failure (exit 1)."""
    return OperationError(
        f"{path} not found",
        hint="install it or point GLUE_HELM / GLUE_HELMFILE at it; "
        f"glue supports {SUPPORTED_TOOLS}",
    )


@dataclass(frozen=True)
class Tools:
    helmfile: str = "helmfile"
    helm: str = "helm"

    @classmethod
    def from_env(cls) -> Tools:
        return cls(os.environ.get("GLUE_HELMFILE", "helmfile"), os.environ.get("GLUE_HELM", "helm"))

    def helmfile_installed(self) -> bool:
        """Whether the helmfile binary can be found (checks that need it are skipped if not)."""
        return shutil.which(self.helmfile) is not None

    def helmfile_version(self) -> tuple[int, ...]:
        out = _output([self.helmfile, "version", "-o", "short"], helmfile_env())
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
        return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)

    def check(self) -> int:
        """The helm major version; refuse combinations that cannot work."""
        version = _output([self.helm, "version", "--template", "{{.Version}}"])
        match = re.match(r"v?(\d+)\.", version.strip())
        if not match:
            raise OperationError(
                f"cannot tell the version of {self.helm}: {version.strip()[:200]}",
                hint=f"glue supports {SUPPORTED_TOOLS}",
            )
        major = int(match.group(1))
        if major < 3:
            raise OperationError(
                f"{self.helm} is Helm {major}", hint=f"glue supports {SUPPORTED_TOOLS}"
            )
        # Only asked when it matters: `helmfile version` also checks GitHub for updates.
        if major >= 4 and self.helmfile_version() < (1, 0, 0):
            raise OperationError(
                f"helmfile {'.'.join(map(str, self.helmfile_version()))} cannot drive Helm "
                f"{major} (it calls 'helm version --client', which Helm 4 removed)",
                hint="use helmfile >= 1.0 with Helm 4, or Helm 3 (GLUE_HELM=path/to/helm3); "
                f"glue supports {SUPPORTED_TOOLS}",
            )
        return major


def _output(args: list[str], env: dict[str, str] | None = None) -> str:
    """A tool's stdout and stderr together."""
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=60, env=env, check=False
        )
    except FileNotFoundError:
        raise missing_tool(args[0]) from None
    return proc.stdout + proc.stderr


def helmfile_env(helm_major: int = 3) -> dict[str, str]:
    """The environment helmfile runs in.

    No colour codes in what glue parses; no update check against GitHub; and for
    Helm 4, helm-diff (3.9.x) must dry-run through ``helm upgrade``, because Helm 4
    refuses the ``template --validate --dry-run=client`` it uses otherwise (the
    caller's environment wins).
    """
    env = {**os.environ, "HELM_DIFF_COLOR": "false", "HELMFILE_UPGRADE_NOTICE_DISABLED": "1"}
    dry_run = {"HELM_DIFF_USE_UPGRADE_DRY_RUN": "true"} if helm_major >= 4 else {}
    return {**dry_run, **env}


def private_helm_home(tmp: Path, kubeconfig: Path) -> dict[str, str]:
    """Variables that give helm and helmfile a home of their own under ``tmp`` (no user
    settings, repositories or caches leak in or out) and ``kubeconfig`` as the only way
    to a cluster; no colour codes, no update check."""
    return {
        "HOME": str(tmp / "home"),
        "KUBECONFIG": str(kubeconfig),
        "HELM_CONFIG_HOME": str(tmp / "helm-config"),
        "HELM_CACHE_HOME": str(tmp / "helm-cache"),
        "HELM_DATA_HOME": str(tmp / "helm-data"),
        "HELMFILE_UPGRADE_NOTICE_DISABLED": "1",
        "HELM_DIFF_COLOR": "false",
    }


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a tool's output, without colour codes."""
    return "\n".join(ANSI.sub("", text).strip().splitlines()[-lines:])
