"""Limits and checks on what users and files hand to glue (documented in docs/config.md).

Every value that ends up on one line of a commit message or of a values file
goes through :func:`check_line`; every regular expression from ``glue.yaml``
through :func:`check_regex_cost`; the YAML reader (:mod:`gitops_glue.repo.values`)
enforces the size, depth and alias limits. Each refusal is a
:class:`~gitops_glue.errors.UsageError` (exit 2) raised before any work is done.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from gitops_glue.errors import UsageError

#: Largest values file or glue.yaml glue reads (a 4,700-line chart values file is ~150 KB).
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Deepest nesting of mappings and lists, also counted through aliases.
MAX_DEPTH = 100
#: Most nodes one YAML document may stand for with every alias expanded (alias bombs).
MAX_EXPANDED_NODES = 1_000_000
#: Longest key path (``a.image.tag``).
MAX_KEY_PATH = 1000
#: Longest single-line value (revision, repository URL, CI fields...). Tags: 128.
MAX_LINE_VALUE = 1000

#: Characters that end or break a line for some reader: ASCII controls (newline, tab,
#: ESC...), the C1 controls U+0080-U+009F (U+0085 is NEXT LINE), and Unicode's line and
#: paragraph separators U+2028/U+2029. Python's ``str.splitlines`` splits on several of
#: them, git on none but ``\n``: a value holding one reads as one line to git and as
#: several to other tools, so none may enter a line glue writes.
LINE_BREAKERS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL = re.compile(f"[{LINE_BREAKERS}]")


def find_line_breaker(value: str) -> re.Match[str] | None:
    """The first character of :data:`LINE_BREAKERS` in ``value``, or None."""
    return _CONTROL.search(value)


def describe_char(ch: str) -> str:
    """``'\\n' (U+000A)``: a character as a person can read it in a message."""
    return f"{ch!r} (U+{ord(ch):04X})"


def check_line(what: str, value: str, *, limit: int = MAX_LINE_VALUE) -> None:
    """Refuse control characters (newline, tab, ESC, C1 controls, U+2028/U+2029) and
    over-long values in ``value``.

    ``what`` names the value for the message, like ``--revision``.
    """
    bad = _CONTROL.search(value)
    if bad:
        raise UsageError(
            f"{what}: control character {describe_char(bad.group())} at position "
            f"{bad.start() + 1} in {_preview(value)}",
            hint="this value goes on one line of a commit message or values file; "
            "remove newlines, tabs, line separators and other control characters",
        )
    if len(value) > limit:
        raise UsageError(
            f"{what}: {len(value)} characters, more than the limit of {limit}",
            hint="see Limits in docs/config.md",
        )


def _preview(value: str, width: int = 60) -> str:
    shown = value if len(value) <= width else value[:width] + "..."
    return repr(shown)


# --------------------------------------------------------------------------- regular expressions


def _parser() -> ModuleType:
    """The ``re`` module's own parser (``re._parser``; ``sre_parse`` before Python 3.11)."""
    import importlib

    try:
        return importlib.import_module("re._parser")
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        return importlib.import_module("sre_parse")


def check_regex_cost(pattern: str) -> None:
    """Refuse a pattern whose matching can take exponential time (``^(a+)+b$``).

    Python's ``re`` backtracks. A repetition that can repeat more than once and
    holds another such repetition, or an alternation (``(a|a)+``), can try an
    exponential number of ways to split a tag before it fails. Such patterns are
    refused when glue.yaml is loaded (raises ValueError, for the config model);
    write the repetition once (``[0-9.]+``) instead.
    """
    sre = _parser()
    try:
        parsed = sre.parse(pattern)
    except re.error:
        return  # compiling reports it
    max_repeat = sre.MAXREPEAT
    repeats = {
        sre.MAX_REPEAT,
        sre.MIN_REPEAT,
        getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT),
    }
    branch = sre.BRANCH

    def walk(items: Any, inside_repeat: bool) -> str | None:
        for op, arg in items:
            if op in repeats:
                low, high, body = arg
                many = high == max_repeat or high > 1
                if inside_repeat and low != high:
                    return "a variable repetition inside a repetition"
                found = walk(body, inside_repeat or many)
                if found:
                    return found
            elif op == branch:
                if inside_repeat:
                    return "an alternation (|) inside a repetition"
                for alt in arg[1]:
                    found = walk(alt, inside_repeat)
                    if found:
                        return found
            elif hasattr(arg, "data"):  # an atomic group
                found = walk(arg, inside_repeat)
                if found:
                    return found
            elif isinstance(arg, tuple):
                for part in arg:
                    if hasattr(part, "data"):  # a subpattern (group, lookaround)
                        found = walk(part, inside_repeat)
                        if found:
                            return found
        return None

    problem = walk(parsed, False)
    if problem:
        raise ValueError(
            f"{problem} can take exponential time to match (like ^(a+)+b$); "
            "write the repetition once, like [0-9.]+ instead of ([0-9]+\\.?)+"
        )


def check_lines(values: dict[str, str | None]) -> None:
    """:func:`check_line` on every value that is set, named by its key."""
    for what, value in values.items():
        if value:
            check_line(what, value)
