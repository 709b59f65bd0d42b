"""Holds and rejected versions: ``glue hold``, ``glue unhold``, ``glue reject``.

Both live in the deployment repository, in ``glue-holds.yaml`` next to
``glue.yaml`` (a file of its own, not a section of glue.yaml, so glue.yaml
stays hand-written; Git stays the single source of truth, and ``--remote`` works the
same as a checkout). glue writes that file whole, sorted, with every string
double-quoted, so the same state is always the same bytes; ``glue.yaml`` is
never touched.

- A *hold* on SERVICE in ENV (who, when, why): no commit may change SERVICE's
  tag in ENV while it is set, unless ``--override-hold`` is given; the override
  is said in the commit (a line and a ``Glue-Override-Hold: ENV SERVICE`` trailer).
- A *rejected* TAG of SERVICE (who, when, why): no commit may put that tag into
  any environment, ever; there is no override (remove the entry by hand, in a
  reviewed commit, if it was a mistake).

The rule is applied in ONE place, :func:`guard`, which :func:`commit_change`
runs on every planned change: it compares each service's effective tag in each
environment before and after the change, so bump-tag, promote, release,
auto-release and rollback all obey it without a copy of the rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitops_glue import inputs, yamlnodes
from gitops_glue.errors import UsageError, YamlEditError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import versions
from gitops_glue.repo.check import setup_warnings
from gitops_glue.repo.commit import (
    Change,
    CommitResult,
    CommitTarget,
    FileEdit,
    Guard,
    View,
    commit_change,
)

if TYPE_CHECKING:
    from gitops_glue.config import GlueConfig
    from gitops_glue.repo.commit import D

#: Where holds and rejected versions live, relative to glue.yaml's folder.
PATH = "glue-holds.yaml"

_HEADER = (
    "# Holds and rejected versions of glue (glue hold / glue unhold / glue reject).\n"
    "# Written whole by glue; change it with those commands.\n"
)


@dataclass(frozen=True)
class Mark:
    """Who set a hold or a rejection, when (UTC, ISO 8601) and why."""

    by: str
    at: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"by": self.by, "at": self.at, "reason": self.reason}

    def text(self) -> str:
        return f"by {self.by} at {self.at}: {self.reason!r}"


@dataclass(frozen=True)
class Ledger:
    """The holds (ENV, SERVICE) and rejected versions (SERVICE, TAG) of a repository."""

    holds: Mapping[tuple[str, str], Mark] = field(default_factory=dict)
    rejected: Mapping[tuple[str, str], Mark] = field(default_factory=dict)

    def hold(self, env: str, service: str) -> Mark | None:
        return self.holds.get((env, service))

    def rejection(self, service: str, tag: str) -> Mark | None:
        return self.rejected.get((service, tag))

    def render(self) -> str:
        """The file's text: sorted, every string JSON-quoted (valid YAML), byte-stable."""
        out = [_HEADER]
        out.append("holds:" + ("\n" if self.holds else " {}\n"))
        last = None
        for (env, service), mark in sorted(self.holds.items()):
            if env != last:
                out.append(f"  {json.dumps(env)}:\n")
                last = env
            out.append(f"    {json.dumps(service)}: {_mark(mark)}\n")
        out.append("rejected:" + ("\n" if self.rejected else " {}\n"))
        last = None
        for (service, tag), mark in sorted(self.rejected.items()):
            if service != last:
                out.append(f"  {json.dumps(service)}:\n")
                last = service
            out.append(f"    {json.dumps(tag)}: {_mark(mark)}\n")
        return "".join(out)


def _mark(mark: Mark) -> str:
    return (
        f"{{by: {json.dumps(mark.by)}, at: {json.dumps(mark.at)}, "
        f"reason: {json.dumps(mark.reason)}}}"
    )


def _bad(why: str) -> UsageError:
    return UsageError(
        f"{PATH}{why}",
        hint=f"glue writes this file; restore it from git history (git log -p -- {PATH}), "
        "or fix it by hand in a reviewed commit",
    )


