"""Freeze windows: when an environment takes no new versions.

An environment's ``freeze`` (glue.yaml) lists windows, each weekly (``every: friday
18:00 - monday 06:00``) or a fixed range (``from: 2026-12-23T00:00``, ``to:
2027-01-02T08:00``), in a time zone (``timezone``, an IANA name; UTC by default), with
a ``reason``. A window's times are wall-clock times in its zone: a Friday 18:00 start is
18:00 on the local clock on both sides of a daylight-saving change. On the day of a
change, a time the clock skips (02:30 when it jumps from 02:00 to 03:00) means the
moment it jumps (03:00 new time), and a time the clock shows twice (02:30 when it goes
back from 03:00 to 02:00) means the first of the two.

This module answers, for a set of windows and an instant: which windows are in force,
until when the environment stays frozen (windows that overlap or touch count as one
freeze), and which window comes next. It reads no file and no clock but
:func:`clock`, the one place that reads ``GLUE_NOW`` (a testing and rehearsal aid:
glue takes that instant as "now" for freeze windows).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitops_glue.errors import UsageError

if TYPE_CHECKING:
    from gitops_glue.config import Environment

UTC = dt.timezone.utc

#: The variable that sets glue's "now" for freeze windows (tests and rehearsals).
NOW_VARIABLE = "GLUE_NOW"

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_TIME = r"([0-9]{1,2}):([0-9]{2})"
_EVERY = re.compile(rf"\s*([a-z]+)\s+{_TIME}\s*-\s*([a-z]+)\s+{_TIME}\s*", re.IGNORECASE)
_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?)?")

#: How many windows in a row glue follows to find the end of a freeze.
_CHAIN = 200


# --------------------------------------------------------------------------- parsing


def zone(name: str) -> dt.tzinfo:
    """The IANA time zone ``name`` (``Europe/Berlin``, ``UTC``); ValueError if unknown."""
    import zoneinfo

    if name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        if not zoneinfo.available_timezones():
            raise ValueError(
                f"{name!r}: this machine has no time zone database (install the tzdata "
                "package of the system, or Python's tzdata)"
            ) from None
        raise ValueError(
            f"{name!r} is not a time zone: use an IANA name like Europe/Berlin or UTC"
        ) from None


def _day(word: str) -> int:
    found = [i for i, day in enumerate(DAYS) if len(word) >= 3 and day.startswith(word.lower())]
    if not found:
        raise ValueError(f"{word!r} is not a day of the week (use monday ... sunday, or mon)")
    return found[0]


def _clock_time(hours: str, minutes: str, text: str) -> dt.time:
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{text!r}: {hours}:{minutes} is not a time of day (00:00 to 23:59)")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True)
class Weekly:
    """Every week from ``start_day`` ``start`` to ``end_day`` ``end`` (0 = Monday)."""

    start_day: int
    start: dt.time
    end_day: int
    end: dt.time

    @property
    def days(self) -> int:
        """Days from the start's date to the end's (0 to 7)."""
        span = (self.end_day - self.start_day) % 7
        return 7 if span == 0 and self.end <= self.start else span

    def text(self) -> str:
        return f"{DAYS[self.start_day]} {self.start:%H:%M} - {DAYS[self.end_day]} {self.end:%H:%M}"


@dataclass(frozen=True)
class Fixed:
    """Once, from ``start`` to ``end`` (wall-clock times in the window's zone)."""

    start: dt.datetime
    end: dt.datetime

    def text(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} - {self.end:%Y-%m-%d %H:%M}"


def parse_every(text: str) -> Weekly:
    """``friday 18:00 - monday 06:00`` (days may be written mon, tue...); ValueError."""
    found = _EVERY.fullmatch(text)
    if not found:
        raise ValueError(
            f"{text!r}: write a weekly window as DAY HH:MM - DAY HH:MM, "
            "like friday 18:00 - monday 06:00"
        )
    rule = Weekly(
        _day(found[1]),
        _clock_time(found[2], found[3], text),
        _day(found[4]),
        _clock_time(found[5], found[6], text),
    )
    if (rule.start_day, rule.start) == (rule.end_day, rule.end):
        raise ValueError(f"{text!r} starts where it ends: a window needs a length")
    return rule


def parse_local(text: str) -> dt.datetime:
    """``2026-12-23T00:00`` (or ``2026-12-23``: midnight) as a wall-clock time; no offset:
    the window's ``timezone`` says where the clock hangs. ValueError."""
    if not _LOCAL.fullmatch(text.strip()):
        hint = (
            " (no offset: set the window's timezone instead)"
            if re.search(r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$", text.strip())
            else ""
        )
        raise ValueError(
            f"{text!r}: write a date and time like 2026-12-23T00:00 (or a date, "
            f"2026-12-23, for midnight){hint}"
        )
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


# --------------------------------------------------------------------------- windows


def instant(wall: dt.datetime, where: dt.tzinfo) -> dt.datetime:
    """The UTC instant of the wall-clock time ``wall`` (naive) in ``where``: a time the
    clock shows twice is the first; a time it skips is the moment it jumps (the first
    minute after the gap)."""
    while True:
        at = wall.replace(tzinfo=where, fold=0)
        if at.astimezone(UTC).astimezone(where).replace(tzinfo=None) == wall:
            return at.astimezone(UTC)
        wall = wall.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


class WindowError(ValueError):
    """A window's key (``every``, ``from``, ``to``, ``timezone``) is wrong: ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Window:
    """One window of an environment's ``freeze``, parsed."""

    rule: Weekly | Fixed
    timezone: str
    reason: str

    @classmethod
    def of(
        cls,
        *,
        every: str | None,
        start: str | None,
        end: str | None,
        timezone: str,
        reason: str,
    ) -> Window:
        """A window from glue.yaml's keys (``from`` is ``start``, ``to`` is ``end``);
        :class:`WindowError` names the key that is wrong."""
        try:
            zone(timezone)
        except ValueError as exc:
            raise WindowError("timezone", str(exc)) from None
        if every is not None:
            if start is not None or end is not None:
                raise WindowError(
                    "every", "a window is weekly (every) or a range (from and to), not both"
                )
            try:
                return cls(parse_every(every), timezone, reason)
            except ValueError as exc:
                raise WindowError("every", str(exc)) from None
        if start is None or end is None:
            raise WindowError(
                "from" if start is None else "to",
                "required: give a weekly window (every: friday 18:00 - monday 06:00) or "
                "a range (from: 2026-12-23T00:00, to: 2027-01-02T08:00)",
            )
        dates = {}
        for key, text in (("from", start), ("to", end)):
            try:
                dates[key] = parse_local(text)
            except ValueError as exc:
                raise WindowError(key, str(exc)) from None
        if dates["to"] <= dates["from"]:
            raise WindowError("to", f"{end!r} is not after from ({start!r})")
        return cls(Fixed(dates["from"], dates["to"]), timezone, reason)

    @property
    def zone(self) -> dt.tzinfo:
        return zone(self.timezone)

    def text(self) -> str:
        """``'holidays' (2026-12-23 00:00 - 2027-01-02 08:00 Europe/Berlin)``."""
        return f"{self.reason!r} ({self.rule.text()} {self.timezone})"

    def occurrences(self, around: dt.datetime) -> list[Occurrence]:
        """This window's occurrences that can hold ``around`` or follow it within a week."""
        where = self.zone
        if isinstance(self.rule, Fixed):
            return [
                Occurrence(self, instant(self.rule.start, where), instant(self.rule.end, where))
            ]
        rule = self.rule
        today = around.astimezone(where).date()
        found = []
        for offset in range(-8, 9):
            day = today + dt.timedelta(days=offset)
            if day.weekday() == rule.start_day:
                start = instant(dt.datetime.combine(day, rule.start), where)
                end_day = day + dt.timedelta(days=rule.days)
                end = instant(dt.datetime.combine(end_day, rule.end), where)
                found.append(Occurrence(self, start, end))
        return found


@dataclass(frozen=True)
class Occurrence:
    """A window in force from ``start`` to ``end`` (UTC instants; ``end`` excluded)."""

    window: Window
    start: dt.datetime
    end: dt.datetime

    def holds(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end

    def to_json(self) -> dict[str, object]:
        return {
            "reason": self.window.reason,
            "window": self.window.rule.text(),
            "timezone": self.window.timezone,
            "start": iso(self.start),
            "end": iso(self.end),
        }


def iso(at: dt.datetime) -> str:
    """An instant in UTC, ISO 8601: ``2026-03-30T04:00:00Z``."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def when(at: dt.datetime, timezone: str) -> str:
    """An instant for people, in ``timezone`` and in UTC:
    ``Mon 2026-03-30 06:00 CEST (04:00 UTC)``; in UTC alone for a UTC window."""
    local = at.astimezone(zone(timezone))
    utc = at.astimezone(UTC)
    text = f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"
    if local.tzname() == "UTC" and local.utcoffset() == dt.timedelta(0):
        return text
    same_day = local.date() == utc.date()
    return f"{text} ({utc:%H:%M} UTC)" if same_day else f"{text} ({utc:%Y-%m-%d %H:%M} UTC)"


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Freeze:
    """An environment's freeze at an instant: the windows in force (none: not frozen),
    when it thaws, and the next window after that."""

    env: str
    at: dt.datetime
    active: tuple[Occurrence, ...]
    #: When no window holds any more (None: frozen, with no end in sight).
    until: dt.datetime | None
    #: The next window that starts after ``until`` (or after ``at`` when not frozen).
    next: Occurrence | None
    #: Windows that begin before the active ones end and carry the freeze on to ``until``.
    then: tuple[Occurrence, ...] = ()

    @property
    def frozen(self) -> bool:
        return bool(self.active)

    @property
    def reasons(self) -> str:
        return "; ".join(o.window.text() for o in self.active)

    def until_text(self) -> str:
        """``until Mon 2026-03-30 06:00 CEST (04:00 UTC)``, in the zone of the window
        that ends last."""
        if self.until is None:
            return "with no end in sight (its windows follow each other)"
        last = max((*self.active, *self.then), key=lambda o: o.end)
        text = f"until {when(self.until, last.window.timezone)}"
        if self.then:
            text += f" (then {', '.join(repr(o.window.reason) for o in self.then)})"
        return text

    def text(self) -> str:
        """``prod is frozen: 'weekend' (friday 18:00 - ...) until ...``."""
        return f"{self.env} is frozen: {self.reasons} {self.until_text()}"

    def next_text(self) -> str:
        o = self.next
        if o is None:
            return f"{self.env}: no freeze window ahead"
        return (
            f"{self.env}: next freeze {o.window.text()} from {when(o.start, o.window.timezone)}"
            f" to {when(o.end, o.window.timezone)}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "frozen": self.frozen,
            "until": iso(self.until) if self.until is not None and self.frozen else None,
            "windows": [o.to_json() for o in self.active],
            "then": [o.to_json() for o in self.then],
            "next": self.next.to_json() if self.next is not None else None,
        }


def _active(windows: Sequence[Window], at: dt.datetime) -> list[Occurrence]:
    return [o for w in windows for o in w.occurrences(at) if o.holds(at)]


def state(env: str, windows: Sequence[Window], at: dt.datetime) -> Freeze:
    """``env``'s freeze at instant ``at`` (timezone-aware) under ``windows``."""
    active = _active(windows, at)
    until: dt.datetime | None = None
    then: list[Occurrence] = []
    if active:
        end = max(o.end for o in active)
        for _ in range(_CHAIN):  # windows that overlap or touch are one freeze
            holding = [o for o in _active(windows, end) if o not in (*active, *then)]
            if not holding:
                until = end
                break
            then += sorted(holding, key=lambda o: (o.start, o.window.reason))
            end = max(o.end for o in holding)
    after = until if active else at
    upcoming = (
        [o for w in windows for o in w.occurrences(after) if o.start > after]
        if after is not None
        else []
    )
    return Freeze(
        env,
        at,
        tuple(sorted(active, key=lambda o: (o.end, o.window.reason))),
        until,
        min(upcoming, key=lambda o: (o.start, o.window.reason), default=None),
        tuple(then[:3]),
    )


def of_environment(env: Environment, at: dt.datetime) -> Freeze:
    """The freeze of a glue.yaml environment at ``at``."""
    return state(env.name, [w.window() for w in env.freeze], at)


# --------------------------------------------------------------------------- now


@dataclass(frozen=True)
class Clock:
    """What glue takes as now for freeze windows, and whether ``GLUE_NOW`` set it."""

    now: dt.datetime
    overridden: bool = False

    def note(self) -> str:
        """Said wherever the time matters when ``GLUE_NOW`` set it ("" otherwise)."""
        if not self.overridden:
            return ""
        return f"the clock is set by {NOW_VARIABLE}: now is {iso(self.now)}"


def clock(environ: Mapping[str, str] | None = None) -> Clock:
    """Now: the real time, or ``GLUE_NOW`` (ISO 8601 with an offset, like
    ``2026-12-25T10:00:00+01:00`` or ``...Z``) when it is set. The one place glue reads
    ``GLUE_NOW``."""
    given = (os.environ if environ is None else environ).get(NOW_VARIABLE, "").strip()
    if not given:
        return Clock(dt.datetime.now(UTC))
    hint = f"set {NOW_VARIABLE} like 2026-12-25T10:00:00+01:00 (or ...Z), or unset it"
    try:
        now = dt.datetime.fromisoformat(given.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{NOW_VARIABLE}={given!r} is not an ISO 8601 time", hint=hint) from None
    if now.tzinfo is None:
        raise UsageError(
            f"{NOW_VARIABLE}={given!r} has no offset: glue cannot tell which instant it is",
            hint=hint,
        )
    return Clock(now.astimezone(UTC), overridden=True)


@dataclass(frozen=True)
class Override:
    """``--override-freeze --reason TEXT``: why, and who (the CI actor, else git's user)."""

    reason: str
    by: str

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "by": self.by}
