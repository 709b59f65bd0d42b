"""Commit messages: glue's own wording, or the team's template from ``glue.yaml``.

``git.commit_template`` is a Jinja2 template of the title line and an optional
body; ``git.skip_ci`` adds ``[skip ci]`` to the title. Whatever the template
says, glue appends its trailers (``Glue-Environment``, ``Glue-Service``,
``Glue-Tag``...) as the message's last paragraph: ``glue rollback`` and
``glue notify`` read those, never the wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


def render_template(source: str, context: dict[str, object]) -> str:
    """Render ``git.commit_template`` (sandboxed, undefined names are errors)."""
    import jinja2
    import jinja2.sandbox

    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    where = "glue.yaml git.commit_template"
    try:
        return env.from_string(source).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"{where}: line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise UsageError(
            f"{where}: {exc.message}", hint=f"available: {', '.join(sorted(context))}"
        ) from None
    except jinja2.TemplateError as exc:
        raise UsageError(f"{where}: {exc}") from None


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


def compose(git: GitSettings, parts: MessageParts) -> str:
    """The full commit message: title, body, then glue's trailers (always)."""
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
            if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in line):
                raise UsageError("glue.yaml git.commit_template rendered a control character")
    if git.skip_ci and SKIP_CI not in "\n".join(head):
        head[0] = f"{head[0]} {SKIP_CI}"
    lines = _clean("\n".join(head))
    lines += ["", *trailer_lines(parts.trailers)]
    return "\n".join(lines) + "\n"


def trailer_lines(trailers: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{k}: {v}" for k, v in trailers if v]


def with_skip_ci(git: GitSettings, message: str) -> str:
    """``message`` with ``[skip ci]`` on its title when ``git.skip_ci`` asks (rollback)."""
    if not git.skip_ci or SKIP_CI in message:
        return message
    title, sep, rest = message.partition("\n")
    return f"{title} {SKIP_CI}{sep}{rest}"