def _at(node: yamlnodes.Node) -> str:
    return f":{node.line + 1}"


def _plain_tree(node: yamlnodes.Node, where: str) -> None:
    """Refuse what glue never writes and a reader could take two ways: anchors, aliases, tags."""
    if node.kind == "alias":
        raise _bad(f"{_at(node)}: {where}: an alias (*{node.anchor}); glue writes none")
    if node.anchor:
        raise _bad(f"{_at(node)}: {where}: an anchor (&{node.anchor}); glue writes none")
    if node.tag is not None and node.tag not in ("!", "tag:yaml.org,2002:str"):
        raise _bad(f"{_at(node)}: {where}: a YAML tag ({node.tag}); glue writes none")
    for child in (*node.keys, *node.items):
        _plain_tree(child, where)


#: Plain scalars YAML reads as something other than a string (``holds: null``).
_NOT_TEXT = re.compile(r"~|null|Null|NULL|true|True|TRUE|false|False|FALSE|")


def _text(node: yamlnodes.Node, where: str) -> str:
    if (
        node.kind != "scalar"
        or node.value is None
        or (node.plain and _NOT_TEXT.fullmatch(node.value))
    ):
        raise _bad(f"{_at(node)}: {where}: expected a quoted string")
    inputs.check_line(f"{PATH}{_at(node)}: {where}", node.value)
    return node.value


def _mapping(node: yamlnodes.Node | None, where: str, what: str) -> yamlnodes.Node:
    if node is None or node.kind != "map":
        shown = (
            "nothing"
            if node is None
            else {"seq": "a list", "scalar": "a single value"}.get(node.kind, node.kind)
        )
        line = _at(node) if node is not None else ""
        raise _bad(f"{line}: {where}: expected a mapping of {what}, found {shown}")
    return node


def parse(text: str | None) -> Ledger:
    """Read the file's text (None: no file, nothing held or rejected).

    Strict: anything but the shape glue writes is an error (exit 2) naming the file,
    never "no holds": a misspelt or missing section, ``holds: null`` or a list, an
    entry without ``by``, ``at`` and ``reason``. The limits of values files apply
    (size, depth, alias bombs, duplicate keys; Limits in docs/config.md).
    """
    if text is None:
        return Ledger()
    try:
        docs = yamlnodes.parse_documents(text, PATH)
    except YamlEditError as exc:
        raise UsageError(exc.message, hint=exc.hint or _bad("").hint) from None
    roots = [d.root for d in docs if d.root is not None]
    if not roots:
        raise _bad(": is empty; glue writes it with a holds: and a rejected: section")
    if len(docs) > 1:
        raise _bad(f"{_at(roots[-1])}: more than one YAML document; glue writes one")
    root = _mapping(roots[0], "the top level", "holds and rejected")
    _plain_tree(root, "the file")
    sections = {"holds": ("environments", "services"), "rejected": ("services", "tags")}
    for key in root.keys:
        name = _text(key, "a top-level key")
        if name not in sections:
            raise _bad(
                f"{_at(key)}: unknown top-level key {name!r} (check the spelling); "
                "expected holds and rejected"
            )

    def marks(section: str) -> dict[tuple[str, str], Mark]:
        outer_what, inner_what = sections[section]
        outer = root.child(section)
        if outer is None:
            raise _bad(f": no {section}: section; glue writes holds: and rejected:")
        outer = _mapping(outer, section, f"{outer_what} to {inner_what}")
        found: dict[tuple[str, str], Mark] = {}
        for first_key, inner_node in zip(outer.keys, outer.items, strict=True):
            first = _text(first_key, f"a key of {section}")
            inner = _mapping(inner_node, f"{section}.{first}", f"{inner_what} to marks")
            for second_key, mark_node in zip(inner.keys, inner.items, strict=True):
                second = _text(second_key, f"a key of {section}.{first}")
                where = f"{section}.{first}.{second}"
                m = _mapping(mark_node, where, "by, at and reason")
                fields = {}
                for k, v in zip(m.keys, m.items, strict=True):
                    field_name = _text(k, f"a key of {where}")
                    if field_name not in ("by", "at", "reason"):
                        raise _bad(
                            f"{_at(k)}: {where}: unknown key {field_name!r}; "
                            "expected by, at and reason"
                        )
                    fields[field_name] = _text(v, f"{where}.{field_name}")
                missing = [f for f in ("by", "at", "reason") if f not in fields]
                if missing:
                    raise _bad(
                        f"{_at(m)}: {where}: missing {' and '.join(missing)} "
                        "(a hold or rejection has by, at and reason)"
                    )
                found[(first, second)] = Mark(fields["by"], fields["at"], fields["reason"])
        return found

    return Ledger(marks("holds"), marks("rejected"))


