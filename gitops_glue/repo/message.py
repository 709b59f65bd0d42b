"""Commit messages: glue's own wording, or the team's template from ``glue.yaml``.

``git.commit_template`` is a Jinja2 template of the title line and an optional
body; ``git.skip_ci`` adds ``[skip ci]`` to the title. Whatever the template
says, glue appends its trailers (``Glue-Environment``, ``Glue-Service``,
``Glue-Tag``...) as the message's last paragraph: ``glue rollback`` and
``glue notify`` read those, never the wording.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from gitops_glue.config import GitSettings
from gitops_glue.errors import UsageError
from gitops_glue.integrations.ci import CiContext

SKIP_CI = "[skip ci]"


@dataclass(frozen=True)
class ServiceLine:
    """One service's move, as the template sees it (``services`` items)."""

    name: str
    old_tag: str | None
    new_tag: str
    old_revision: str | None = None
    new_revision: str | None = None


@dataclass(frozen=True)
class MessageParts:
    """Everything a commit message may say; ``title`` and ``body`` are glue's own wording."""

    action: str  # bump | promote | release
    environment: str
    title: str
    body: tuple[str, ...]
    services: tuple[ServiceLine, ...]
    trailers: tuple[tuple[str, str], ...]
    ci: CiContext = field(default_factory=CiContext)
    source_environment: str | None = None
    source_branch: str | None = None
    upstream_repo: str | None = None
    upstream_revision: str | None = None

    def context(self) -> dict[str, object]:
        """The template's variables."""
        return {
            "action": self.action,
            "environment": self.environment,
            "source_environment": self.source_environment or "",
            "source_branch": self.source_branch or "",
            "services": [
                {
                    "name": s.name,
                    "old_tag": s.old_tag or "",
                    "new_tag": s.new_tag,
                    "old_revision": s.old_revision or "",
                    "new_revision": s.new_revision or "",
                }
                for s in self.services
            ],
            "upstream_repo": self.upstream_repo or "",
            "upstream_revision": self.upstream_revision or "",
            "pipeline": self.ci.pipeline_url,
            "actor": self.ci.actor,
            "title": self.title,
        }


@dataclass(frozen=True)
class ServiceTrailer:
    """One service's trailer group: what it moved to, from what, and where it came from."""

    service: str
    tag: str
    previous: str | None
    revision: str | None = None  # the source revision (Upstream-Revision)
    extra: tuple[tuple[str, str], ...] = ()  # Glue-Digest, the proof of promotion


def version_trailers(
    env: str,
    moves: Sequence[ServiceTrailer],
    *,
    ci: CiContext,
    action: str | None = None,
    source_environment: str | None = None,
    source_branch: str | None = None,
    upstream_repo: str | None = None,
) -> tuple[tuple[str, str], ...]:
    """The trailers of every commit that moves versions (bump, release, promote): one
    group per service, and one ``Upstream-Revision`` for all when they share it.
    ``glue rollback``, ``glue notify`` and proof of promotion read these."""
    revisions = {m.revision for m in moves}
    shared = next(iter(revisions)) if len(revisions) == 1 else None
    out: list[tuple[str, str]] = [("Glue-Environment", env)]
    if action:
        out.append(("Glue-Action", action))
    if source_environment:
        out.append(("Glue-Source-Environment", source_environment))
    for m in moves:
        out += [("Glue-Service", m.service), ("Glue-Tag", m.tag)]
        out.append(("Glue-Previous-Tag", m.previous or ""))
        if len(revisions) > 1:
            out.append(("Upstream-Revision", m.revision or ""))
        out += m.extra
    out += [
        ("Glue-Source-Branch", source_branch or ""),
        ("Upstream-Repository", upstream_repo or ""),
        ("Upstream-Revision", shared or ""),
        ("Pipeline", ci.pipeline_url),
        ("Triggered-By", ci.actor),
    ]
    return tuple(out)


#: Most characters a rendered ``git.commit_template`` may produce (docs/config.md).
MAX_TEMPLATE_OUTPUT = 64 * 1024
#: Most characters of a whole commit message glue writes (title, body and trailers).
MAX_MESSAGE = 1024 * 1024
#: Most steps (template lines run, calls made) one rendering may take: a loop or a
#: recursion that would run for minutes stops with an error instead.
MAX_TEMPLATE_STEPS = 2_000_000
#: Largest number a template may hand to a function or filter (``range``, ``center``...),
#: and the largest string or list one operation may build.
_MAX_ARG = MAX_TEMPLATE_OUTPUT


