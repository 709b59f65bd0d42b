"""Durations as people write them on the command line: ``90s``, ``10m``, ``1h``, ``1m30s``;
and the instants glue reads back from records, Kubernetes and Helm (:func:`parse_instant`).

Every duration glue reads (``--timeout``, ``--interval``, ``--min-age``, ``min_age`` in
glue.yaml...) goes through :func:`parse_duration`, which refuses what no clock can wait
for: more than :data:`MAX_SECONDS` (a year), however many digits it is written with.
"""

from __future__ import annotations

import datetime as dt
import re

from gitops_glue.errors import UsageError

#: The longest duration glue accepts: a year. Longer is a typo, and past some length
#: the number no longer fits the clocks and sleeps that use it.
MAX_SECONDS = 365 * 24 * 3600
#: More digits than any duration up to :data:`MAX_SECONDS` needs, in any unit.
_MAX_DIGITS = 9
#: Longer text is not a duration; refused before the pattern looks at it.
_MAX_TEXT = 1000

_FORM = re.compile(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)(?:\.(\d+))?s?)?\s*")
_HINT = "use forms like 90s, 10m or 1h"


def parse_instant(value: object) -> dt.datetime | None:
    """An ISO 8601 time as records, Kubernetes and Helm write it (``...Z`` or an offset),
    or a datetime a YAML or JSON reader made of it; a time without an offset is UTC.
    None when ``value`` is empty or no time."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def span(seconds: float) -> str:
    """Seconds as people read them: ``45s``, ``2m05s``."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h``, ``1m30s`` -> seconds (at most :data:`MAX_SECONDS`)."""
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    match = _FORM.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"{shown} is not a duration", hint=_HINT)
    h, m, s, fraction = match.groups()
    too_long = UsageError(
        f"{shown} is longer than the limit of a year ({MAX_SECONDS // 3600}h)",
        hint=f"{_HINT}; durations are at most {MAX_SECONDS // 3600}h",
    )
    if any(len(part.lstrip("0")) > _MAX_DIGITS for part in (h, m, s) if part):
        raise too_long
    seconds = int(h or 0) * 3600 + int(m or 0) * 60 + int(s or 0)
    if seconds > MAX_SECONDS:
        raise too_long
    return seconds + float(f"0.{fraction[:_MAX_DIGITS]}" if fraction else 0)