def load(read: versions.Reader) -> Ledger:
    return parse(read(PATH))


# --------------------------------------------------------------------------- who and when


def who(actor: str | None, ci: CiContext) -> str:
    """``--actor``/``GLUE_ACTOR``, else the CI actor, else git's user.name, else ``unknown``."""
    if actor:
        return actor
    if ci.actor:
        return ci.actor
    from gitops_glue.repo.gitrepo import git_user_name

    return git_user_name() or "unknown"


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- the guard


@dataclass(frozen=True)
class Move:
    """One service's effective tag in one environment changed by a change."""

    env: str
    service: str
    old_tag: str | None
    new_tag: str | None


def moves(config: GlueConfig, read: versions.Reader, files: Mapping[str, str]) -> list[Move]:
    """Every (environment, service) whose effective tag ``files`` would change."""

    def after(path: str) -> str | None:
        return files[path] if path in files else read(path)

    out: list[Move] = []
    for env in config.environments:
        for name in config.services:
            if not any(f in files for f in versions.sources(config, env, name)):
                continue
            old = versions.tag_of(read, config, env, name)
            new = versions.tag_of(after, config, env, name)
            if old != new:
                out.append(Move(env.name, name, old, new))
    return out


def guards(*, override_hold: bool = False, freeze: Guard | None = None) -> tuple[Guard, ...]:
    """What a change of versions (bump, promote, release, rollback) passes before it is
    committed: ``freeze`` (the freeze windows, :mod:`gitops_glue.repo.frozen`) when given,
    :func:`guard` (holds and rejected tags), then glue check's cheap checks as warnings
    (:func:`gitops_glue.repo.check.setup_warnings`)."""
    first = (freeze,) if freeze is not None else ()
    return (*first, functools.partial(guard, override_hold=override_hold), setup_warnings)


def guard(view: View, change: Change[D], *, override_hold: bool = False) -> Change[D]:
    """Refuse a change that puts a rejected tag anywhere, or moves a held service.

    A held service moves only with ``override_hold``, or when the change sets the hold
    anew for the person who holds it (their own ``glue rollback --hold``): another
    person's hold is never bypassed, nor replaced, without ``--override-hold``.
    With ``override_hold``, held moves go through and the commit message says so.
    """
    if not change.changed:
        return change
    files = change.files()
    found = list(moves(view.config, view.read, files))
    if not found:
        return change
    before = load(view.read)
    after = parse(files[PATH]) if PATH in files else before
    for m in found:
        mark = after.rejection(m.service, m.new_tag) if m.new_tag is not None else None
        if mark is not None:
            raise UsageError(
                f"{m.service} {m.new_tag} is rejected (set {mark.text()}): it goes into no "
                f"environment; nothing was changed",
                hint=f"choose another tag; rejections are kept in {PATH}",
            )
    overridden: list[tuple[Move, Mark]] = []
    for m in found:
        mark = before.hold(m.env, m.service)
        if mark is None:
            continue
        anew = after.hold(m.env, m.service)
        if PATH in files and anew is not None and anew != mark and anew.by == mark.by:
            continue  # the one who holds it moves it and holds it anew (rollback --hold)
        if not override_hold:
            raise UsageError(
                f"{m.service} is held in {m.env} (hold set {mark.text()}): not changing it "
                f"({m.old_tag} -> {m.new_tag}); nothing was changed",
                hint=f"glue unhold {m.service} --env {m.env}, or pass --override-hold "
                "(said in the commit)",
            )
        overridden.append((m, mark))
    if not overridden:
        return change
    body = [
        f"Overrides the hold on {m.service} in {m.env} (set {mark.text()})"
        for m, mark in overridden
    ]
    trailers = [("Glue-Override-Hold", f"{m.env} {m.service}") for m, _ in overridden]
    notes = [f"overriding the hold on {m.service} in {m.env}" for m, _ in overridden]
    return dataclasses.replace(
        change,
        message=amend_message(change.message, body, trailers),
        notes=(*change.notes, *notes),
    )


