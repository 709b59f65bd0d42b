"""Where a service's version lives, and reading and writing it: the one place that knows.

For each environment and service, glue.yaml names the values files helmfile merges
for the service's release, in helmfile's order (:func:`sources`): the release's own
files (``services.S.values``, with ``{env}``/``{service}``/``{release}`` filled in) or
else the environment's values files (``environments[].values``, which reach a chart
through a release's inline values or ``set:``). The tag (revision, digest) is the
value of the service's key in the last of them that sets it, as helm merges them.

A write goes where helmfile takes the tag from, unless that file is shared: merged
for another environment or service with the same key (a shared default, an
environment's common file). Then it goes to the last file merged after it that is
this environment's and service's alone, creating the key there; with none, it is
refused, naming the file that would be needed. So a bump changes what one release
renders in one environment, and only its tag.

Every command reads and writes versions through here: bump, promote, release,
rollback, holds, status, notify, apply's deploy record, check.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gitops_glue import keypath, yamlnodes
from gitops_glue.config import Environment, GlueConfig, Service
from gitops_glue.errors import UsageError
from gitops_glue.repo import values
from gitops_glue.service_version import ServiceVersion

#: Reads a repository-relative file; returns None when the file does not exist.
Reader = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Found:
    value: Any  # None when no file sets it
    file: str | None  # the file the effective value comes from


@dataclass(frozen=True)
class Version:
    """A service's version in one environment, as helm would see it."""

    tag: str | None
    revision: str | None
    digest: str | None
    file: str | None  # the file the tag comes from
    why_empty: str | None = None  # no tag: why (a missing file, the key set nowhere)


def sources(config: GlueConfig, env: Environment, service: str) -> tuple[str, ...]:
    """The values files helmfile merges for ``service`` in ``env``, in its order."""
    svc = config.service(service)
    if svc.values is None:
        return tuple(env.values)
    fill = {"env": env.name, "service": service, "release": svc.release_name(service)}
    return tuple(_fill(pattern, fill) for pattern in svc.values)


def _fill(pattern: str, fill: dict[str, str]) -> str:
    out = pattern
    for name, value in fill.items():
        out = out.replace("{" + name + "}", value)
    return out


def own_sources(svc: Service) -> bool:
    """Whether the service's tag is in its release's own values files."""
    return svc.values is not None


@lru_cache(maxsize=256)
def _parsed(text: str, name: str) -> list[yamlnodes.Document]:
    """Parsed documents, cached by content: status reads each file once."""
    return yamlnodes.parse_documents(text, name)


def effective(read: Reader, files: tuple[str, ...], key: str) -> Found:
    """The value helm would see: the last of ``files`` that sets ``key``."""
    path = keypath.parse(key)
    for name in reversed(files):
        text = read(name)
        if text is None:
            continue
        docs = _parsed(text, name)
        found = values.lookup(docs, path)
        if found.node is not None:
            return Found(values.to_python(docs[found.document], found.node), name)
    return Found(None, None)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def require_files(read: Reader, config: GlueConfig, env: Environment) -> None:
    """An environment's own values files must exist (helmfile refuses them missing); a
    release's may be missing (``missingFileHandler``) and are then passed over."""
    for name in env.values:
        if read(name) is None:
            raise UsageError(
                f"environment {env.name!r}: values file {name} does not exist",
                hint="create it, or fix environments[].values in glue.yaml",
            )


def read_version(read: Reader, config: GlueConfig, env: Environment, service: str) -> Version:
    """``service``'s tag, revision and digest in ``env``."""
    svc = config.service(service)
    files = sources(config, env, service)
    tag = effective(read, files, svc.tag_key)
    revision = effective(read, files, svc.revision_key).value if svc.revision_key else None
    digest = effective(read, files, svc.digest_key).value if svc.digest_key else None
    why = None
    if tag.file is None:
        missing = [name for name in env.values if read(name) is None]
        if missing and not own_sources(svc):
            why = f"missing file {', '.join(missing)}"
        else:
            why = f"no {svc.tag_key}"
    return Version(_str(tag.value), _str(revision) or None, _str(digest) or None, tag.file, why)


def deployed(read: Reader, config: GlueConfig, env: Environment, service: str) -> ServiceVersion:
    """What deploying ``env`` now gives ``service``: the version its files say, with the
    release that deploys it (apply's record, notify's new side)."""
    v = read_version(read, config, env, service)
    release = config.service(service).release_name(service)
    return ServiceVersion(v.tag, v.revision, release, v.digest)


def deployed_all(
    read: Reader, config: GlueConfig, env: Environment, services: Collection[str] = ()
) -> dict[str, ServiceVersion]:
    """:func:`deployed` for each of ``services`` (every service when none is named): what
    deploying ``env`` now gives them. A tag of None: set nowhere in ``env``."""
    return {name: deployed(read, config, env, name) for name in services or config.services}


def tag_of(read: Reader, config: GlueConfig, env: Environment, service: str) -> str | None:
    """Just the tag (None: set nowhere)."""
    svc = config.service(service)
    return _str(effective(read, sources(config, env, service), svc.tag_key).value)


# --------------------------------------------------------------------------- writing


