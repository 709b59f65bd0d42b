"""``glue bump-tag``: set one or more services' image tags in one environment, as one commit.

:func:`plan_bump` is a pure planner on file texts handed in by a reader, so
the same code serves a local checkout and a freshly fetched remote tree; on a
lost push race it is simply run again on the new tip.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from gitops_glue import inputs
from gitops_glue.config import GlueConfig
from gitops_glue.errors import PolicyError, UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import holds, versions
from gitops_glue.repo.commit import (
    Change,
    CommitResult,
    CommitTarget,
    Guard,
    View,
    commit_change,
    edits_between,
)
from gitops_glue.repo.message import (
    MessageParts,
    ServiceLine,
    ServiceTrailer,
    compose,
    version_trailers,
)
from gitops_glue.repo.policy import check_tag

_SHA = re.compile(r"[0-9a-f]{7,40}")


@dataclass(frozen=True)
class ServiceTag:
    """One ``SERVICE=TAG[@REVISION]`` of a bump."""

    service: str
    tag: str
    revision: str | None = None


@dataclass(frozen=True)
class BumpRequest:
    """Set ``service`` to ``tag`` (and the services in ``also``) in ``env``: one commit."""

    service: str
    tag: str
    env: str
    revision: str | None = None
    upstream_repo: str | None = None
    ci: CiContext = field(default_factory=CiContext)
    #: Only bump when glue.yaml's ``auto_release`` sends this source branch to ``env``.
    if_auto_release: str | None = None
    #: More services for the same commit (``glue bump-tag --env ENV a=1 b=1``).
    also: tuple[ServiceTag, ...] = ()
    #: ``--resolve-digest``: ask the registry for every service's digest (a service with
    #: a ``digest_key`` always does); :func:`bump` fills ``digests`` before planning.
    resolve_digest: bool = False
    digests: tuple[tuple[str, str], ...] = ()  # (service, sha256:...) from the registry

    @property
    def items(self) -> tuple[ServiceTag, ...]:
        return (ServiceTag(self.service, self.tag, self.revision), *self.also)

    @classmethod
    def of(
        cls,
        env: str,
        items: Sequence[ServiceTag],
        *,
        upstream_repo: str | None = None,
        ci: CiContext | None = None,
        if_auto_release: str | None = None,
        resolve_digest: bool = False,
    ) -> BumpRequest:
        """The bump of ``items`` in ``env``; the upstream repository is CI's unless named."""
        if not items:
            raise UsageError("name at least one SERVICE=TAG to bump")
        first, *rest = items
        ci = ci or CiContext()
        return cls(
            first.service,
            first.tag,
            env,
            first.revision,
            upstream_repo or ci.repository or None,
            ci,
            if_auto_release,
            tuple(rest),
            resolve_digest,
        )


def parse_service_tags(args: Sequence[str], revision: str | None = None) -> tuple[ServiceTag, ...]:
    """``SERVICE TAG`` (the one-service form) or ``SERVICE=TAG[@REVISION] ...``.

    ``revision`` (``--revision``) is the revision of every service that does not
    name its own with ``@REVISION``: one build, one source commit.
    """
    args = list(args)
    if len(args) == 2 and not any("=" in a for a in args):
        return (ServiceTag(args[0], args[1], revision),)
    if not args:
        raise UsageError(
            "name what to bump: SERVICE TAG, or SERVICE=TAG [SERVICE=TAG ...]",
            hint="e.g. glue bump-tag --env dev a=1.4.0 b=1.4.0 (or a=1.4.0@REVISION)",
        )
    out: list[ServiceTag] = []
    for arg in args:
        service, sep, rest = arg.partition("=")
        tag, at, rev = rest.partition("@")
        if not sep or not service or not tag or (at and not rev):
            raise UsageError(
                f"{arg!r} is not SERVICE=TAG or SERVICE=TAG@REVISION",
                hint="one service: glue bump-tag SERVICE TAG; several: a=1.4.0 b=1.4.0",
            )
        out.append(ServiceTag(service, tag, rev if at else revision))
    names = [x.service for x in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"service {', '.join(dupes)} named more than once")
    return tuple(out)


@dataclass(frozen=True)
class ServiceBump:
    """One service's tag (and revision) in one environment, before and after."""

    service: str
    old_tag: str | None
    new_tag: str
    old_revision: str | None
    new_revision: str | None
    file: str = ""  # the values file the tag is written to

    @property
    def changed(self) -> bool:
        return self.old_tag != self.new_tag or self.old_revision != self.new_revision

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "old_tag": self.old_tag,
            "new_tag": self.new_tag,
            "old_revision": self.old_revision,
            "new_revision": self.new_revision,
            "file": self.file,
        }


