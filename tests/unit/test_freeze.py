"""Freeze windows (gitops_glue.freeze): weekly windows across midnight and the week end,
daylight-saving changes, fixed ranges, windows that chain, the GLUE_NOW clock, and
glue.yaml's validation of the ``freeze`` key."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from gitops_glue import freeze
from gitops_glue.cluster.record import DeployRecord
from gitops_glue.config import parse_config
from gitops_glue.errors import ConfigError, UsageError

ROOT = Path(__file__).resolve().parents[2]
BERLIN = "Europe/Berlin"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def weekly(every: str, timezone: str = "UTC", reason: str = "weekend") -> freeze.Window:
    return freeze.Window.of(every=every, start=None, end=None, timezone=timezone, reason=reason)


def fixed(start: str, end: str, timezone: str = BERLIN, reason: str = "holidays") -> freeze.Window:
    return freeze.Window.of(every=None, start=start, end=end, timezone=timezone, reason=reason)


def state(when: str, *windows: freeze.Window) -> freeze.Freeze:
    return freeze.state("prod", windows, at(when))


def until(s: freeze.Freeze) -> str:
    assert s.until is not None
    return freeze.iso(s.until)


# --------------------------------------------------------------------------- weekly


def test_a_weekend_window_crosses_midnight_and_the_week_end() -> None:
    weekend = weekly("friday 18:00 - monday 06:00")
    # 2026-03-06 is a Friday.
    before = state("2026-03-06T17:59:00+00:00", weekend)
    assert not before.frozen and before.until is None
    assert before.next is not None and freeze.iso(before.next.start) == "2026-03-06T18:00:00Z"
    assert freeze.iso(before.next.end) == "2026-03-09T06:00:00Z"

    for inside in ("2026-03-06T18:00:00+00:00", "2026-03-08T23:59:00Z", "2026-03-09T05:59:59Z"):
        s = state(inside, weekend)
        assert s.frozen, inside
        assert until(s) == "2026-03-09T06:00:00Z"
        assert s.text() == (
            "prod is frozen: 'weekend' (friday 18:00 - monday 06:00 UTC) "
            "until Mon 2026-03-09 06:00 UTC"
        )
        # The next window is the one after this freeze ends: next Friday.
        assert s.next is not None and freeze.iso(s.next.start) == "2026-03-13T18:00:00Z"

    after = state("2026-03-09T06:00:00+00:00", weekend)  # the end is not in the window
    assert not after.frozen


def test_a_nightly_window_within_the_week() -> None:
    night = weekly("tue 22:00 - wed 02:00", reason="batch")
    # 2026-03-11 is a Wednesday.
    s = state("2026-03-11T01:30:00+00:00", night)
    assert s.frozen and until(s) == "2026-03-11T02:00:00Z"
    assert not state("2026-03-11T02:00:00+00:00", night).frozen
    assert not state("2026-03-10T21:59:00+00:00", night).frozen


def test_a_window_that_starts_and_ends_on_the_same_weekday_lasts_almost_a_week() -> None:
    long = weekly("monday 18:00 - monday 06:00")
    # 2026-03-09 is a Monday: from its 18:00 to the next Monday 06:00.
    assert state("2026-03-12T12:00:00+00:00", long).frozen
    assert not state("2026-03-16T12:00:00+00:00", long).frozen


# --------------------------------------------------------------------------- DST


def test_a_berlin_weekend_keeps_its_wall_clock_times_across_the_spring_change() -> None:
    weekend = weekly("friday 18:00 - monday 06:00", BERLIN)
    # Clocks go forward on Sunday 2026-03-29 at 02:00 CET -> 03:00 CEST.
    s = state("2026-03-28T10:00:00+01:00", weekend)
    assert s.frozen
    assert freeze.iso(s.active[0].start) == "2026-03-27T17:00:00Z"  # 18:00 CET
    assert until(s) == "2026-03-30T04:00:00Z"  # 06:00 CEST
    assert s.until_text() == "until Mon 2026-03-30 06:00 CEST (04:00 UTC)"
    # The next Friday 18:00 is an hour earlier in UTC.
    assert s.next is not None and freeze.iso(s.next.start) == "2026-04-03T16:00:00Z"


def test_a_berlin_weekend_across_the_autumn_change() -> None:
    weekend = weekly("friday 18:00 - monday 06:00", BERLIN)
    # Clocks go back on Sunday 2026-10-25 at 03:00 CEST -> 02:00 CET.
    s = state("2026-10-24T12:00:00+02:00", weekend)
    assert freeze.iso(s.active[0].start) == "2026-10-23T16:00:00Z"  # 18:00 CEST
    assert s.until_text() == "until Mon 2026-10-26 06:00 CET (05:00 UTC)"


def test_a_time_the_clock_skips_starts_the_window_when_the_clock_jumps() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: the window starts at 03:00 CEST.
    early = weekly("sunday 02:30 - sunday 04:00", BERLIN, "maintenance")
    assert not state("2026-03-29T00:59:00+00:00", early).frozen  # 01:59 CET
    s = state("2026-03-29T01:00:00+00:00", early)  # 03:00 CEST
    assert s.frozen and freeze.iso(s.active[0].start) == "2026-03-29T01:00:00Z"
    assert until(s) == "2026-03-29T02:00:00Z"  # 04:00 CEST
    # A week later the same window is 02:30 - 04:00 CEST again.
    assert s.next is not None and freeze.iso(s.next.start) == "2026-04-05T00:30:00Z"


def test_a_time_the_clock_shows_twice_is_its_first_occurrence() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25 (CEST, then CET).
    starts = weekly("sunday 02:30 - sunday 05:00", BERLIN, "maintenance")
    s = state("2026-10-25T00:30:00+00:00", starts)  # the first 02:30 (CEST)
    assert s.frozen and until(s) == "2026-10-25T04:00:00Z"  # 05:00 CET
    assert not state("2026-10-25T00:29:00+00:00", starts).frozen

    ends = weekly("saturday 22:00 - sunday 02:30", BERLIN, "night")
    assert state("2026-10-25T00:29:00+00:00", ends).frozen  # 02:29 CEST
    # It ends at the first 02:30 and stays ended through the repeated hour.
    for instant in ("2026-10-25T00:30:00Z", "2026-10-25T01:15:00Z"):  # 02:30 CEST, 02:15 CET
        assert not state(instant, ends).frozen, instant


# --------------------------------------------------------------------------- fixed ranges


def test_a_fixed_range_in_its_time_zone() -> None:
    holidays = fixed("2026-12-23", "2027-01-02T08:00")
    before = state("2026-12-22T23:59:00+01:00", holidays)
    assert not before.frozen
    assert before.next is not None and freeze.iso(before.next.start) == "2026-12-22T23:00:00Z"
    inside = state("2026-12-25T10:00:00+01:00", holidays)
    assert inside.frozen
    assert inside.text() == (
        "prod is frozen: 'holidays' (2026-12-23 00:00 - 2027-01-02 08:00 Europe/Berlin) "
        "until Sat 2027-01-02 08:00 CET (07:00 UTC)"
    )
    after = state("2027-01-02T08:00:00+01:00", holidays)
    assert not after.frozen and after.next is None
    assert after.next_text() == "prod: no freeze window ahead"


def test_windows_that_overlap_or_touch_are_one_freeze() -> None:
    # The holidays end on Friday 2027-01-01 at 20:00; the weekend began at 18:00.
    holidays = fixed("2026-12-23T00:00", "2027-01-01T20:00")
    weekend = weekly("friday 18:00 - monday 06:00", BERLIN)
    s = state("2026-12-31T12:00:00+01:00", holidays, weekend)
    assert [o.window.reason for o in s.active] == ["holidays"]
    assert s.until_text() == "until Mon 2027-01-04 06:00 CET (05:00 UTC) (then 'weekend')"
    assert [o.window.reason for o in s.then] == ["weekend"]
    assert s.to_json()["then"] == [o.to_json() for o in s.then]
    # Windows that follow each other forever have no end in sight.
    always = [weekly("monday 00:00 - thursday 00:00"), weekly("thursday 00:00 - monday 00:00")]
    endless = state("2026-03-10T12:00:00+00:00", *always)
    assert endless.frozen and endless.until is None and endless.next is None
    assert "no end in sight" in endless.text()


# --------------------------------------------------------------------------- the clock


def test_glue_now_sets_the_clock_and_says_so() -> None:
    real = freeze.clock({})
    assert not real.overridden and real.note() == ""
    assert abs(real.now - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
    set_ = freeze.clock({"GLUE_NOW": "2026-12-25T10:00:00+01:00"})
    assert set_.overridden and freeze.iso(set_.now) == "2026-12-25T09:00:00Z"
    assert set_.note() == "the clock is set by GLUE_NOW: now is 2026-12-25T09:00:00Z"
    assert freeze.iso(freeze.clock({"GLUE_NOW": "2026-12-25T09:00:00Z"}).now).endswith("09:00:00Z")
    with pytest.raises(UsageError, match="has no offset"):
        freeze.clock({"GLUE_NOW": "2026-12-25T10:00:00"})
    with pytest.raises(UsageError, match="not an ISO 8601 time"):
        freeze.clock({"GLUE_NOW": "next friday"})


# --------------------------------------------------------------------------- glue.yaml


def with_freeze(lines: str) -> str:
    text = (ROOT / "glue.yaml").read_text()
    anchor = "    namespace: example-prod  # where glue keeps its deploy record and lock\n"
    assert anchor in text
    return text.replace(anchor, anchor + "    freeze:\n" + lines)


def test_glue_yaml_takes_weekly_windows_and_ranges() -> None:
    config = parse_config(
        with_freeze(
            "      - {every: fri 18:00 - mon 06:00, timezone: Europe/Berlin, reason: weekend}\n"
            "      - from: 2026-12-23\n"  # an unquoted YAML date: midnight
            "        to: 2027-01-02T08:00\n"
            "        reason: holidays\n"
        )
    )
    windows = [w.window() for w in config.environment("prod").freeze]
    assert [w.rule.text() for w in windows] == [
        "friday 18:00 - monday 06:00",
        "2026-12-23 00:00 - 2027-01-02 08:00",
    ]
    assert [w.timezone for w in windows] == [BERLIN, "UTC"]
    assert config.environment("dev").freeze == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{every: fri 18:00 - fri 18:00, reason: x}",
            "freeze[0].every: 'fri 18:00 - fri 18:00' starts where it ends",
        ),
        (
            "{every: fri 24:00 - sat 01:00, reason: x}",
            "freeze[0].every: 'fri 24:00 - sat 01:00': 24:00 is not a time of day",
        ),
        (
            "{every: someday 18:00 - mon 06:00, reason: x}",
            "freeze[0].every: 'someday' is not a day of the week",
        ),
        (
            "{every: friday evening, reason: x}",
            "freeze[0].every: 'friday evening': write a weekly window as DAY HH:MM - DAY HH:MM",
        ),
        (
            "{every: fri 18:00 - mon 06:00, timezone: Mars/Base, reason: x}",
            "freeze[0].timezone: 'Mars/Base' is not a time zone",
        ),
        (
            "{every: fri 18:00 - mon 06:00, to: 2027-01-01, reason: x}",
            "freeze[0].every: a window is weekly (every) or a range",
        ),
        ("{from: 2026-12-23, reason: x}", "freeze[0].to: required"),
        ("{to: 2026-12-23, reason: x}", "freeze[0].from: required"),
        (
            "{from: 2026-12-23, to: 2026-12-22, reason: x}",
            "freeze[0].to: '2026-12-22' is not after from",
        ),
        (
            "{from: '2026-12-23T00:00+01:00', to: 2027-01-01, reason: x}",
            "(no offset: set the window's timezone instead)",
        ),
        (
            "{from: 2026-12-23T00:00:00+01:00, to: 2027-01-01, reason: x}",
            "freeze[0].from: '2026-12-23T00:00:00+01:00'",
        ),
        ("{from: 2026-12-32, to: 2027-01-01, reason: x}", "not valid YAML: day is out of range"),
        ("{every: fri 18:00 - mon 06:00}", "freeze[0].reason: required key is missing"),
        ("{every: fri 18:00 - mon 06:00, reason: ' '}", "freeze[0].reason: must not be empty"),
        ('{every: fri 18:00 - mon 06:00, reason: "a\\nb"}', "freeze[0].reason: one line"),
        ("{every: fri 18:00 - mon 06:00, reason: x, days: [sat]}", "freeze[0].days: unknown key"),
    ],
)
def test_glue_yaml_names_the_key_of_a_bad_window(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(with_freeze(f"      - {entry}\n"))
    text = caught.value.message
    assert text.startswith("glue.yaml:")
    assert (f"environments[2].{message}" if message.startswith("freeze[") else message) in text


# --------------------------------------------------------------------------- the record


def test_the_deploy_record_keeps_a_freeze_entry_only_when_there_is_one() -> None:
    entry = {"until": "2026-03-30T04:00:00Z", "override": {"reason": "INC-42", "by": "dev1"}}
    record = DeployRecord(environment="prod", services={}, freeze=entry)
    data = record.to_data()
    assert data["freeze.json"] == (
        '{"override": {"by": "dev1", "reason": "INC-42"}, "until": "2026-03-30T04:00:00Z"}'
    )
    assert DeployRecord.from_data(data).freeze == entry
    plain = DeployRecord(environment="prod", services={}).to_data()
    assert "freeze.json" not in plain and DeployRecord.from_data(plain).freeze == {}


def test_a_machine_without_a_time_zone_database_is_told_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoneinfo

    # No system database (an empty folder) and no tzdata package (glue depends on it,
    # but an install can lack it): zoneinfo finds no zone at all.
    monkeypatch.setitem(sys.modules, "tzdata", None)
    monkeypatch.setitem(sys.modules, "tzdata.zoneinfo", None)
    zoneinfo.reset_tzpath([str(tmp_path)])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        with pytest.raises(ValueError, match="this machine has no time zone database"):
            freeze.zone("Pacific/Chatham")
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
    monkeypatch.undo()
    assert freeze.zone("Pacific/Chatham") is not None