class _TemplateLimit(Exception):
    """A rendering went past one of the limits above."""


def _too_big(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > _MAX_ARG
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return len(value) > _MAX_ARG
    return False


def _sandbox() -> Any:
    """Jinja2's immutable sandbox, with limits on what one operation may build."""
    import math

    import jinja2
    import jinja2.compiler
    import jinja2.nodes
    import jinja2.runtime
    import jinja2.sandbox

    class Generator(jinja2.compiler.CodeGenerator):
        def visit_Concat(self, node: Any, frame: Any) -> None:
            """``a ~ b`` through :meth:`Sandbox.glue_join`, which counts what it builds."""
            self.write("environment.glue_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%", "+", "//", "/"})
        code_generator_class = Generator

        def glue_join(self, parts: Sequence[object]) -> str:
            texts = [str(p) for p in parts]
            if sum(len(t) for t in texts) > _MAX_ARG:
                raise _TemplateLimit(f"joining text made more than {_MAX_ARG} characters")
            return "".join(texts)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            sized = (str, bytes, list, tuple)
            if operator == "*" and isinstance(left, int) and isinstance(right, sized):
                left, right = right, left
            if (
                operator == "*"
                and isinstance(left, sized)
                and isinstance(right, int)
                and len(left) * max(right, 0) > _MAX_ARG
            ):
                raise _TemplateLimit(
                    f"repeating a value {right} times makes more than {_MAX_ARG} items"
                )
            if operator == "**" and isinstance(left, (int, float)) and isinstance(right, int):
                size = abs(right) * math.log2(abs(left)) if abs(left) > 1 else 0
                if size > 64 * 1024:
                    raise _TemplateLimit(f"{left} ** {right} is too large a number")
            if operator == "%" and isinstance(left, str) and ("*" in left or _WIDE.search(left)):
                raise _TemplateLimit("a % format with a width or precision of over 5 digits")
            result = super().call_binop(context, operator, left, right)
            if _too_big(result) and not isinstance(result, int):
                raise _TemplateLimit(f"an operation made more than {_MAX_ARG} items")
            return result

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _check_args(args, kwargs)
            result = super().call(__context, __obj, *args, **kwargs)
            if _too_big(result) and not isinstance(result, int):
                raise _TemplateLimit(f"a call returned more than {_MAX_ARG} items")
            return result

    env = Sandbox(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    passed = (jinja2.runtime.Context, jinja2.nodes.EvalContext, jinja2.Environment)
    env.filters = {name: _limited(f, passed) for name, f in env.filters.items()}
    return env


_WIDE = re.compile(r"%[^a-zA-Z%]*\d{6}")


def _check_args(args: Sequence[object], kwargs: dict[str, object]) -> None:
    for arg in (*args, *kwargs.values()):
        if _too_big(arg) and isinstance(arg, int):
            raise _TemplateLimit(f"{arg} is larger than {_MAX_ARG}, the largest number allowed")


def _limited(func: Any, passed: tuple[type, ...]) -> Any:
    """``func`` (a filter) refusing huge numbers and results."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # The value filtered is not checked, nor the context or environment before it.
        plain = 0
        while plain < len(args) and isinstance(args[plain], passed):
            plain += 1
        _check_args(args[plain + 1 :], kwargs)
        result = func(*args, **kwargs)
        if _too_big(result) and not isinstance(result, int):
            raise _TemplateLimit(f"a filter returned more than {_MAX_ARG} items")
        return result

    return wrapper


@contextlib.contextmanager
def _step_budget(limit: int) -> Iterator[None]:
    """Count the lines a template runs and the calls it makes; stop past ``limit``."""
    steps = 0

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal steps
        if event == "line":
            steps += 1
            if steps > limit:
                raise _TemplateLimit(f"the template ran more than {limit:,} steps")
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal steps
        steps += 1
        if steps > limit:
            raise _TemplateLimit(f"the template ran more than {limit:,} steps")
        return local if frame.f_code.co_filename == "<template>" else None

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(before)


#: Most memory (bytes) a rendering may take on top of what glue uses already (Linux).
MAX_TEMPLATE_MEMORY = 512 * 1024 * 1024


@contextlib.contextmanager
def _memory_cap(extra: int) -> Iterator[None]:
    """Cap the address space at its size now plus ``extra`` (where the platform can):
    an allocation past it is a MemoryError, never an out-of-memory kill."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as f:
            used = int(f.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError, IndexError):
        yield
        return
    cap = used + extra
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def render_template(source: str, context: dict[str, object]) -> str:
    """Render ``git.commit_template``: in Jinja2's immutable sandbox, undefined names are
    errors, and so is a template that includes other files, or that would take too long
    or build too much (:data:`MAX_TEMPLATE_OUTPUT`, :data:`MAX_TEMPLATE_STEPS`).
    Every failure is one :class:`UsageError` naming the template."""
    import jinja2
    import jinja2.nodes

    where = "glue.yaml git.commit_template"
    env = _sandbox()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"{where}: line {exc.lineno}: {exc.message}") from None
    except (RecursionError, MemoryError):
        raise UsageError(f"{where}: too deeply nested to read") from None
    for kind, tag in (
        (jinja2.nodes.Include, "include"),
        (jinja2.nodes.Extends, "extends"),
        (jinja2.nodes.Import, "import"),
        (jinja2.nodes.FromImport, "from ... import"),
    ):
        node = tree.find(kind)
        if node is not None:
            raise UsageError(
                f"{where}: line {node.lineno}: {{% {tag} %}} is not supported",
                hint="the commit template is one template written in glue.yaml; "
                "it cannot read other templates",
            )
    out: list[str] = []
    size = 0
    try:
        template = env.from_string(tree)
        with _memory_cap(MAX_TEMPLATE_MEMORY), _step_budget(MAX_TEMPLATE_STEPS):
            for chunk in template.generate(**context):
                size += len(chunk)
                if size > MAX_TEMPLATE_OUTPUT:
                    raise _TemplateLimit(
                        f"the message would be longer than {MAX_TEMPLATE_OUTPUT:,} characters"
                    )
                out.append(chunk)
    except _TemplateLimit as exc:
        raise UsageError(f"{where}: {exc}", hint="see Limits in docs/config.md") from None
    except jinja2.UndefinedError as exc:
        raise UsageError(
            f"{where}: {exc.message}", hint=f"available: {', '.join(sorted(context))}"
        ) from None
    except jinja2.TemplateError as exc:
        raise UsageError(f"{where}: {exc}") from None
    except RecursionError:
        raise UsageError(f"{where}: the template calls itself too deeply") from None
    except Exception as exc:  # the template's own fault: 1/0, [].pop(), int('x')...
        raise UsageError(f"{where}: {type(exc).__name__}: {exc}") from None
    return "".join(out)


