"""Key paths: how a user names one value inside a YAML document.

Syntax (documented in README.md):

* ``a.image.tag`` -- mapping keys separated by dots;
* ``containers.0.image`` -- a number indexes a sequence (and is the key ``"0"``
  in a mapping); ``containers[0].image`` and ``[-1]`` (last item) work too;
* ``annotations["example.com/rev"]`` or ``annotations.example\\.com/rev`` --
  a key that contains dots, quoted in brackets or with ``\\.`` escapes.
"""

from __future__ import annotations

from typing import NamedTuple

from gitops_glue.errors import UsageError
from gitops_glue.inputs import MAX_KEY_PATH


class Segment(NamedTuple):
    """One step of a key path."""

    key: str | int
    #: True when the user quoted the key (``["0"]``): never a sequence index.
    quoted: bool = False

    def __str__(self) -> str:
        return str(self.key)

    def seq_index(self) -> int | None:
        """The sequence index this segment stands for, if any."""
        if isinstance(self.key, int):
            return self.key
        if not self.quoted and _is_int(self.key):
            return int(self.key)
        return None


KeyPath = tuple[Segment, ...]


def _is_int(text: str) -> bool:
    body = text[1:] if text.startswith("-") else text
    return body.isdigit()


def parse(path: str) -> KeyPath:
    """Parse a key path; raise :class:`UsageError` naming the problem."""
    if not path or not path.strip():
        raise UsageError("empty key path", hint="write it like a.image.tag")
    if len(path) > MAX_KEY_PATH:
        raise UsageError(
            f"key path of {len(path)} characters, longer than the limit of {MAX_KEY_PATH}: "
            f"{path[:40]!r}...",
            hint="see Limits in docs/config.md",
        )
    segments: list[Segment] = []
    buf: list[str] = []
    have_plain = False  # a plain segment is being collected in buf
    i = 0
    n = len(path)

    def bad(why: str) -> UsageError:
        return UsageError(
            f"invalid key path {path!r} at character {i + 1}: {why}",
            hint='use dots between keys, [N] for list items, ["a.b"] for keys with dots',
        )

    def flush() -> None:
        nonlocal have_plain
        if have_plain:
            if not buf:
                raise bad("empty key")
            segments.append(Segment("".join(buf)))
            buf.clear()
            have_plain = False

    expect_key = True  # at start or after a dot
    while i < n:
        c = path[i]
        if c == "\\":
            if i + 1 >= n:
                raise bad("dangling backslash")
            buf.append(path[i + 1])
            have_plain = True
            expect_key = False
            i += 2
            continue
        if c == ".":
            if expect_key and not have_plain:
                raise bad("empty key")
            flush()
            expect_key = True
            i += 1
            continue
        if c == "[":
            flush()
            close = _find_bracket_end(path, i)
            if close < 0:
                raise bad("unclosed [")
            inner = path[i + 1 : close].strip()
            if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
                segments.append(Segment(_unquote(inner), quoted=True))
            elif _is_int(inner):
                segments.append(Segment(int(inner)))
            else:
                raise bad('brackets hold a list index [0] or a quoted key ["a.b"]')
            i = close + 1
            expect_key = False
            if i < n and path[i] not in ".[":
                raise bad("expected . or [ after ]")
            if i < n and path[i] == ".":
                i += 1
                expect_key = True
                if i >= n:
                    raise bad("path ends with a dot")
            continue
        buf.append(c)
        have_plain = True
        expect_key = False
        i += 1
    if expect_key and not have_plain and segments:
        raise bad("path ends with a dot")
    flush()
    return tuple(segments)


def _find_bracket_end(path: str, start: int) -> int:
    quote: str | None = None
    j = start + 1
    while j < len(path):
        c = path[j]
        if quote:
            if c == "\\":
                j += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "]":
            return j
        j += 1
    return -1


def _unquote(text: str) -> str:
    body = text[1:-1]
    out: list[str] = []
    k = 0
    while k < len(body):
        if body[k] == "\\" and k + 1 < len(body):
            out.append(body[k + 1])
            k += 2
        else:
            out.append(body[k])
            k += 1
    return "".join(out)


def render(path: KeyPath) -> str:
    """The canonical text form of a parsed path (round-trips through parse)."""
    parts: list[str] = []
    for seg in path:
        if isinstance(seg.key, int):
            parts.append(f"[{seg.key}]")
        elif seg.quoted or any(ch in seg.key for ch in ".[]\\\"'") or not seg.key:
            escaped = seg.key.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'["{escaped}"]')
        else:
            parts.append(("." if parts else "") + seg.key)
    return "".join(parts)
