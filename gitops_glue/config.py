"""``glue.yaml``: the one validated description of a deployment repository.

Loaded once per command. Validation errors name the file, the line and the
key, for example ``glue.yaml:14: environments[1].tag_policy.allow: ...``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import msgspec
from msgspec import UNSET, UnsetType, field

from gitops_glue import inputs, keypath
from gitops_glue.errors import ConfigError, UsageError
from gitops_glue.files import CONFIG_NAME, find_config
from gitops_glue.naming import default_namespace, short_ref

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitops_glue.freeze import Window


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


class _Invalid(ValueError):
    """A field's value is refused; ``field`` names it (msgspec reports only the struct)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class _Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Structure, types, unknown and missing keys: msgspec (it comes with lightkube, and
    validates without building a schema at import); value rules: ``__post_init__``.
    Subclasses repeat ``frozen`` and ``kw_only`` for type checkers (msgspec inherits them)."""


class Author(_Model, frozen=True, kw_only=True):
    """The identity of glue's commits. git writes it as ``name <email>`` on one header
    line: a newline, ``<`` or ``>`` (or any control character) would break the commit
    (``git fsck``: missingEmail, badName), so they are refused at load."""

    name: str = "glue-bot"
    email: str = "glue-bot@localhost"

    def __post_init__(self) -> None:
        for field_name in ("name", "email"):
            value = getattr(self, field_name)
            bad = _AUTHOR_BAD.search(value)
            if bad:
                raise _Invalid(
                    field_name,
                    f"{value[:60]!r} holds {inputs.describe_char(bad.group())}: git writes "
                    "the author as 'name <email>' on one line; use no <, >, newlines or "
                    "other control characters",
                )
            if not value.strip():
                raise _Invalid(field_name, "must not be empty")
            if len(value) > inputs.MAX_LINE_VALUE:
                raise _Invalid(field_name, f"longer than {inputs.MAX_LINE_VALUE} characters")


_AUTHOR_BAD = re.compile(f"[<>{inputs.LINE_BREAKERS}]")


class GitSettings(_Model, frozen=True, kw_only=True):
    #: The deployment repository's branch that bumps are committed to.
    branch: str = "main"
    #: The bot identity of commits glue makes.
    author: Author = field(default_factory=Author)
    #: Jinja2 template of the commit message's title (first line) and body; glue's
    #: ``Glue-*`` trailers are always appended. See docs/config.md for the variables.
    commit_template: str | None = None
    #: Add ``[skip ci]`` to the title of every commit glue makes (unless the template has it).
    skip_ci: bool = False
    #: Sign every commit glue makes: ``ssh`` or ``gpg`` (None: unsigned).
    sign: Literal["ssh", "gpg"] | None = None
    #: ssh: the private key file (default: ``GLUE_SIGNING_KEY``'s text, else the deploy
    #: key); gpg: the key id or fingerprint, in the keyring of ``GNUPGHOME``.
    signing_key: str | None = None

    def __post_init__(self) -> None:
        if self.signing_key is not None and self.sign is None:
            raise _Invalid("signing_key", "set git.sign (ssh or gpg) too, or remove it")
        if self.sign == "gpg" and not self.signing_key:
            raise _Invalid("sign", "gpg needs git.signing_key too (the key id)")
        key = self.signing_key
        if key is not None:
            bad = inputs.find_line_breaker(key)
            if bad or not key.strip() or key.startswith("-"):
                what = f"holds {inputs.describe_char(bad.group())}" if bad else "is not usable"
                raise _Invalid(
                    "signing_key", f"{key[:60]!r} {what}: give a file path (ssh) or a key id (gpg)"
                )


class TagPolicy(_Model, frozen=True, kw_only=True):
    #: A regular expression the whole tag must match (``None``: any valid tag).
    allow: str | None = None
    #: Tags that move (``latest``...). Refused unless ``allow_mutable``.
    mutable_tags: list[str] = field(default_factory=lambda: list(DEFAULT_MUTABLE_TAGS))
    allow_mutable: bool = False

    def __post_init__(self) -> None:
        _check_allow(self.allow)


class PolicyOverride(_Model, frozen=True, kw_only=True):
    """An environment's ``tag_policy``: the keys it sets replace the global policy's."""

    allow: str | UnsetType | None = UNSET
    mutable_tags: list[str] | UnsetType = UNSET
    allow_mutable: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        if not isinstance(self.allow, UnsetType):
            _check_allow(self.allow)

    def merged_over(self, base: TagPolicy) -> TagPolicy:
        """This override's keys on top of ``base``."""
        return msgspec.structs.replace(
            base,
            **{
                name: value
                for name in self.__struct_fields__
                if not isinstance(value := getattr(self, name), UnsetType)
            },
        )