def _clean(text: str) -> list[str]:
    """Lines without trailing blanks, runs of empty lines squeezed, none at either end."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line and (not lines or not lines[-1]):
            continue
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


#: The markers that make a forge's CI skip a commit (GitHub: ``[skip ci]``, ``[ci skip]``,
#: ``[no ci]``, ``[skip actions]``, ``[actions skip]``; GitLab: ``[skip ci]``/``[ci skip]``
#: with ``-`` or ``_`` too; Azure Pipelines: ``***NO_CI***`` and ``[skip azp]``...), in
#: any case. A value that carries one in is neutralised (:func:`neutralise_skip_ci`).
_SKIP_MARKER = re.compile(
    r"\[\s*(?:(?:skip|no)[\s_-]*(?:ci|actions|azp|azpipelines|azurepipelines|travis|circle)"
    r"|(?:ci|actions|azp|azpipelines|azurepipelines|travis|circle)[\s_-]*skip)\s*\]"
    r"|\*\*\*\s*no[\s_-]*ci\s*\*\*\*",
    re.IGNORECASE,
)


def neutralise_skip_ci(text: str) -> str:
    """``text`` with every CI-skip marker defused: ``[skip ci]`` -> ``(skip ci)``,
    ``***NO_CI***`` -> ``(NO_CI)``. No forge reads those; a person still can."""

    def defuse(m: re.Match[str]) -> str:
        inner = m.group().strip("[]*").strip()
        return f"({inner})"

    return _SKIP_MARKER.sub(defuse, text)


def has_skip_ci(text: str) -> bool:
    return _SKIP_MARKER.search(text) is not None


def check_message(message: str) -> None:
    """The last word on every commit message glue writes: at most :data:`MAX_MESSAGE`
    characters, and no control character or line separator but the newlines (and tabs
    in the body) that make it: git reads lines at ``\n`` only, other tools at more."""
    from gitops_glue.inputs import describe_char, find_line_breaker

    if len(message) > MAX_MESSAGE:
        raise UsageError(
            f"the commit message would be {len(message):,} characters, more than the limit "
            f"of {MAX_MESSAGE:,}",
            hint="see Limits in docs/config.md",
        )
    for number, line in enumerate(message.split("\n"), 1):
        bad = find_line_breaker(line.replace("\t", " "))
        if bad:
            raise UsageError(
                f"the commit message would hold the control character "
                f"{describe_char(bad.group())} on line {number}: {line[:60]!r}",
                hint="remove newlines, line separators and other control characters from "
                "the values and the template (git.commit_template) that make the message",
            )


def compose(git: GitSettings, parts: MessageParts) -> str:
    """The full commit message: title, body, then glue's trailers (always).

    Without ``git.skip_ci``, a CI-skip marker in a value (a revision, a URL, a name) is
    neutralised, so a value can never stop the deployment repository's CI; the
    template's own text stays as written."""
    if not git.skip_ci:
        parts = _defused(parts)
    if git.commit_template is None:
        head = [parts.title, "", *parts.body]
    else:
        head = _clean(render_template(git.commit_template, parts.context()))
        if not head:
            raise UsageError(
                "glue.yaml git.commit_template rendered an empty message",
                hint="the template's first line is the commit title",
            )
        for line in head:
            bad = _TEMPLATE_BAD.search(line)
            if bad:
                raise UsageError(
                    "glue.yaml git.commit_template rendered a control character "
                    f"{bad.group()!r} (U+{ord(bad.group()):04X})",
                    hint="a commit message is lines of text: remove it from the template",
                )
        for line in head:
            if _DIVIDER.match(line):
                raise UsageError(
                    f"glue.yaml git.commit_template rendered the line {line[:40]!r}: git "
                    "reads a line starting with --- or the # --- >8 --- line as the end "
                    "of the message, and would not see glue's trailers",
                    hint="write the line another way (like ___ or ***)",
                )
    if git.skip_ci and SKIP_CI not in "\n".join(head):
        head[0] = f"{head[0]} {SKIP_CI}"
    lines = _clean("\n".join(head))
    lines += ["", *trailer_lines(parts.trailers)]
    message = "\n".join(lines) + "\n"
    check_message(message)
    return message


