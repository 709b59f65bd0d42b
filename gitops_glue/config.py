"""``glue.yaml``: the one validated description of a deployment repository.

Loaded once per command. Validation errors name the file, the line and the
key, for example ``glue.yaml:14: environments[1].tag_policy.allow: ...``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gitops_glue.cluster import record
from gitops_glue.errors import ConfigError, UsageError
from gitops_glue.files import CONFIG_NAME, find_config
from gitops_glue.repo import inputs, keypath

if TYPE_CHECKING:
    from collections.abc import Sequence


#: Tags that name a moving target; refused unless a policy allows them.
DEFAULT_MUTABLE_TAGS = [
    "latest",
    "main",
    "master",
    "develop",
    "dev",
    "edge",
    "nightly",
    "stable",
    "head",
    "snapshot",
]

#: ``glue release --branch``: tags like ``main-42-3f9c2e1`` (branch, build number, commit).
DEFAULT_BRANCH_TAGS = r"{branch}-(?P<order>[0-9]+)-(?P<revision>[0-9a-f]{7,40})"

_ENV_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

TemplateName = Literal["announce", "notify"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Author(_Model):
    name: str = "glue-bot"
    email: str = "glue-bot@localhost"


class GitSettings(_Model):
    #: The deployment repository's branch that bumps are committed to.
    branch: str = "main"
    #: The bot identity of commits glue makes.
    author: Author = Author()
    #: Jinja2 template of the commit message's title (first line) and body; glue's
    #: ``Glue-*`` trailers are always appended. See docs/config.md for the variables.
    commit_template: str | None = None
    #: Add ``[skip ci]`` to the title of every commit glue makes (unless the template has it).
    skip_ci: bool = False


class TagPolicy(_Model):
    #: A regular expression the whole tag must match (``None``: any valid tag).
    allow: str | None = None
    #: Tags that move (``latest``...). Refused unless ``allow_mutable``.
    mutable_tags: list[str] = Field(default_factory=lambda: list(DEFAULT_MUTABLE_TAGS))
    allow_mutable: bool = False

    @field_validator("allow")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
            inputs.check_regex_cost(value)
        return value

    def merged_over(self, base: TagPolicy) -> TagPolicy:
        """This policy's explicitly set fields on top of ``base``."""
        return base.model_copy(update={k: getattr(self, k) for k in self.model_fields_set})


