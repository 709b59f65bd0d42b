"""Message templates: Jinja2 files shipped with glue, overridable per repository.

Every value substituted into a template is escaped for Slack's mrkdwn
(``&``, ``<``, ``>``) unless it was built with :func:`link` or marked safe, so
a commit message cannot inject mentions or links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_glue.errors import UsageError

SHIPPED = Path(__file__).parent / "templates"


class Mrkdwn(str):
    """Text that is already valid mrkdwn: not escaped again."""

    __slots__ = ()


def _finalize(value: Any) -> Any:
    from gitops_glue.messages.slack import escape

    if value is None:
        return ""
    if isinstance(value, Mrkdwn):
        return value
    return escape(str(value))


def _link(url: str | None, label: str) -> Mrkdwn:
    from gitops_glue.messages.slack import link

    return Mrkdwn(link(url or "", str(label)))


def _code(text: str | None) -> Mrkdwn:
    from gitops_glue.messages.slack import escape

    return Mrkdwn(f"`{escape(str(text or ''))}`")


def render(name: str, context: dict[str, Any], override: Path | None = None) -> str:
    """Render the shipped template ``name`` (or ``override``) with ``context``."""
    import jinja2

    path = override if override is not None else SHIPPED / name
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"template {path}: cannot read it ({exc.strerror})") from None
    env = jinja2.Environment(  # noqa: S701 - Slack mrkdwn, escaped by _finalize
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["link"] = lambda label, url: _link(url, label)
    env.filters["code"] = _code
    env.filters["short"] = lambda sha, n=7: (sha or "")[:n]
    try:
        return env.from_string(source).render(**context).strip()
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"template {path}:{exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise UsageError(
            f"template {path}: {exc.message}", hint=f"available: {', '.join(sorted(context))}"
        ) from None