def _check_allow(value: str | None) -> None:
    if value is not None:
        _pattern("allow", value)


def _pattern(field_name: str, value: str) -> re.Pattern[str]:
    """``value`` compiled; refused when it is no regular expression or can take
    exponential time to match."""
    try:
        pattern = re.compile(value)
        inputs.check_regex_cost(value)
    except re.error as exc:
        raise _Invalid(field_name, f"not a valid regular expression: {exc}") from None
    except ValueError as exc:
        raise _Invalid(field_name, str(exc)) from None
    return pattern


class FreezeWindow(_Model, frozen=True, kw_only=True):
    """A window in which the environment takes no new versions (``freeze``): weekly
    (``every``) or a fixed range (``from``, ``to``), wall-clock times in ``timezone``.
    See :mod:`gitops_glue.freeze`."""

    #: ``friday 18:00 - monday 06:00``: every week, crossing midnight and the week end.
    every: str | None = None
    #: ``2026-12-23T00:00`` (or a date: midnight): the start of a fixed range.
    start: str | None = field(default=None, name="from")
    #: The end of a fixed range (excluded).
    end: str | None = field(default=None, name="to")
    #: An IANA time zone name (``Europe/Berlin``).
    timezone: str = "UTC"
    #: Why: said when a command is refused, and in ``glue status``.
    reason: str

    def __post_init__(self) -> None:
        from gitops_glue.freeze import WindowError

        if not self.reason.strip():
            raise _Invalid("reason", "must not be empty: say why, for the people refused")
        if inputs.find_line_breaker(self.reason) or len(self.reason) > inputs.MAX_LINE_VALUE:
            raise _Invalid(
                "reason",
                f"one line of at most {inputs.MAX_LINE_VALUE} characters without control "
                "characters: it goes into messages and commits",
            )
        try:
            self.window()
        except WindowError as exc:
            raise _Invalid(exc.key, str(exc)) from None

    def window(self) -> Window:
        """The parsed window."""
        from gitops_glue.freeze import Window

        return Window.of(
            every=self.every,
            start=self.start,
            end=self.end,
            timezone=self.timezone,
            reason=self.reason.strip(),
        )


class Environment(_Model, frozen=True, kw_only=True):
    name: str
    #: The environment's values files (helmfile's ``environments.ENV.values``), in
    #: helmfile's order: where services without ``values`` of their own keep their tags.
    values: list[str] = field(default_factory=list)
    tag_policy: PolicyOverride | None = None
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
    #: ``glue apply`` watches the pods of the releases it changed this long after
    #: helmfile succeeds, and fails at the first crash (``--verify``; ``0`` turns it off).
    verify: str | None = None
    #: When ``verify`` finds the deploy failing: ``stop`` (exit 1) or ``rollback``: revert
    #: the failed services' commits with a hold, push, deploy and verify that version.
    on_failure: Literal["stop", "rollback"] | None = None
    #: How glue's commits reach this environment: ``push`` to the branch, or
    #: ``merge-request``: a branch and a merge request to review (``--via``); ``glue
    #: apply`` then deploys only what a review rendered.
    via: Literal["push", "merge-request"] = "push"
    #: Freeze windows: bump-tag, promote, release and apply refuse in them (exit 2)
    #: unless ``--override-freeze``; rollback goes ahead.
    freeze: list[FreezeWindow] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _ENV_NAME.fullmatch(self.name):
            raise _Invalid("name", "use lower-case letters, digits and dashes (like prod-eu)")
        for item in self.values:
            _check_path("values", item)
        for name in ("min_age", "verify"):
            _check_duration(name, getattr(self, name))

    @property
    def verify_seconds(self) -> float | None:
        """``verify`` in seconds; None when it is not set (or set to 0)."""
        from gitops_glue.durations import parse_duration

        return (parse_duration(self.verify) or None) if self.verify is not None else None

    @property
    def record_namespace(self) -> str:
        return self.namespace or default_namespace(self.name)


