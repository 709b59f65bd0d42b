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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from gitops_glue.errors import OperationError, UsageError

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

    def helmfile_version(self) -> tuple[int, ...]:
        out = _run_quiet([self.helmfile, "version", "-o", "short"], helmfile_env())
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
        return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)

    def check(self) -> int:
        """The helm major version; refuse combinations that cannot work."""
        return self.start_check()()

    def start_check(self) -> Callable[[], int]:
        """:meth:`check` with ``helm version`` started now: glue can work while it runs,
        and calling what this returns waits for it (and raises what ``check`` raises)."""
        version = Started([self.helm, "version", "--template", "{{.Version}}"], timeout=60)
        return lambda: self._checked(_quiet(version))

    def _checked(self, version: str) -> int:
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


class Started:
    """A tool started now whose output is collected later, so that glue's own work
    overlaps the tool's run: ``subprocess.run(args, capture_output=True, text=True,
    timeout=timeout)`` split in two. What starting it raises (FileNotFoundError) is
    raised by :meth:`result`, so errors still surface in the order they used to."""

    def __init__(
        self,
        args: list[str],
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = args
        self.timeout = timeout
        self._proc: subprocess.Popen[str] | None = None
        self._error: OSError | None = None
        try:
            self._proc = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=cwd,
            )
        except OSError as exc:
            self._error = exc

    def result(self) -> subprocess.CompletedProcess[str]:
        """Wait for the tool; its exit code and output (TimeoutExpired: it was killed)."""
        if self._proc is None:
            assert self._error is not None
            raise self._error
        with self._proc as proc:
            try:
                out, err = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
        return subprocess.CompletedProcess(self.args, proc.returncode, out, err)


def _quiet(started: Started) -> str:
    try:
        proc = started.result()
    except FileNotFoundError:
        raise missing_tool(started.args[0]) from None
    return proc.stdout + proc.stderr


def _run_quiet(args: list[str], env: dict[str, str] | None = None) -> str:
    return _quiet(Started(args, timeout=60, env=env))


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
    return start_list_releases(target)()


def start_list_releases(target: Target) -> Callable[[], list[Release]]:
    """:func:`list_releases` with ``helmfile list`` started now; calling what this
    returns waits for it."""
    listing = Started(
        target.helmfile_args("list", "--output", "json"),
        env=helmfile_env(),
        cwd=target.root,
        timeout=300,
    )
    return lambda: _listed(target, listing)


