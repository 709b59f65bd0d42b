"""Promote only what is proven: the source environment's deploy record as evidence.

``glue promote --require-deployed`` (or ``require_deployed: true`` on the target
environment in ``glue.yaml``) promotes a service's version only when the
*source* environment's deploy record, read from the source environment's own
cluster, shows that exact tag (and digest, where both sides know it) deployed
successfully, its last deploy attempt did not fail, and, with ``--min-age`` /
``min_age``, it has run there for at least that long (counted from the first
successful deploy of that tag, the record's ``since``) *and is healthy now*: every
pod of the service's release in the source (label ``app.kubernetes.io/instance``,
in the namespace helmfile gives the release) is Ready, and no container of them
restarted since that deploy (:func:`pod_health`). A release without pods (only a
CronJob, say) passes on its record alone, with a note.

:func:`check` is pure: the record, the pods and the clock are handed in, so tests
drive time without sleeping. :class:`ClusterEvidence` is the real source of both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_glue.cluster.record import still_failing
from gitops_glue.durations import parse_duration, parse_instant

if TYPE_CHECKING:
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.cluster.record import DeployRecord
    from gitops_glue.config import Environment, GlueConfig
    from gitops_glue.repo.commit import History

#: ``records(config, env)``: the environment's deploy record, or None before its first deploy.
Records = Callable[["GlueConfig", str], "DeployRecord | None"]
Clock = Callable[[], dt.datetime]
Pod = Mapping[str, Any]  # as the API serves it in JSON
#: ``pods(config, env, release)``: the pods of ``release`` in ``env``'s cluster, or None
#: when helmfile does not say which namespace the release is in there.
Pods = Callable[["GlueConfig", str, str], "Sequence[Pod] | None"]
#: ``pods(release)``: one source environment's :data:`Pods`, as :func:`check` reads them.
ReleasePods = Callable[[str], "Sequence[Pod] | None"]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class ProofRules:
    """What a promotion into one environment must prove (None: nothing)."""

    min_age: float  # seconds; 0: deployed successfully is enough


def rules_for(env: Environment, *, require: bool, min_age: float | None) -> ProofRules | None:
    """The rules of a promotion into ``env``: ``--require-deployed``/``--min-age`` (given)
    or the environment's ``require_deployed``/``min_age`` in glue.yaml."""
    if not (require or env.require_deployed or min_age is not None):
        return None
    if min_age is not None:
        return ProofRules(min_age)
    return ProofRules(parse_duration(env.min_age) if env.min_age else 0.0)


@dataclass(frozen=True)
class Proof:
    """The evidence a promoted version passed: deployed since when, run how long."""

    service: str
    tag: str
    source: str
    since: str  # when the tag was first deployed successfully in the source (UTC ISO)
    soaked: float  # seconds it had run there when promoted
    min_age: float
    release: str = ""  # the source's release of the service
    pods: int | None = None  # its pods found healthy (None: not checked, no min_age)

    def trailer(self) -> str:
        """``a 1.4.0 deployed in staging since T, 2h05m (min 30m)``: one per service, so
        ``glue notify`` can say which promoted version passed which soak."""
        need = f" (min {age(self.min_age)})" if self.min_age else ""
        return (
            f"{self.service} {self.tag} deployed in {self.source} since {self.since}, "
            f"{age(self.soaked)}{need}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "tag": self.tag,
            "source": self.source,
            "since": self.since,
            "soaked_seconds": round(self.soaked),
            "min_age_seconds": round(self.min_age),
            "healthy_pods": self.pods,
        }


