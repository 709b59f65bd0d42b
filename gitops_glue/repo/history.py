"""Each service's recent glue commits, read from their trailers (``glue status``'s history).

A commit counts only by the trailers glue writes (:func:`glue_trailers`, as
``glue rollback`` reads them): ``Glue-Environment`` with ``Glue-Service`` /
``Glue-Tag`` / ``Glue-Previous-Tag`` groups (bump, promote, release, rollback),
``Glue-Hold`` / ``Glue-Unhold`` / ``Glue-Reject`` (holds and rejections),
``Glue-Override-Hold`` (a move past someone's hold), ``Glue-Reverts`` (what a
rollback undid), ``Pipeline`` and ``Triggered-By``. A commit whose trailers glue
would not trust is left out, never guessed at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from gitops_glue.repo.commit import HistoryCommit, glue_trailers

#: How many glue commits of each service the history keeps (newest first).
LENGTH = 10
#: How many commits back along first parents the history looks.
DEPTH = 1000


@dataclass(frozen=True)
class Event:
    """One glue commit, as it touched one service."""

    commit: str
    at: str  # committed at, UTC ISO 8601
    by: str  # Triggered-By (or who held / rejected), else the commit's author
    action: str  # bump, promote, release, rollback, hold, unhold, reject
    env: str | None  # None for a rejection (it is of a version, in every environment)
    tag: str | None  # the tag it moved to (a rejection: the tag rejected)
    previous: str | None  # the tag it moved from
    pipeline: str | None
    title: str
    reverts: tuple[str, ...] = ()  # a rollback: the commits it reverted
    #: what it went past: "hold" (another person's hold), "freeze" (a freeze window),
    #: "hold, freeze" (both); None: nothing
    override: str | None = None
    rolled_back: bool = False  # a later rollback reverted this commit

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "at": self.at,
            "by": self.by,
            "action": self.action,
            "env": self.env,
            "tag": self.tag,
            "previous": self.previous,
            "pipeline": self.pipeline,
            "title": self.title,
            "reverts": list(self.reverts),
            "override": self.override,
            "rolled_back": self.rolled_back,
        }


def _pair(value: str) -> tuple[str, str] | None:
    first, _, second = value.partition(" ")
    return (first, second) if first and second else None


def _past(hold: bool, freeze: bool = False) -> str | None:
    return ", ".join(w for w, yes in (("hold", hold), ("freeze", freeze)) if yes) or None


def events(commit: HistoryCommit) -> list[tuple[str, Event]]:
    """``commit``'s events, one per service it touched: (service, event)."""
    trailers = glue_trailers(commit.message)
    if trailers is None:
        return []
    first: dict[str, str] = {}
    for key, value in trailers:
        first.setdefault(key, value)
    env = first.get("Glue-Environment")
    overridden = {_pair(v) for k, v in trailers if k == "Glue-Override-Hold"}
    past_freeze = "Glue-Freeze-Override" in first
    by_default = first.get("Triggered-By") or commit.author
    pipeline, title = first.get("Pipeline"), commit.title[:200]
    found: list[tuple[str, Event]] = []
    if env is not None:
        action = first.get("Glue-Action", "bump")
        reverts = tuple(v for k, v in trailers if k == "Glue-Reverts")
        moves: list[dict[str, str | None]] = []
        for key, value in trailers:
            if key == "Glue-Service":
                moves.append({"service": value, "tag": None, "previous": None})
            elif key == "Glue-Tag" and moves:
                moves[-1]["tag"] = value
            elif key == "Glue-Previous-Tag" and moves:
                moves[-1]["previous"] = value
        for move in moves:
            service = str(move["service"])
            found.append(
                (
                    service,
                    Event(
                        commit.sha,
                        commit.at,
                        by_default,
                        action,
                        env,
                        move["tag"],
                        move["previous"],
                        pipeline,
                        title,
                        reverts=reverts if action == "rollback" else (),
                        override=_past((env, service) in overridden, past_freeze),
                    ),
                )
            )
    for key, action, by_key in (
        ("Glue-Hold", "hold", "Glue-Hold-By"),
        ("Glue-Unhold", "unhold", None),
        ("Glue-Reject", "reject", "Glue-Reject-By"),
    ):
        for value in (v for k, v in trailers if k == key):
            pair = _pair(value)
            if pair is None:
                continue
            by = first.get(by_key, "") if by_key else ""
            if action == "reject":
                service, where, tag = pair[0], None, pair[1]
            else:
                where, service, tag = pair[0], pair[1], None
            found.append(
                (
                    service,
                    Event(
                        commit.sha,
                        commit.at,
                        by or by_default,
                        action,
                        where,
                        tag,
                        None,
                        pipeline,
                        title,
                        override=_past(action == "hold" and (where, service) in overridden),
                    ),
                )
            )
    return found


#: The actions that set a service's tag in an environment.
MOVES = ("bump", "promote", "release", "rollback")


@dataclass(frozen=True)
class Recent:
    """What :func:`recent` found."""

    events: dict[str, list[Event]]  # service -> its last events, newest first
    changed_at: dict[tuple[str, str], str]  # (service, env) -> when glue last moved its tag


def recent(
    commits: Iterable[HistoryCommit],
    services: Iterable[str],
    environments: Iterable[str] = (),
    *,
    length: int = LENGTH,
    depth: int = DEPTH,
) -> Recent:
    """The last ``length`` glue events of each of ``services`` (newest first), and when
    glue last moved each service's tag in each of ``environments``, from at most
    ``depth`` of ``commits`` (newest first, along first parents). A commit a later
    rollback reverted is marked ``rolled_back``."""
    out: dict[str, list[Event]] = {s: [] for s in services}
    cells = {(s, e) for s in out for e in environments}
    changed: dict[tuple[str, str], str] = {}
    reverted: set[str] = set()
    for n, commit in enumerate(commits):
        if n >= depth or (
            len(changed) == len(cells) and all(len(e) >= length for e in out.values())
        ):
            break
        for service, event in events(commit):
            reverted.update(event.reverts)
            key = (service, event.env or "")
            if event.action in MOVES and key in cells and key not in changed:
                changed[key] = event.at
            kept = out.get(service)
            if kept is None or len(kept) >= length:
                continue
            if event.commit in reverted:
                event = dataclasses.replace(event, rolled_back=True)  # noqa: PLW2901
            kept.append(event)
    for kept in out.values():
        _rollback_tags(kept)
    return Recent(out, changed)


def _rollback_tags(events: list[Event]) -> None:
    """A rollback's tags, from the commits it reverted when they are in ``events``:
    it moved the service from the newest one's tag back to the oldest one's previous."""
    for i, event in enumerate(events):
        if event.action != "rollback" or event.tag is not None:
            continue
        undone = [e for e in events if e.commit in event.reverts and e.env == event.env]
        if undone and undone[-1].previous:
            events[i] = dataclasses.replace(event, tag=undone[-1].previous, previous=undone[0].tag)
