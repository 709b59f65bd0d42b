"""What a reviewer of a change to the deployment repository sees, and the plan digest
that lets ``glue apply`` deploy exactly what was reviewed.

**Rendering.** :func:`render` runs ``helmfile -e ENV template --include-crds
--skip-tests --output-dir DIR`` with helmfile's ``--output-dir-template`` giving each
release a folder of its own, so every document is attributed to the release it came
from in one run (helm writes the ``# Source: CHART/templates/x.yaml`` comment each
document starts with). CRDs are included and chart tests left out, as ``helmfile
apply`` installs the one and not the other. helmfile resolves charts as it does in a
deploy pipeline: it adds the repositories, fetches charts over the network and builds
local charts' dependencies (``helm dependency build``, which writes ``charts/*.tgz``
into the folder rendered: render an exported revision, not a checkout being worked
in). Like any ``helmfile template``, it **runs the repository's ``prepare`` (and
``cleanup``) hooks**, as a deploy pipeline does; review a merge request from someone
you do not trust to run code in your CI only as you would run its pipeline.

No cluster is reachable: ``KUBECONFIG`` names an empty file and ``HOME``,
``HELM_CONFIG_HOME``, ``HELM_CACHE_HOME`` and ``HELM_DATA_HOME`` are empty folders in a
private temporary directory (removed on every exit path), so the rendering depends on
the repository alone, not on a machine's helm repositories or logins; helm's plugins
(``helm-secrets``, ``helm-git``) are still found. A private OCI registry needs its
login in helmfile's ``repositories:`` (``username``/``password`` from the environment).
Without a cluster, helm's ``lookup`` finds nothing and ``.Capabilities`` are helm's
defaults: the rendering is the one a review and ``glue apply``'s plan check both see.

**Digest.** Each resource is digested as the SHA-256 of its canonical JSON (sorted
keys); an environment's digest is the SHA-256 over the sorted (release, kind,
namespace, name, resource digest) list. A resource's namespace is the one it names, or
its release's. Kubernetes Secrets count with their data, but their values are never
shown: a changed Secret shows which keys of ``data``/``stringData`` were added, removed
or changed, and every Secret value is registered with :mod:`gitops_glue.redact`, so
the same text is masked wherever else it appears.

**Comment.** :func:`comment_body` writes one Markdown comment for a merge request: per
environment the releases that change, each a ``<details>`` block with a ``diff``
(collapsed when long), cut to stay under GitHub's size limit, and a hidden block with
the head commit and the digests (:func:`reviewed_plan` reads it back). The digests also
go into the merge commit as ``Glue-Reviewed-Plan: ENV sha256:HEX`` trailers.
:func:`check_plan` tells ``glue apply`` whether an environment would deploy exactly
what was reviewed, and if not, what differs.
"""

from __future__ import annotations

import base64
import datetime
import difflib
import functools
import hashlib
import html
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gitops_glue import redact
from gitops_glue.errors import OperationError, UsageError
from gitops_glue.tools import Tools, missing_tool, private_helm_home, tail

#: The first line of glue's review comment: how the forge client finds it to update.
COMMENT_MARKER = "<!-- glue:review -->"
#: Where a comment stops growing (GitHub refuses bodies over 65,536 characters).
COMMENT_LIMIT = 60_000
#: A release's diff longer than this many lines starts collapsed.
COLLAPSE_LINES = 40
#: The commit trailer that records an environment's reviewed digest.
TRAILER = "Glue-Reviewed-Plan"
#: What Secret values are shown as.
HIDDEN = "(hidden)"
HIDDEN_CHANGED = "(hidden, changed)"

#: Each release's own output folder, named so glue can tell release and namespace.
_OUTPUT_DIR_TEMPLATE = (
    "{{ .OutputDir }}/{{ .Release.Name }}@{{ .Release.Namespace }}@{{ .Release.KubeContext }}"
)
#: Hex digits of a release's or resource's digest kept in the comment (the
#: environment's digest is kept whole: it alone decides whether a plan matches).
_SHORT = 16
#: The least share of the comment kept for the hidden block (it also gets whatever the
#: diffs leave); past its share, detail is dropped (see _plan_json).
_PLAN_SHARE = 20_000
#: What a release's diff may take even when its share of the room is smaller.
_MIN_SHARE = 3_000
_PLAN_BLOCK = re.compile(r"<!-- glue-review (\{.*?\}) -->", re.S)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHORT_DIGEST = re.compile(f"[0-9a-f]{{{_SHORT}}}")
_TRAILER_VALUE = re.compile(r"([a-z0-9][a-z0-9-]*) (sha256:[0-9a-f]{64})")
_SOURCE = re.compile(r"^# Source: (.+)$", re.M)
_SEPARATOR = re.compile(r"^---[ \t]*$", re.M)