def age(seconds: float) -> str:
    """``45s``, ``12m``, ``2h05m``, ``3d04h``: a soak time as people read it."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f"{s % 60:02d}s" if s % 60 else "")
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class Unproven(Exception):
    """Why a version is not proven; the message names what the source actually runs."""


def _times(n: int) -> str:
    return "1 time" if n == 1 else f"{n} times"


def _restart(cs: Mapping[str, Any], since: dt.datetime) -> str | None:
    """``restarted 3 times since it was deployed (last: Error, exit code 1, T)`` when
    the container restarted at or after ``since`` (or restarted, when not known when)."""
    restarts = int(cs.get("restartCount") or 0)
    last = (cs.get("lastState") or {}).get("terminated") or {}
    finished = parse_instant(last.get("finishedAt"))
    if restarts == 0 or (finished is not None and finished < since):
        return None
    details = [str(last.get("reason") or "Error")] if last else []
    if last.get("exitCode") is not None:
        details.append(f"exit code {last['exitCode']}")
    if finished is not None:
        details.append(f"{finished.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return f"restarted {_times(restarts)} since it was deployed" + (
        f" (last: {', '.join(details)})" if details else ""
    )


def pod_health(pods: Sequence[Pod], since: dt.datetime) -> str | None:
    """Why the release's ``pods`` are not healthy (the first pod by name that is not
    Ready now or has a container restarted at or after ``since``); None when all are.
    Pods being deleted are left out; a rollout in progress shows as a pod not Ready."""
    from gitops_glue.cluster.diagnose import containers as statuses
    from gitops_glue.cluster.diagnose import is_ready, problems_of

    found: list[str] = []
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    for pod in sorted(live, key=lambda p: str((p.get("metadata") or {}).get("name"))):
        meta = pod.get("metadata") or {}
        containers = statuses(pod)
        why: list[str] = []
        for cs in containers:
            restart = _restart(cs, since)
            if restart:
                which = f"container {cs.get('name')} " if len(containers) > 1 else ""
                why.append(which + restart)
                break
        if not is_ready(pod):
            reasons = sorted({reason for _container, reason, _message in problems_of(pod)})
            why.append("is not Ready" + (f" ({', '.join(reasons)})" if reasons else ""))
        if why:
            found.append(f"pod {meta.get('namespace')}/{meta.get('name')} {' and '.join(why)}")
    if not found:
        return None
    more = len(found) - 1
    return found[0] + (f" (and {more} more pod{'s' if more > 1 else ''})" if more else "")


def check(
    record: DeployRecord | None,
    *,
    source: str,
    service: str,
    tag: str,
    digest: str | None,
    rules: ProofRules,
    now: dt.datetime,
    pods: ReleasePods | None = None,
) -> Proof:
    """The proof that ``service`` ``tag`` runs healthy in ``source``; raises
    :class:`Unproven` saying what ``source`` runs instead. With a soak (``rules.min_age``)
    the release's ``pods`` in ``source`` must be healthy too (:func:`pod_health`)."""
    if record is None:
        raise Unproven(f"{source} has no deploy record: glue apply has not deployed it yet")
    running = record.services.get(service)
    if running is None:
        raise Unproven(f"{source}'s deploy record has no {service}: never deployed there")
    since = parse_instant(running.since) or parse_instant(record.deployed_at)
    when = running.since or record.deployed_at or "an unknown time"
    runs = f"{source} runs {service} {running.tag or '-'}"
    if running.digest:
        runs += f" ({short(running.digest)})"
    runs += f", deployed successfully {when}"
    failed = record.failed.get(service)
    if failed and still_failing(failed, running.since or record.deployed_at):
        raise Unproven(
            f"the last deploy of {service} to {source} ({failed.tag or '-'}, {failed.at}) "
            f"failed; {runs}"
        )
    if running.tag != tag:
        raise Unproven(f"{tag} is not what {source} runs: {runs}")
    if digest and running.digest and digest != running.digest:
        raise Unproven(
            f"{tag} in {source} is digest {short(running.digest)}, not {short(digest)}: "
            "the tag was moved"
        )
    if since is None:
        raise Unproven(f"{source}'s deploy record does not say when {tag} was deployed")
    soaked = (now - since).total_seconds()
    if soaked < rules.min_age:
        raise Unproven(
            f"{tag} has run in {source} for {age(soaked)}, less than the {age(rules.min_age)} "
            f"required ({runs})"
        )
    release = running.release or service
    if not rules.min_age:
        return Proof(service, tag, source, since.isoformat(), soaked, 0.0, release)
    if pods is None:
        raise Unproven(f"the pods of {source}'s release {release} were not read")
    found = pods(release)
    if found is None:
        raise Unproven(
            f"helmfile gives no namespace for release {release} in {source}, so its pods "
            "cannot be checked"
        )
    problem = pod_health(found, since)
    if problem:
        raise Unproven(f"{source} runs {service} {tag} for {age(soaked)}, but {problem}")
    return Proof(
        service, tag, source, since.isoformat(), soaked, rules.min_age, release, len(found)
    )