def amend_message(message: str, body: Sequence[str], trailers: Sequence[tuple[str, str]]) -> str:
    """``message`` with ``body`` lines before its trailer paragraph and ``trailers`` added.
    What they carry in (a hold's reason, names) is data: CI-skip markers in it are
    defused, and the result passes the checks of every commit message."""
    from gitops_glue.repo.commit import parse_trailers
    from gitops_glue.repo.message import check_message, neutralise_skip_ci

    text = message.rstrip("\n")
    head, sep, last = text.rpartition("\n\n")
    added = "\n".join(neutralise_skip_ci(line) for line in body)
    new_trailers = [f"{k}: {neutralise_skip_ci(v)}" for k, v in trailers]
    if sep and parse_trailers(text):
        parts = [head, added, "\n".join([last, *new_trailers])]
    else:
        parts = [text, added, "\n".join(new_trailers)]
    amended = "\n\n".join(p for p in parts if p) + "\n"
    check_message(amended)
    return amended


# --------------------------------------------------------------------------- the commands


@dataclass(frozen=True)
class HoldRequest:
    """``glue hold`` (``reason`` set) or ``glue unhold`` (``release`` true)."""

    service: str
    env: str
    reason: str = ""
    release: bool = False
    actor: str | None = None
    ci: CiContext = field(default_factory=CiContext)
    at: str | None = None  # None: now
    #: ``glue hold --override-hold``: replace another person's hold (said in the commit)
    override_hold: bool = False


@dataclass(frozen=True)
class RejectRequest:
    service: str
    tag: str
    reason: str
    actor: str | None = None
    ci: CiContext = field(default_factory=CiContext)
    at: str | None = None


@dataclass(frozen=True)
class HoldChange:
    """What a hold, unhold or reject does, for results."""

    action: str  # hold | unhold | reject
    service: str
    env: str | None
    tag: str | None
    mark: Mark | None  # the new mark (hold, reject) or the one removed (unhold)
    file: str = PATH

    def _what(self) -> str:
        if self.action == "reject":
            return f"{self.service} {self.tag}"
        return f"{self.service} in {self.env}"

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "service": self.service,
            "environment": self.env,
            "tag": self.tag,
            "file": self.file,
            "mark": self.mark.to_json() if self.mark else None,
        }

    def unchanged_text(self) -> str:
        if self.action == "unhold":
            return f"unchanged: {self._what()} is not held"
        return f"unchanged: {self._what()} is already {self.action}ed as asked ({self.file})"

    def changed_lines(self) -> list[str]:
        if self.mark is None:
            return []
        verb = {"hold": "held", "unhold": "released hold", "reject": "rejected"}[self.action]
        return [f"  {verb}: {self._what()} ({self.mark.text()})"]

    def dry_run_lines(self) -> list[str]:
        return []


HoldResult = CommitResult[HoldChange]


def _check(values: dict[str, str | None]) -> None:
    inputs.check_lines(values)


