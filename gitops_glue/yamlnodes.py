"""YAML text parsed into located nodes: the shared reader of values files and glue.yaml.

Each node keeps where it sits in the text (character index, line, column), so
:mod:`gitops_glue.repo.values` can change one scalar by splicing the original text, and
:mod:`gitops_glue.config` can refuse what glue's limits exclude before anything is built.

Two parsers give the same nodes. libyaml's (PyYAML's C extension, installed with glue)
reads a 4,700-line values file into nodes ~8x faster than ruamel.yaml's pure-Python one,
and is used where the two read a text the same way; ruamel's reads the rest, and every
text libyaml refuses, so what glue accepts and the messages it gives do not depend on
which one ran (tests/unit/repo/test_values_paths.py holds them to that).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from gitops_glue import inputs
from gitops_glue.errors import YamlEditError

NodeKind = Literal["scalar", "alias", "map", "seq"]

#: Text libyaml reads differently from ruamel.yaml goes to ruamel.yaml alone: a tab
#: (ruamel refuses one after a value), a byte-order mark (libyaml's marks do not count a
#: leading one, and it drops one inside the text), the line breaks of YAML 1.1 (NEL, LS,
#: PS: they move the lines of all later marks), a lone surrogate (libyaml takes UTF-8), a
#: comment right after a block scalar's header (``|-#``) and directives (``%YAML 1.2#``):
#: libyaml reads them, ruamel refuses them.
_LIBYAML_DIFFERS = re.compile(
    r"[\t\ufeff\x85\u2028\u2029\ud800-\udfff]|[|>][-+1-9]{0,2}#|^%", re.MULTILINE
)


@dataclass(eq=False, slots=True)
class Node:
    """A node of one YAML document, with its place in the source text."""

    kind: NodeKind
    start: int
    end: int
    line: int
    column: int
    flow: bool = False  # a flow collection, or a scalar inside one
    style: str | None = None
    value: str | None = None
    anchor: str | None = None
    tag: str | None = None
    plain: bool = False  # a plain scalar whose type is resolved implicitly
    keys: list[Node] = field(default_factory=list)  # map: key nodes, in order
    items: list[Node] = field(default_factory=list)  # map: values / seq: items
    last_end: int = 0  # index just after the last character of the content
    size: int = 1  # nodes this node stands for, aliases expanded
    height: int = 0  # nesting of collections below and including this one, aliases expanded

    def child(self, key: str) -> Node | None:
        for k, v in zip(self.keys, self.items, strict=True):
            if k.kind == "scalar" and k.value == key:
                return v
        return None

    def key_names(self) -> list[str]:
        return [str(k.value) for k in self.keys if k.kind == "scalar"]


@dataclass
class Document:
    root: Node | None
    anchors: dict[str, Node]


def _check_size(text: str, filename: str) -> None:
    limit = inputs.MAX_FILE_BYTES
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8")) > limit):
        raise YamlEditError(
            f"{filename}: larger than glue's limit of {limit // (1024 * 1024)} MiB",
            hint="see Limits in docs/config.md",
        )


def _check_unique_keys(mapping: Node, filename: str) -> None:
    """Refuse a mapping that names a key twice: glue would read the first, Helm the last."""
    seen: dict[str, Node] = {}
    for key in mapping.keys:
        if key.kind != "scalar" or key.value is None:
            continue
        first = seen.setdefault(key.value, key)
        if first is not key:
            shown = key.value if len(key.value) <= 60 else key.value[:60] + "..."
            raise YamlEditError(
                f"{filename}:{key.line + 1}: duplicate key {shown!r} (first on line "
                f"{first.line + 1}, again on line {key.line + 1})",
                hint="YAML readers disagree on which one counts (Helm takes the last); "
                "remove one of them",
            )


def pure_yaml() -> Any:
    """ruamel.yaml's pure-Python parser. The safe one: the round-trip parser marks the
    folds of a ``>`` scalar in its value with ``\\a``."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True)


class _LibyamlGaveUp(Exception):
    """libyaml refused the text, or read a part ruamel.yaml may read differently: parse it
    again, whole, with the pure-Python parser."""