def _check_duration(field_name: str, value: str | None) -> None:
    if value is None:
        return
    from gitops_glue.durations import parse_duration

    try:
        parse_duration(value)
    except UsageError as exc:
        raise _Invalid(field_name, f"{exc.message}; use forms like 90s, 30m or 1h") from None


#: What a service's ``values`` patterns may name.
PLACEHOLDERS = ("env", "service", "release")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _check_path(field_name: str, item: str) -> None:
    """A values file is a normalised path inside the repository (git names it so)."""
    parts = item.split("/")
    if item.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in item:
        raise _Invalid(
            field_name,
            f"{item!r}: values files are paths inside the repository, written like "
            "config/dev/values.yaml (no ./, .., // or absolute paths)",
        )
    if any(c in item for c in "*?["):
        raise _Invalid(
            field_name, f"{item!r}: list the files a glob matches (glue init expands globs)"
        )


class Service(_Model, frozen=True, kw_only=True):
    #: Key path of the image tag inside the values files, e.g. ``a.image.tag``.
    tag_key: str
    #: The release's own values files (helmfile's ``releases[].values``), in helmfile's
    #: order, with ``{env}``, ``{service}`` and ``{release}`` filled in: the tag is read
    #: from these instead of the environment's values files. None: the environment's.
    values: list[str] | None = None
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

    def __post_init__(self) -> None:
        for name in ("tag_key", "revision_key", "digest_key"):
            value = getattr(self, name)
            if value is not None:
                try:
                    keypath.parse(value)
                except UsageError as exc:
                    raise _Invalid(name, exc.message) from None
        if self.source_repo is not None:
            if not re.fullmatch(r"https?://[^/\s]+/\S+", self.source_repo):
                raise _Invalid(
                    "source_repo", "use the repository's web URL, like https://github.com/org/repo"
                )
            msgspec.structs.force_setattr(self, "source_repo", self.source_repo.rstrip("/"))
        _check_scheme(self.branch_tags)
        for item in self.values or ():
            _check_path("values", item)
            for name in _PLACEHOLDER.findall(item):
                if name not in PLACEHOLDERS:
                    raise _Invalid(
                        "values",
                        f"{item!r}: unknown placeholder {{{name}}} (use "
                        + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                        + ")",
                    )

    def release_name(self, service: str) -> str:
        return self.release or service


def _check_scheme(value: str) -> None:
    if "{branch}" not in value:
        raise _Invalid("branch_tags", "the scheme must contain {branch}")
    pattern = _pattern("branch_tags", value.replace("{branch}", "x"))
    if "order" not in pattern.groupindex:
        raise _Invalid(
            "branch_tags", "the scheme needs a named group (?P<order>...) to sort builds"
        )