def _need_reason(reason: str, command: str) -> None:
    if not reason.strip():
        raise UsageError(
            f"{command}: --reason is required: say why, for the people who find it later",
            hint=f'e.g. glue {command} ... --reason "payments fail after 1.4.0"',
        )


def _edit(read: versions.Reader, ledger: Ledger) -> tuple[FileEdit, ...]:
    old = read(PATH)
    new = ledger.render()
    return () if old == new else (FileEdit(PATH, old or "", new),)


def _trailer_block(message_head: list[str], trailers: list[tuple[str, str]]) -> str:
    lines = [*message_head, "", *(f"{k}: {v}" for k, v in trailers if v)]
    return "\n".join(lines) + "\n"


def plan_hold(view: View, req: HoldRequest) -> Change[HoldChange]:
    from gitops_glue.repo.message import with_skip_ci

    _check(
        {
            "service": req.service,
            "environment": req.env,
            "--reason": req.reason,
            "--actor": req.actor,
            "the CI actor": req.ci.actor,
        }
    )
    ledger = load(view.read)
    holds = dict(ledger.holds)
    key = (req.env, req.service)
    if not (req.release and key in holds):
        # A hold left on an environment or service glue.yaml no longer lists can
        # still be released; everything else must name what glue.yaml lists.
        view.config.environment(req.env)
        view.config.service(req.service)
    if req.release:
        mark = holds.pop(key, None)
        details = HoldChange("unhold", req.service, req.env, None, mark)
        title = f"chore({req.env}): release the hold on {req.service}"
        body = [f"Held {mark.text()}"] if mark else []
        trailers = [("Glue-Unhold", f"{req.env} {req.service}")]
    else:
        _need_reason(req.reason, "hold")
        mark = Mark(who(req.actor, req.ci), req.at or now_utc(), req.reason.strip())
        old = holds.get(key)
        body = [f"Reason: {mark.reason}"]
        trailers = [("Glue-Hold", f"{req.env} {req.service}"), ("Glue-Hold-By", mark.by)]
        if old is not None and old.by != mark.by:
            if not req.override_hold:
                raise UsageError(
                    f"{req.service} is already held in {req.env} (set {old.text()}): "
                    "not replacing another person's hold; nothing was changed",
                    hint=f"ask {old.by}; glue unhold {req.service} --env {req.env} first, or "
                    "pass --override-hold to replace it (said in the commit)",
                )
            body.append(f"Replaces the hold on {req.service} in {req.env} (set {old.text()})")
            trailers.append(("Glue-Override-Hold", f"{req.env} {req.service}"))
        elif old is not None and old.reason == mark.reason:
            mark = old  # the same hold again: nothing to commit
        holds[key] = mark
        details = HoldChange("hold", req.service, req.env, None, mark)
        title = f"chore({req.env}): hold {req.service}"
    trailers += [("Pipeline", req.ci.pipeline_url), ("Triggered-By", req.ci.actor)]
    message = with_skip_ci(view.config.git, _trailer_block([title, "", *body], trailers))
    return Change(
        edits=_edit(view.read, dataclasses.replace(ledger, holds=holds)),
        message=message,
        details=details,
    )