#: Kinds that live in no namespace (their resources are shown without one).
_CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "CSIDriver",
        "ClusterIssuer",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    }
)

ChangeKind = Literal["added", "removed", "changed"]


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Which resource: the release it belongs to, its kind, namespace and name."""

    release: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"release {self.release}: {self.kind} {where}"

    @property
    def path(self) -> str:
        """``Kind/namespace/name`` (namespace empty for a cluster-wide resource)."""
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Resource:
    key: ResourceKey
    #: The template it came from (``app/templates/deployment.yaml``).
    source: str
    #: The document as plain JSON data, in helm's key order.
    data: Mapping[str, object]
    #: SHA-256 (hex) of its canonical JSON.
    digest: str

    @property
    def secret(self) -> bool:
        return self.key.kind == "Secret" and self.data.get("apiVersion") == "v1"


@dataclass(frozen=True)
class Rendering:
    """What helmfile renders for one environment."""

    env: str
    resources: tuple[Resource, ...]  # sorted by key

    @functools.cached_property
    def digest(self) -> str:
        """``sha256:HEX`` over every resource (see the module docstring)."""
        return "sha256:" + _digest_of(self.resources)


@dataclass(frozen=True)
class EnvPlan:
    """The digests of one environment's rendering, as a review records them."""

    env: str
    digest: str  # sha256:HEX
    #: Release -> the first hex digits of its digest; None: not recorded.
    releases: Mapping[str, str] | None
    #: Resource -> the first hex digits of its digest; None: not recorded (a large
    #: deployment whose detail did not fit in the comment).
    resources: Mapping[ResourceKey, str] | None


@dataclass(frozen=True)
class ReviewedPlan:
    """What a review recorded: per environment, the digests of the head's rendering."""

    head: str | None  # the head commit reviewed (None: read from trailers)
    base: str | None
    environments: Mapping[str, EnvPlan]


@dataclass(frozen=True)
class ResourceChange:
    key: ResourceKey
    change: ChangeKind
    #: A unified diff of the YAML (Secret values hidden), redacted.
    diff: str
    #: For a Secret: ``data.password: changed``... (never a value).
    secret_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseDiff:
    release: str
    changes: tuple[ResourceChange, ...]

    def count(self, change: ChangeKind) -> int:
        return sum(1 for c in self.changes if c.change == change)

    @property
    def diff(self) -> str:
        return "\n".join(c.diff for c in self.changes)


@dataclass(frozen=True)
class EnvDiff:
    env: str
    #: The releases that change, in name order.
    releases: tuple[ReleaseDiff, ...]
    base: EnvPlan | None  # None: the environment is not on the base
    head: EnvPlan | None  # None: the environment is not on the head

    @property
    def changed(self) -> bool:
        return bool(self.releases) or (self.base is None) != (self.head is None)

    def count(self, change: ChangeKind) -> int:
        return sum(r.count(change) for r in self.releases)


@dataclass(frozen=True)
class ReviewResult:
    environments: tuple[EnvDiff, ...]
    plan: ReviewedPlan
    #: The merge request comment (starts with COMMENT_MARKER).
    body: str

    @property
    def changed(self) -> bool:
        """Whether any environment would change (``glue review`` exits 3)."""
        return any(d.changed for d in self.environments)

    @property
    def trailers(self) -> list[tuple[str, str]]:
        return plan_trailers(self.plan)

    def to_json(self) -> dict[str, object]:
        return {
            "changed": self.changed,
            "head": self.plan.head,
            "base": self.plan.base,
            "environments": [_env_json(d) for d in self.environments],
        }


