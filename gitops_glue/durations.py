"""Durations as people write them on the command line: ``90s``, ``10m``, ``1h``, ``1m30s``."""

from __future__ import annotations

import re

from gitops_glue.errors import UsageError


def span(seconds: float) -> str:
    """Seconds as people read them: ``45s``, ``2m05s``."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h``, ``1m30s`` -> seconds."""
    match = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"{text!r} is not a duration", hint="use forms like 90s, 10m or 1h")
    h, m, s = match.groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)
