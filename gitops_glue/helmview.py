"""helmfile's own view of a deployment repository, read safely: for ``glue init``,
``glue check``, ``glue status --cluster`` and every command that needs an environment's
cluster (its ``kubeContext``, see :mod:`gitops_glue.cluster.context`).

What each release of an environment merges, after helmfile's templating: its values
files in order, its inline values and its ``set:`` entries, and the environment's
values files. glue asks helmfile itself (templates are Go templates with helmfile's
own functions), but only ``helmfile --debug -e ENV list --skip-charts``: unlike
``build``, ``template`` and ``write-values`` it runs none of the repository's hooks
and resolves no chart. helmfile prints each state file after templating, which glue
parses. It runs sandboxed: its ``PATH`` holds nothing but ``helm``, so a template's
``exec`` or a hook finds no ``kubectl``; ``KUBECONFIG`` and ``HOME`` point into an
empty private directory, so no cluster can be reached; proxies point at a closed
local port, so nothing is fetched over HTTP.

Which environment value feeds a release's inline values or ``set:`` is found by a
second run in which every string or number of the environment values is replaced by
a marker (``--state-values-file``): where a marker comes out, that value went in.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_glue.errors import GlueError, OperationError, UsageError
from gitops_glue.tools import ANSI, Tools, missing_tool, private_helm_home

_PROCESSING = re.compile(r'^processing file "(?P<file>[^"]+)" in directory "(?P<dir>[^"]*)"')
_RESULT = re.compile(r'^(?:second-pass )?rendering result of "(?P<part>[^"]+)":\s*$')
_NUMBERED = re.compile(r"^\s*\d+: ?(?P<text>.*)$")
_MARKER = re.compile(r"glue-probe-(\d+)-x")


@dataclass(frozen=True)
class SetEntry:
    name: str
    value: Any


@dataclass(frozen=True)
class ReleaseView:
    """One release as helmfile renders it for an environment."""

    name: str
    namespace: str
    #: What the chart gets, in helmfile's order: file paths (repository-relative,
    #: normalised) or inline mappings; then ``set``, which wins.
    values: tuple[str | dict[str, Any], ...]
    sets: tuple[SetEntry, ...]
    #: The same release from the run with marked environment values (None: no probe).
    probed_values: tuple[str | dict[str, Any], ...] | None = None
    probed_sets: tuple[SetEntry, ...] | None = None


@dataclass(frozen=True)
class EnvView:
    name: str
    #: The environment's values files, globs expanded, in helmfile's order.
    values: tuple[str, ...]
    kube_context: str | None
    releases: tuple[ReleaseView, ...]
    #: Environment values entries that are no file (inline mappings).
    inline_values: int = 0
    #: Marker number -> environment value key path (``a.image.tag``).
    markers: dict[int, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _sandbox(tmp: Path, helm: str) -> dict[str, str]:
    """helmfile's environment: only ``helm`` on PATH, no cluster, no network, no home."""
    import shutil

    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    found = shutil.which(helm)
    if found is None:
        raise missing_tool(helm)
    real = Path(found).resolve()
    with real.open("rb") as head:
        if head.read(2) == b"#!":
            raise UsageError(
                f"{found} is a script: glue runs helmfile with nothing but helm on PATH, "
                "where a wrapper cannot find what it calls",
                hint="point GLUE_HELM at the helm binary itself",
            )
    (bin_dir / "helm").symlink_to(real)
    keep = {k: v for k, v in os.environ.items() if not _withheld(k)}
    closed = "http://127.0.0.1:9"
    return {
        **keep,
        **private_helm_home(tmp, tmp / "no-kubeconfig"),
        "PATH": str(bin_dir),
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "ALL_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
    }


def _withheld(name: str) -> bool:
    """Variables that lead to a cluster, a cloud or a home directory's files."""
    upper = name.upper()
    return upper.startswith(("KUBE", "HELM_", "AWS_", "GOOGLE_", "AZURE_", "XDG_")) or upper in (
        "PATH",
        "HOME",
        "SSH_AUTH_SOCK",
    )


