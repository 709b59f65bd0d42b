"""``glue init``: a commented ``glue.yaml`` for a deployment repository that has a helmfile.

What helmfile merges for each environment comes from helmfile itself
(``helmfile -e ENV build`` and ``list --output json``); the environment names and
their order from the helmfile's ``environments:`` (and its ``bases:``), read
without templating. Services are proposed from the tag keys found in the values
files: ``X.image.tag`` under ``image:`` blocks, and flat maps of tags like
``imageTags: {a: 1.0}``. What could not be inferred is said, in the file and in
the result's notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitops_glue.errors import UsageError
from gitops_glue.files import CONFIG_NAME

#: Usual promotion order, for environments helmfile lists without one.
_RANK = ("dev", "development", "test", "qa", "int", "stage", "staging", "preprod", "uat")
_PROD = ("prod", "production", "live")

_TAG_MAP_NAMES = ("imagetags", "tags", "images", "imageversions", "versions")


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


def _order(names: list[str]) -> list[str]:
    def rank(name: str) -> tuple[int, int]:
        low = name.lower()
        if low in _PROD or low.startswith(("prod-", "production-")):
            return (2, 0)
        if low in _RANK:
            return (0, _RANK.index(low))
        return (1, 0)

    return sorted(names, key=rank)


def _tag_keys(data: object, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """service -> tag key path, from one values file's data."""
    found: dict[str, str] = {}
    if not isinstance(data, dict):
        return found
    for raw_key, value in data.items():
        key = str(raw_key)
        path = (*prefix, key)
        if key == "image" and isinstance(value, dict) and "tag" in value and prefix:
            found.setdefault(prefix[-1], ".".join((*path, "tag")))
        elif isinstance(value, dict) and key.lower().replace("_", "") in _TAG_MAP_NAMES:
            for svc, tag in value.items():
                if tag is None or isinstance(tag, str | int | float):
                    found.setdefault(str(svc), ".".join((*path, str(svc))))
        elif isinstance(value, dict) and len(path) < 6:
            for svc, sub in _tag_keys(value, path).items():
                found.setdefault(svc, sub)
    return found


def _revision_key(data: object, tag_key: str) -> str | None:
    parts = tag_key.split(".")
    if len(parts) >= 3 and parts[-2:] == ["image", "tag"]:
        candidate = [*parts[:-2], "revision"]
        node = data
        for part in candidate:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return ".".join(candidate)
    return None