@dataclass(frozen=True)
class PlanCheck:
    """Whether an environment would deploy exactly what was reviewed."""

    env: str
    ok: bool
    reviewed_digest: str | None  # None: the environment was not reviewed
    current_digest: str
    reviewed_head: str | None
    added: tuple[ResourceKey, ...] = ()  # rendered now, not in the review
    removed: tuple[ResourceKey, ...] = ()  # reviewed, not rendered now
    changed: tuple[ResourceKey, ...] = ()
    #: The releases that differ (all a review without resource detail can name).
    releases: tuple[str, ...] = ()
    message: str = ""
    hint: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.env,
            "ok": self.ok,
            "reviewed_digest": self.reviewed_digest,
            "current_digest": self.current_digest,
            "reviewed_head": self.reviewed_head,
            "added": [_key_json(k) for k in self.added],
            "removed": [_key_json(k) for k in self.removed],
            "changed": [_key_json(k) for k in self.changed],
            "releases": list(self.releases),
            "message": self.message,
        }


# --------------------------------------------------------------------------- rendering


def render(root: Path, env: str, tools: Tools) -> Rendering:
    """What helmfile renders for ``env`` in ``root``, without a cluster (see the module
    docstring: hooks run, charts are fetched, dependencies built in ``root``)."""
    import shutil

    exe = shutil.which(tools.helmfile)
    if exe is None:
        raise missing_tool(tools.helmfile)
    with tempfile.TemporaryDirectory(prefix="glue-render-") as tmp_name:
        tmp = Path(tmp_name)
        out = tmp / "out"
        args = [exe, "--helm-binary", tools.helm, "-e", env, "template"]
        args += ["--include-crds", "--skip-tests", "--output-dir", str(out)]
        args += ["--output-dir-template", _OUTPUT_DIR_TEMPLATE]
        try:
            proc = subprocess.run(
                args,
                cwd=root,
                env=_render_env(tmp),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
        except FileNotFoundError:
            raise missing_tool(tools.helmfile) from None
        except subprocess.TimeoutExpired:
            raise OperationError(
                f"helmfile took more than 900 s to render environment {env!r}"
            ) from None
        if proc.returncode != 0:
            raise OperationError(
                f"helmfile cannot render environment {env!r}:\n{tail(proc.stderr or proc.stdout)}",
                hint=f"run `helmfile -e {env} template` to see it whole; glue runs it without "
                "a cluster and with an empty helm home, so charts and repositories must "
                "resolve from the repository alone",
            )
        return rendering_of(env, _outputs(out))


def _render_env(tmp: Path) -> dict[str, str]:
    """The caller's environment without a way to a cluster or to a helm home."""
    plugins = _helm_plugins()
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text("")
    (tmp / "home").mkdir()
    keep = {k: v for k, v in os.environ.items() if not _withheld(k)}
    env = {**keep, **private_helm_home(tmp, kubeconfig)}
    if plugins:
        env["HELM_PLUGINS"] = plugins
    return env


def _withheld(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(("KUBE", "HELM_", "XDG_")) or upper == "HOME"


def _helm_plugins() -> str | None:
    """The caller's helm plugins folder, as helm would find it."""
    if os.environ.get("HELM_PLUGINS"):
        return os.environ["HELM_PLUGINS"]
    data = os.environ.get("HELM_DATA_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "helm"
    )
    plugins = os.path.join(data, "plugins")
    return plugins if os.path.isdir(plugins) else None


def _outputs(out: Path) -> dict[tuple[str, str], str]:
    """helm's output per release (name, namespace), from helmfile's output folder."""
    found: dict[tuple[str, str], str] = {}
    if not out.is_dir():
        return found
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        release, _, rest = path.relative_to(out).parts[0].partition("@")
        key = (release, rest.split("@", 1)[0])
        text = path.read_text(encoding="utf-8", errors="replace")
        found[key] = f"{found[key]}\n---\n{text}" if key in found else text
    return found


def rendering_of(env: str, outputs: Mapping[tuple[str, str], str]) -> Rendering:
    """A rendering from helm's output (the YAML documents ``helm template`` writes, each
    after its ``# Source:`` comment) per release, keyed by its name and namespace."""
    found: list[Resource] = []
    seen: dict[ResourceKey, int] = {}
    for (release, release_namespace), text in sorted(outputs.items()):
        for source, data in _documents(env, release, text):
            key = _key_of(release, release_namespace, data)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:  # rendered twice: both count, told apart by a number
                key = ResourceKey(key.release, key.kind, key.namespace, f"{key.name} #{seen[key]}")
            found.append(Resource(key, source, data, _sha256(_canonical(data))))
            if found[-1].secret:
                _register_values(data)
    return Rendering(env, tuple(sorted(found, key=lambda r: r.key)))


def _documents(env: str, release: str, text: str) -> Iterable[tuple[str, dict[str, object]]]:
    """Each YAML document helm wrote, with the template it came from."""
    import yaml  # type: ignore[import-untyped]

    for chunk in _SEPARATOR.split(text):
        match = _SOURCE.search(chunk)
        source = match.group(1).strip() if match else ""
        try:
            data = yaml.load(chunk, Loader=yaml.CSafeLoader)
        except yaml.YAMLError as exc:
            raise OperationError(
                f"environment {env!r}, release {release!r}: helm rendered {source or 'a document'}"
                f" that is not YAML: {str(exc).splitlines()[0]}"
            ) from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise OperationError(
                f"environment {env!r}, release {release!r}: helm rendered {source or 'a document'}"
                " that is not a Kubernetes object"
            )
        plain = _plain(data)
        assert isinstance(plain, dict)
        yield source, plain


def _key_of(release: str, release_namespace: str, data: Mapping[str, object]) -> ResourceKey:
    kind = str(data.get("kind") or "")
    meta = data.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = str(meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else ""))
    namespace = str(meta.get("namespace") or "")
    if not namespace and kind not in _CLUSTER_SCOPED:
        namespace = release_namespace
    return ResourceKey(release, kind, namespace, name)


def _plain(value: object) -> object:
    """YAML data as JSON data: string keys, dates and binary as strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    return str(value)


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest_of(resources: Iterable[Resource]) -> str:
    lines = sorted(
        _canonical([r.key.release, r.key.kind, r.key.namespace, r.key.name, r.digest])
        for r in resources
    )
    return _sha256("\n".join(lines))


def _register_values(secret: Mapping[str, object]) -> None:
    """Mask a Secret's values (as written and as base64) wherever glue prints them."""
    for section in ("data", "stringData"):
        values = secret.get(section)
        if not isinstance(values, dict):
            continue
        for value in values.values():
            if not isinstance(value, str):
                continue
            if section == "data":
                try:
                    decoded = base64.b64decode(value, validate=True).decode("utf-8")
                except ValueError:
                    decoded = ""
                redact.register(value, decoded)
            else:
                redact.register(value, base64.b64encode(value.encode()).decode("ascii"))


# --------------------------------------------------------------------------- digests


def plan_of(rendering: Rendering) -> EnvPlan:
    """The digests a review records of ``rendering``."""
    by_release: dict[str, list[Resource]] = {}
    for r in rendering.resources:
        by_release.setdefault(r.key.release, []).append(r)
    return EnvPlan(
        rendering.env,
        rendering.digest,
        {name: _digest_of(rs)[:_SHORT] for name, rs in sorted(by_release.items())},
        {r.key: r.digest[:_SHORT] for r in rendering.resources},
    )


# --------------------------------------------------------------------------- comparing


def compare(base: Rendering | None, head: Rendering | None) -> EnvDiff:
    """What changes from ``base`` to ``head`` (None: the environment is not on that side),
    per release and resource."""
    either = head or base
    if either is None:
        raise ValueError("compare needs at least one rendering")
    old = {r.key: r for r in base.resources} if base else {}
    new = {r.key: r for r in head.resources} if head else {}
    by_release: dict[str, list[ResourceChange]] = {}
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before is not None and after is not None and before.digest == after.digest:
            continue
        by_release.setdefault(key.release, []).append(_change(key, before, after))
    return EnvDiff(
        either.env,
        tuple(ReleaseDiff(name, tuple(changes)) for name, changes in sorted(by_release.items())),
        plan_of(base) if base else None,
        plan_of(head) if head else None,
    )


def _change(key: ResourceKey, before: Resource | None, after: Resource | None) -> ResourceChange:
    change: ChangeKind = "added" if before is None else "removed" if after is None else "changed"
    secret = any(r.secret for r in (before, after) if r is not None)
    label = key.path.replace("//", "/")
    lines = difflib.unified_diff(
        _shown(before, None, secret),
        _shown(after, before, secret),
        f"base/{label}" if before else "/dev/null",
        f"head/{label}" if after else "/dev/null",
        lineterm="",
    )
    keys = _secret_keys(before, after) if secret else ()
    return ResourceChange(key, change, redact.redact("\n".join(lines)), keys)


def _shown(resource: Resource | None, other: Resource | None, secret: bool) -> list[str]:
    """The lines of ``resource``'s YAML as a reviewer sees them (none when absent)."""
    if resource is None:
        return []
    data = resource.data
    if secret:
        data = _masked(data, other.data if other is not None else None)
    return _yaml(data).splitlines()


def _masked(data: Mapping[str, object], other: Mapping[str, object] | None) -> dict[str, object]:
    """A Secret with every value of ``data``/``stringData`` hidden; a value that differs
    from ``other``'s under the same key shows as changed."""
    out = dict(data)
    for section in ("data", "stringData"):
        values = data.get(section)
        theirs = other.get(section) if other is not None else None
        if isinstance(values, dict):
            out[section] = {
                k: HIDDEN_CHANGED
                if isinstance(theirs, dict) and k in theirs and theirs[k] != v
                else HIDDEN
                for k, v in values.items()
            }
        elif values is not None:
            out[section] = HIDDEN
    return out


def _secret_keys(before: Resource | None, after: Resource | None) -> tuple[str, ...]:
    found = []
    for section in ("data", "stringData"):
        old = before.data.get(section) if before else None
        new = after.data.get(section) if after else None
        old = old if isinstance(old, dict) else {}
        new = new if isinstance(new, dict) else {}
        for k in sorted(old.keys() | new.keys()):
            if k not in old:
                found.append(f"{section}.{k}: added")
            elif k not in new:
                found.append(f"{section}.{k}: removed")
            elif old[k] != new[k]:
                found.append(f"{section}.{k}: changed")
    return tuple(redact.redact(f) for f in found)


@functools.cache
def _dumper() -> Any:
    import yaml

    class Dumper(yaml.CSafeDumper):  # type: ignore[misc]
        pass

    def text(dumper: Any, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def _yaml(data: Mapping[str, object]) -> str:
    """The document as YAML, in helm's key order, long strings kept on one line."""
    import yaml

    text: str = yaml.dump(
        data,
        Dumper=_dumper(),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )
    return text


# --------------------------------------------------------------------------- the comment


def comment_body(
    diffs: Sequence[EnvDiff], head_sha: str, base_sha: str, *, limit: int = COMMENT_LIMIT
) -> str:
    """One Markdown comment for the merge request (see the module docstring); no longer
    than ``limit`` characters."""
    plan = ReviewedPlan(head_sha, base_sha, {d.env: d.head for d in diffs if d.head is not None})
    changed = [d for d in diffs if d.changed]
    unchanged = [d.env for d in diffs if not d.changed]
    intro = [
        COMMENT_MARKER,
        "## glue review: what the deployment would change",
        "",
        f"What `helmfile template` renders at the head `{_short(head_sha)}`, compared with "
        f"the base `{_short(base_sha)}`, per environment and release (no cluster was "
        "asked; Secret values are never shown).",
        "",
    ]
    if not changed:
        intro += ["No environment would change.", ""]
    tail_lines = [f"No change in: {', '.join(unchanged)}.", ""] if unchanged else []
    # What the diffs may take: the rest after the plan (up to its share) and, per
    # environment, its heading and a note. Each environment gets an equal share of it,
    # each release an equal share of its environment's (what one leaves goes on).
    plan_room = min(len(_plan_json(plan, diffs, limit)), _PLAN_SHARE) + 100
    budget = limit - plan_room - len("\n".join(intro + tail_lines)) - 600 * len(changed)
    sections: list[str] = []
    for number, env in enumerate(changed):
        room = budget // (len(changed) - number)
        budget -= room
        lines = [_env_heading(env), ""]
        left_out: list[str] = []
        for index, release in enumerate(env.releases):
            share = min(room, max(room // (len(env.releases) - index), _MIN_SHARE))
            block = _release_block(release, share, limit)
            if block is None:
                left_out.append(release.release)
                continue
            lines.append(block)
            room -= len(block) + 1
        budget += room
        if left_out:
            shown = ", ".join(f"<code>{html.escape(r)}</code>" for r in left_out[:10])
            more = f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""
            lines += [
                f"_Left out to keep this comment under {limit:,} characters: the diff of "
                f"release {shown}{more}._",
                "",
            ]
        sections.append("\n".join(lines))
    text = redact.redact("\n".join([*intro, *sections, *tail_lines]))
    block = _plan_json(plan, diffs, limit - len(text) - len("\n<!-- glue-review  -->\n"))
    return f"{text}\n<!-- glue-review {block} -->\n"


def _short(sha: str) -> str:
    return sha[:12]


def _env_heading(env: EnvDiff) -> str:
    counts = ", ".join(f"{n} {c}" for c in ("added", "removed", "changed") if (n := env.count(c)))
    releases = len(env.releases)
    what = "1 release changes" if releases == 1 else f"{releases} releases change"
    if env.base is None:
        what = f"new environment, {what}"
    elif env.head is None:
        what = f"environment removed, {what}"
    counted = f" (resources: {counts})" if counts else ""
    return f"### <code>{html.escape(env.env)}</code>: {what}{counted}"


def _release_block(release: ReleaseDiff, room: int, limit: int) -> str | None:
    """A release's ``<details>`` block in at most ``room`` characters, its diff cut when
    longer (None: too little room to show any)."""
    counts = ", ".join(
        f"{n} {c}" for c in ("added", "removed", "changed") if (n := release.count(c))
    )
    lines = release.diff.splitlines()
    opened = " open" if len(lines) <= COLLAPSE_LINES else ""
    summary = f"release <code>{html.escape(release.release)}</code>: {counts}"
    if not opened:
        summary += f" ({len(lines)} lines)"
    diff, note = release.diff, ""
    room -= len(summary) + 200  # the block around the diff
    if len(diff) > room:
        if room < 1_000:
            return None
        kept: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) + 1 > room:
                break
            kept.append(line)
            size += len(line) + 1
        note = (
            f"\n_{len(lines) - len(kept)} more lines cut to keep this comment under "
            f"{limit:,} characters._\n"
        )
        diff = "\n".join(kept)
    fence = "`" * max(3, _longest_backticks(diff) + 1)
    return (
        f"<details{opened}>\n<summary>{summary}</summary>\n\n"
        f"{fence}diff\n{diff}\n{fence}\n{note}\n</details>\n"
    )


def _longest_backticks(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


# --------------------------------------------------------------------------- the plan block


def _plan_json(plan: ReviewedPlan, diffs: Sequence[EnvDiff], budget: int) -> str:
    """The plan as JSON for an HTML comment (no ``>``, so no ``-->`` inside), within
    ``budget`` characters: resource detail is dropped first for the environments without
    change, then for the largest; then release detail in the same order. Each
    environment's digest is always kept."""
    data: dict[str, dict[str, object]] = {}
    for env, p in plan.environments.items():
        entry: dict[str, object] = {"digest": p.digest}
        if p.releases is not None:
            entry["releases"] = dict(p.releases)
        if p.resources is not None:
            nested: dict[str, dict[str, str]] = {}
            for key, digest in sorted(p.resources.items()):
                nested.setdefault(key.release, {})[key.path] = digest
            entry["resources"] = nested
        data[env] = entry
    changed = {d.env for d in diffs if d.changed}
    order = sorted(
        data,
        key=lambda e: (e in changed, -len(json.dumps(data[e]))),
    )

    def dumped() -> str:
        text = json.dumps(
            {"version": 1, "head": plan.head, "base": plan.base, "environments": data},
            separators=(",", ":"),
            sort_keys=True,
        )
        return text.replace(">", "\\u003e")

    text = dumped()
    for level in ("resources", "releases"):
        for env in order:
            if len(text) <= budget:
                return text
            data[env].pop(level, None)
            text = dumped()
    return text


def reviewed_plan(body: str) -> ReviewedPlan | None:
    """The plan in a review comment's hidden block; None when there is not exactly one,
    or it is not as glue writes it."""
    blocks = _PLAN_BLOCK.findall(body)
    if len(blocks) != 1:
        return None
    try:
        data = json.loads(blocks[0])
        return _plan_from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _plan_from_json(data: Any) -> ReviewedPlan | None:
    if not isinstance(data, dict) or data.get("version") != 1:
        return None
    head, base = data.get("head"), data.get("base")
    if not all(v is None or isinstance(v, str) for v in (head, base)):
        return None
    envs: dict[str, EnvPlan] = {}
    for env, entry in data["environments"].items():
        digest = entry["digest"]
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            return None
        releases = entry.get("releases")
        if releases is not None:
            releases = {str(k): _short_digest(v) for k, v in releases.items()}
        resources: dict[ResourceKey, str] | None = None
        if entry.get("resources") is not None:
            resources = {}
            for release, items in entry["resources"].items():
                for path, value in items.items():
                    kind, namespace, name = path.split("/", 2)
                    resources[ResourceKey(release, kind, namespace, name)] = _short_digest(value)
        envs[str(env)] = EnvPlan(str(env), digest, releases, resources)
    return ReviewedPlan(head, base, envs)


def _short_digest(value: object) -> str:
    if not isinstance(value, str) or not _SHORT_DIGEST.fullmatch(value):
        raise ValueError(value)
    return value


# --------------------------------------------------------------------------- trailers


def plan_trailers(plan: ReviewedPlan) -> list[tuple[str, str]]:
    """``Glue-Reviewed-Plan: ENV sha256:HEX``, one per environment reviewed."""
    return [(TRAILER, f"{env} {p.digest}") for env, p in plan.environments.items()]


def trailer_plan(message: str) -> ReviewedPlan | None:
    """The reviewed digests in a commit message's trailers (as ``git log`` reads them);
    None when it has none. An environment named twice keeps its last digest."""
    from gitops_glue.repo.commit import parse_trailers

    envs: dict[str, EnvPlan] = {}
    for key, value in parse_trailers(message, divider=False):
        if key.lower() != TRAILER.lower():
            continue
        match = _TRAILER_VALUE.fullmatch(value.strip())
        if match is None:
            raise UsageError(
                f"the commit's {TRAILER} trailer {value[:100]!r} is not 'ENV sha256:HEX'",
                hint="the trailer is written by glue's review; fix or drop the line",
            )
        env, digest = match.groups()
        envs[env] = EnvPlan(env, digest, None, None)
    return ReviewedPlan(None, None, envs) if envs else None


# --------------------------------------------------------------------------- the plan check


def check_plan(reviewed: ReviewedPlan, current: Rendering) -> PlanCheck:
    """Whether ``current`` is exactly what was reviewed for its environment, and if not,
    what differs (as closely as the review recorded it)."""
    env = current.env
    now = plan_of(current)
    plan = reviewed.environments.get(env)
    head = f" at {_short(reviewed.head)}" if reviewed.head else ""
    if plan is None:
        names = ", ".join(reviewed.environments) or "none"
        return PlanCheck(
            env,
            False,
            None,
            now.digest,
            reviewed.head,
            message=f"environment {env!r} was not part of the review{head} (reviewed: {names})",
            hint=_PLAN_HINT,
        )
    if plan.digest == now.digest:
        return PlanCheck(
            env,
            True,
            plan.digest,
            now.digest,
            reviewed.head,
            message=f"environment {env!r} deploys what was reviewed{head} ({now.digest[:19]})",
        )
    added: list[ResourceKey] = []
    removed: list[ResourceKey] = []
    changed: list[ResourceKey] = []
    releases: set[str] = set()
    assert now.resources is not None and now.releases is not None
    if plan.resources is not None:
        mine = now.resources
        added = sorted(k for k in mine if k not in plan.resources)
        removed = sorted(k for k in plan.resources if k not in mine)
        changed = sorted(k for k in mine if k in plan.resources and plan.resources[k] != mine[k])
        releases = {k.release for k in (*added, *removed, *changed)}
    elif plan.releases is not None:
        theirs = plan.releases
        releases = {
            r for r in now.releases.keys() | theirs.keys() if now.releases.get(r) != theirs.get(r)
        }
    lines = [
        f"environment {env!r} would deploy something other than what was reviewed{head} "
        f"(reviewed {plan.digest[:19]}, now {now.digest[:19]})"
    ]
    for label, keys in (("added", added), ("removed", removed), ("changed", changed)):
        lines += [f"  {label} since the review: {k}" for k in keys[:20]]
        if len(keys) > 20:
            lines.append(f"  ... and {len(keys) - 20} more {label}")
    if not (added or removed or changed):
        if releases:
            lines.append("  releases that differ: " + ", ".join(sorted(releases)))
        else:
            lines.append("  the review recorded no detail to say which resources differ")
    return PlanCheck(
        env,
        False,
        plan.digest,
        now.digest,
        reviewed.head,
        tuple(added),
        tuple(removed),
        tuple(changed),
        tuple(sorted(releases)),
        redact.redact("\n".join(lines)),
        _PLAN_HINT,
    )


_PLAN_HINT = (
    "a chart version that floats (a version range, no Chart.lock) or a merge that "
    "landed after the review changes what deploys: review it again (re-run the merge "
    "request's review), or deploy it anyway with --accept-unreviewed (recorded in the "
    "deploy record)"
)


# --------------------------------------------------------------------------- the review


def review(
    root_base: Path,
    root_head: Path,
    envs: Sequence[str] | None,
    tools: Tools,
    *,
    head_sha: str,
    base_sha: str,
    progress: Callable[[str], None] | None = None,
) -> ReviewResult:
    """Render every environment of glue.yaml (the head's, and the base's that the head
    dropped), narrowed to ``envs`` when given, on both sides; compare them and write
    the comment. An environment on one side only counts as all added or all removed."""
    head_names = _environment_names(root_head, side="head")
    base_names = _environment_names(root_base, side="base")
    names = head_names + [n for n in base_names if n not in head_names]
    if envs:
        unknown = [e for e in envs if e not in names]
        if unknown:
            raise UsageError(
                f"unknown environment {', '.join(map(repr, unknown))}",
                hint=f"environments in glue.yaml: {', '.join(names)}",
            )
        names = [n for n in names if n in envs]
    diffs = []
    for env in names:
        sides: list[Rendering | None] = []
        for side, root, sha, present in (
            ("base", root_base, base_sha, env in base_names),
            ("head", root_head, head_sha, env in head_names),
        ):
            if not present:
                sides.append(None)
                continue
            if progress is not None:
                progress(f"rendering {env} at the {side} ({_short(sha)})")
            try:
                sides.append(render(root, env, tools))
            except OperationError as exc:
                raise OperationError(
                    f"{exc.message}\n(at the {side}, {_short(sha)})", hint=exc.hint
                ) from None
        diffs.append(compare(sides[0], sides[1]))
    plan = ReviewedPlan(head_sha, base_sha, {d.env: d.head for d in diffs if d.head})
    return ReviewResult(tuple(diffs), plan, comment_body(diffs, head_sha, base_sha))


def _environment_names(root: Path, *, side: str) -> list[str]:
    from gitops_glue.config import parse_config
    from gitops_glue.files import CONFIG_NAME, read_text

    path = root / CONFIG_NAME
    if not path.is_file():
        if side == "base":
            return []  # the change adds glue.yaml: every environment is new
        raise UsageError(
            f"no {CONFIG_NAME} in the head's {root}",
            hint="glue review renders the environments glue.yaml lists",
        )
    return parse_config(read_text(path), f"{CONFIG_NAME} ({side})").environment_names()


# --------------------------------------------------------------------------- JSON


def _key_json(key: ResourceKey) -> dict[str, str]:
    return {"release": key.release, "kind": key.kind, "namespace": key.namespace, "name": key.name}


def _env_json(diff: EnvDiff) -> dict[str, object]:
    return {
        "environment": diff.env,
        "changed": diff.changed,
        "base_digest": diff.base.digest if diff.base else None,
        "head_digest": diff.head.digest if diff.head else None,
        "releases": [
            {
                "release": r.release,
                "changes": [
                    {**_key_json(c.key), "change": c.change, "secret_keys": list(c.secret_keys)}
                    for c in r.changes
                ],
            }
            for r in diff.releases
        ],
    }
