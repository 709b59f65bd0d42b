"""``glue promote``: move versions from one environment to the next.

``promote`` copies services' tags (and revisions) from one environment to the
next in ``glue.yaml``'s order, in one commit; named services are all or
nothing. ``--all`` promotes every service that differs and the target's tag
policy accepts, and lists the refused ones (``--strict``: refuse them all).

Like a bump, :func:`plan_promote` is a pure planner on file texts handed in
by a reader, so the same code runs on a checkout and on each freshly fetched
remote tip. Every commit carries trailers, one group per service, that
``glue rollback`` and ``glue notify`` read::

    Glue-Environment: staging
    Glue-Action: promote
    Glue-Source-Environment: dev
    Glue-Service: a
    Glue-Tag: 4e5f6a7
    Glue-Previous-Tag: 3f9c2e1
    Upstream-Revision: 4e5f6a7b8c9d
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from gitops_glue import inputs
from gitops_glue.config import GlueConfig
from gitops_glue.errors import PolicyError, UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import holds, versions
from gitops_glue.repo import proof as proven
from gitops_glue.repo.bump import ServiceTag, revision_for
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
from gitops_glue.repo.proof import Proof


@dataclass(frozen=True)
class PromoteRequest:
    target: str  # the environment to promote to
    services: tuple[str, ...] | None  # None: every service
    source: str | None = None  # None: the environment before ``target``
    ci: CiContext = field(default_factory=CiContext)
    #: With every service (``--all``): refuse the whole promotion when the target's
    #: policy refuses any one service (default: promote the rest, list the refused).
    #: Services named one by one are always all or nothing.
    strict: bool = False
    #: Promote only versions the source's deploy record proves (also the target's
    #: ``require_deployed`` in glue.yaml); ``min_age`` seconds of soak (None: glue.yaml's).
    require_deployed: bool = False
    min_age: float | None = None

    @classmethod
    def of(
        cls,
        target: str,
        services: Sequence[str],
        *,
        every: bool = False,
        source: str | None = None,
        ci: CiContext | None = None,
        strict: bool = False,
        require_deployed: bool = False,
        min_age: float | None = None,
    ) -> PromoteRequest:
        """The request as ``glue promote`` takes it: ``services`` named, or ``every``
        (``--all``), not both; ``strict`` only with ``every``."""
        if not target:
            raise UsageError("--to ENV is required: the environment to promote to")
        if bool(services) == every:
            raise UsageError("name the service(s) to promote, or pass --all (not both)")
        if strict and not every:
            raise UsageError("--strict goes with --all: named services are always all or nothing")
        return cls(
            target,
            None if every else tuple(services),
            source,
            ci or CiContext(),
            strict,
            require_deployed,
            min_age,
        )


@dataclass(frozen=True)
class Promotion:
    service: str
    old_tag: str | None
    new_tag: str
    old_revision: str | None
    new_revision: str | None
    new_digest: str | None = None  # the source's digest, carried with the tag (digest_key)
    proof: Proof | None = None  # what the source's deploy record proved (require_deployed)
    file: str = ""  # the values file the tag is written to

    def to_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["proof"] = self.proof.to_json() if self.proof else None
        return data


@dataclass(frozen=True)
class Promotions:
    """What a promotion changes (and leaves), for results."""

    source: str
    target: str
    file: str  # the first promotion's file
    promotions: tuple[Promotion, ...]  # the services that change
    unchanged: tuple[str, ...]  # services already at the source's version
    #: ``--all``: services the target's policy refused, ``SERVICE TAG: why``.
    refused: tuple[str, ...] = ()
    #: ``--all`` with require_deployed: services the source's record does not prove.
    unproven: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "environment": self.target,
            "file": self.file,
            "promoted": [x.to_json() for x in self.promotions],
            "unchanged": list(self.unchanged),
            "refused": list(self.refused),
            "unproven": list(self.unproven),
        }

    def _refused_lines(self) -> list[str]:
        lines = []
        if self.refused:
            lines += [f"  refused by {self.target}'s tag policy (left as they are):"] + [
                f"    {r}" for r in self.refused
            ]
        if self.unproven:
            lines += [f"  not proven in {self.source} (left as they are):"] + [
                f"    {r}" for r in self.unproven
            ]
        return lines

    def unchanged_text(self) -> str:
        return "\n".join(
            [
                f"unchanged: {', '.join(self.unchanged) or 'nothing'} already as in "
                f"{self.source} ({self.target})",
                *self._refused_lines(),
            ]
        )

    def changed_lines(self) -> list[str]:
        return [
            f"  {x.service}: {x.old_tag} -> {x.new_tag}"
            + (f" ({x.proof.trailer()})" if x.proof else "")
            for x in self.promotions
        ] + self._refused_lines()

    def dry_run_lines(self) -> list[str]:
        return self._refused_lines()


PromoteChange = Change[Promotions]
PromoteResult = CommitResult[Promotions]


def source_of(config: GlueConfig, target: str, source: str | None) -> str:
    """``source`` if given, else the environment before ``target`` in promotion order."""
    config.environment(target)
    if source is not None:
        config.environment(source)
        if source == target:
            raise UsageError(f"--from {source} is the target environment itself")
        return source
    names = config.environment_names()
    index = names.index(target)
    if index == 0:
        raise UsageError(
            f"{target!r} is the first environment in glue.yaml: there is nothing before it "
            "to promote from",
            hint="name the source with --from ENV, or use glue release / bump-tag",
        )
    return names[index - 1]


def _extra(p: Promotion) -> tuple[tuple[str, str], ...]:
    """A promotion's digest and proof trailers, where it has them."""
    extra = [("Glue-Digest", p.new_digest)] if p.new_digest else []
    if p.proof:
        extra.append((proven.TRAILER, p.proof.trailer()))
    return tuple(extra)