def _run(root: Path, env: str, tools: Tools, sandbox: dict[str, str], *extra: str) -> str:
    import shutil

    exe = shutil.which(tools.helmfile)  # found on the caller's PATH, not the sandbox's
    if exe is None:
        raise missing_tool(tools.helmfile)
    args = [exe, "--debug", "-e", env, *extra, "list", "--skip-charts"]
    args += ["--output", "json"]
    try:
        proc = subprocess.run(
            args, cwd=root, env=sandbox, capture_output=True, text=True, timeout=300, check=False
        )
    except FileNotFoundError:
        raise missing_tool(tools.helmfile) from None
    except subprocess.TimeoutExpired:
        raise OperationError(f"helmfile took more than 300 s to read environment {env!r}") from None
    if proc.returncode != 0:
        raise UsageError(
            f"helmfile cannot read the deployment for {env!r}: {_error_of(proc.stderr)}",
            hint="glue runs helmfile without PATH tools, kubeconfig or network (docs/config.md)",
        )
    return proc.stderr


def _error_of(debug: str) -> str:
    """The error in helmfile's debug output (not the rendering it printed before)."""
    lines = [ln for ln in debug.splitlines() if ln.strip() and not _NUMBERED.match(ln)]
    for ln in reversed(lines):
        if ln.startswith(("err:", "Error", "in ")) or "error" in ln.lower():
            return _clean(ln)
    return _clean(lines[-1]) if lines else "(no message)"


def _clean(line: str) -> str:
    return ANSI.sub("", line).strip()[:500]


# --------------------------------------------------------------------------- the files

#: The names helmfile looks for, in its own order of preference.
HELMFILE_NAMES = ("helmfile.yaml", "helmfile.yaml.gotmpl", "helmfile.d")


def find_helmfile(root: Path) -> Path | None:
    """The helmfile state helmfile itself would pick in ``root`` (None: there is none)."""
    for name in HELMFILE_NAMES:
        if (root / name).exists():
            return root / name
    return None