#: What a rendered template may not hold: controls (tab aside) and line separators.
_TEMPLATE_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
#: Lines git reads as the end of a message (``git interpret-trailers``' divider, and
#: ``git commit``'s scissors line).
_DIVIDER = re.compile(r"---[ \t\r]|---$|# -{24} >8 -{24}")


def _defused(parts: MessageParts) -> MessageParts:
    """``parts`` with a CI-skip marker in any value neutralised."""
    import dataclasses

    d = neutralise_skip_ci

    def opt(value: str | None) -> str | None:
        return None if value is None else d(value)

    return dataclasses.replace(
        parts,
        title=d(parts.title),
        body=tuple(d(b) for b in parts.body),
        services=tuple(
            ServiceLine(
                d(s.name), opt(s.old_tag), d(s.new_tag), opt(s.old_revision), opt(s.new_revision)
            )
            for s in parts.services
        ),
        trailers=tuple((k, d(v)) for k, v in parts.trailers),
        ci=dataclasses.replace(
            parts.ci, pipeline_url=d(parts.ci.pipeline_url), actor=d(parts.ci.actor)
        ),
        source_environment=opt(parts.source_environment),
        source_branch=opt(parts.source_branch),
        upstream_repo=opt(parts.upstream_repo),
        upstream_revision=opt(parts.upstream_revision),
    )


def trailer_lines(trailers: Sequence[tuple[str, str]]) -> list[str]:
    """``Key: value`` lines, one per trailer with a value. A value that would not read back
    the same in git (a control character or line separator; blanks at its ends, which git
    drops) is refused: rollback and notify trust only trailers that read back exactly."""
    from gitops_glue.inputs import check_line

    out = []
    for key, given in trailers:
        value = given.strip(" ")
        if not value:
            continue
        check_line(f"the {key} trailer", value, limit=MAX_MESSAGE)
        out.append(f"{key}: {value}")
    return out


def with_skip_ci(git: GitSettings, message: str) -> str:
    """``message`` (glue's own wording, for rollback, hold and reject) with ``[skip ci]``
    on its title when ``git.skip_ci`` asks; else with any CI-skip marker that a value
    carried in neutralised."""
    if not git.skip_ci:
        message = neutralise_skip_ci(message)
        check_message(message)
        return message
    if SKIP_CI not in message:
        title, sep, rest = message.partition("\n")
        message = f"{title} {SKIP_CI}{sep}{rest}"
    check_message(message)
    return message