def promotion_message(
    config: GlueConfig, source: str, target: str, promotions: list[Promotion], ci: CiContext
) -> str:
    names = [p.service for p in promotions]
    if len(promotions) == 1:
        title = f"feat({target}): promote {names[0]} to {promotions[0].new_tag} from {source}"
    else:
        title = f"feat({target}): promote {', '.join(names)} from {source}"
    body = tuple(f"{p.service} in {target}: {p.old_tag or '-'} -> {p.new_tag}" for p in promotions)
    trailers = version_trailers(
        target,
        [
            ServiceTrailer(p.service, p.new_tag, p.old_tag, p.new_revision, _extra(p))
            for p in promotions
        ],
        ci=ci,
        action="promote",
        source_environment=source,
    )
    revisions = {p.new_revision for p in promotions}
    parts = MessageParts(
        action="promote",
        environment=target,
        title=title,
        body=body,
        services=tuple(
            ServiceLine(p.service, p.old_tag, p.new_tag, p.old_revision, p.new_revision)
            for p in promotions
        ),
        trailers=trailers,
        ci=ci,
        source_environment=source,
        upstream_revision=next(iter(revisions)) if len(revisions) == 1 else None,
    )
    return compose(config.git, parts)


def plan_promote(
    config: GlueConfig,
    read: versions.Reader,
    req: PromoteRequest,
    records: proven.Records | None = None,
    now: dt.datetime | None = None,
    pods: proven.Pods | None = None,
) -> PromoteChange:
    """Work out the promotion commit; touches nothing.

    With proof required (``req.require_deployed`` or the target's ``require_deployed``),
    ``records`` gives the source's deploy record and ``now`` the time the soak is
    measured at; with a soak (``min_age``), ``pods`` gives the release's pods in the
    source, which must be healthy: unproven services are refused like policy-refused ones.

    Services named one by one: the whole promotion is refused when the target's
    tag policy refuses any of them. Every service (``req.services`` None): the
    accepted ones are promoted and the refused ones listed, unless ``req.strict``.
    """
    inputs.check_lines(
        {
            "environment": req.target,
            "--from": req.source,
            "the CI pipeline URL": req.ci.pipeline_url,
            "the CI actor": req.ci.actor,
        }
    )
    for name in req.services or ():
        inputs.check_line("service", name)
    target, services, source = req.target, req.services, req.source
    src_name = source_of(config, target, source)
    src, dst = config.environment(src_name), config.environment(target)
    versions.require_files(read, config, src)
    versions.require_files(read, config, dst)
    names = list(config.services) if services is None else services
    for name in names:
        config.service(name)
    texts: dict[str, str] = {}
    promotions: list[Promotion] = []
    unchanged: list[str] = []
    notes: list[str] = []
    refused: list[str] = []
    unproven: list[str] = []
    rules = proven.rules_for(dst, require=req.require_deployed, min_age=req.min_age)
    for name in names:
        svc = config.service(name)
        have = versions.read_version(read, config, src, name)
        tag = have.tag
        if tag is None:
            if services is not None:
                raise UsageError(
                    f"service {name!r} has no tag in {src_name!r} ({svc.tag_key}): nothing "
                    "to promote"
                )
            notes.append(f"{name}: no tag in {src_name}; skipped")
            continue
        try:
            check_tag(tag, config.policy_for(dst), dst.name)
        except PolicyError as exc:
            refused.append(f"{name} {tag}: {exc.message}")
            continue
        src_rev, src_digest = have.revision, have.digest
        if src_rev is not None:
            inputs.check_line(f"{name}'s revision in {src_name} ({svc.revision_key})", src_rev)
        if src_digest is not None:
            inputs.check_line(f"{name}'s digest in {src_name} ({svc.digest_key})", src_digest)
        old = versions.read_version(read, config, dst, name)
        old_tag, old_rev, old_digest = old.tag, old.revision, old.digest
        # The source's revision; else the same rule as a bump without --revision (a SHA
        # tag is its own revision, another new tag clears the old one): never stale.
        rev = (
            revision_for(ServiceTag(name, tag, src_rev), old_tag, old_rev)
            if svc.revision_key
            else None
        )
        if (
            old_tag == tag
            and (rev is None or old_rev == (rev or None))
            and src_digest == old_digest
        ):
            unchanged.append(name)
            continue
        proof = None
        if rules is not None:
            if records is None or (rules.min_age and pods is None):
                raise UsageError(
                    f"promotion to {dst.name!r} requires proof of deployment in {src_name!r}, "
                    "but no deploy records (or pods, for the soak) were given"
                )
            try:
                proof = proven.check(
                    records(config, src_name),
                    source=src_name,
                    service=name,
                    tag=tag,
                    digest=src_digest,
                    rules=rules,
                    now=now or proven.utc_now(),
                    pods=(lambda release: pods(config, src_name, release)) if pods else None,
                )
            except proven.Unproven as exc:
                unproven.append(f"{name} {tag}: {exc}")
                continue
            if proof.pods == 0:
                notes.append(
                    f"{name}: release {proof.release} has no pods in {src_name} to check; "
                    "proven by its deploy record alone"
                )
        written = versions.write(
            read,
            config,
            dst,
            name,
            texts,
            tag=tag,
            revision=rev,
            digest=(src_digest or "") if svc.digest_key and (src_digest or old_digest) else None,
        )
        promotions.append(
            Promotion(
                name,
                old_tag,
                tag,
                old_rev,
                (rev or None) if rev is not None else old_rev,
                src_digest,
                proof,
                written.file,
            )
        )
    if refused and (services is not None or req.strict):
        raise PolicyError(
            f"promotion to {dst.name!r} refused; nothing was changed:\n  " + "\n  ".join(refused),
            hint="promote the other services by name (or with --all, without --strict), "
            "or change the tag policy in glue.yaml",
        )
    if unproven and (services is not None or req.strict):
        raise PolicyError(
            f"promotion to {dst.name!r} refused: not proven in {src_name!r}; nothing was "
            "changed:\n  " + "\n  ".join(unproven),
            hint=f"deploy it to {src_name} with glue apply (and let it run"
            + (f" {proven.age(rules.min_age)}" if rules and rules.min_age else "")
            + "), then promote again",
        )
    edits = edits_between({path: read(path) or "" for path in texts}, texts)
    return Change(
        edits=edits,
        message=promotion_message(config, src_name, dst.name, promotions, req.ci),
        details=Promotions(
            src_name,
            dst.name,
            promotions[0].file if promotions else "",
            tuple(promotions),
            tuple(unchanged),
            tuple(refused),
            tuple(unproven),
        ),
        notes=tuple(notes),
    )


def promote(
    target: CommitTarget,
    req: PromoteRequest,
    *,
    dry_run: bool = False,
    override_hold: bool = False,
    freeze: Guard | None = None,
    records: proven.Records | None = None,
    clock: proven.Clock = proven.utc_now,
    pods: proven.Pods | None = None,
) -> PromoteResult:
    """``glue promote``: plan on the target's tip and commit there (``records``: the
    environments' deploy records, for proof; ``clock``: when the soak is measured;
    ``pods``: the releases' pods, for the soak's health check)."""

    def plan(view: View) -> PromoteChange:
        return plan_promote(view.config, view.read, req, records, clock(), pods)

    return commit_change(
        target,
        plan,
        guards=holds.guards(override_hold=override_hold, freeze=freeze),
        dry_run=dry_run,
    )