def declared_environments(
    read: Callable[[str], str | None], root: Path | None = None
) -> dict[str, list[str]]:
    """Environment names in the order the helmfile (and its ``bases:``) declares them,
    with the values files written there as plain strings; templated lines are left out.

    A cheap, static reading for ordering and for checks that must not run helmfile;
    where it matters, :func:`environment_view` has helmfile's own answer.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    found: dict[str, list[str]] = {}

    def parse(text: str) -> list[object]:
        parts = []
        for chunk in re.split(r"^---[ \t]*$", text, flags=re.MULTILINE):
            plain = "\n".join(ln for ln in chunk.splitlines() if "{{" not in ln)
            try:
                parts.append(YAML(typ="safe", pure=True).load(plain))
            except YAMLError:
                continue
        return parts

    def visit(name: str, depth: int) -> None:
        text = read(name)
        if text is None or depth > 3:
            return
        for doc in parse(text):
            if not isinstance(doc, dict):
                continue
            for base in doc.get("bases") or []:
                if isinstance(base, str):
                    visit(str(Path(name).parent / base).removeprefix("./"), depth + 1)
            envs = doc.get("environments")
            if isinstance(envs, dict):
                for env, spec in envs.items():
                    values = spec.get("values") if isinstance(spec, dict) else None
                    files = [v for v in values or [] if isinstance(v, str)]
                    found.setdefault(str(env), []).extend(files)

    for name in HELMFILE_NAMES[:2]:
        if read(name) is not None:
            visit(name, 0)
            break
    else:
        if root is not None and (root / "helmfile.d").is_dir():
            for part in sorted((root / "helmfile.d").iterdir()):
                if part.name.endswith((".yaml", ".yaml.gotmpl", ".yml")):
                    visit(f"helmfile.d/{part.name}", 0)
    return found


# --------------------------------------------------------------------------- parsing


@dataclass
class _Part:
    directory: str  # relative to the root, "." for the root helmfile
    file: str
    text: str


_CHDIR = re.compile(r'^changing working directory (?:back )?to "(?P<dir>[^"]+)"')


def _parts(debug: str, root: Path) -> list[_Part]:
    """Each state file part as helmfile rendered it (the last rendering printed), then
    the state files helmfile read without templating (a plain ``helmfile.yaml`` under
    helmfile 1.x), as they are written."""
    parts: dict[tuple[str, str], _Part] = {}
    directory = "."
    base = root.resolve()
    lines = debug.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _PROCESSING.match(line):
            directory = posixpath.normpath(m["dir"] or ".")
        elif m := _CHDIR.match(line):
            directory = posixpath.normpath(os.path.relpath(m["dir"], base))
        elif m := _RESULT.match(line):
            body = []
            i += 1
            while i < len(lines) and (n := _NUMBERED.match(lines[i])):
                body.append(n["text"])
                i += 1
            name = m["part"].rsplit(".part.", 1)[0]
            where = directory
            if os.path.isabs(name):  # helmfile 1.x names helmfile.d's parts by full path
                where = posixpath.normpath(os.path.relpath(os.path.dirname(name), base))
                name = os.path.basename(name)
            parts[(where, m["part"])] = _Part(where, name, "\n".join(body))
            continue
        i += 1
    found = list(parts.values())
    return found + _unrendered(root, found)


def _unrendered(root: Path, rendered: list[_Part]) -> list[_Part]:
    """The root state files and the nested ones (``helmfiles:``) that helmfile printed no
    rendering of, split into parts as they are written."""
    seen = {(p.directory, p.file) for p in rendered}
    top = find_helmfile(root)
    queue: list[tuple[str, str]] = []
    if top is not None and top.is_dir():
        queue += [
            ("helmfile.d", f.name)
            for f in sorted(top.iterdir())
            if f.name.endswith((".yaml", ".yml", ".yaml.gotmpl"))
        ]
    elif top is not None:
        queue.append((".", top.name))
    out: list[_Part] = []
    done: set[tuple[str, str]] = set()
    pending = [*queue, *((p.directory, p.file) for p in rendered)]
    while pending:
        key = pending.pop(0)
        if key in done:
            continue
        done.add(key)
        directory, name = key
        if key in seen:
            texts = [p.text for p in rendered if (p.directory, p.file) == key]
        else:
            path = root / directory / name
            if not path.is_file() or name.endswith(".gotmpl"):
                continue
            texts = re.split(r"^---[ \t]*$", path.read_text(encoding="utf-8"), flags=re.M)
            out += [_Part(directory, name, t) for t in texts]
        for text in texts:
            data = load_yaml(text)
            for entry in (data.get("helmfiles") or []) if isinstance(data, dict) else []:
                nested = entry.get("path") if isinstance(entry, dict) else entry
                if isinstance(nested, str) and not any(c in nested for c in "*?["):
                    full = posixpath.normpath(posixpath.join(directory, nested))
                    pending.append((posixpath.dirname(full) or ".", posixpath.basename(full)))
    return out


def load_yaml(text: str) -> Any:
    """Plain YAML through libyaml (PyYAML comes with lightkube); None when it is not YAML."""
    import yaml  # type: ignore[import-untyped]

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return None


def _relative(directory: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(directory, path)).removeprefix("./")


def _releases(parts: list[_Part]) -> Iterator[tuple[str, dict[str, Any]]]:
    for part in parts:
        data = load_yaml(part.text)
        if isinstance(data, dict):
            for item in data.get("releases") or []:
                if isinstance(item, dict) and item.get("name"):
                    yield part.directory, item


def _release_view(directory: str, item: dict[str, Any]) -> ReleaseView:
    entries: list[str | dict[str, Any]] = []
    for entry in item.get("values") or []:
        if isinstance(entry, str):
            entries.append(_relative(directory, entry))
        elif isinstance(entry, dict):
            entries.append(entry)
    sets = tuple(
        SetEntry(str(s["name"]), s.get("value"))
        for s in item.get("set") or []
        if isinstance(s, dict) and "name" in s
    )
    return ReleaseView(str(item["name"]), str(item.get("namespace") or ""), tuple(entries), sets)


def _environment(parts: list[_Part], env: str) -> tuple[list[Any], str | None]:
    """The environment's values entries and kube context (its ``kubeContext``, else
    ``helmDefaults.kubeContext``) in the root state files."""
    entries: list[Any] = []
    context: str | None = None
    default: str | None = None
    for part in parts:
        data = load_yaml(part.text) if part.directory in (".", "helmfile.d") else None
        if not isinstance(data, dict):
            continue
        envs = data.get("environments")
        spec = envs.get(env) if isinstance(envs, dict) else None
        if isinstance(spec, dict):
            entries = entries or list(spec.get("values") or [])
            context = context or (str(spec["kubeContext"]) if spec.get("kubeContext") else None)
        defaults = data.get("helmDefaults")
        if isinstance(defaults, dict) and defaults.get("kubeContext") and default is None:
            default = str(defaults["kubeContext"])
    return entries, context or default


def expand(root: Path, pattern: str) -> list[str]:
    """A values entry as the files it names (globs expanded, sorted like Go's Glob)."""
    import glob

    if not any(c in pattern for c in "*?["):
        return [posixpath.normpath(pattern).removeprefix("./")]
    found = glob.glob(pattern, root_dir=root)
    return sorted(posixpath.normpath(f) for f in found if (root / f).is_file())


# --------------------------------------------------------------------------- markers


def _leaves(data: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, (*prefix, str(k)))
    elif isinstance(data, (str, int, float)) and not isinstance(data, bool):
        yield prefix, data


def _merged_env_values(root: Path, files: list[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in files:
        path = root / name
        if not path.is_file():
            continue
        data = load_yaml(path.read_text(encoding="utf-8", errors="replace"))
        if isinstance(data, dict):
            _deep_merge(merged, data)
    return merged


def _deep_merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for k, v in data.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v


def _probe_file(tmp: Path, merged: dict[str, Any]) -> tuple[Path, dict[int, str]]:
    markers: dict[int, str] = {}
    probe: dict[str, Any] = {}
    for n, (path, _value) in enumerate(_leaves(merged)):
        if any("." in p for p in path):
            continue  # glue's key paths cannot name it
        markers[n] = ".".join(path)
        node = probe
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = f"glue-probe-{n}-x"
    out = tmp / "probe.yaml"
    out.write_text(json.dumps(probe))
    return out, markers


def marker_of(value: Any) -> int | None:
    """The marker number when ``value`` is exactly one marker."""
    if isinstance(value, str) and (m := _MARKER.fullmatch(value.strip().strip("\"'"))):
        return int(m.group(1))
    return None


def has_marker(value: Any) -> bool:
    return isinstance(value, str) and _MARKER.search(value) is not None


# --------------------------------------------------------------------------- the view


def environment_view(root: Path, env: str, tools: Tools, *, probe: bool = True) -> EnvView:
    """helmfile's view of ``env`` (see the module docstring): no hook, cluster or network.
    ``probe``: also trace which environment value feeds which release (a second run)."""
    with tempfile.TemporaryDirectory(prefix="glue-helmfile-") as tmp_name:
        tmp = Path(tmp_name)
        sandbox = _sandbox(tmp, tools.helm)
        parts = _parts(_run(root, env, tools, sandbox), root)
        raw_values, context = _environment(parts, env)
        if not parts or (not raw_values and not any(True for _ in _releases(parts))):
            _check_declared(parts, env)
        files = [f for v in raw_values if isinstance(v, str) for f in expand(root, v)]
        inline = sum(1 for v in raw_values if not isinstance(v, str))
        releases = [_release_view(d, item) for d, item in _releases(parts)]
        notes: list[str] = []
        markers: dict[int, str] = {}
        merged = _merged_env_values(root, files) if probe else {}
        if merged:
            marked, markers = _probe_file(tmp, merged)
            try:
                probed = _parts(
                    _run(root, env, tools, sandbox, "--state-values-file", str(marked)), root
                )
            except UsageError:
                notes.append(
                    f"environment {env!r}: helmfile could not render with marked values, so "
                    "which environment value feeds which release was not traced"
                )
            else:
                by_name = {(d, it["name"]): _release_view(d, it) for d, it in _releases(probed)}
                releases = [_with_probe(r, by_name) for r in releases]
        return EnvView(env, tuple(files), context, tuple(releases), inline, markers, tuple(notes))


class Views:
    """helmfile's view of each environment of ``root``, read safely once per environment,
    for a command that asks it several things (a cluster, the releases' namespaces)."""

    def __init__(self, root: Path, tools: Tools) -> None:
        self.root = root
        self.tools = tools
        self._views: dict[str, EnvView] = {}

    def view(self, env: str) -> EnvView:
        if env not in self._views:
            self._views[env] = environment_view(self.root, env, self.tools, probe=False)
        return self._views[env]

    def namespaces(self, env: str) -> dict[str, str]:
        """Each release's namespace in ``env``, as helmfile gives it."""
        return {r.name: r.namespace for r in self.view(env).releases}

    def kube_context(self, env: str) -> str | None:
        """The kube context helmfile uses for ``env`` (its ``kubeContext``, else
        ``helmDefaults.kubeContext``); None when helmfile names none, or there is no
        helmfile to ask (no helmfile state in ``root``, or no binary: a hook Job).

        When helmfile is there but its view cannot be read, and its files name a
        ``kubeContext`` somewhere, guessing the kubeconfig's current context could put
        the lock and record in another cluster than helmfile deploys to: that is an
        error naming the way out. Files that never say ``kubeContext`` deploy to the
        current context."""
        state = find_helmfile(self.root)
        if state is None or not self.tools.helmfile_installed():
            return None
        try:
            return self.view(env).kube_context
        except GlueError as exc:
            self.tools.check()  # tools that cannot work are said as such (exit 1)
            if not _mentions_kube_context(state):
                return None  # helmfile names no context either: both use the current one
            raise UsageError(
                f"cannot tell which cluster {env!r} is on: reading helmfile's kubeContext "
                f"for it failed: {exc.message}",
                hint=f"set kube_context for {env} in glue.yaml (or pass --kube-context); "
                "glue reads helmfile's view without hooks, cluster access or cloud "
                "credentials",
            ) from None


def kube_context(root: Path, env: str, tools: Tools) -> str | None:
    """:meth:`Views.kube_context` for one question."""
    return Views(root, tools).kube_context(env)


def _mentions_kube_context(state: Path) -> bool:
    """Whether the helmfile state (a file, or helmfile.d's files) says ``kubeContext``
    anywhere: when it does not, helmfile deploys to the current context too."""
    files = sorted(state.iterdir()) if state.is_dir() else [state]
    for path in files:
        try:
            if path.is_file() and "kubeContext" in path.read_text(errors="replace"):
                return True
        except OSError:
            return True  # unreadable: assume it might
    return False


def _with_probe(release: ReleaseView, probed: dict[tuple[str, str], ReleaseView]) -> ReleaseView:
    from dataclasses import replace

    for (_d, name), other in probed.items():
        if name == release.name and len(other.values) == len(release.values):
            return replace(release, probed_values=other.values, probed_sets=other.sets)
    return release


def _check_declared(parts: list[_Part], env: str) -> None:
    if not parts:
        return
    declared = False
    for part in parts:
        data = load_yaml(part.text)
        if isinstance(data, dict) and isinstance(data.get("environments"), dict):
            declared = declared or env in data["environments"]
    if not declared:
        raise UsageError(
            f"helmfile has no environment {env!r}",
            hint="list it under environments: in the helmfile (or a file in its bases:)",
        )


# --------------------------------------------------------------------------- where tags come from

_TAG_LEAF = re.compile(r"(?i)^(tag|image[_-]?tag|.*Tag)$")


@dataclass(frozen=True)
class TagSource:
    """Where helmfile takes one tag-like value of a release's chart values from."""

    release: str
    key: str  # the key path in the chart's values, e.g. image.tag
    #: ``file``: a release values file; ``environment``: an environment value, through
    #: the helmfile's inline values or ``set:``; ``template``: computed in the helmfile
    #: itself (an environment variable, a literal): not in any file glue can edit.
    kind: str
    value: Any
    file: str | None = None
    env_key: str | None = None
    files: tuple[str, ...] = ()  # the release's values files, in helmfile's order
    via: str = ""  # "set" or "inline values" for environment and template kinds


def _chart_keys(data: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        for k, v in data.items():
            path = (*prefix, str(k))
            if isinstance(v, dict) and len(path) < 5:
                yield from _chart_keys(v, path)
            elif not isinstance(v, (dict, list)) and _TAG_LEAF.match(str(k)):
                yield ".".join(path), v


def get_key(data: Any, key: str) -> tuple[bool, Any]:
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def tag_sources(view: EnvView, root: Path) -> dict[str, list[TagSource]]:
    """Per release: every tag-like chart value and where helmfile takes it from."""
    out: dict[str, list[TagSource]] = {}
    for release in view.releases:
        files = tuple(v for v in release.values if isinstance(v, str))
        loaded: list[tuple[str | None, Any, Any]] = []  # (file, data, probed data)
        probed = release.probed_values or release.values
        for entry, probe in zip(release.values, probed, strict=False):
            if isinstance(entry, str):
                path = root / entry
                text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
                data = load_yaml(text)
                loaded.append((entry, data, data))
            else:
                loaded.append((None, entry, probe))
        keys: dict[str, None] = {}
        for _f, data, _p in loaded:
            for key, _v in _chart_keys(data):
                keys[key] = None
        for s in release.sets:
            if _TAG_LEAF.match(s.name.rsplit(".", 1)[-1]):
                keys[s.name] = None
        found: list[TagSource] = []
        for key in keys:
            source = _source_of(view, release, key, loaded, files)
            if source is not None:
                found.append(source)
        out[release.name] = found
    return out


def _source_of(
    view: EnvView,
    release: ReleaseView,
    key: str,
    loaded: list[tuple[str | None, Any, Any]],
    files: tuple[str, ...],
) -> TagSource | None:
    probed_sets = release.probed_sets if release.probed_sets is not None else release.sets
    for s, p in reversed(list(zip(release.sets, probed_sets, strict=False))):
        if s.name == key:
            return _traced(view, release.name, key, s.value, p.value, files, "set")
    for file, data, probe in reversed(loaded):
        ok, value = get_key(data, key)
        if not ok:
            continue
        if file is not None:
            return TagSource(release.name, key, "file", value, file=file, files=files)
        _, marked = get_key(probe, key)
        return _traced(view, release.name, key, value, marked, files, "inline values")
    return None


def _traced(
    view: EnvView, release: str, key: str, value: Any, probed: Any, files: tuple[str, ...], via: str
) -> TagSource:
    number = marker_of(probed)
    if number is not None and number in view.markers:
        return TagSource(
            release, key, "environment", value, env_key=view.markers[number], files=files, via=via
        )
    return TagSource(release, key, "template", value, files=files, via=via)


def main_tag(sources: list[TagSource]) -> TagSource | None:
    """The release's own image tag among its tag-like values: ``image.tag`` first, then
    the shortest key."""
    if not sources:
        return None
    return min(
        sources,
        key=lambda s: (
            s.key != "image.tag",
            not s.key.endswith("image.tag"),
            len(s.key.split(".")),
            s.key,
        ),
    )
