"""``glue init``: a commented ``glue.yaml`` for a deployment repository that has a helmfile.

Where each release's image tag comes from is helmfile's own answer, read safely
(:mod:`gitops_glue.helmview`: no hooks, no cluster, no network): a release's
own values files (written as patterns with ``{env}`` and ``{service}`` when every
environment follows one), or an environment value that reaches the release through
the helmfile's inline values or ``set:``. A tag that the helmfile computes itself
(an environment variable at deploy time, a literal) is reported, not managed. The
environment names and their order come from the helmfile's ``environments:`` (and
its ``bases:``); what could not be inferred is said, in the file and in the notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue.errors import UsageError
from gitops_glue.files import CONFIG_NAME

if TYPE_CHECKING:
    from gitops_glue.helmview import TagSource

#: Usual promotion order, for environments helmfile lists without one.
_RANK = (
    "local",
    "dev",
    "development",
    "test",
    "testing",
    "qa",
    "int",
    "integration",
    "stage",
    "staging",
    "preprod",
    "pre-prod",
    "uat",
)
_PROD = ("prod", "production", "live")


@dataclass(frozen=True)
class InitRequest:
    directory: Path
    #: Environments in promotion order (None: as the helmfile lists them).
    environments: tuple[str, ...] | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class EnvironmentPlan:
    name: str
    values: tuple[str, ...]
    kube_context: str | None
    releases: dict[str, str]  # release -> namespace


@dataclass(frozen=True)
class InitResult:
    path: Path
    text: str
    written: bool
    environments: tuple[EnvironmentPlan, ...]
    services: dict[str, str]  # service -> tag key
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "written": self.written,
            "environments": [
                {
                    "name": e.name,
                    "values": list(e.values),
                    "kube_context": e.kube_context,
                    "releases": e.releases,
                }
                for e in self.environments
            ],
            "services": self.services,
            "notes": list(self.notes),
            "text": self.text,
        }

    def summary(self) -> str:
        if not self.written:
            return self.text.rstrip("\n")
        return (
            f"wrote {self.path}: {len(self.environments)} environment(s), "
            f"{len(self.services)} service(s); review it, then run `glue check`"
        )


def _order(names: list[str]) -> tuple[list[str], list[str]]:
    """Known names in promotion order (prod last), then the ones glue cannot rank, as the
    helmfile lists them: (ordered, unranked)."""

    def rank(name: str) -> int | None:
        low = name.lower()
        if low in _PROD or low.startswith(("prod-", "production-")):
            return len(_RANK)
        return _RANK.index(low) if low in _RANK else None

    known = sorted((n for n in names if rank(n) is not None), key=lambda n: rank(n) or 0)
    unranked = [n for n in names if rank(n) is None]
    return known + unranked, unranked


@dataclass(frozen=True)
class ServicePlan:
    """Where one service's tag lives, as glue.yaml says it."""

    tag_key: str
    values: tuple[str, ...] | None = None  # patterns; None: the environment's values
    revision_key: str | None = None


def _pattern(path: str, env: str, release: str) -> str:
    out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(env)}(?![A-Za-z0-9])", "{env}", path)
    return re.sub(rf"(?<![A-Za-z0-9{{]){re.escape(release)}(?![A-Za-z0-9}}])", "{service}", out)


def _revision_key(root: Path, files: tuple[str, ...], tag_key: str) -> str | None:
    """``X.revision`` next to an environment value ``X.image.tag``, when a file sets it."""
    from gitops_glue import helmview

    parts = tag_key.split(".")
    if len(parts) < 3 or parts[-2:] != ["image", "tag"]:
        return None
    candidate = ".".join([*parts[:-2], "revision"])
    for name in files:
        path = root / name
        data = helmview.load_yaml(path.read_text(encoding="utf-8")) if path.is_file() else None
        if helmview.get_key(data, candidate)[0]:
            return candidate
    return None


def _branch(root: Path) -> str | None:
    from gitops_glue.repo.gitrepo import local_head

    head = local_head(root)  # None: not a checkout, or no commit (glue.yaml's default stays)
    return head.branch if head else None