def _listed(target: Target, listing: Started) -> list[Release]:
    try:
        proc = listing.result()
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


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a tool's output, without colour codes."""
    return "\n".join(ANSI.sub("", text).strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- helmfile's own view
#
# ``glue init`` and ``glue check`` ask helmfile what it merges rather than
# re-implementing its templating: ``helmfile -e ENV build`` prints the rendered
# state files (the root one lists each environment's values files, bases merged
# in), ``helmfile -e ENV list --output json`` the releases of every nested
# helmfile. Both read no cluster. Tested with helmfile 0.166 and 1.8.

#: The names helmfile looks for, in its own order of preference.
HELMFILE_NAMES = ("helmfile.yaml", "helmfile.yaml.gotmpl", "helmfile.d")


def find_helmfile(root: Path) -> Path | None:
    """The helmfile state helmfile itself would pick in ``root`` (None: there is none)."""
    for name in HELMFILE_NAMES:
        if (root / name).exists():
            return root / name
    return None


def available(tools: Tools) -> bool:
    """Whether the helmfile binary can be found (checks that need it are skipped if not)."""
    import shutil

    return shutil.which(tools.helmfile) is not None


@dataclass(frozen=True)
class EnvironmentState:
    """One environment as helmfile sees it."""

    name: str
    #: The environment's values files, in the order helmfile merges them.
    values: tuple[str, ...]
    #: Entries that are not file names (inline maps): glue cannot edit those.
    inline_values: int
    kube_context: str | None
    #: What helmfile's rendered environment values hold (``renderedvalues``).
    rendered: dict[str, object]


def _run_helmfile(target: Target, *sub: str) -> str:
    try:
        proc = subprocess.run(
            target.helmfile_args(*sub),
            env=helmfile_env(),
            cwd=target.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    except FileNotFoundError:
        raise missing_tool(target.tools.helmfile) from None
    if proc.returncode != 0:
        raise UsageError(
            f"helmfile cannot read the deployment for {target.env!r}: "
            f"{tail(proc.stderr or proc.stdout, 3)}"
        )
    return proc.stdout


def build_documents(target: Target) -> list[tuple[str, dict[str, object]]]:
    """``helmfile -e ENV build``: (source file, rendered state) for each state file."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    out = _run_helmfile(target, "build")
    docs: list[tuple[str, dict[str, object]]] = []
    for chunk in re.split(r"^---[ \t]*$", out, flags=re.MULTILINE):
        source = re.search(r"^#\s*Source:\s*(.+)$", chunk, flags=re.MULTILINE)
        try:
            data = YAML(typ="safe", pure=True).load(chunk)
        except YAMLError as exc:
            raise OperationError(f"helmfile build gave no YAML: {exc}") from None
        if isinstance(data, dict):
            docs.append((source.group(1).strip() if source else "", data))
    return docs


def environment_state(root: Path, env: str, tools: Tools | None = None) -> EnvironmentState:
    """What helmfile merges for ``env``: its values files in order and its kubeContext."""
    target = Target(env=env, root=root, tools=tools or Tools.from_env())
    docs = build_documents(target)
    top = find_helmfile(root)
    ordered = sorted(
        docs, key=lambda d: 0 if top is not None and Path(d[0]).name == top.name else 1
    )
    for _source, data in ordered:
        envs = data.get("environments")
        if isinstance(envs, dict) and isinstance(envs.get(env), dict):
            spec = envs[env]
            raw = spec.get("values") or []
            files = tuple(v for v in raw if isinstance(v, str))
            rendered = data.get("renderedvalues")
            context = spec.get("kubeContext")
            return EnvironmentState(
                name=env,
                values=files,
                inline_values=len(raw) - len(files),
                kube_context=str(context) if context else None,
                rendered=dict(rendered) if isinstance(rendered, dict) else {},
            )
    raise UsageError(
        f"helmfile has no environment {env!r}",
        hint="list it under environments: in the helmfile (or a file in its bases:)",
    )


def releases_of(root: Path, env: str, tools: Tools | None = None) -> list[Release]:
    """Every release helmfile deploys in ``env``, nested helmfiles included."""
    return list_releases(Target(env=env, root=root, tools=tools or Tools.from_env()))


def declared_environments(
    read: Callable[[str], str | None], root: Path | None = None
) -> dict[str, list[str]]:
    """Environment names in the order the helmfile (and its ``bases:``) declares them,
    with the values files written there as plain strings; templated lines are left out.

    A cheap, static reading for ordering and for checks that must not run helmfile;
    where it matters, :func:`environment_state` has helmfile's own answer.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    found: dict[str, list[str]] = {}

    def parse(text: str) -> list[object]:
        parts = []
        for chunk in re.split(r"^---[ \t]*$", text, flags=re.MULTILINE):
            plain = "\n".join(ln for ln in chunk.splitlines() if "{{" not in ln)
            try:
                parts.append(YAML(typ="safe", pure=True).load(plain))
            except YAMLError:
                continue
        return parts

    def visit(name: str, depth: int) -> None:
        text = read(name)
        if text is None or depth > 3:
            return
        for doc in parse(text):
            if not isinstance(doc, dict):
                continue
            for base in doc.get("bases") or []:
                if isinstance(base, str):
                    visit(str(Path(name).parent / base).removeprefix("./"), depth + 1)
            envs = doc.get("environments")
            if isinstance(envs, dict):
                for env, spec in envs.items():
                    values = spec.get("values") if isinstance(spec, dict) else None
                    files = [v for v in values or [] if isinstance(v, str)]
                    found.setdefault(str(env), []).extend(files)

    for name in HELMFILE_NAMES[:2]:
        if read(name) is not None:
            visit(name, 0)
            break
    else:
        if root is not None and (root / "helmfile.d").is_dir():
            for part in sorted((root / "helmfile.d").iterdir()):
                if part.name.endswith((".yaml", ".yaml.gotmpl", ".yml")):
                    visit(f"helmfile.d/{part.name}", 0)
    return found