_Path = tuple[object, ...]  # a key path's keys
#: file -> first key -> (environment, service, key paths) of every service that merges
#: the file with a key starting there; one per loaded config.
_Index = dict[str, dict[object, list[tuple[str, str, list[_Path]]]]]
_INDEXES: dict[int, tuple[GlueConfig, _Index]] = {}


def _paths(svc: Service) -> list[_Path]:
    keys = (svc.tag_key, svc.revision_key, svc.digest_key)
    return [tuple(seg.key for seg in keypath.parse(k)) for k in keys if k]


def _index(config: GlueConfig) -> _Index:
    """Who merges which file with which keys, worked out once per loaded config (a bump
    checks every service's files; walking the whole config for each would grow with
    its square)."""
    hit = _INDEXES.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    index: _Index = {}
    for env in config.environments:
        for name, svc in config.services.items():
            paths = _paths(svc)
            for file in dict.fromkeys(sources(config, env, name)):
                by_key = index.setdefault(file, {})
                for first in dict.fromkeys(p[0] for p in paths):
                    by_key.setdefault(first, []).append((env.name, name, paths))
    if len(_INDEXES) >= 8:
        _INDEXES.clear()
    _INDEXES[id(config)] = (config, index)  # the config is held: its id stays its own
    return index


def _overlap(a: _Path, b: _Path) -> bool:
    """One key path is the other or lies below it: setting one changes the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def sharers(config: GlueConfig, env: Environment, service: str, file: str) -> list[str]:
    """``ENV/SERVICE`` of every other environment and service that merges ``file`` with
    a key of ``service``'s: writing that key there would change them too."""
    mine = _paths(config.service(service))
    by_key = _index(config).get(file, {})
    found: dict[str, None] = {}
    for first in dict.fromkeys(p[0] for p in mine):
        for env_name, name, paths in by_key.get(first, ()):
            if (env_name, name) != (env.name, service) and any(
                _overlap(a, b) for a in mine for b in paths
            ):
                found[f"{env_name}/{name}"] = None
    return list(found)


def target(read: Reader, config: GlueConfig, env: Environment, service: str) -> str:
    """The file a new version of ``service`` in ``env`` is written to (see the module's
    docstring); UsageError (exit 2) when no file can take it without a leak."""
    svc = config.service(service)
    files = sources(config, env, service)
    current = effective(read, files, svc.tag_key).file
    start = files.index(current) if current is not None else 0
    if current is not None and not sharers(config, env, service, current):
        return current
    own = [f for f in files[start:] if f != current and not sharers(config, env, service, f)]
    existing = [f for f in own if read(f) is not None]
    if existing:
        return existing[-1]
    if current is not None:
        shared = _shared(config, env, service, current)
        where = f"helmfile takes {svc.tag_key} from {current}, which {shared}"
    else:
        where = f"{svc.tag_key} is set in no values file yet"
    if own:
        raise UsageError(
            f"service {service!r} in {env.name!r}: {where}; glue would write it to "
            f"{own[-1]}, which does not exist",
            hint=f"create {own[-1]} (an empty file will do), then run the command again",
        )
    raise UsageError(
        f"service {service!r} in {env.name!r}: {where}, and helmfile merges no values "
        f"file of its own after it ({', '.join(files) or 'no files'}): a change would leak",
        hint=f"give release {svc.release_name(service)!r} a values file of its own for "
        f"{env.name}, list it in the helmfile and in glue.yaml (services.{service}.values), "
        "then run the command again",
    )


def _shared(config: GlueConfig, env: Environment, service: str, file: str) -> str:
    others = sharers(config, env, service, file)
    shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
    return f"{shown} merge{'s' if len(others) == 1 else ''} too"


@dataclass(frozen=True)
class Written:
    """What :func:`write` did for one service."""

    file: str
    old: Version


def write(
    read: Reader,
    config: GlueConfig,
    env: Environment,
    service: str,
    texts: MutableMapping[str, str],
    *,
    tag: str,
    revision: str | None = None,
    digest: str | None = None,
) -> Written:
    """Set ``service``'s tag in ``env`` in ``texts`` (file -> new text, filled from
    ``read`` as needed). ``revision``/``digest``: None leaves the key as it is, ``""``
    clears it. Reads the old version from ``texts`` first, so several services can be
    written into the same mapping one after the other."""
    svc = config.service(service)

    def current(name: str) -> str | None:
        return texts[name] if name in texts else read(name)

    old = read_version(current, config, env, service)
    file = target(current, config, env, service)
    text = current(file)
    assert text is not None  # target() only names existing files
    text = values.set_value(
        text, svc.tag_key, tag, filename=file, create=True, force_string=True
    ).text
    for key, value in ((svc.revision_key, revision), (svc.digest_key, digest)):
        if key is None or value is None:
            continue
        if value or effective(current, sources(config, env, service), key).value is not None:
            text = values.set_value(
                text, key, value, filename=file, create=True, force_string=True
            ).text
    texts[file] = text
    return Written(file, old)


def files_of(config: GlueConfig, env: Environment) -> Iterator[str]:
    """Every values file any service's version may be read from in ``env``."""
    seen: set[str] = set()
    for name in config.services:
        for file in sources(config, env, name):
            if file not in seen:
                seen.add(file)
                yield file