class Environment(_Model):
    name: str
    #: Values files, merged in order like helm does; glue edits the last one.
    values: list[str]
    tag_policy: TagPolicy | None = None
    #: Kubernetes namespace of the deploy record and the deploy lock
    #: (default: ``glue-<name>``).
    namespace: str | None = None
    #: kubeconfig context of this environment's cluster (default: the helmfile
    #: environment's ``kubeContext``, else the kubeconfig's current context).
    kube_context: str | None = None
    #: kubeconfig file of this environment's cluster (default: ``--kubeconfig``,
    #: ``$KUBECONFIG``, ``~/.kube/config``); relative to the repository root.
    kubeconfig: str | None = None
    #: ``glue promote`` into this environment only promotes a version that the source
    #: environment's deploy record shows deployed successfully (``--require-deployed``).
    require_deployed: bool = False
    #: With ``require_deployed``: the version must have run in the source environment
    #: at least this long (a duration like ``30m``; ``--min-age``).
    min_age: str | None = None

    @field_validator("min_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            from gitops_glue.durations import parse_duration

            try:
                parse_duration(value)
            except UsageError as exc:
                raise ValueError(f"{exc.message}; use forms like 90s, 30m or 1h") from None
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError("use lower-case letters, digits and dashes (like prod-eu)")
        return value

    @field_validator("values", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("values")
    @classmethod
    def _relative(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one values file")
        for item in value:
            if Path(item).is_absolute() or ".." in Path(item).parts:
                raise ValueError(f"{item!r}: values files are paths inside the repository")
        return value

    @property
    def record_namespace(self) -> str:
        return self.namespace or record.default_namespace(self.name)

    @property
    def own_file(self) -> str:
        """The file glue edits for this environment (the last, most specific one)."""
        return self.values[-1]


class Service(_Model):
    #: Key path of the image tag inside the values files, e.g. ``a.image.tag``.
    tag_key: str
    #: Key path of the source revision (git SHA) the image was built from.
    revision_key: str | None = None
    #: Key path of the image digest (``sha256:...``) next to the tag, e.g.
    #: ``a.image.digest``: ``glue bump-tag`` asks the registry (``image``) for the
    #: tag's digest and writes it there; ``glue promote`` carries it with the tag.
    digest_key: str | None = None
    #: URL of the service's source repository, for links in messages.
    source_repo: str | None = None
    #: helmfile release name (default: the service name).
    release: str | None = None
    #: The image repository (REGISTRY/NAME), for ``glue release --branch``.
    image: str | None = None
    #: Tag scheme of branch builds: a regular expression (full match) in which
    #: ``{branch}`` stands for the branch name as tags spell it (lower case,
    #: other characters than ``a-z0-9_.-`` replaced by ``-``); the named group
    #: ``order`` sorts builds (numbers compare as numbers; newest = largest) and
    #: an optional group ``revision`` is the source commit.
    branch_tags: str = DEFAULT_BRANCH_TAGS

    @field_validator("branch_tags")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if "{branch}" not in value:
            raise ValueError("the scheme must contain {branch}")
        try:
            pattern = re.compile(value.replace("{branch}", "x"))
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if "order" not in pattern.groupindex:
            raise ValueError("the scheme needs a named group (?P<order>...) to sort builds")
        inputs.check_regex_cost(value.replace("{branch}", "x"))
        return value

    def release_name(self, service: str) -> str:
        return self.release or service

    @field_validator("tag_key", "revision_key", "digest_key")
    @classmethod
    def _key_path(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                keypath.parse(value)
            except UsageError as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("source_repo")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s]+/\S+", value):
            raise ValueError("use the repository's web URL, like https://github.com/org/repo")
        return value.rstrip("/") if value else value


class Templates(_Model):
    """Repository overrides of glue's message templates (paths from the repo root)."""

    announce: str | None = None
    notify: str | None = None


class NotifySettings(_Model):
    """``glue notify`` defaults for this repository."""

    #: Send nothing when a deployment changes no service's tag or revision.
    quiet_when_unchanged: bool = False
    #: With a bot token, finish messages ``reply`` in the start message's thread
    #: or ``update`` the start message in place.
    thread: Literal["reply", "update"] = "reply"


class AutoRelease(_Model):
    """New tags built from ``branch`` go to environment ``to`` without a person."""

    #: Source branch name; shell-style wildcards allowed (``release/*``).
    branch: str
    to: str


class GlueConfig(_Model):
    version: Literal[1] = 1
    git: GitSettings = GitSettings()
    templates: Templates = Templates()
    notify: NotifySettings = NotifySettings()
    tag_policy: TagPolicy = TagPolicy()
    #: In promotion order: the first is where new versions land first.
    environments: list[Environment]
    services: dict[str, Service]
    #: Which source branches' new tags are bumped automatically, and where to.
    auto_release: list[AutoRelease] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> GlueConfig:
        if not self.environments:
            raise ValueError("environments: list at least one environment")
        names = [e.name for e in self.environments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"environments: {', '.join(dupes)} listed more than once")
        if not self.services:
            raise ValueError("services: describe at least one service")
        for name in self.services:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise ValueError(f"services: {name!r} is not a valid service name")
            if self.services[name].digest_key and not self.services[name].image:
                raise ValueError(
                    f"services: {name!r} has a digest_key but no image (REGISTRY/NAME) "
                    "to ask for the digest"
                )
        for rule in self.auto_release:
            if rule.to not in names:
                raise ValueError(
                    f"auto_release: environment {rule.to!r} is not in environments "
                    f"({', '.join(names)})"
                )
        return self

    def auto_release_allows(self, branch: str, env: str) -> bool:
        """Whether a new tag of source ``branch`` goes to ``env`` automatically.

        ``refs/heads/main`` (Azure's Build.SourceBranch, GitHub's GITHUB_REF) is ``main``.
        """
        import fnmatch

        from gitops_glue.integrations.ci import short_ref

        branch = short_ref(branch)
        return any(r.to == env and fnmatch.fnmatchcase(branch, r.branch) for r in self.auto_release)

    # ------------------------------------------------------------------ lookups

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise UsageError(
            f"unknown environment {name!r}",
            hint=f"environments in {CONFIG_NAME}: {', '.join(self.environment_names())}",
        )

    def environment_names(self) -> list[str]:
        return [e.name for e in self.environments]

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise UsageError(
                f"unknown service {name!r}",
                hint=f"services in {CONFIG_NAME}: {', '.join(self.services)}",
            ) from None

    def policy_for(self, env: Environment) -> TagPolicy:
        return env.tag_policy.merged_over(self.tag_policy) if env.tag_policy else self.tag_policy


class LoadedConfig(BaseModel):
    """A config together with where it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    config: GlueConfig
    root: Path  # the deployment repository root (folder of glue.yaml)
    path: Path

    def template(self, name: TemplateName) -> Path | None:
        """The message template glue.yaml names for ``name`` (None: glue's own)."""
        chosen = getattr(self.config.templates, name)
        return self.root / chosen if chosen else None


def check_limits(text: str, filename: str) -> None:
    """Size, depth, alias bombs and duplicate keys (docs/config.md, Limits): refused
    before anything is built. Syntax errors are left to the loader's own message."""
    from gitops_glue.errors import YamlEditError
    from gitops_glue.repo import values

    try:
        values.parse_documents(text, filename)
    except YamlEditError as exc:
        if ": not valid YAML: " not in exc.message:
            raise ConfigError(exc.message, hint=exc.hint) from None


def parse_config(text: str, filename: str = CONFIG_NAME) -> GlueConfig:
    """Validate ``glue.yaml`` text; errors name file, line and key."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    check_limits(text, filename)
    try:
        data = YAML(typ="rt", pure=True).load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{filename}{line}: not valid YAML: {exc.problem}") from None
    except YAMLError as exc:
        raise ConfigError(f"{filename}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{filename}: expected a mapping with environments and services",
            hint="see the example glue.yaml in the gitops-glue README",
        )
    try:
        return GlueConfig.model_validate(_plain(data))
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, data, filename)) from None


def _plain(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def _line_of(data: Any, loc: Sequence[int | str]) -> int | None:
    line: int | None = None
    node = data
    for part in loc:
        try:
            if isinstance(node, dict) and part in node:
                line = cast(Any, node).lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                line = cast(Any, node).lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (AttributeError, KeyError, TypeError):
            break
    if line is None and hasattr(data, "lc"):
        line = int(data.lc.line) + 1
    return line


def _describe_errors(exc: ValidationError, data: Any, filename: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        line = _line_of(data, loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        where = f"{filename}:{line}" if line else filename
        lines.append(f"{where}: {key or '(top level)'}: {msg}")
    return "\n".join(lines)


def load_config(directory: Path) -> LoadedConfig:
    from gitops_glue.files import read_text

    path = find_config(directory)
    config = parse_config(read_text(path), str(path))
    return LoadedConfig(config=config, root=path.parent, path=path)


def repo_template(directory: Path, name: TemplateName) -> Path | None:
    """The template the nearest glue.yaml names for ``name``; None without one.

    Reads only the ``templates`` key: commands that merely may use a template
    (``glue announce`` runs in source repositories, without a glue.yaml) do not
    build, or fail on, the whole model.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from gitops_glue.files import read_text

    try:
        path = find_config(directory)
    except ConfigError:
        return None
    text = read_text(path)
    check_limits(text, str(path))
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    section = data.get("templates") if isinstance(data, dict) else None
    chosen = section.get(name) if isinstance(section, dict) else None
    if chosen is not None and not isinstance(chosen, str):
        raise ConfigError(f"{path}: templates.{name}: use a path (a string)")
    return path.parent / chosen if chosen else None