@dataclass(frozen=True)
class TagChange:
    """The services' tags (and revisions) of a bump in one environment, before and after.

    ``service``, ``old_tag``... are the first service's (the one-service form).
    """

    env: str
    file: str  # the first service's file
    bumps: tuple[ServiceBump, ...]

    @property
    def service(self) -> str:
        return self.bumps[0].service

    @property
    def old_tag(self) -> str | None:
        return self.bumps[0].old_tag

    @property
    def new_tag(self) -> str:
        return self.bumps[0].new_tag

    @property
    def old_revision(self) -> str | None:
        return self.bumps[0].old_revision

    @property
    def new_revision(self) -> str | None:
        return self.bumps[0].new_revision

    def to_json(self) -> dict[str, object]:
        many = len(self.bumps) > 1
        first = self.bumps[0].to_json()
        if many:  # no single service's tags at the top level
            first = {k: None for k in first} | {"service": ",".join(self.names())}
        return {
            **first,
            "environment": self.env,
            "file": self.file,
            "services": [b.to_json() for b in self.bumps],
        }

    def names(self) -> list[str]:
        return [b.service for b in self.bumps]

    def unchanged_text(self) -> str:
        if len(self.bumps) == 1:
            b = self.bumps[0]
            return f"unchanged: {b.service} is already {b.new_tag} in {self.env} ({self.file})"
        return f"unchanged: {', '.join(self.names())} already as asked in {self.env}"

    def changed_lines(self) -> list[str]:
        return [
            f"  {b.file}: {b.old_tag} -> {b.new_tag}"
            if len(self.bumps) == 1
            else f"  {b.file}: {b.service} {b.old_tag} -> {b.new_tag}"
            for b in self.bumps
            if b.changed
        ]

    def dry_run_lines(self) -> list[str]:
        return []


BumpChange = Change[TagChange]
BumpResult = CommitResult[TagChange]

#: What ``glue bump-tag`` hands the next CI job (GitHub step outputs, a GitLab dotenv).
CI_OUTPUT_KEYS = ("status", "service", "environment", "file", "old_tag", "new_tag", "commit")


def ci_outputs(result: BumpResult) -> dict[str, str]:
    """The result's :data:`CI_OUTPUT_KEYS` as text, empty where there is none; in
    merge-request mode also ``merge_request_url`` and ``merge_request_number``."""
    out = {
        k: "" if v is None else str(v) for k, v in result.to_json().items() if k in CI_OUTPUT_KEYS
    }
    if result.proposal is not None:
        out["merge_request_url"] = result.proposal.url
        out["merge_request_number"] = str(result.proposal.number or "")
    return out


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def message_parts(req: BumpRequest, details: TagChange) -> MessageParts:
    """``feat(ENV): update SERVICE to TAG`` with trailers that say where it came from."""
    bumps = details.bumps
    if len(bumps) == 1:
        b = bumps[0]
        title = f"feat({req.env}): update {b.service} to {b.new_tag}"
    else:
        title = f"feat({req.env}): update {', '.join(f'{b.service} to {b.new_tag}' for b in bumps)}"
    body = tuple(
        f"{b.service} in {req.env}: {b.old_tag} -> {b.new_tag}"
        for b in bumps
        if b.old_tag and b.old_tag != b.new_tag
    )
    digests = dict(req.digests)
    moves = [
        ServiceTrailer(
            b.service,
            b.new_tag,
            b.old_tag,
            item.revision,
            (("Glue-Digest", digests[b.service]),) if digests.get(b.service) else (),
        )
        for b, item in zip(bumps, req.items, strict=True)
    ]
    trailers = version_trailers(req.env, moves, ci=req.ci, upstream_repo=req.upstream_repo)
    revisions = {x.revision for x in req.items}
    shared = next(iter(revisions)) if len(revisions) == 1 else None
    return MessageParts(
        action="bump",
        environment=req.env,
        title=title,
        body=body,
        services=tuple(
            ServiceLine(b.service, b.old_tag, b.new_tag, b.old_revision, b.new_revision)
            for b in bumps
        ),
        trailers=trailers,
        ci=req.ci,
        upstream_repo=req.upstream_repo,
        upstream_revision=shared,
    )


def check_request(req: BumpRequest) -> None:
    """Refuse control characters in every value that goes into the commit or the file."""
    inputs.check_lines(
        {
            "environment": req.env,
            "--upstream-repo": req.upstream_repo,
            "--if-auto-release": req.if_auto_release,
            "the CI pipeline URL": req.ci.pipeline_url,
            "the CI actor": req.ci.actor,
        }
    )
    for item in req.items:
        inputs.check_lines({"service": item.service, "tag": item.tag, "--revision": item.revision})


def revision_for(item: ServiceTag, old_tag: str | None, old_revision: str | None) -> str | None:
    """The revision to write next to ``item.tag`` (None: leave the key alone).

    Given: that one. Not given: a tag that is a commit SHA (7-40 hex) is its own
    revision; the same tag keeps its revision; any other new tag clears the old
    revision, so no new tag is ever paired with an old commit.
    """
    if item.revision is not None:
        return item.revision
    if _SHA.fullmatch(item.tag):
        return item.tag
    if old_tag == item.tag or not old_revision:
        return None
    return ""