def plan(req: InitRequest) -> InitResult:
    """Work out glue.yaml for the repository at ``req.directory``; writes nothing unless
    asked, and never over an existing glue.yaml (``--dry-run`` still prints it)."""
    from gitops_glue import helmview
    from gitops_glue.repo.gitrepo import worktree_reader
    from gitops_glue.tools import Tools, missing_tool

    root = req.directory.resolve()
    path = root / CONFIG_NAME
    if path.exists() and not req.dry_run:
        raise UsageError(
            f"{path} already exists: glue init never overwrites it",
            hint="move it away first, run `glue init --dry-run` to see what it would write, "
            "or `glue check` to compare it with the helmfile",
        )
    found = helmview.find_helmfile(root)
    if found is None:
        raise UsageError(
            f"no helmfile.yaml, helmfile.yaml.gotmpl or helmfile.d in {root}",
            hint="run glue init at the root of the deployment repository (-C DIR)",
        )
    tools = Tools.from_env()
    if not tools.helmfile_installed():
        raise missing_tool(tools.helmfile)
    read = worktree_reader(root)
    notes: list[str] = []
    declared = helmview.declared_environments(read, root)
    listed = [n for n in declared if n != "default"] or list(declared)
    if req.environments:
        names = list(req.environments)
    else:
        names, unranked = _order(listed)
        if unranked and len(names) > 1:
            notes.append(
                f"environments {', '.join(unranked)}: glue cannot tell their place in the "
                "promotion order and listed them last: move them, or give --environments"
            )
        elif names != listed:
            notes.append(
                f"environments put in promotion order {', '.join(names)} (helmfile lists "
                f"{', '.join(listed)}): check it, or give --environments"
            )
    if not names:
        raise UsageError(
            f"found no environments in {found.name} (or its bases)",
            hint="name them: glue init --environments dev,staging,prod",
        )
    envs: list[EnvironmentPlan] = []
    # release -> environment -> its tag's source
    tags: dict[str, dict[str, helmview.TagSource]] = {}
    for name in names:
        try:
            view = helmview.environment_view(root, name, tools)
        except UsageError as exc:  # said, and the rest of the file is still written
            notes.append(f"environment {name!r}: {exc.message}")
            envs.append(EnvironmentPlan(name, tuple(declared.get(name, ())), None, {}))
            continue
        notes += view.notes
        if view.inline_values:
            notes.append(
                f"environment {name!r}: {view.inline_values} inline values entry (not a file) "
                "left out: glue edits files only"
            )
        envs.append(
            EnvironmentPlan(
                name,
                view.values,
                view.kube_context,
                {r.name: r.namespace for r in view.releases},
            )
        )
        for release, sources in helmview.tag_sources(view, root).items():
            main = helmview.main_tag(sources)
            if main is not None:
                tags.setdefault(release, {})[name] = main
    services: dict[str, ServicePlan] = {}
    for release, by_env in tags.items():
        described = _service(root, release, by_env, envs)
        if isinstance(described, str):
            notes.append(described)
        else:
            services[release] = described
    if not services:
        notes.append(
            "no image tag keys found in any release's values (looked for image.tag, "
            "*.image.tag, *.tag and set: entries): describe services by hand"
        )
    text = _render(envs, services, _branch(root), notes, found.name)
    written = False
    if not req.dry_run:
        from gitops_glue.files import atomic_write_text

        if path.exists():  # created meanwhile: still never overwrite
            raise UsageError(f"{path} already exists: glue init never overwrites it")
        atomic_write_text(path, text)
        written = True
    return InitResult(
        path,
        text,
        written,
        tuple(envs),
        {s: p.tag_key for s, p in services.items()},
        tuple(notes),
    )


