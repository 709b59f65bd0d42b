"""``glue check``: does glue.yaml describe the deployment repository helmfile deploys?

Two kinds of checks:

- cheap ones on files only (:func:`file_problems`): every values file exists,
  every service's tag key is set in each environment. Writing commands run them
  first and print what they find as warnings.
- helmfile's own view (:func:`helmfile_problems`, needs the helmfile binary):
  each environment's values files and their order are what helmfile merges,
  each service's release is deployed in each environment.

"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gitops_glue import keypath, yamlnodes
from gitops_glue.config import Environment, GlueConfig
from gitops_glue.errors import GlueError, UsageError
from gitops_glue.repo import values, versions

if TYPE_CHECKING:
    from gitops_glue import helmview
    from gitops_glue.repo.commit import Change, D, View
    from gitops_glue.tools import Tools

Severity = Literal["error", "note"]


@dataclass(frozen=True)
class Problem:
    """One finding: ``file:line: message`` (file and line where there is one)."""

    message: str
    file: str | None = None
    line: int | None = None
    severity: Severity = "error"

    def text(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else ""
        where = where or (f"{self.file}: " if self.file else "")
        return f"{where}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }


@dataclass(frozen=True)
class CheckReport:
    config: str
    problems: tuple[Problem, ...]
    helmfile_checked: bool
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "config": self.config,
            "helmfile_checked": self.helmfile_checked,
            "checked": self.checked,
            "problems": [p.to_json() for p in self.problems],
        }

    def lines(self) -> list[str]:
        return [p.text() if p.severity == "error" else f"note: {p.text()}" for p in self.problems]

    def summary(self) -> str:
        counts = ", ".join(f"{n} {what}" for what, n in self.checked.items())
        if self.ok:
            return f"ok: {self.config} fits the repository ({counts})"
        return f"{len(self.errors)} problem(s) in {self.config} ({counts})"


# --------------------------------------------------------------------------- line numbers


def config_line(config_text: str, env: str | None = None, service: str | None = None) -> int | None:
    """The line of ``- name: ENV`` or of ``SERVICE:`` in glue.yaml (best effort)."""
    import re

    if env is not None:
        pattern = rf"^\s*-?\s*name:\s*['\"]?{re.escape(env)}['\"]?\s*(#.*)?$"
    elif service is not None:
        pattern = rf"^\s+['\"]?{re.escape(service)}['\"]?:\s*(#.*)?$"
    else:
        return None
    for number, line in enumerate(config_text.splitlines(), 1):
        if re.match(pattern, line):
            return number
    return None


def key_line(text: str, filename: str, key: str) -> int | None:
    """1-based line where ``key`` is set in a values file text (None: not set)."""
    docs = yamlnodes.parse_documents(text, filename)
    found = values.lookup(docs, keypath.parse(key))
    return found.node.line + 1 if found.node is not None else None


# --------------------------------------------------------------------------- cheap checks


def setup_warnings(view: View, change: Change[D]) -> Change[D]:
    """A commit's guard: :func:`file_problems` on the view it was planned on, as the
    change's warnings, so a broken setup is said before it bites. A check that cannot
    run never stops the write (its error becomes the warning)."""
    try:
        found = tuple(p.text() for p in file_problems(view.config, view.read, "glue.yaml"))
    except GlueError as exc:
        found = (str(exc),)
    return dataclasses.replace(change, warnings=found) if found else change


def file_problems(
    config: GlueConfig, read: versions.Reader, config_name: str, config_text: str = ""
) -> list[Problem]:
    """Checks on files only: environment values files exist, and every service's tag
    is set, and can be written without a leak, in each environment."""
    problems: list[Problem] = []
    for env in config.environments:
        missing = [name for name in env.values if read(name) is None]
        for name in missing:
            problems.append(
                Problem(
                    f"environment {env.name!r}: values file {name} does not exist",
                    config_name,
                    config_line(config_text, env=env.name),
                )
            )
        for svc_name, svc in config.services.items():
            line = config_line(config_text, service=svc_name)
            try:
                found = versions.read_version(read, config, env, svc_name)
            except UsageError as exc:  # e.g. a parent of the key is a single value
                problems.append(Problem(f"environment {env.name!r}: {exc}", config_name))
                continue
            try:
                versions.target(read, config, env, svc_name)
            except UsageError as exc:  # no values file can take a new tag without a leak
                problems.append(
                    Problem(f"{exc.message}: {exc.hint}", config_name, line, severity="note")
                )
            if found.file is None:
                files = versions.sources(config, env, svc_name)
                present = [n for n in files if read(n) is not None]
                where = ", ".join(present) if present else "no existing file"
                problems.append(
                    Problem(
                        f"service {svc_name!r}: tag key {svc.tag_key} is set in none of its "
                        f"values files in environment {env.name!r} ({where})",
                        config_name,
                        line,
                    )
                )
    return problems


# --------------------------------------------------------------------------- helmfile's view


def helmfile_problems(
    config: GlueConfig,
    root: Path,
    tools: Tools,
    config_name: str,
    config_text: str = "",
) -> list[Problem]:
    """glue.yaml against helmfile's own view of each environment (read safely: no hooks,
    no cluster, no network; :mod:`gitops_glue.helmview`): the files, the releases,
    and for every service the tag glue reads against the one helmfile renders."""
    from gitops_glue import helmview
    from gitops_glue.repo.gitrepo import worktree_reader

    read = worktree_reader(root)
    problems: list[Problem] = []
    for env in config.environments:
        line = config_line(config_text, env=env.name)
        try:
            view = helmview.environment_view(root, env.name, tools)
        except UsageError as exc:
            problems.append(Problem(exc.message, config_name, line))
            continue
        problems += [Problem(n, severity="note") for n in view.notes]
        if env.values and list(view.values) != env.values:
            problems.append(
                Problem(
                    f"environment {env.name!r}: values files are [{', '.join(env.values)}], "
                    f"but helmfile merges [{', '.join(view.values)}] in that order",
                    config_name,
                    line,
                )
            )
        sources = helmview.tag_sources(view, root)
        managed: set[str] = set()
        for svc_name, svc in config.services.items():
            release = svc.release_name(svc_name)
            managed.add(release)
            at = config_line(config_text, service=svc_name)
            mine = next((r for r in view.releases if r.name == release), None)
            if mine is None:
                problems.append(
                    Problem(
                        f"service {svc_name!r}: release {release!r} is not deployed by the "
                        f"helmfile in environment {env.name!r} (releases: "
                        f"{', '.join(sorted(r.name for r in view.releases)) or 'none'})",
                        config_name,
                        at,
                    )
                )
                continue
            found = _compare(config, read, env, svc_name, mine, sources.get(release, []))
            found += _leaks(config, read, env, svc_name, view)
            problems += [Problem(m, config_name, at) for m in found]
        for release, found_sources in sources.items():
            main = helmview.main_tag(found_sources)
            if release not in managed and main is not None and main.kind == "template":
                problems.append(
                    Problem(
                        f"release {release!r} in {env.name!r}: helmfile computes {main.key} in "
                        f"the helmfile itself (its {main.via}: an environment variable or a "
                        "literal at deploy time): glue cannot manage it in git",
                        severity="note",
                    )
                )
    return problems


def _leaks(
    config: GlueConfig,
    read: versions.Reader,
    env: Environment,
    service: str,
    view: helmview.EnvView,
) -> list[str]:
    """A file glue would write ``service``'s tag to that another release of the
    environment (one glue.yaml does not describe) merges too: a bump would move it."""
    svc = config.service(service)
    if not versions.own_sources(svc):
        return []  # environment values reach releases through the helmfile, traced apart
    try:
        file = versions.target(read, config, env, service)
    except UsageError:
        return []  # said by the file checks
    release = svc.release_name(service)
    others = sorted(
        r.name
        for r in view.releases
        if r.name != release and file in (v for v in r.values if isinstance(v, str))
    )
    if not others:
        return []
    return [
        f"service {service!r} in {env.name!r}: glue would write {svc.tag_key} to {file}, "
        f"which release {', '.join(others)} merges too: a bump would change it as well "
        f"(give release {release!r} a values file of its own, after {file})"
    ]


def _compare(
    config: GlueConfig,
    read: versions.Reader,
    env: Environment,
    service: str,
    release: helmview.ReleaseView,
    sources: list[helmview.TagSource],
) -> list[str]:
    """What differs between glue's reading of ``service`` in ``env`` and helmfile's."""
    svc = config.service(service)
    files = versions.sources(config, env, service)
    theirs = tuple(v for v in release.values if isinstance(v, str))
    ours = versions.read_version(read, config, env, service)
    where = f"service {service!r} in {env.name!r}"
    if versions.own_sources(svc):
        if files != theirs:
            return [
                f"{where}: glue.yaml names the files [{', '.join(files)}], but helmfile merges "
                f"[{', '.join(theirs)}] for release {release.name!r} in that order "
                f"(fix services.{service}.values)"
            ]
        source = next((s for s in sources if s.key == svc.tag_key), None)
        if source is None:
            return [f"{where}: helmfile renders no {svc.tag_key} for release {release.name!r}"]
        if source.kind != "file":
            return [
                f"{where}: helmfile takes {svc.tag_key} from its {source.via}, not from the "
                + (
                    f"files: use tag_key {source.env_key} and no values (the environment's)"
                    if source.kind == "environment"
                    else "files: it is computed in the helmfile, and glue cannot manage it"
                )
            ]
    else:
        source = next((s for s in sources if s.env_key == svc.tag_key), None)
        if source is None:
            main = helmview.main_tag(sources)
            told = (
                f"; helmfile takes {main.key} from {main.file or main.env_key or main.via}"
                if main
                else ""
            )
            return [
                f"{where}: no value of release {release.name!r} comes from the environment "
                f"value {svc.tag_key}{told}"
            ]
    rendered = None if source.value is None else str(source.value)
    if rendered != ours.tag:
        return [
            f"{where}: glue reads tag {ours.tag!r} ({ours.file or 'set nowhere'}), but "
            f"helmfile renders {rendered!r} for release {release.name!r}"
        ]
    return []


def check(directory: Path, *, use_helmfile: bool = True) -> CheckReport:
    """``glue check``: every check; helmfile's only where the binary is installed."""
    from gitops_glue import helmview
    from gitops_glue.config import load_config
    from gitops_glue.files import read_text
    from gitops_glue.repo.gitrepo import worktree_reader
    from gitops_glue.tools import Tools

    loaded = load_config(directory)
    text = read_text(loaded.path)
    name = loaded.path.name
    config = loaded.config
    problems = file_problems(config, worktree_reader(loaded.root), name, text)
    tools = Tools.from_env()
    ran = False
    if not use_helmfile:
        problems.append(Problem("helmfile checks skipped (--no-helmfile)", severity="note"))
    elif helmview.find_helmfile(loaded.root) is None:
        problems.append(
            Problem(
                "no helmfile.yaml, helmfile.yaml.gotmpl or helmfile.d next to glue.yaml: "
                "values file order and releases not checked",
                severity="note",
            )
        )
    elif not tools.helmfile_installed():
        problems.append(
            Problem(
                f"{tools.helmfile} not found: values file order and releases not checked "
                "(install helmfile or set GLUE_HELMFILE)",
                severity="note",
            )
        )
    else:
        problems += helmfile_problems(config, loaded.root, tools, name, text)
        ran = True
    checked = {
        "environments": len(config.environments),
        "services": len(config.services),
        "values files": len({v for e in config.environments for v in e.values}),
    }
    return CheckReport(name, tuple(problems), ran, checked)