def plan_bump(config: GlueConfig, read: versions.Reader, req: BumpRequest) -> BumpChange:
    """Work out the edits for a bump of one or more services; touches nothing.

    All or nothing: any refused service (unknown, policy, missing key) refuses
    the whole bump.
    """
    check_request(req)
    env = config.environment(req.env)
    items = req.items
    names = [x.service for x in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"service {', '.join(dupes)} named more than once")
    for item in items:
        config.service(item.service)
    if req.if_auto_release is not None and not config.auto_release_allows(
        req.if_auto_release, env.name
    ):
        bumps = tuple(ServiceBump(x.service, None, x.tag, None, x.revision) for x in items)
        details = TagChange(env.name, "", bumps)
        return Change(
            edits=(),
            message=compose(config.git, message_parts(req, details)),
            details=details,
            skipped=f"glue.yaml auto_release does not send new tags of branch "
            f"{req.if_auto_release!r} to {env.name!r}",
        )
    policy = config.policy_for(env)
    for item in items:
        try:
            check_tag(item.tag, policy, env.name)
        except PolicyError as exc:
            if len(items) == 1:
                raise
            raise PolicyError(
                f"service {item.service!r}: {exc.message}; nothing was changed",
                hint=exc.hint,
            ) from None
    versions.require_files(read, config, env)
    texts: dict[str, str] = {}
    notes: list[str] = []
    bumps_out: list[ServiceBump] = []
    for item in items:
        service = config.service(item.service)
        current = versions.read_version(read, config, env, item.service)
        if current.file is None:
            files = versions.sources(config, env, item.service)
            raise UsageError(
                f"service {item.service!r}: key {service.tag_key} is in none of its values "
                f"files in {env.name!r} ({', '.join(files) or 'none'})"
                + ("; nothing was changed" if len(items) > 1 else ""),
                hint=f"fix services.{item.service}.tag_key in glue.yaml, or add the key",
            )
        revision: str | None = None
        if item.revision is not None and service.revision_key is None:
            notes.append(f"--revision ignored: service {item.service!r} has no revision_key")
        elif service.revision_key is not None:
            revision = revision_for(item, current.tag, current.revision)
        digest: str | None = None
        if service.digest_key is not None:
            # The registry's digest next to the tag; a new tag without one clears the old.
            digest = dict(req.digests).get(item.service)
            if digest is not None:
                inputs.check_line("digest", digest)
            elif current.tag == item.tag:
                digest = None  # the same tag keeps its digest
            else:
                digest = ""
        written = versions.write(
            read, config, env, item.service, texts, tag=item.tag, revision=revision, digest=digest
        )
        new_revision = current.revision
        if revision is not None:
            new_revision = revision or None
            if not revision and current.revision:
                notes.append(
                    f"{item.service}: revision cleared ({service.revision_key}): no --revision "
                    f"for the new tag {item.tag}"
                )
        bumps_out.append(
            ServiceBump(
                item.service, current.tag, item.tag, current.revision, new_revision, written.file
            )
        )
    edits = edits_between({path: read(path) or "" for path in texts}, texts)
    details = TagChange(env.name, bumps_out[0].file, tuple(bumps_out))
    return Change(
        edits=edits,
        message=compose(config.git, message_parts(req, details)),
        details=details,
        notes=tuple(notes),
    )


def with_digests(config: GlueConfig, req: BumpRequest) -> BumpRequest:
    """``req`` with the registry's digest of every service's tag that wants one."""
    wanted = [i for i in req.items if req.resolve_digest or config.service(i.service).digest_key]
    if not wanted:
        return req  # the registry client is not even imported (remote bumps wait for this)
    from gitops_glue.errors import OperationError
    from gitops_glue.integrations import oci

    found: list[tuple[str, str]] = []
    for item in wanted:
        svc = config.service(item.service)
        if not svc.digest_key or not svc.image:
            raise UsageError(
                f"--resolve-digest: service {item.service!r} needs a digest_key and an image "
                "in glue.yaml (where to write the digest, and where to ask for it)"
            )
        ref, digest = oci.resolve(svc.image, item.tag)
        if digest is None:
            raise OperationError(
                f"{ref}:{item.tag} is not in the registry: no digest to pin; nothing was changed",
                hint="push the image first (glue wait-image waits for it)",
            )
        found.append((item.service, digest))
    return dataclasses.replace(req, digests=tuple(found)) if found else req


def bump(
    target: CommitTarget,
    req: BumpRequest,
    *,
    dry_run: bool = False,
    override_hold: bool = False,
    freeze: Guard | None = None,
) -> BumpResult:
    """``glue bump-tag``: ask the registry for digests (``digest_key``/``--resolve-digest``),
    then plan on the target's tip and commit there."""
    req = with_digests(target.config(), req)

    def plan(view: View) -> BumpChange:
        return plan_bump(view.config, view.read, req)

    return commit_change(
        target,
        plan,
        guards=holds.guards(override_hold=override_hold, freeze=freeze),
        dry_run=dry_run,
    )