def _service(
    root: Path, release: str, by_env: dict[str, TagSource], envs: list[EnvironmentPlan]
) -> ServicePlan | str:
    """Where ``release``'s tag lives in glue.yaml's terms, or why glue leaves it out."""
    sources = list(by_env.values())
    kinds = {s.kind for s in sources}
    if "template" in kinds:
        s = next(s for s in sources if s.kind == "template")
        return (
            f"release {release!r}: helmfile computes {s.key} in the helmfile itself (its "
            f"{s.via} gives {str(s.value)[:60]!r}: an environment variable or a literal at "
            "deploy time), not from a values file: glue cannot manage it in git"
        )
    if kinds == {"environment"}:
        keys = sorted({s.env_key or "" for s in sources})
        if len(keys) > 1:
            return (
                f"release {release!r}: its tag comes from different environment values "
                f"({', '.join(keys)}) in different environments: describe it by hand"
            )
        files = tuple(f for e in envs for f in e.values)
        return ServicePlan(keys[0], None, _revision_key(root, files, keys[0]))
    if kinds == {"file"}:
        chart_keys = {s.key for s in sources}
        patterns = {tuple(_pattern(f, env, release) for f in s.files) for env, s in by_env.items()}
        if len(chart_keys) > 1 or len(patterns) > 1:
            return (
                f"release {release!r}: its values files do not follow one pattern across "
                "environments: describe it by hand"
            )
        return ServicePlan(chart_keys.pop(), patterns.pop())
    return (
        f"release {release!r}: its tag comes from a values file in some environments and "
        "from environment values in others: describe it by hand"
    )


def _q(value: str) -> str:
    import json
    import re

    return value if re.fullmatch(r"[A-Za-z0-9_./-]+", value) else json.dumps(value)


def _render(
    envs: list[EnvironmentPlan],
    services: dict[str, ServicePlan],
    branch: str | None,
    notes: list[str],
    helmfile_name: str,
) -> str:
    from collections import Counter

    shared_files = [n for n, p in services.items() if p.values is not None]
    layouts = Counter((p.tag_key, p.values) for p in services.values() if p.values is not None)
    default = layouts.most_common(1)[0][0] if layouts and layouts.most_common(1)[0][1] > 1 else None
    from_env = any(p.values is None for p in services.values())
    out = [
        f"# glue.yaml written by `glue init` from {helmfile_name}.",
        "# Review it, then run `glue check` (it compares this file with helmfile's view).",
        "version: 1",
        "",
        "git:",
        f"  branch: {_q(branch or 'main')}  # the branch glue commits to",
        "",
        "# In promotion order: new versions land in the first one.",
        "# values: the environment's values files, in helmfile's order (globs expanded).",
        "environments:",
    ]
    for env in envs:
        out.append(f"  - name: {_q(env.name)}")
        if env.values and (from_env or not shared_files):
            out.append(f"    values: [{', '.join(_q(v) for v in env.values)}]")
        if env.kube_context:
            out.append(f"    kube_context: {_q(env.kube_context)}  # helmfile's kubeContext")
        if env.releases:
            where = ", ".join(f"{r} ({ns})" for r, ns in sorted(env.releases.items()))
            out.append(f"    # releases: {where}")
    if default is not None:
        tag_key, patterns = default
        out += [
            "",
            "# Every service below takes these unless it says otherwise: the tag key in its",
            "# release's own values files, in helmfile's order ({env}, {service} filled in).",
            "service_defaults:",
            f"  tag_key: {_q(tag_key)}",
            "  values:",
            *[f"    - {_q(v)}" for v in patterns or ()],
        ]
    out += ["", "services:"]
    if not services:
        out += [
            "  # no tag keys found: describe each service, for example",
            "  # my-service:",
            "  #   tag_key: my-service.image.tag",
            "  {}",
        ]
    for svc, p in services.items():
        if default is not None and (p.tag_key, p.values) == default and not p.revision_key:
            out.append(f"  {_q(svc)}: {{}}")
            continue
        out.append(f"  {_q(svc)}:")
        out.append(f"    tag_key: {_q(p.tag_key)}")
        if p.values is not None:
            out.append("    values: [" + ", ".join(_q(v) for v in p.values) + "]")
        elif default is not None:
            out.append("    values: null  # from the environment's values files")
        if p.revision_key:
            out.append(f"    revision_key: {_q(p.revision_key)}")
    if notes:
        out += ["", "# What glue init could not infer:"]
        for n in notes:
            first, *rest = n.splitlines() or [""]
            out.append(f"# - {first}")
            out += [f"#   {line}" for line in rest]
    return "\n".join(out) + "\n"