def plan_reject(view: View, req: RejectRequest) -> Change[HoldChange]:
    from gitops_glue.repo.message import with_skip_ci

    _check(
        {
            "service": req.service,
            "tag": req.tag,
            "--reason": req.reason,
            "--actor": req.actor,
            "the CI actor": req.ci.actor,
        }
    )
    view.config.service(req.service)
    _need_reason(req.reason, "reject")
    ledger = load(view.read)
    rejected = dict(ledger.rejected)
    old = rejected.get((req.service, req.tag))
    mark = Mark(who(req.actor, req.ci), req.at or now_utc(), req.reason.strip())
    if old is not None and old.reason == mark.reason:
        mark = old
    rejected[(req.service, req.tag)] = mark
    view.config.service(req.service)
    notes = tuple(
        f"{req.service} {req.tag} is still in {env.name}: bump or roll it back there"
        for env in view.config.environments
        if versions.tag_of(view.read, view.config, env, req.service) == req.tag
    )
    trailers = [
        ("Glue-Reject", f"{req.service} {req.tag}"),
        ("Glue-Reject-By", mark.by),
        ("Pipeline", req.ci.pipeline_url),
        ("Triggered-By", req.ci.actor),
    ]
    title = f"chore: reject {req.service} {req.tag}"
    message = _trailer_block([title, "", f"Reason: {mark.reason}"], trailers)
    return Change(
        edits=_edit(view.read, dataclasses.replace(ledger, rejected=rejected)),
        message=with_skip_ci(view.config.git, message),
        details=HoldChange("reject", req.service, None, req.tag, mark),
        notes=notes,
    )


def hold(target: CommitTarget, req: HoldRequest, *, dry_run: bool = False) -> HoldResult:
    """``glue hold`` / ``glue unhold``: one commit to ``glue-holds.yaml``."""
    plan = lambda view: plan_hold(view, req)  # noqa: E731
    return commit_change(target, plan, guards=(setup_warnings,), dry_run=dry_run)


def reject(target: CommitTarget, req: RejectRequest, *, dry_run: bool = False) -> HoldResult:
    """``glue reject``: one commit to ``glue-holds.yaml``."""
    plan = lambda view: plan_reject(view, req)  # noqa: E731
    return commit_change(target, plan, guards=(setup_warnings,), dry_run=dry_run)


# --------------------------------------------------------------------------- rollback


def with_marks(
    view: View,
    change: Change[D],
    env: str,
    *,
    hold_reason: str | None,
    reject_reason: str | None,
    actor: str | None,
    ci: CiContext,
) -> Change[D]:
    """``glue rollback --hold/--reject``: the same commit also holds the rolled-back
    services in ``env`` and/or rejects the tags rolled back from. Another person's hold
    on a rolled-back service is kept, not replaced (the commit says so); the guard then
    lets the rollback through only with ``--override-hold``."""
    if not change.changed or (hold_reason is None and reject_reason is None):
        return change
    for what, reason in (("hold", hold_reason), ("reject", reject_reason)):
        if reason is not None:
            _need_reason(reason, f"rollback --{what}")
            inputs.check_lines({"--reason": reason, "--actor": actor})
    found = [m for m in moves(view.config, view.read, change.files()) if m.env == env]
    ledger = load(view.read)
    holds, rejected = dict(ledger.holds), dict(ledger.rejected)
    by, at = who(actor, ci), now_utc()
    body: list[str] = []
    trailers: list[tuple[str, str]] = []
    for m in found:
        theirs = holds.get((env, m.service))
        if hold_reason is not None and theirs is not None and theirs.by != by:
            # Another person's hold stays theirs; moving the service at all needs
            # --override-hold (the guard), and the commit says their hold is kept.
            body.append(
                f"Keeps the hold on {m.service} in {env} (set {theirs.text()}), "
                f"not replacing it with: {hold_reason.strip()}"
            )
        elif hold_reason is not None:
            holds[(env, m.service)] = Mark(by, at, hold_reason.strip())
            body.append(f"Holds {m.service} in {env}: {hold_reason.strip()}")
            trailers.append(("Glue-Hold", f"{env} {m.service}"))
        if reject_reason is not None and m.old_tag:
            rejected[(m.service, m.old_tag)] = Mark(by, at, reject_reason.strip())
            body.append(f"Rejects {m.service} {m.old_tag}: {reject_reason.strip()}")
            trailers.append(("Glue-Reject", f"{m.service} {m.old_tag}"))
    new = Ledger(holds, rejected)
    edits = tuple(e for e in change.edits if e.path != PATH) + _edit(view.read, new)
    return dataclasses.replace(
        change, edits=edits, message=amend_message(change.message, body, trailers)
    )
