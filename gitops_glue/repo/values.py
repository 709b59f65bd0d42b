"""Read and change one value in a YAML file without touching anything else.

Dump-after-load editors (yq, most YAML libraries) re-serialise the whole file,
and users of GitOps tools that use them report dropped blank lines, folded
block scalars, lost anchors and erased comments. This module instead parses
the text only to *locate* the scalar (:mod:`gitops_glue.yamlnodes`: libyaml's
parser, ruamel.yaml's where a key is added), then replaces exactly that slice
of the original text. Everything else -- comments (also the one on
the changed line), blank lines, key order, quoting, indentation, anchors,
document markers, line endings -- stays byte-for-byte as it was. After every
edit the result is parsed again and checked to hold the new value.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

from gitops_glue import keypath as kp
from gitops_glue.errors import YamlEditError
from gitops_glue.yamlnodes import Document, Node, parse_documents, pure_yaml

__all__ = [
    "EditResult",
    "Lookup",
    "get_value",
    "lookup",
    "render_scalar",
    "scalar_is_string",
    "set_value",
    "to_python",
]

_STR_TAG = "tag:yaml.org,2002:str"


# --------------------------------------------------------------------------- lookup


@dataclass
class Lookup:
    """Where a key path leads inside one document."""

    document: int
    node: Node | None  # the node found, None when the path is missing
    parent: Node | None  # deepest mapping reached through the document's own keys
    missing: kp.KeyPath  # the segments below ``parent`` that --create would add
    via_merge: bool = False  # reached through a ``<<`` merge key or an alias


def _deref(doc: Document, node: Node) -> Node:
    seen = 0
    while node.kind == "alias" and node.anchor in doc.anchors and seen < 100:
        node = doc.anchors[node.anchor]
        seen += 1
    return node


def _merged_child(doc: Document, mapping: Node, key: str) -> Node | None:
    merge = mapping.child("<<")
    if merge is None:
        return None
    merge = _deref(doc, merge)
    sources = [_deref(doc, m) for m in merge.items] if merge.kind == "seq" else [merge]
    for src in sources:
        if src.kind == "map":
            found = src.child(key)
            if found is None:
                found = _merged_child(doc, src, key)
            if found is not None:
                return found
    return None


def _describe(path: kp.KeyPath) -> str:
    return kp.render(path) if path else "the document root"


def _lookup_in(doc: Document, index: int, path: kp.KeyPath) -> Lookup:
    node = doc.root
    # The deepest mapping reached through this document's own keys (not through a
    # merge key or an alias): where --create adds what is missing.
    local: Node | None = node if node is not None and node.kind == "map" else None
    local_depth = 0
    direct = True
    for depth, seg in enumerate(path):
        here = path[:depth]
        if node is None:
            return Lookup(index, None, local, path[local_depth:], not direct)
        if node.kind == "alias":
            direct = False
        current = _deref(doc, node)
        if current.kind == "map":
            if direct:
                local, local_depth = current, depth
            child = current.child(str(seg.key))
            if child is None:
                child = _merged_child(doc, current, str(seg.key))
                if child is None:
                    return Lookup(index, None, local, path[local_depth:], not direct)
                direct = False
            node = child
        elif current.kind == "seq":
            idx = seg.seq_index()
            if idx is None:
                raise YamlEditError(
                    f"{_describe(here)} is a list: {seg.key!r} is not a list index",
                    hint="address list items by number, like containers.0.image",
                )
            if idx < 0:
                idx += len(current.items)
            if not 0 <= idx < len(current.items):
                raise YamlEditError(
                    f"{_describe(here)} has {len(current.items)} item(s): "
                    f"index {seg.key} is out of range",
                )
            node = current.items[idx]
        else:
            raise YamlEditError(
                f"{_describe(here)} is a single value, so it has no key {str(seg.key)!r}"
            )
    return Lookup(index, node, local, path[local_depth:], not direct)


def lookup(docs: list[Document], path: kp.KeyPath, document: int | None = None) -> Lookup:
    """Find ``path``; in the given document, or the first one that has it."""
    if not docs:
        return Lookup(0, None, None, path)
    if document is not None:
        if not 0 <= document < len(docs):
            raise YamlEditError(
                f"the file has {len(docs)} document(s); there is no document {document}"
            )
        return _lookup_in(docs[document], document, path)
    first: Lookup | None = None
    for i, doc in enumerate(docs):
        found = _lookup_in(doc, i, path)
        if found.node is not None:
            return found
        first = first or found
    assert first is not None
    return first


# --------------------------------------------------------------------------- values


def _resolve_plain(value: str, version: tuple[int, int]) -> str:
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    resolver = VersionedResolver(version=version)
    return str(resolver.resolve(ScalarNode, value, (True, False)))


def scalar_is_string(node: Node) -> bool:
    """True when YAML reads this scalar as a string."""
    if node.kind != "scalar":
        return False
    if node.tag is not None:
        return node.tag in ("!!str", _STR_TAG)
    if not node.plain:
        return True
    return _resolve_plain(node.value or "", (1, 2)) == _STR_TAG


def to_python(doc: Document, node: Node | None) -> Any:
    """The plain Python value of a node (aliases and merges resolved)."""
    if node is None:
        return None
    node = _deref(doc, node)
    if node.kind == "map":
        out: dict[str, Any] = {}
        merge = node.child("<<")
        if merge is not None:
            merged = to_python(doc, merge)
            for m in merged if isinstance(merged, list) else [merged]:
                if isinstance(m, dict):
                    for k, v in m.items():
                        out.setdefault(k, v)
        for k, v in zip(node.keys, node.items, strict=True):
            if k.value != "<<":
                out[str(to_python(doc, k))] = to_python(doc, v)
        return out
    if node.kind == "seq":
        return [to_python(doc, item) for item in node.items]
    if scalar_is_string(node):
        return node.value
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(node.value or "")


def get_value(
    text: str, path: str, *, filename: str = "<text>", document: int | None = None
) -> Any:
    """The value at ``path`` (a scalar, or a dict/list for collections)."""
    parsed = kp.parse(path)
    docs = parse_documents(text, filename)
    found = lookup(docs, parsed, document)
    if found.node is None:
        raise _missing_error(filename, parsed, found)
    return to_python(docs[found.document], found.node)


def _missing_error(filename: str, path: kp.KeyPath, found: Lookup) -> YamlEditError:
    have = ""
    if found.parent is not None and found.parent.kind == "map":
        names = found.parent.key_names()
        if names:
            have = f" (keys there: {', '.join(names[:12])})"
    missing_from = path[: len(path) - len(found.missing)]
    return YamlEditError(
        f"{filename}: no key {str(found.missing[0].key)!r} under {_describe(missing_from)}{have}",
        hint="check the key path, or pass --create to add it",
    )


# --------------------------------------------------------------------------- rendering

_NEEDS_DOUBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\n\t\\]")


def _plain_ok(value: str, *, as_string: bool, in_flow: bool) -> bool:
    """Can ``value`` be written as a plain scalar and read back the same?"""
    if not value or value != value.strip() or _NEEDS_DOUBLE.search(value):
        return False
    from ruamel.yaml import events as ev
    from ruamel.yaml.error import YAMLError

    probe = f"[{value}]" if in_flow else f"k: {value}\n"
    try:
        scalars = [
            e for e in pure_yaml().parse(io.StringIO(probe)) if isinstance(e, ev.ScalarEvent)
        ]
    except YAMLError:
        return False
    want = 1 if in_flow else 2
    if len(scalars) != want or scalars[-1].value != value or scalars[-1].style is not None:
        return False
    if as_string:
        # Quote anything that YAML 1.1 (Helm, go-yaml) or 1.2 reads as non-string.
        return all(_resolve_plain(value, v) == _STR_TAG for v in ((1, 1), (1, 2)))
    return True


def _double(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _single(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def render_scalar(value: str, *, style: str | None, as_string: bool, in_flow: bool) -> str:
    """Text for a scalar, in ``style`` where that can hold the value."""
    if style == '"' or (style != "'" and _NEEDS_DOUBLE.search(value)):
        return _double(value)
    if style == "'":
        return _single(value) if "\n" not in value else _double(value)
    if _plain_ok(value, as_string=as_string, in_flow=in_flow):
        return value
    return _double(value) if "'" in value and '"' not in value else _single(value)


def _render_block(original: str, value: str, newline: str) -> str:
    """Rewrite a block scalar (``|`` or ``>``) keeping its header and indentation."""
    lines = original.split(newline) if newline in original else original.split("\n")
    header = lines[0]
    indicator = header.split("#", 1)[0].strip()
    content = [ln for ln in lines[1:] if ln.strip()]
    indent = (len(content[0]) - len(content[0].lstrip(" "))) if content else 2
    # Trailing blank lines of the original slice belong after the new content.
    tail_count = 0
    for ln in reversed(lines[1:]):
        if ln.strip():
            break
        tail_count += 1
    body = value[:-1] if value.endswith("\n") else value
    chomp = "" if value.endswith("\n") else "-"
    style = "|" if "\n" in body else indicator[0]
    new_header = style + chomp + header[len(header.split("#", 1)[0].rstrip()) :]
    pad = " " * indent
    out = [new_header] + [pad + ln if ln else "" for ln in body.split("\n")]
    return newline.join(out) + newline * max(tail_count, 1 if original.endswith("\n") else 0)


def _newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


# --------------------------------------------------------------------------- edits


@dataclass(frozen=True)
class EditResult:
    text: str
    old: Any  # the previous value (None when created)
    changed: bool
    created: bool
    line: int  # 1-based line of the changed scalar


def set_value(
    text: str,
    path: str,
    value: str,
    *,
    filename: str = "<text>",
    create: bool = False,
    document: int | None = None,
    force_string: bool = False,
) -> EditResult:
    """Return ``text`` with the scalar at ``path`` set to ``value``.

    Only that scalar's text changes. An existing string stays a string: the
    new value is quoted where YAML would read it as a number, bool or null.
    """
    parsed = kp.parse(path)
    docs = parse_documents(text, filename)
    found = lookup(docs, parsed, document)
    node = found.node
    if node is None or (found.via_merge and node.kind != "alias"):
        if not create:
            if node is not None:
                raise YamlEditError(
                    f"{filename}: {kp.render(parsed)} is inherited through a merge key (<<) "
                    "or an alias; changing it there would change every place that uses it",
                    hint="pass --create to override it at this place only",
                )
            raise _missing_error(filename, parsed, found)
        # New keys go where ruamel.yaml's reading of the text puts the parent's end.
        docs = parse_documents(text, filename, pure=True)
        found = lookup(docs, parsed, document)
        return _create(text, docs, parsed, found, value, filename)
    doc = docs[found.document]
    if node.kind == "alias":
        target = _deref(doc, node)
        as_string = force_string or target.kind != "scalar" or scalar_is_string(target)
        old = to_python(doc, node)
        new_text = render_scalar(value, style=None, as_string=as_string, in_flow=node.flow)
    elif node.kind == "scalar" and node.style is None and not node.value:
        raise YamlEditError(
            f"{filename}:{node.line + 1}: {kp.render(parsed)} has no value written in the "
            "file, so there is no text to change in place",
            hint='write one there first, like  tag: ""',
        )
    elif node.kind == "scalar":
        as_string = force_string or scalar_is_string(node)
        old = to_python(doc, node)
        if old == value and (as_string or str(node.value) == value):
            return EditResult(text, old, False, False, node.line + 1)
        original = text[node.start : node.end]
        prefix_match = re.match(r"(?:[&!][^\s]*\s+)*", original)
        prefix = prefix_match.group() if prefix_match else ""
        if node.style in ("|", ">"):
            new_text = prefix + _render_block(original[len(prefix) :], value, _newline_of(text))
        else:
            new_text = prefix + render_scalar(
                value, style=node.style, as_string=as_string, in_flow=node.flow
            )
    else:
        what = "a mapping" if node.kind == "map" else "a list"
        raise YamlEditError(
            f"{filename}: {kp.render(parsed)} is {what}, not a single value",
            hint="name a key below it, like " + kp.render((*parsed, kp.Segment("key"))),
        )
    result = text[: node.start] + new_text + text[node.end :]
    _verify(result, parsed, found.document, value, filename, as_string)
    return EditResult(result, old, True, False, node.line + 1)


def _block_lines(names: list[str], leaf: str, indent: int) -> list[str]:
    keys = [render_scalar(n, style=None, as_string=True, in_flow=False) for n in names]
    return [
        " " * (indent + 2 * depth) + k + ":" + ("" if depth < len(keys) - 1 else " " + leaf)
        for depth, k in enumerate(keys)
    ]


def _create_in_empty(
    text: str, docs: list[Document], path: kp.KeyPath, value: str, filename: str
) -> EditResult | None:
    """``path`` added in block style to a file with no mapping to extend yet: empty, only
    comments, or an empty ``{}`` (which would otherwise grow as a flow one-liner).
    None: the file has content, and the usual rules apply."""
    root = docs[0].root if len(docs) == 1 else None
    empty_flow = root is not None and root.kind == "map" and root.flow and not root.keys
    if (docs and root is None and len(docs) > 1) or (root is not None and not empty_flow):
        return None
    if any(isinstance(seg.key, int) for seg in path):
        raise YamlEditError(f"{filename}: cannot create list items ({kp.render(path)})")
    nl = _newline_of(text)
    leaf = render_scalar(value, style=None, as_string=True, in_flow=False)
    block = nl.join(_block_lines([str(seg.key) for seg in path], leaf, 0))
    if root is not None:  # {} -> the block, where the braces were
        result = text[: root.start] + block + text[root.end :]
        line = text.count("\n", 0, root.start) + len(path)
    else:
        sep = "" if not text or text.endswith("\n") else nl
        result = text + sep + block + nl
        line = result.count("\n")
    _verify(result, path, 0, value, filename, True)
    return EditResult(result, None, True, True, line)


def _create(
    text: str, docs: list[Document], path: kp.KeyPath, found: Lookup, value: str, filename: str
) -> EditResult:
    done = _create_in_empty(text, docs, path, value, filename)
    if done is not None:
        return done
    parent = found.parent
    missing = found.missing
    if parent is None or parent.kind != "map":
        where = _describe(path[: len(path) - len(missing)])
        raise YamlEditError(
            f"{filename}: cannot add {kp.render(path)}: {where} is not a mapping glue can extend"
        )
    for seg in missing:
        if isinstance(seg.key, int):
            raise YamlEditError(f"{filename}: cannot create list items ({kp.render(path)})")
    names = [str(s.key) for s in missing]
    keys = [render_scalar(n, style=None, as_string=True, in_flow=parent.flow) for n in names]
    leaf = render_scalar(value, style=None, as_string=True, in_flow=parent.flow)
    nl = _newline_of(text)
    if parent.flow:
        nested = leaf
        for k in reversed(keys[1:]):
            nested = "{" + k + ": " + nested + "}"
        entry = keys[0] + ": " + nested
        if parent.items:
            pos, insert = parent.items[-1].last_end, ", " + entry
        else:
            pos, insert = parent.start + 1, entry
    else:
        indent = parent.keys[0].column if parent.keys else parent.column
        lines = _block_lines(names, leaf, indent)
        pos = parent.last_end
        if pos > 0 and text[pos - 1] == "\n":  # block scalar: already at a line start
            insert = nl.join(lines) + nl
        else:
            eol = text.find("\n", pos)
            if eol < 0:
                pos, insert = len(text), nl + nl.join(lines)
            else:
                pos = eol - 1 if text[eol - 1 : eol] == "\r" else eol
                insert = nl + nl.join(lines)
    result = text[:pos] + insert + text[pos:]
    _verify(result, path, found.document, value, filename, True)
    line = result.count("\n", 0, pos) + 1 + (0 if parent.flow else 1)
    return EditResult(result, None, True, True, line)


def _verify(
    result: str, path: kp.KeyPath, document: int, value: str, filename: str, as_string: bool
) -> None:
    """Parse the edited text again: it must hold exactly ``value`` at ``path``."""
    docs = parse_documents(result, filename)
    found = lookup(docs, path, document)
    node = _deref(docs[document], found.node) if found.node is not None else None
    ok = (
        node is not None
        and node.kind == "scalar"
        and node.value == value
        and (not as_string or scalar_is_string(node))
    )
    if not ok:
        raise YamlEditError(
            f"{filename}: internal check failed: setting {kp.render(path)} would not read back "
            f"as {value!r}; the file was left unchanged",
            hint="please report this with the file's layout",
        )