TRAILER = "Glue-Proven"
_TRAILER_TEXT = re.compile(r"(\S+) (\S+) deployed in (\S+) since \S+, (\S+)")


def proven_in_history(
    history: History, env: str, tags: Mapping[str, str], *, limit: int = 200
) -> dict[str, str]:
    """``{service: "45m in staging"}`` for each service whose current tag in ``env``
    (``tags``) was promoted there with proof: the newest ``Glue-Proven`` trailer of a
    commit into ``env`` that names that service and tag, within ``limit`` commits."""
    from gitops_glue.repo.commit import parse_trailers

    found: dict[str, str] = {}
    for n, commit in enumerate(history.first_parents()):
        if n >= limit or len(found) == len(tags):
            break
        trailers = parse_trailers(commit.message)
        if ("Glue-Environment", env) not in trailers:
            continue
        for key, value in trailers:
            m = _TRAILER_TEXT.match(value) if key == TRAILER else None
            if m and m[1] not in found and tags.get(m[1]) == m[2]:
                found[m[1]] = f"{m[4]} in {m[3]}"
    return found


def proven_in_checkout(root: Path, env: str, tags: Mapping[str, str]) -> dict[str, str]:
    """:func:`proven_in_history` in the history of the checkout ``root`` is in; nothing
    when ``root`` is not in a git checkout."""
    from gitops_glue.repo.gitrepo import checkout_history

    history = checkout_history(root)
    return {} if history is None else proven_in_history(history, env, tags)


def short(digest: str) -> str:
    """``sha256:0123456789ab`` (12 hex digits): enough to tell digests apart."""
    algo, _, hexes = digest.partition(":")
    return f"{algo}:{hexes[:12]}" if hexes else digest[:19]


class ClusterEvidence:
    """The real source: each environment's deploy record and releases' pods, read from
    that environment's own cluster (``kube_context``/``kubeconfig`` in glue.yaml,
    helmfile's ``kubeContext``...); the releases' namespaces from helmfile's view, read
    safely (no hook runs; :mod:`gitops_glue.helmview`), once per environment."""

    def __init__(self, root: Path, kubeconfig: str | None = None) -> None:
        from gitops_glue import helmview
        from gitops_glue.tools import Tools

        self.root = root
        self.kubeconfig = kubeconfig
        self._records: dict[str, DeployRecord | None] = {}
        self._views = helmview.Views(root, Tools.from_env())
        self._kubes: dict[str, Kube] = {}

    def _kube(self, config: GlueConfig, env: str) -> Kube:
        if env not in self._kubes:
            from gitops_glue.cluster import context
            from gitops_glue.config import LoadedConfig

            loaded = LoadedConfig(config=config, root=self.root, path=self.root / "glue.yaml")
            ref = context.for_environment(
                loaded, env, kubeconfig=self.kubeconfig, helmfile_context=self._views.kube_context
            )
            self._kubes[env] = ref.kube()
        return self._kubes[env]

    def records(self, config: GlueConfig, env_name: str) -> DeployRecord | None:
        """:data:`Records`: the environment's deploy record."""
        if env_name not in self._records:
            from gitops_glue.cluster import record

            env = config.environment(env_name)
            kube = self._kube(config, env_name)
            self._records[env_name] = record.read(kube, env.record_namespace, env.name)
        return self._records[env_name]

    def pods(self, config: GlueConfig, env_name: str, release: str) -> list[Pod] | None:
        """:data:`Pods`: the release's pods, in the namespace helmfile gives it."""
        from gitops_glue.cluster.verify import INSTANCE

        namespace = self._views.namespaces(env_name).get(release)
        if not namespace:
            return None
        return list(self._kube(config, env_name).list_pods(namespace, f"{INSTANCE}={release}"))
