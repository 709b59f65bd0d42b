"""``glue check``: does glue.yaml describe the deployment repository helmfile deploys?

Two kinds of checks:

- cheap ones on files only (:func:`file_problems`): every values file exists,
  every service's tag key is set in each environment. Writing commands run them
  first and print what they find as warnings.
- helmfile's own view (:func:`helmfile_problems`, needs the helmfile binary):
  each environment's values files and their order are what helmfile merges,
  each service's release is deployed in each environment.

:func:`refuse_overridden_key` is the bump guard: a new key in a file that
helmfile merges before another file that sets the same key changes nothing that
is deployed, so it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gitops_glue.config import Environment, GlueConfig
from gitops_glue.errors import UsageError, YamlEditError
from gitops_glue.repo import envfiles, keypath, values

if TYPE_CHECKING:
    from gitops_glue.config import LoadedConfig
    from gitops_glue.deploy.helmfile import Tools

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
    docs = values.parse_documents(text, filename)
    found = values.lookup(docs, keypath.parse(key))
    return found.node.line + 1 if found.node is not None else None


# --------------------------------------------------------------------------- cheap checks


def file_problems(
    config: GlueConfig, read: envfiles.Reader, config_name: str, config_text: str = ""
) -> list[Problem]:
    """Checks on files only: values files exist, tag keys resolve in each environment."""
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
            try:
                found = envfiles.effective(read, env, svc.tag_key)
            except YamlEditError as exc:  # e.g. a parent of the key is a single value
                problems.append(Problem(f"environment {env.name!r}: {exc}", config_name))
                continue
            if found.file is None:
                present = [n for n in env.values if n not in missing]
                where = ", ".join(present) if present else "no existing file"
                problems.append(
                    Problem(
                        f"service {svc_name!r}: tag key {svc.tag_key} is set in none of "
                        f"environment {env.name!r}'s values files ({where})",
                        config_name,
                        config_line(config_text, service=svc_name),
                    )
                )
    return problems


def cheap_warnings(loaded: LoadedConfig) -> list[str]:
    """What writing commands print as ``glue: warning:`` lines before they start."""
    from gitops_glue.files import read_text
    from gitops_glue.repo.gitrepo import worktree_reader

    try:
        text = read_text(loaded.path)
        found = file_problems(loaded.config, worktree_reader(loaded.root), loaded.path.name, text)
    except UsageError:
        return []  # the command itself reports what it cannot read
    return [p.text() for p in found]


# --------------------------------------------------------------------------- helmfile's view


def helmfile_problems(
    config: GlueConfig,
    root: Path,
    tools: Tools,
    config_name: str,
    config_text: str = "",
) -> list[Problem]:
    """glue.yaml against helmfile's own view of each environment."""
    from gitops_glue.deploy import helmfile

    problems: list[Problem] = []
    for env in config.environments:
        line = config_line(config_text, env=env.name)
        try:
            state = helmfile.environment_state(root, env.name, tools)
            releases = {r.name for r in helmfile.releases_of(root, env.name, tools)}
        except UsageError as exc:
            problems.append(Problem(exc.message, config_name, line))
            continue
        theirs = list(state.values)
        ours = [v.removeprefix("./") for v in env.values]
        if [v.removeprefix("./") for v in theirs] != ours:
            problems.append(
                Problem(
                    f"environment {env.name!r}: values files are [{', '.join(env.values)}], "
                    f"but helmfile merges [{', '.join(theirs)}] in that order "
                    "(glue edits the last file and reads them in this order)",
                    config_name,
                    line,
                )
            )
        for svc_name, svc in config.services.items():
            release = svc.release_name(svc_name)
            if release not in releases:
                problems.append(
                    Problem(
                        f"service {svc_name!r}: release {release!r} is not deployed by the "
                        f"helmfile in environment {env.name!r} (releases: "
                        f"{', '.join(sorted(releases)) or 'none'})",
                        config_name,
                        config_line(config_text, service=svc_name),
                    )
                )
    return problems


def check(directory: Path, *, use_helmfile: bool = True) -> CheckReport:
    """``glue check``: every check; helmfile's only where the binary is installed."""
    from gitops_glue.config import load_config
    from gitops_glue.deploy import helmfile
    from gitops_glue.files import read_text
    from gitops_glue.repo.gitrepo import worktree_reader

    loaded = load_config(directory)
    text = read_text(loaded.path)
    name = loaded.path.name
    config = loaded.config
    problems = file_problems(config, worktree_reader(loaded.root), name, text)
    tools = helmfile.Tools.from_env()
    ran = False
    if not use_helmfile:
        problems.append(Problem("helmfile checks skipped (--no-helmfile)", severity="note"))
    elif helmfile.find_helmfile(loaded.root) is None:
        problems.append(
            Problem(
                "no helmfile.yaml, helmfile.yaml.gotmpl or helmfile.d next to glue.yaml: "
                "values file order and releases not checked",
                severity="note",
            )
        )
    elif not helmfile.available(tools):
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


# --------------------------------------------------------------------------- bump guard


def refuse_overridden_key(read: envfiles.Reader, env: Environment, key: str, file: str) -> None:
    """Refuse to create ``key`` in ``file`` when the helmfile merges a later file that
    sets it: the new value would be overridden, a commit that deploys nothing new.

    The merge order is read statically from the helmfile (and its ``bases:``),
    which is cheap and works on a fetched remote tree; an environment whose
    values list is templated is not guarded here (``glue check`` asks helmfile).
    """
    from gitops_glue.deploy.helmfile import declared_environments

    text = read(file)
    if text is not None and key_line(text, file, key) is not None:
        return  # not created: the key is already in the file
    order = [v.removeprefix("./") for v in declared_environments(read).get(env.name, [])]
    own = file.removeprefix("./")
    if own not in order:
        return
    for later in order[order.index(own) + 1 :]:
        later_text = read(later)
        line = key_line(later_text, later, key) if later_text is not None else None
        if line is not None:
            raise UsageError(
                f"environment {env.name!r}: {key} would be created in {own}, but helmfile "
                f"merges {later} after it, which sets it ({later}:{line}): the new value "
                "would never be deployed",
                hint=f"list the values files in glue.yaml in helmfile's order (glue edits the "
                f"last one, here {later}); `glue check` compares them",
            )