def plan(req: InitRequest) -> InitResult:
    """Work out glue.yaml for the repository at ``req.directory``; writes nothing."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from gitops_glue.deploy import helmfile
    from gitops_glue.repo.gitrepo import worktree_reader

    root = req.directory.resolve()
    path = root / CONFIG_NAME
    if path.exists():
        raise UsageError(
            f"{path} already exists: glue init never overwrites it",
            hint="move it away first, or run `glue check` to compare it with the helmfile",
        )
    found = helmfile.find_helmfile(root)
    if found is None:
        raise UsageError(
            f"no helmfile.yaml, helmfile.yaml.gotmpl or helmfile.d in {root}",
            hint="run glue init at the root of the deployment repository (-C DIR)",
        )
    read = worktree_reader(root)
    notes: list[str] = []
    declared = helmfile.declared_environments(read)
    if req.environments:
        names = list(req.environments)
    else:
        names = _order([n for n in declared if n != "default"] or list(declared))
        if names and names != [n for n in declared if n != "default"]:
            notes.append(
                f"environments put in promotion order {', '.join(names)} (helmfile lists "
                f"{', '.join(declared)}): check it, or give --environments"
            )
    if not names:
        raise UsageError(
            f"found no environments in {found.name} (or its bases)",
            hint="name them: glue init --environments dev,staging,prod",
        )
    tools = helmfile.Tools.from_env()
    use_helmfile = helmfile.available(tools)
    if not use_helmfile:
        notes.append(
            f"{tools.helmfile} not found: values files taken from {found.name} as written, "
            "releases not listed; run `glue check` where helmfile is installed"
        )
    envs: list[EnvironmentPlan] = []
    for name in names:
        releases: dict[str, str] = {}
        context: str | None = None
        if use_helmfile:
            try:
                state = helmfile.environment_state(root, name, tools)
                files = state.values
                context = state.kube_context
                if state.inline_values:
                    notes.append(
                        f"environment {name!r}: {state.inline_values} inline values entry "
                        "(not a file) left out: glue edits files only"
                    )
                releases = {r.name: r.namespace for r in helmfile.releases_of(root, name, tools)}
            except UsageError as exc:
                notes.append(f"environment {name!r}: {exc.message}")
                files = tuple(declared.get(name, ()))
        else:
            files = tuple(declared.get(name, ()))
        if not files:
            notes.append(f"environment {name!r}: no values files found: fill in its values")
        envs.append(EnvironmentPlan(name, tuple(files), context, releases))

    services: dict[str, str] = {}
    revisions: dict[str, str] = {}
    loader = YAML(typ="safe", pure=True)
    for env in envs:
        for file in env.values:
            text = read(file)
            if text is None:
                notes.append(f"environment {env.name!r}: values file {file} does not exist")
                continue
            try:
                data = loader.load(text)
            except YAMLError:
                notes.append(f"{file}: not plain YAML (templated?): no tag keys read from it")
                continue
            for svc, key in _tag_keys(data).items():
                services.setdefault(svc, key)
                rev = _revision_key(data, key)
                if rev:
                    revisions.setdefault(svc, rev)
    all_releases = {r for e in envs for r in e.releases}
    if not services:
        notes.append(
            "no image tag keys found (looked for X.image.tag and maps like imageTags): "
            "describe services by hand"
        )
    for svc in services:
        if use_helmfile and all_releases and svc not in all_releases:
            notes.append(f"service {svc!r}: no release of that name: set its release:")
    text = _render(envs, services, revisions, all_releases, notes, found.name)
    if not req.dry_run:
        from gitops_glue.files import atomic_write_text

        if path.exists():  # created meanwhile: still never overwrite
            raise UsageError(f"{path} already exists: glue init never overwrites it")
        atomic_write_text(path, text)
    return InitResult(path, text, not req.dry_run, tuple(envs), services, tuple(notes))


def _q(value: str) -> str:
    import json
    import re

    return value if re.fullmatch(r"[A-Za-z0-9_./-]+", value) else json.dumps(value)


def _render(
    envs: list[EnvironmentPlan],
    services: dict[str, str],
    revisions: dict[str, str],
    releases: set[str],
    notes: list[str],
    helmfile_name: str,
) -> str:
    out = [
        f"# glue.yaml written by `glue init` from {helmfile_name}.",
        "# Review it, then run `glue check` (it compares this file with helmfile's view).",
        "version: 1",
        "",
        "git:",
        "  branch: main  # the branch glue commits to",
        "",
        "# In promotion order: new versions land in the first one.",
        "# values: the files helmfile merges for the environment, in its order;",
        "# glue edits the last one.",
        "environments:",
    ]
    for env in envs:
        out.append(f"  - name: {_q(env.name)}")
        out.append(f"    values: [{', '.join(_q(v) for v in env.values)}]")
        if env.kube_context:
            out.append(f"    kube_context: {_q(env.kube_context)}  # helmfile's kubeContext")
        if env.releases:
            where = ", ".join(f"{r} ({ns})" for r, ns in sorted(env.releases.items()))
            out.append(f"    # releases: {where}")
    out += ["", "services:"]
    if not services:
        out += [
            "  # no tag keys found: describe each service, for example",
            "  # my-service:",
            "  #   tag_key: my-service.image.tag",
            "  {}",
        ]
    for svc, key in services.items():
        out.append(f"  {_q(svc)}:")
        out.append(f"    tag_key: {_q(key)}")
        if svc in revisions:
            out.append(f"    revision_key: {_q(revisions[svc])}")
        if releases and svc not in releases:
            out.append("    # release: ?  (no helmfile release has this name; set the right one)")
    if notes:
        out += ["", "# What glue init could not infer:"]
        out += [f"# - {n}" for n in notes]
    return "\n".join(out) + "\n"