class Templates(_Model, frozen=True, kw_only=True):
    """Repository overrides of glue's message templates (paths from the repo root).

    A template is a file inside the repository (the folder of glue.yaml), also after
    symlinks are resolved, and outside ``.git``: a glue.yaml edit cannot make glue
    send ``/proc/self/environ``, ``/etc/...`` or ``.git/config`` to Slack.
    """

    announce: str | None = None
    notify: str | None = None

    def __post_init__(self) -> None:
        for name in ("announce", "notify"):
            problem = Templates.path_problem(getattr(self, name))
            if problem:
                raise _Invalid(name, problem)

    @staticmethod
    def path_problem(chosen: str | None) -> str | None:
        """What is wrong with ``chosen`` as a template path, read as written."""
        if not chosen:
            return None
        if "\0" in chosen:
            return "a path cannot hold a NUL character"
        parts = chosen.replace("\\", "/").split("/")
        if chosen.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", chosen):
            return f"{chosen!r} is absolute: use a path from the repository root"
        if ".." in parts:
            return f"{chosen!r} leads out of the repository: use a path inside it"
        if any(part.lower() == ".git" for part in parts):
            return f"{chosen!r} is inside .git: use a file of the repository"
        return None

    @staticmethod
    def file(root: Path, name: TemplateName, chosen: str | None, config: Path) -> Path | None:
        """The file glue.yaml's ``templates.<name>`` names below ``root`` (None: glue's
        own). Where it leads, symlinks resolved, must be inside ``root`` and outside
        ``.git``, or it is a ConfigError; a missing file is left to the reader."""
        if not chosen:
            return None
        key = f"{config}: templates.{name}"
        hint = f"name a template file inside {root}, as a path from there"
        problem = Templates.path_problem(chosen)
        if problem:
            raise ConfigError(f"{key}: {problem}", hint=hint)
        base = root.resolve()
        try:
            target = (base / chosen).resolve()
        except (OSError, RuntimeError):  # a symlink loop
            raise ConfigError(f"{key}: {chosen!r} is a symlink loop", hint=hint) from None
        if not target.is_relative_to(base):
            raise ConfigError(
                f"{key}: {chosen!r} leads out of the repository (a symlink to {target})",
                hint=hint,
            )
        if any(part.lower() == ".git" for part in target.relative_to(base).parts):
            raise ConfigError(f"{key}: {chosen!r} leads into .git", hint=hint)
        if target.exists() and not target.is_file():
            raise ConfigError(f"{key}: {chosen!r} is not a regular file", hint=hint)
        return root / chosen


class NotifySettings(_Model, frozen=True, kw_only=True):
    """``glue notify`` defaults for this repository."""

    #: Send nothing when a deployment changes no service's tag or revision.
    quiet_when_unchanged: bool = False
    #: With a bot token, finish messages ``reply`` in the start message's thread
    #: or ``update`` the start message in place.
    thread: Literal["reply", "update"] = "reply"


class MergeRequestSettings(_Model, frozen=True, kw_only=True):
    """Where merge requests are opened and how they look (``via: merge-request``)."""

    #: ``github``, ``gitlab`` or ``gitea`` (Forgejo too); default: from the CI system
    #: or the remote's host (github.com, gitlab.com).
    forge: Literal["github", "gitlab", "gitea"] | None = None
    #: The forge's API root, e.g. ``https://gitea.example/api/v1``; default: from CI
    #: (``GITHUB_API_URL``, ``CI_API_V4_URL``) or the remote's host.
    api_url: str | None = None
    #: ``owner/name`` (GitLab: the project path); default: the remote URL's path.
    project: str | None = None
    #: Labels every merge request of glue's carries.
    labels: list[str] = field(default_factory=lambda: ["glue"])
    #: ``glue review`` asks the forge to merge glue's own requests once it has posted
    #: the rendering, when the request's checks pass (squashed, with glue's commit
    #: message and the reviewed plan's trailers).
    auto_merge: bool = False
    #: The forge account the review job comments as (``github-actions[bot]``, a GitLab
    #: project bot's username): ``glue apply`` then trusts only its review comments, so
    #: a comment someone else wrote cannot pass for the review. None: any comment with
    #: glue's marker.
    review_author: str | None = None


class AutoRelease(_Model, frozen=True, kw_only=True):
    """New tags built from ``branch`` go to environment ``to`` without a person."""

    #: Source branch name; shell-style wildcards allowed (``release/*``).
    branch: str
    to: str


class ServiceDefaults(_Model, frozen=True, kw_only=True):
    """What every service has unless it says otherwise (``service_defaults``)."""

    tag_key: str | None = None
    revision_key: str | None = None
    digest_key: str | None = None
    values: list[str] | None = None