def _has_libyaml() -> bool:
    import yaml  # type: ignore[import-untyped]

    return hasattr(yaml, "CSafeLoader")  # not when PyYAML was built without libyaml


def _name_ends(text: str, index: int) -> bool:
    """Whether an anchor's or alias's name ends at ``index`` for ruamel.yaml too: libyaml
    stops at the first character not in ``[A-Za-z0-9_-]``, ruamel reads on (``*a:``)."""
    return index >= len(text) or text[index] in " \r\n,[]{}"


def _libyaml_events(text: str) -> Iterator[Any]:
    """libyaml's parse events of ``text``, as ruamel.yaml's parser gives them (~30x
    faster). Raises _LibyamlGaveUp where libyaml refuses the text or may read it
    differently: tags (the parsers check their handles differently), a single-pair
    mapping in a flow sequence (``['a':1]``: ruamel refuses some), a block scalar at a
    document's root (they end it at different lines) or starting with an empty line
    (ruamel refuses some), anchor and alias names followed by more than a space or a flow
    indicator. The events sent before may
    already differ from ruamel's (``{a: 0?}`` gives a scalar ``0``, then an error).
    """
    import yaml

    loader = yaml.CSafeLoader(text)
    try:
        previous = ""
        while True:
            try:
                event = loader.get_event()
            except yaml.YAMLError:
                raise _LibyamlGaveUp from None
            name = type(event).__name__
            anchor = getattr(event, "anchor", None)  # an alias's too
            if getattr(event, "tag", None) is not None or (
                anchor and not _name_ends(text, event.start_mark.index + 1 + len(anchor))
            ):
                raise _LibyamlGaveUp
            if name == "ScalarEvent":
                if previous == "DocumentStartEvent" and event.style in ("|", ">"):
                    raise _LibyamlGaveUp
                if event.style in ("|", ">") and event.value.startswith("\n"):
                    raise _LibyamlGaveUp  # ruamel refuses some empty first lines
                if event.style == "":
                    event.style = None  # libyaml's plain style; the pure parser's is None
            elif (
                name == "MappingStartEvent"
                and event.flow_style
                and anchor is None
                and text[event.start_mark.index] != "{"
            ):
                raise _LibyamlGaveUp
            yield event
            if name == "StreamEndEvent":
                return
            previous = name
    finally:
        loader.dispose()


