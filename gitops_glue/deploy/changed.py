"""``glue changed``: which releases' inputs changed since the deployed revision.

A release's inputs are what helmfile would hand helm for it: its entry in
``helmfile -e ENV build --embed-values`` (chart, version, namespace, labels,
hooks, every values file and inline value already rendered and embedded, so
a change of ``b``'s tag in a file shared with ``a`` changes only ``b``), the
helmfile's global settings (``helmDefaults``, repositories...), the files of
a chart that lives in the repository, and the contents of its secrets files.
Each release gets a fingerprint (SHA-256 of all that) at both revisions;
the releases whose fingerprints differ are the changed ones.

The old revision is the deploy record's ``git-revision`` (what ``glue apply``
last deployed to the environment) or ``--since REV``; it is checked out into
a temporary folder (from the repository's objects; the checkout is not
touched). The new side is the checkout as it is, which is what ``glue apply``
deploys.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_glue.errors import GlueError, OperationError, UsageError

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.config import LoadedConfig
    from gitops_glue.tools import Tools

#: Top-level keys of ``helmfile build`` that are not shared release inputs.
_NOT_GLOBAL = {"releases", "renderedvalues", "environments", "filepath", "templates"}


@dataclass(frozen=True)
class ChangedReport:
    env: str
    since: str | None  # None: nothing deployed yet, everything counts as changed
    since_source: str  # "record", "--since" or "none"
    changed: list[str]  # release names
    unchanged: list[str]
    removed: list[str]  # in the old revision's helmfile, gone now
    selectors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.env,
            "since": self.since,
            "since_source": self.since_source,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "selectors": self.selectors,
            "selector_args": " ".join(f"-l {s}" for s in self.selectors),
        }

    def text(self) -> str:
        since = (
            f"since {self.since[:10]} ({self.since_source})"
            if self.since
            else "(nothing deployed yet)"
        )
        lines = [f"{self.env}: {len(self.changed)} release(s) changed {since}"]
        lines += [f"  changed:   {r}" for r in self.changed]
        lines += [f"  unchanged: {r}" for r in self.unchanged]
        lines += [f"  removed from helmfile (not uninstalled by apply): {r}" for r in self.removed]
        lines.append(
            "selector: "
            + (" ".join(f"-l {s}" for s in self.selectors) if self.selectors else "(none)")
        )
        return "\n".join(lines)


def _run_build(root: Path, env: str, tools: Tools) -> list[dict[str, Any]]:
    from ruamel.yaml import YAML

    args = [tools.helmfile, "--helm-binary", tools.helm, "-e", env, "build", "--embed-values"]
    try:
        proc = subprocess.run(
            args, cwd=root, capture_output=True, text=True, timeout=300, check=False
        )
    except FileNotFoundError:
        from gitops_glue.tools import missing_tool

        raise missing_tool(tools.helmfile) from None
    if proc.returncode != 0:
        raise UsageError(
            f"helmfile cannot render {env!r} in {root}: "
            + "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        )
    docs = [d for d in YAML(typ="safe", pure=True).load_all(proc.stdout) if isinstance(d, dict)]
    return docs


def _hash_tree(folder: Path) -> str:
    digest = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprints(root: Path, env: str, tools: Tools) -> dict[str, tuple[str, str]]:
    """``namespace/name`` -> (release name, fingerprint of its inputs)."""
    out: dict[str, tuple[str, str]] = {}
    for doc in _run_build(root, env, tools):
        shared = {k: v for k, v in doc.items() if k not in _NOT_GLOBAL}
        for release in doc.get("releases") or []:
            name = str(release.get("name"))
            ns = str(release.get("namespace") or "")
            parts: dict[str, Any] = {"release": release, "shared": shared}
            chart_path = release.get("chartPath") or release.get("chart")
            if isinstance(chart_path, str):
                local = (root / chart_path).resolve()
                if local.is_dir() and local.is_relative_to(root.resolve()):
                    parts["chart_files"] = _hash_tree(local)
            secrets = []
            for item in release.get("secrets") or []:
                if isinstance(item, str) and (root / item).is_file():
                    secrets.append(hashlib.sha256((root / item).read_bytes()).hexdigest())
            parts["secrets"] = secrets
            blob = json.dumps(parts, sort_keys=True, default=str).encode()
            out[f"{ns}/{name}"] = (name, hashlib.sha256(blob).hexdigest())
    return out


def _not_in_repository(rev: str, source: str) -> UsageError:
    hint = (
        "the checkout does not have the deployed commit: fetch the full history "
        "(GitHub actions/checkout fetch-depth: 0, GitLab GIT_DEPTH: 0)"
        if source == "record"
        else "give a commit, tag or branch of the deployment repository"
    )
    return UsageError(f"revision {rev!r} ({source}) is not in this repository", hint=hint)


def deployed_revision(loaded: LoadedConfig, env: str, kube: Kube) -> str | None:
    """The deployment repo commit last deployed to ``env`` (its deploy record), or None."""
    from gitops_glue.cluster import record

    environment = loaded.config.environment(env)
    rec = record.read(kube, environment.record_namespace, env)
    return (rec.git_revision or None) if rec else None


def changed_releases(
    loaded: LoadedConfig,
    env: str,
    tools: Tools,
    *,
    since: str | None,
    since_source: str,
) -> ChangedReport:
    """Compare every release's inputs at ``since`` with the checkout."""
    from gitops_glue.repo import gitrepo

    loaded.config.environment(env)
    root = loaded.root
    now = fingerprints(root, env, tools)
    old: dict[str, tuple[str, str]] = {}
    resolved: str | None = None
    if since is not None:
        tmp = Path(tempfile.mkdtemp(prefix="glue-changed-"))
        try:
            exported = gitrepo.export_revision(root, since, tmp)
            if exported is None:
                raise _not_in_repository(since, since_source)
            resolved, old_root = exported
            if not (old_root / "glue.yaml").is_file():
                sub = old_root.relative_to(tmp).as_posix()
                raise UsageError(f"{resolved[:10]} has no glue.yaml at {sub}")
            try:
                old = fingerprints(old_root, env, tools)
            except UsageError as exc:
                raise OperationError(
                    f"cannot render {env!r} as of {resolved[:10]}: {exc.message}"
                ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return compare(
        env,
        now,
        None if since is None else old,
        resolved,
        since_source if since is not None else "none",
    )


Fingerprints = dict[str, tuple[str, str]]  # namespace/name -> (release name, fingerprint)


def compare(
    env: str, now: Fingerprints, old: Fingerprints | None, since: str | None, since_source: str
) -> ChangedReport:
    """Which releases changed between ``old`` (None: nothing deployed) and ``now``, and the
    helmfile selectors that pick them (a name shared by two namespaces gets its namespace)."""
    changed_keys = [k for k, v in now.items() if old is None or old.get(k, ("", ""))[1] != v[1]]
    names = [name for name, _ in now.values()]
    duplicate = {n for n in names if names.count(n) > 1}
    selectors = [
        f"name={now[k][0]}" + (f",namespace={k.split('/', 1)[0]}" if now[k][0] in duplicate else "")
        for k in changed_keys
    ]
    return ChangedReport(
        env=env,
        since=since,
        since_source=since_source,
        changed=[now[k][0] for k in changed_keys],
        unchanged=[now[k][0] for k in now if k not in changed_keys],
        removed=[v[0] for k, v in (old or {}).items() if k not in now],
        selectors=selectors,
    )


def report(
    loaded: LoadedConfig,
    env: str,
    tools: Tools,
    *,
    since: str | None,
    kube: Callable[[], Kube],
) -> ChangedReport:
    """``glue changed``: compare with ``since``, or with what the deploy record says is
    deployed (``kube()`` is only called then)."""
    loaded.config.environment(env)
    if since is not None:
        return changed_releases(loaded, env, tools, since=since, since_source="--since")
    try:
        deployed = deployed_revision(loaded, env, kube())
    except GlueError as exc:
        # No cluster at hand (no kubeconfig, unreachable, no right to read the record):
        # the comparison does not need one when told the revision.
        also = "or compare with a revision instead of the deploy record: --since REV"
        raise type(exc)(exc.message, hint=f"{exc.hint}; {also}" if exc.hint else also) from None
    return changed_releases(loaded, env, tools, since=deployed, since_source="record")