class GlueConfig(_Model, frozen=True, kw_only=True):
    version: Literal[1] = 1
    #: Keys every service takes unless it sets its own (one layout, many services).
    service_defaults: ServiceDefaults = field(default_factory=ServiceDefaults)
    git: GitSettings = field(default_factory=GitSettings)
    templates: Templates = field(default_factory=Templates)
    notify: NotifySettings = field(default_factory=NotifySettings)
    merge_requests: MergeRequestSettings = field(default_factory=MergeRequestSettings)
    tag_policy: TagPolicy = field(default_factory=TagPolicy)
    #: In promotion order: the first is where new versions land first.
    environments: list[Environment]
    services: dict[str, Service]
    #: Which source branches' new tags are bumped automatically, and where to.
    auto_release: list[AutoRelease] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.environments:
            raise _Invalid("environments", "list at least one environment")
        names = [e.name for e in self.environments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _Invalid("environments", f"{', '.join(dupes)} listed more than once")
        if not self.services:
            raise _Invalid("services", "describe at least one service")
        for name in self.services:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise _Invalid("services", f"{name!r} is not a valid service name")
            if self.services[name].digest_key and not self.services[name].image:
                raise _Invalid(
                    "services",
                    f"{name!r} has a digest_key but no image (REGISTRY/NAME) to ask for the digest",
                )
        from_env = [n for n, s in self.services.items() if s.values is None]
        for env in self.environments:
            if from_env and not env.values:
                raise _Invalid(
                    "environments",
                    f"{env.name!r} lists no values files, but service {from_env[0]!r} keeps "
                    "its tag there (give the environment its values, or the service values "
                    "of its own)",
                )
        for rule in self.auto_release:
            if rule.to not in names:
                raise _Invalid(
                    "auto_release",
                    f"environment {rule.to!r} is not in environments ({', '.join(names)})",
                )

    def auto_release_allows(self, branch: str, env: str) -> bool:
        """Whether a new tag of source ``branch`` goes to ``env`` automatically.

        ``refs/heads/main`` (Azure's Build.SourceBranch, GitHub's GITHUB_REF) is ``main``.
        """
        import fnmatch

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


@dataclass(frozen=True)
class LoadedConfig:
    """A config together with where it came from."""

    config: GlueConfig
    root: Path  # the deployment repository root (folder of glue.yaml)
    path: Path

    def template(self, name: TemplateName) -> Path | None:
        """The message template glue.yaml names for ``name`` (None: glue's own)."""
        chosen = getattr(self.config.templates, name)
        return Templates.file(self.root, name, chosen, self.path)


def check_limits(text: str, filename: str) -> None:
    """Size, depth, alias bombs and duplicate keys (docs/config.md, Limits): refused
    before anything is built. Syntax errors are left to the loader's own message."""
    from gitops_glue.errors import YamlEditError
    from gitops_glue.yamlnodes import parse_documents

    try:
        parse_documents(text, filename)
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
    except ValueError as exc:  # a date YAML cannot build, like 2026-12-32
        raise ConfigError(
            f"{filename}: not valid YAML: {exc}",
            hint="check the dates (YYYY-MM-DD); quote a value that is no date",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{filename}: expected a mapping with environments and services",
            hint="see the example glue.yaml in the gitops-glue README",
        )
    try:
        return _build(_plain(data))
    except _Refused as exc:
        lines = []
        for loc, message in exc.problems:
            number = _line_of(data, loc)
            key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            where = f"{filename}:{number}" if number else filename
            lines.append(f"{where}: {key or '(top level)'}: {message}")
        raise ConfigError("\n".join(lines)) from None


_Loc = list[int | str]


class _Refused(Exception):
    """What is wrong, and where: keys and list positions from the top."""

    def __init__(self, problems: list[tuple[_Loc, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


_T = TypeVar("_T")
_AT = re.compile(r"(?P<msg>.*) - at `\$(?P<path>[^`]*)`", re.S)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_UNKNOWN = re.compile(r"Object contains unknown field `(.+)`")
_MISSING = re.compile(r"Object missing required field `(.+)`")
_UNKNOWN_KEY = "unknown key (check the spelling)"


def _build(data: Any) -> GlueConfig:
    """The model of plain ``data``. Services are converted one by one, so that an error
    names the service (msgspec's paths leave mapping keys out)."""
    environments = data.get("environments")
    if isinstance(environments, list):  # ``values: one.yaml`` is a list of one
        data = {
            **data,
            "environments": [
                {**e, "values": [e["values"]]}
                if isinstance(e, dict) and isinstance(e.get("values"), str)
                else e
                for e in environments
            ],
        }
    services = data.get("services")
    if isinstance(services, dict):
        built: dict[str, Service] = {}
        problems: list[tuple[_Loc, str]] = []
        defaults = _convert(
            data.get("service_defaults") or {}, ServiceDefaults, ["service_defaults"]
        )
        inherited = msgspec.structs.asdict(defaults)
        for name, given in services.items():
            raw = given
            if given is None or isinstance(given, dict):  # ``svc:`` alone takes every default
                raw = {k: v for k, v in inherited.items() if v is not None} | (given or {})
            try:
                built[name] = _convert(raw, Service, ["services", name])
            except _Refused as exc:
                problems += exc.problems
        if problems:
            raise _Refused(problems)
        data = {**data, "services": built}
    return _convert(data, GlueConfig, [])


def _convert(data: Any, kind: type[_T], prefix: _Loc) -> _T:
    """``data`` as ``kind``. msgspec stops at the first problem; an unknown key (a typo)
    is dropped and the rest checked again, so that a misspelt required key is reported
    both as unknown and as missing."""
    problems: list[tuple[_Loc, str]] = []
    while True:
        try:
            result = msgspec.convert(data, kind)
        except msgspec.ValidationError as exc:
            loc, message = _problem(exc, kind)
            problems.append(([*prefix, *loc], message))
            if message != _UNKNOWN_KEY or len(problems) >= 10:
                raise _Refused(problems) from None
            data = _without(data, loc)
            continue
        if problems:
            raise _Refused(problems)
        return result


def _without(data: Any, loc: _Loc) -> Any:
    """A copy of ``data`` without the key at ``loc``."""
    head, *rest = loc
    if not rest:
        return {k: v for k, v in data.items() if k != head}
    copy = list(data) if isinstance(data, list) else dict(data)
    copy[head] = _without(data[head], rest)  # type: ignore[index]
    return copy


def _problem(exc: msgspec.ValidationError, kind: Any) -> tuple[_Loc, str]:
    found = _AT.fullmatch(str(exc))
    message, path = (found["msg"], found["path"]) if found else (str(exc), "")
    loc: _Loc = [key if key else int(index) for key, index in _STEP.findall(path)]
    if isinstance(exc.__cause__, _Invalid):
        return [*loc, exc.__cause__.field], str(exc.__cause__)
    if unknown := _UNKNOWN.fullmatch(message):
        return [*loc, unknown[1]], _UNKNOWN_KEY
    if missing := _MISSING.fullmatch(message):
        return [*loc, missing[1]], "required key is missing"
    if message.startswith("Invalid enum value"):
        return loc, f"use one of {', '.join(map(repr, _choices(kind, loc)))}"
    # "Expected `str`, got `int`", in YAML's words
    message = _TYPES.sub(
        lambda m: " or ".join(_YAML_NAMES.get(t, t) for t in m[1].split(" | ")), message
    )
    return loc, message[:1].lower() + message[1:]


_YAML_NAMES = {"object": "a mapping", "array": "a list", "str": "a string", "int": "an integer",
               "float": "a number", "bool": "true or false", "null": "null"}  # fmt: skip
_TYPES = re.compile(r"`([a-z |]+)`")


def _choices(kind: Any, loc: Sequence[int | str]) -> tuple[Any, ...]:
    """The values a ``Literal`` field at ``loc`` (below ``kind``) allows."""
    import msgspec.inspect as mi

    info: Any = mi.type_info(kind)
    for step in loc:
        if isinstance(info, mi.StructType):
            info = next(f.type for f in info.fields if f.name == step)
        elif isinstance(info, (mi.ListType, mi.DictType)):
            info = info.item_type if isinstance(info, mi.ListType) else info.value_type
    if isinstance(info, mi.UnionType):  # ``Literal[...] | None``
        info = next((t for t in info.types if isinstance(t, mi.LiteralType)), info)
    return tuple(info.values) if isinstance(info, mi.LiteralType) else ()


def _plain(data: Any) -> Any:
    if isinstance(data, dt.date):  # an unquoted date or timestamp: the text as written
        return data.isoformat()
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
    return Templates.file(path.parent, name, chosen, path)