def _ruamel_events(text: str, filename: str) -> Iterator[Any]:
    """ruamel.yaml's parse events of ``text``; bad YAML raises YamlEditError."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        yield from pure_yaml().parse(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        raise YamlEditError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except (YAMLError, AssertionError) as exc:  # AssertionError: a %YAML 1.3 directive
        raise YamlEditError(f"{filename}: not valid YAML: {exc}") from None


def parse_documents(text: str, filename: str = "<text>", *, pure: bool = False) -> list[Document]:
    """Parse YAML text into located nodes; raise YamlEditError on bad YAML. With
    ``pure``, ruamel.yaml's parser alone.

    Also refuses what glue's limits (docs/config.md) exclude: files over
    ``MAX_FILE_BYTES``, nesting deeper than ``MAX_DEPTH`` (aliases included),
    documents that stand for more than ``MAX_EXPANDED_NODES`` nodes once aliases
    are expanded (alias bombs), aliases of a collection inside itself, and
    duplicate keys in any mapping.
    """
    _check_size(text, filename)
    if not pure and not _LIBYAML_DIFFERS.search(text) and _has_libyaml():
        try:
            return _build(_libyaml_events(text), text, filename)
        except _LibyamlGaveUp:
            pass
    return _build(_ruamel_events(text, filename), text, filename)


def _build(events: Iterator[Any], text: str, filename: str) -> list[Document]:
    """Located nodes from parse events, with glue's limits checked as they come."""
    docs: list[Document] = []
    stack: list[Node] = []
    anchors: dict[str, Node] = {}
    root: Node | None = None

    def too_big(node: Node) -> YamlEditError:
        return YamlEditError(
            f"{filename}:{node.line + 1}: with its aliases expanded this document has more "
            f"than {inputs.MAX_EXPANDED_NODES:,} values (an alias bomb?)",
            hint="see Limits in docs/config.md",
        )

    def too_deep(node: Node) -> YamlEditError:
        return YamlEditError(
            f"{filename}:{node.line + 1}: nested more than {inputs.MAX_DEPTH} levels deep "
            "(aliases included)",
            hint="see Limits in docs/config.md",
        )

    def attach(node: Node) -> None:
        nonlocal root
        if len(stack) + node.height > inputs.MAX_DEPTH:
            raise too_deep(node)
        if not stack:
            root = node
            return
        parent = stack[-1]
        if parent.kind == "map" and len(parent.keys) == len(parent.items):
            parent.keys.append(node)
        else:
            parent.items.append(node)

    previous_end = 0  # where the event before this one ended
    counted = (0, 0)  # an index and the line it is on: empty values' lines count on from it
    for e in events:
        event = type(e).__name__
        sm, em = e.start_mark, e.end_mark
        end = em.index
        in_flow = bool(stack) and stack[-1].flow
        if event == "DocumentStartEvent":
            stack, anchors, root = [], {}, None
        elif event == "DocumentEndEvent":
            if root is not None and root.kind == "scalar" and root.plain and not root.value:
                root = None  # nothing but a document marker: an empty document
            docs.append(Document(root, anchors))
        elif event == "ScalarEvent":
            plain = e.style is None and bool(e.implicit and e.implicit[0]) and e.tag is None
            start, line, column = sm.index, sm.line, sm.column
            if start == end:
                # An empty value: the parsers place it differently (after the ``:``, or at
                # the next token); here, just after what came before it.
                start = end = previous_end
                at, line = counted if counted[0] <= start else (0, 0)
                line += text.count("\n", at, start)
                counted = (start, line)
                column = start - text.rfind("\n", 0, start) - 1
            node = Node(
                "scalar",
                start,
                end,
                line,
                column,
                flow=in_flow,
                style=e.style,
                value=e.value,
                anchor=e.anchor,
                tag=e.tag,
                plain=plain,
                last_end=end,
            )
            if e.anchor:
                anchors[e.anchor] = node
            attach(node)
        elif event == "AliasEvent":
            alias = Node(
                "alias",
                sm.index,
                em.index,
                sm.line,
                sm.column,
                flow=in_flow,
                anchor=e.anchor,
                last_end=em.index,
            )
            target = anchors.get(e.anchor) if e.anchor else None
            if target is not None:
                if any(target is open_node for open_node in stack):
                    raise YamlEditError(
                        f"{filename}:{sm.line + 1}:{sm.column + 1}: alias *{e.anchor} "
                        "refers to a collection it is inside of (an endless value)",
                        hint="an alias can only repeat a value that is complete",
                    )
                alias.size, alias.height = target.size, target.height
            attach(alias)
        elif event in ("MappingStartEvent", "SequenceStartEvent"):
            kind: NodeKind = "map" if event == "MappingStartEvent" else "seq"
            node = Node(
                kind,
                sm.index,
                em.index,
                sm.line,
                sm.column,
                flow=bool(e.flow_style) or in_flow,
                anchor=e.anchor,
                tag=e.tag,
                last_end=em.index,
            )
            if e.anchor:
                anchors[e.anchor] = node
            node.height = 1
            attach(node)
            stack.append(node)
        elif event in ("MappingEndEvent", "SequenceEndEvent"):
            node = stack.pop()
            node.end = em.index
            if node.flow:
                node.last_end = em.index
            elif node.items:  # the last value in the text ends after all the others
                node.last_end = max(node.last_end, node.items[-1].last_end)
            children = [*node.keys, *node.items]
            node.size = 1 + sum(c.size for c in children)
            node.height = 1 + max((c.height for c in children), default=0)
            if node.size > inputs.MAX_EXPANDED_NODES:
                raise too_big(node)
            if len(stack) + node.height > inputs.MAX_DEPTH:
                raise too_deep(node)
            if node.kind == "map":
                _check_unique_keys(node, filename)
        previous_end = end
    return docs
