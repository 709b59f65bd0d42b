"""The deployment message: title, body (a Jinja2 template) and Slack blocks.

A :class:`Notice` is everything a message is built from: the phase, the
:class:`~gitops_glue.messages.changes.ChangeSet`, who deployed and from which
pipeline, and for a failed deployment why. :func:`build_message` turns it into a
Slack message; start messages are full, the others short.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_glue.messages import slack, templates
from gitops_glue.messages.changes import ChangeSet
from gitops_glue.messages.phase import Kind, Phase

#: How many changed services a short message names before "and N more".
SHORT_LIST = 5
#: How many unchanged services the collapsed line names before "and N more".
UNCHANGED_LIST = 20


@dataclass(frozen=True)
class Notice:
    """Everything a message is built from."""

    phase: Phase
    changes: ChangeSet
    actor: str = ""
    pipeline_url: str = ""
    full: bool | None = None  # None: full for start messages, short for the others
    failure: tuple[str, ...] = ()  # failing pods and the error, for failed messages

    @property
    def kind(self) -> Kind:
        return self.phase.kind

    @property
    def is_full(self) -> bool:
        return self.kind == "start" if self.full is None else self.full

    def title(self) -> str:
        env = self.changes.environment
        kind = self.kind
        if kind == "start":
            return (
                f"First deployment to {env}"
                if self.changes.first_deployment
                else f"Deploying to {env}"
            )
        if kind == "finish":
            return f"Deployed to {env}"
        if kind == "failed":
            return f"Deployment to {env} failed"
        return f"Rolled back {env}"

    def emoji(self) -> str:
        return {"start": "🚀", "finish": "✅", "failed": "❌", "rollback": "↩️"}[self.kind]

    def template_context(self) -> dict[str, Any]:
        c = self.changes
        return {
            "phase": self.phase.value,
            "kind": self.kind,
            "full": self.is_full,
            "title": self.title(),
            "emoji": self.emoji(),
            "environment": c.environment,
            "first_deployment": c.first_deployment,
            "has_changes": c.has_changes,
            "changed": [s.template_vars() for s in c.changed],
            "unchanged": [s.template_vars() for s in c.unchanged],
            "actor": self.actor,
            "pipeline_url": self.pipeline_url,
            "short_list": SHORT_LIST,
            "unchanged_list": UNCHANGED_LIST,
        }


def _unchanged_phrase(kind: str) -> str:
    """What a message says when no service's version moved. A failure is not "nothing
    changed": its cause was something else (a chart, values, the cluster)."""
    if kind == "failed":
        return "no service's version changed"
    return "nothing changes" if kind == "start" else "nothing changed"


def fallback_text(n: Notice) -> str:
    c = n.changes
    if not c.has_changes:
        return f"{n.title()}: {_unchanged_phrase(n.kind)}"
    shown = [s.summary() for s in c.changed[:SHORT_LIST]]
    more = len(c.changed) - len(shown)
    return f"{n.title()}: {', '.join(shown)}" + (f" and {more} more" if more else "")


def _sections(body: str) -> list[slack.Block]:
    """The body as section blocks: paragraphs packed into Slack's 3,000 characters."""
    blocks: list[slack.Block] = []
    chunk: list[str] = []
    size = 0
    for line in body.splitlines():
        if chunk and size + len(line) + 1 > slack.MAX_SECTION:
            blocks.append(slack.section("\n".join(chunk).strip("\n")))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if "\n".join(chunk).strip():
        blocks.append(slack.section("\n".join(chunk).strip("\n")))
    return blocks


def build_message(n: Notice, template: Path | None = None) -> slack.Message:
    """The Slack message; the body is the ``notify.md.j2`` template (or ``template``)."""
    body = templates.render("notify.md.j2", n.template_context(), template)
    text = fallback_text(n)
    if n.failure:
        lines = "\n".join(f"• {slack.escape(line)}" for line in n.failure[:20])
        body = f"{body}\n*Why:*\n{lines}"
    if not n.changes.has_changes or not n.is_full:
        # One line ("nothing changed") or a short confirmation: no header, no context.
        return slack.Message(text, _sections(body))
    trail = []
    if n.actor:
        trail.append(f"Triggered by {slack.escape(n.actor)}")
    if n.pipeline_url:
        trail.append(slack.link(n.pipeline_url, "pipeline"))
    return slack.Message(
        text, [slack.header(f"{n.emoji()} {n.title()}"), *_sections(body), slack.context(trail)]
    )
