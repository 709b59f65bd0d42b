"""Durations as people write them, and the ones no clock can wait for."""

from __future__ import annotations

import datetime as dt

import pytest

from gitops_glue.durations import MAX_SECONDS, parse_duration, parse_instant
from gitops_glue.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("10m", 600),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1m30s", 90),
        ("1.5s", 1.5),
        (" 5m ", 300),
        ("8760h", MAX_SECONDS),
        ("1h" + "0" * 300 + "5s", 3605),  # leading zeros are not size
        ("1." + "9" * 400 + "s", pytest.approx(2)),
    ],
)
def test_durations_people_write(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["9" * 400, "9" * 400 + "s", "9" * 400 + "m", "9" * 400 + "h", "8761h", "525601m", "9" * 999],
)
def test_longer_than_a_year_is_a_usage_error_not_an_overflow(text: str) -> None:
    with pytest.raises(UsageError, match=r"longer than the limit of a year \(8760h\)") as caught:
        parse_duration(text)
    assert len(caught.value.message) < 120  # the digits are shortened


@pytest.mark.parametrize("text", ["soon", "", "  ", "1e400", "inf", "nan", "-5s", "9" * 5000])
def test_what_is_not_a_duration_says_so(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-05T10:00:00Z", dt.datetime(2026, 12, 5, 10, tzinfo=dt.timezone.utc)),
        ("2026-12-05T11:00:00+01:00", dt.datetime(2026, 12, 5, 10, tzinfo=dt.timezone.utc)),
        ("2026-12-05T10:00:00", dt.datetime(2026, 12, 5, 10, tzinfo=dt.timezone.utc)),
        (dt.datetime(2026, 12, 5, 10), dt.datetime(2026, 12, 5, 10, tzinfo=dt.timezone.utc)),
        ("", None),
        (None, None),
        ("yesterday", None),
        (1733392800, None),
    ],
)
def test_instants_from_records_kubernetes_and_helm(value: object, expected: object) -> None:
    """Z or an offset; no offset is UTC; anything else is no time, not an error."""
    assert parse_instant(value) == expected
