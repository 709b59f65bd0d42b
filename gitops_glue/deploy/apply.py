"""``glue apply``: helmfile deployments that are safe to run, safe to cancel and
safe to retry.

apply = (``--changed-only``: pick the releases) -> lock (Lease) -> preflight
(recover releases stuck pending) -> ``helmfile apply`` (the first SIGINT/SIGTERM
forwarded to it) -> on failure, diagnose the pods -> on success, write the
deploy record -> unlock. helmfile starts only once the lock is held, so
everything it does (diffs, presync hooks, upgrades) runs under the lock.
A SIGKILLed run leaves a Lease that expires and pending releases that the
next run's preflight recovers.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gitops_glue.deploy.choices import OnFailure, Recover
from gitops_glue.errors import ExitCode, GlueError, OperationError, UsageError

if TYPE_CHECKING:
    from types import FrameType

    from gitops_glue.cluster.context import ClusterRef
    from gitops_glue.cluster.diagnose import PodProblem
    from gitops_glue.cluster.helm_storage import Recovery
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.cluster.verify import Verification
    from gitops_glue.config import LoadedConfig
    from gitops_glue.deploy.changed import ChangedReport
    from gitops_glue.deploy.diff import DiffResult
    from gitops_glue.deploy.helmfile import Release, Target
    from gitops_glue.deploy.reviewed import PlanGate
    from gitops_glue.freeze import Clock, Override
    from gitops_glue.repo.commit import CommitTarget
    from gitops_glue.service_version import ServiceVersion

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RolledBack:
    """What ``on_failure: rollback`` did."""

    services: tuple[str, ...]
    commit: str | None = None  # the revert commit (with the hold)
    remote: str | None = None  # where it was pushed; None: committed to the checkout
    reverted: tuple[str, ...] = ()  # the commits it reverts
    error: str = ""  # why there is no rollback
    verification: Verification | None = None  # of the rolled-back version

    def text(self, env: str) -> str:
        names = ", ".join(self.services)
        if not self.commit:
            return f"not rolled back ({names}): {self.error}"
        where = f"pushed to {self.remote}" if self.remote else "committed to this checkout"
        lines = [
            f"rolled back {names} in {env}: commit {self.commit[:10]} ({where}) reverts "
            + ", ".join(sha[:10] for sha in self.reverted),
            f"{names} held in {env}: the next pipeline will not deploy the failed version; "
            f"once it is fixed: glue unhold {' '.join(self.services)} --env {env}",
        ]
        if self.verification is not None:
            lines.append(f"the rolled-back version: {self.verification.summary()}")
        if self.error:
            lines.append(self.error)
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "services": list(self.services),
            "commit": self.commit,
            "remote": self.remote,
            "reverted": list(self.reverted),
            "error": self.error or None,
            "verification": self.verification.to_json() if self.verification else None,
        }


@dataclass(frozen=True)
class ApplyOptions:
    timeout: float = 300  # the deploy timeout: pending older than this is stale
    lock_timeout: float = 600
    lock_duration: int = 60
    recover: Recover = Recover.auto
    grace: float = 6.0  # after forwarding a signal, how long helmfile gets to stop
    holder: str = ""
    verify: float | None = None  # seconds to watch the changed releases' pods after
    on_failure: OnFailure | None = None  # when verification fails (None: glue.yaml's)
    #: Where ``on_failure: rollback`` commits (None: the checkout glue runs in).
    rollback_to: Callable[[], CommitTarget] | None = None


@dataclass(frozen=True)
class ApplyRequest:
    target: Target
    options: ApplyOptions = field(default_factory=ApplyOptions)
    kubeconfig: str | None = None
    kube_context: str | None = None  # overrides the environment's (glue.yaml, helmfile)
    changed_only: bool = False  # deploy only the releases whose inputs changed
    dry_run: bool = False  # diff instead of deploying
    #: A ``via: merge-request`` environment: deploy even what no review rendered.
    accept_unreviewed: bool = False
    #: The freeze windows' now (None: :func:`gitops_glue.freeze.clock`).
    clock: Clock | None = None
    #: ``--override-freeze``: deploy in a freeze window (recorded).
    override_freeze: Override | None = None


@dataclass
class ApplyResult:
    env: str
    releases: list[str]
    recoveries: list[Recovery]
    changed: bool
    lock_holder: str
    took_over: str | None = None
    record_written: bool = False
    problems: list[PodProblem] = field(default_factory=list)
    error: str = ""
    selection: ChangedReport | None = None  # --changed-only: what it found
    diff: DiffResult | None = None  # --dry-run: the diff instead of a deploy
    verification: Verification | None = None  # --verify: what watching the pods found
    rollback: RolledBack | None = None  # on_failure: rollback: what it did
    review: PlanGate | None = None  # via: merge-request: the plan check
    freeze: dict[str, Any] | None = None  # deployed in a freeze window: why it went ahead

    @property
    def nothing_changed(self) -> bool:
        """--changed-only found nothing to deploy (and deployed nothing)."""
        return self.selection is not None and not self.selection.selectors

    def text(self) -> str:
        if self.diff is not None:
            return self.diff.text()
        if self.nothing_changed:
            since = self.selection.since if self.selection else None
            return f"deployed {self.env}: nothing changed since {since} (--changed-only)"
        lines = [
            f"deployed {self.env}: {', '.join(self.releases)}"
            + ("" if self.changed else " (no changes)")
        ]
        lines += [f"  {r.describe()}" for r in self.recoveries]
        if self.review is not None:
            lines.append(
                f"  as reviewed ({self.review.source})"
                if self.review.ok
                else "  UNREVIEWED (--accept-unreviewed; recorded)"
            )
        if self.freeze is not None:
            lines.append(f"  in a freeze window until {self.freeze['until']} (recorded)")
        if self.verification is not None:
            lines.append(self.verification.summary())
        if self.rollback is not None:
            lines.append(self.rollback.text(self.env))
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        from gitops_glue.cluster.diagnose import FailureReport  # not loaded for --help

        if self.diff is not None:
            return self.diff.to_json()
        if self.nothing_changed and self.selection is not None:
            return {
                "environment": self.env,
                "releases": [],
                "changed": False,
                "changed_only": self.selection.to_json(),
            }
        return {
            "environment": self.env,
            "releases": self.releases,
            "changed": self.changed,
            "recoveries": [r.to_json() for r in self.recoveries],
            "lock_holder": self.lock_holder,
            "took_over_lock_from": self.took_over,
            "record_written": self.record_written,
            "verification": self.verification.to_json() if self.verification else None,
            "rollback": self.rollback.to_json() if self.rollback else None,
            "review": self.review.record() if self.review else None,
            "freeze": self.freeze,
            **FailureReport(self.problems, self.error).to_json(),
        }


class DeployFailed(OperationError):
    """helmfile apply failed; ``result`` carries the diagnostics."""

    def __init__(self, message: str, result: ApplyResult) -> None:
        super().__init__(message)
        self.result = result


class DeployInterrupted(GlueError):
    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str, result: ApplyResult) -> None:
        super().__init__(message)
        self.result = result


class _SignalForwarder:
    """Forward the first SIGINT/SIGTERM to helmfile once; remember we were asked to stop."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None  # the helmfile the signal goes to
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            return  # forwarded once already; the grace period is running
        self.signal = signum
        child = self.proc
        if child and child.poll() is None:
            with suppress(ProcessLookupError):
                child.send_signal(signum)

    @contextmanager
    def installed(self) -> Iterator[_SignalForwarder]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for signum, old in self._old.items():
                signal.signal(signum, old)


def _run_helmfile(
    target: Target,
    helm_major: int,
    opts: ApplyOptions,
    forwarder: _SignalForwarder,
    say: Progress,
    where: ClusterRef,
) -> tuple[int | None, str]:
    """Run ``helmfile apply``, relaying its output line by line; None as the code when it
    was interrupted."""
    from gitops_glue.tools import ANSI, helmfile_env

    proc = subprocess.Popen(
        target.helmfile_args("apply", "--detailed-exitcode", "--suppress-secrets"),
        cwd=target.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=where.tool_env(helmfile_env(helm_major)),
    )
    forwarder.proc = proc
    lines: list[str] = []

    def relay() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            say(ANSI.sub("", line.rstrip("\n")))

    pump = threading.Thread(target=relay, daemon=True)
    pump.start()

    def stop(*, term: bool) -> None:
        """TERM to its process group (unless signalled already), KILL after the grace."""
        if proc.poll() is not None:
            return
        if term:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=opts.grace)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if not term:
                say(f"glue: helmfile did not stop within {opts.grace:.0f}s; killed it")

    deadline = time.monotonic() + opts.timeout + 120
    try:
        while proc.poll() is None:
            if forwarder.signal is not None:
                stop(term=False)
                break
            if time.monotonic() > deadline:
                say("glue: helmfile ran past the deploy timeout; stopping it")
                stop(term=True)
                break
            # Wakes as soon as helmfile closes its output (it exits): a thread's join
            # does, where Popen.wait(timeout) polls at 50 ms steps. The timeout only
            # paces the checks above.
            if pump.is_alive():
                pump.join(timeout=0.1)
            else:
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
    finally:
        stop(term=True)  # only acts when glue itself is being torn down mid-run
        pump.join(timeout=5)
        forwarder.proc = None
    if forwarder.signal is not None:
        return None, "".join(lines)
    return proc.returncode, "".join(lines)


def preflight(
    kube: Kube,
    items: list[Release],
    *,
    timeout: float,
    recover: Recover,
    helm: str,
    say: Progress,
    where: ClusterRef | None = None,
) -> list[Recovery]:
    """Recover the releases stuck pending (the lock is held); what was done."""
    from gitops_glue.cluster import helm_storage

    done = []
    for release in items:
        state = helm_storage.state(kube, release.name, release.namespace)
        plan = helm_storage.plan_recovery(state, lock_held=True, timeout=timeout)
        if plan is None:
            continue
        if recover is Recover.never:
            raise OperationError(
                f"release {release.namespace}/{release.name} is stuck in "
                f"{plan.stuck_status} (revision {plan.stuck_revision}) and --recover=never",
                hint="run again with --recover=auto, or fix it by hand: helm history "
                f"{release.name} -n {release.namespace}",
            )
        say(f"glue: {plan.describe()}")
        helm_storage.recover(
            plan,
            helm,
            env=where.tool_env() if where else None,
            timeout=timeout,
            kube_args=where.args if where else (),
        )
        done.append(plan)
    return done


def deployed_versions(
    loaded: LoadedConfig, env_name: str, deployed: list[str]
) -> tuple[dict[str, ServiceVersion], str]:
    """The tag and revision of every deployed service, from the files; the git HEAD."""
    from gitops_glue.repo import gitrepo, versions

    env = loaded.config.environment(env_name)
    read = gitrepo.worktree_reader(loaded.root)
    found = versions.deployed_all(read, loaded.config, env)
    services = {name: v for name, v in found.items() if v.release in deployed}
    head = gitrepo.local_head(loaded.root)  # None: not a checkout, no git revision
    return services, head.commit if head else ""


def _write_record(
    loaded: LoadedConfig,
    env_name: str,
    kube: Kube,
    versions: tuple[dict[str, ServiceVersion], str],
    holder: str,
    recoveries: list[Recovery],
    *,
    deployed: bool = True,
    failed: Mapping[str, PodProblem] | None = None,
    verified: Collection[str] = (),
    review: Mapping[str, object] | None = None,
    freeze: Mapping[str, object] | None = None,
) -> None:
    """After a deploy: the services' versions (``since`` kept while the tag and digest stay
    the same). ``failed``: services whose deploy failed verification, with the pod
    problem that failed it (reason and last log lines are recorded); their last good
    version stays recorded as what runs. ``deployed=False`` (helmfile failed): only the
    attempt of every service is recorded. ``verified``: services that passed
    ``--verify``; a service deployed with another tag loses its earlier verification.
    ``review``: the plan check of a ``via: merge-request`` environment. ``freeze``: why a
    deploy in a freeze window went ahead."""
    from gitops_glue.cluster import record

    env = loaded.config.environment(env_name)
    previous = record.read(kube, env.record_namespace, env.name)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    services = dict(previous.services) if previous else {}
    failures = dict(previous.failed) if previous else {}
    checks = dict(previous.verified) if previous else {}
    if not deployed:
        if previous is None:
            return  # nothing deployed yet: no record to mark
        for name, version in versions[0].items():
            failures[name] = record.FailedDeploy(version.tag, now)
        record.write(kube, env.record_namespace, replace(previous, failed=failures))
        return
    for name, version in versions[0].items():
        if failed and name in failed:
            problem = failed[name]
            failures[name] = record.FailedDeploy(
                version.tag, now, _reason(problem), tuple(problem.logs[-5:])
            )
            checks.pop(name, None)
            continue
        old = services.get(name)
        same = old is not None and (old.tag, old.digest) == (version.tag, version.digest)
        since = (old.since if same and old else None) or now
        services[name] = replace(version, since=since)
        failures.pop(name, None)
        if name in verified:
            checks[name] = record.Verified(version.tag, now)
        elif not same:
            checks.pop(name, None)
    record.write(
        kube,
        env.record_namespace,
        record.DeployRecord(
            environment=env.name,
            services=services,
            git_revision=versions[1],
            deployed_at=now,
            deployed_by=holder,
            recoveries=[r.to_json() for r in recoveries],
            failed=failures,
            verified=checks,
            review=dict(review or {}),
            freeze=dict(freeze or {}),
        ),
    )


def apply(loaded: LoadedConfig, req: ApplyRequest, say: Progress) -> ApplyResult:
    """Deploy (or, with ``dry_run``, diff) an environment; see the module's docstring."""
    from gitops_glue.cluster import context

    env = loaded.config.environment(req.target.env)
    if req.changed_only and req.target.selectors:
        raise UsageError("--changed-only picks the releases itself: drop --selector")
    in_freeze = None if req.dry_run else _freeze_check(loaded, req, say)
    # The environment's cluster: the lock, recovery, record and helmfile all go there.
    where = context.for_environment(
        loaded,
        env.name,
        kubeconfig=req.kubeconfig,
        context=req.kube_context,
        tools=req.target.tools,
    )
    target = replace(req.target, kube_args=where.args)
    options = req.options
    if options.verify is None:
        options = replace(options, verify=env.verify_seconds)
    if options.on_failure is None:
        options = replace(options, on_failure=OnFailure(env.on_failure or "stop"))
    kube: Kube | None = None

    def cluster() -> Kube:
        nonlocal kube
        if kube is None:
            kube = where.kube()
        return kube

    selection = None
    if req.changed_only:
        from gitops_glue.deploy import changed

        selection = changed.report(loaded, env.name, target.tools, since=None, kube=cluster)
        if not selection.selectors:
            return ApplyResult(env.name, [], [], False, req.options.holder, selection=selection)
        say(f"glue: --changed-only: deploying {', '.join(selection.changed)}")
        target = replace(target, selectors=tuple(selection.selectors))
    if req.dry_run:
        from gitops_glue.deploy.diff import diff

        result = ApplyResult(env.name, [], [], False, req.options.holder, selection=selection)
        result.diff = diff(target, where)
        return result
    gate = None
    if env.via == "merge-request":
        from gitops_glue.deploy.reviewed import check_reviewed

        gate = check_reviewed(
            loaded.root,
            env.name,
            loaded.config,
            target.tools,
            os.environ,
            accept_unreviewed=req.accept_unreviewed,
            progress=say,
        )
    return _deploy(loaded, target, cluster(), options, say, selection, where, gate, in_freeze)


def _freeze_check(
    loaded: LoadedConfig, req: ApplyRequest, say: Progress
) -> dict[str, object] | None:
    """Refuse a deploy in one of the environment's freeze windows (exit 2), unless it is
    overridden or the checkout's HEAD is glue's rollback of the environment; what to
    record about it (None: not frozen)."""
    from gitops_glue import freeze
    from gitops_glue.repo import frozen

    env = loaded.config.environment(req.target.env)
    clock = req.clock or freeze.clock()
    state = freeze.of_environment(env, clock.now)
    if not state.frozen:
        return None
    entry: dict[str, object] = {
        "windows": [o.to_json() for o in state.active],
        "until": freeze.iso(state.until) if state.until else None,
        "at": freeze.iso(clock.now),
        **({"clock": freeze.NOW_VARIABLE} if clock.overridden else {}),
    }
    if req.override_freeze is not None:
        say(f"glue: overriding the freeze: {state.text()}")
        return {**entry, "override": req.override_freeze.to_json()}
    rollback = _head_rollback(loaded, env.name)
    if rollback:
        say(f"glue: {state.text()}; HEAD {rollback[:10]} is a rollback: it goes ahead")
        return {**entry, "rollback": rollback}
    raise frozen.refusal(
        state,
        clock,
        "not deploying; nothing was deployed",
        also=f"a checkout whose HEAD is glue rollback's commit of {env.name} deploys",
    )


def _head_rollback(loaded: LoadedConfig, env: str) -> str | None:
    """The checkout's HEAD when it is glue's rollback commit of ``env`` (its trailers)."""
    from gitops_glue.repo.commit import glue_trailers
    from gitops_glue.repo.gitrepo import commit_message

    found = commit_message(loaded.root, "HEAD")
    if found is None:
        return None
    trailers = glue_trailers(found[1]) or []
    if ("Glue-Action", "rollback") in trailers and ("Glue-Environment", env) in trailers:
        return found[0]
    return None


def _revision(kube: Kube, release: Release) -> int | None:
    """The release's latest Helm revision (None before its first)."""
    from gitops_glue.cluster import helm_storage

    latest = helm_storage.state(kube, release.name, release.namespace).latest
    return latest.number if latest else None


def _verify(
    kube: Kube, changed: list[Release], window: float, since: dt.datetime, say: Progress
) -> Verification:
    """Watch the pods of the releases that changed (see :mod:`gitops_glue.cluster.verify`)."""
    from gitops_glue.cluster import verify

    if not changed:
        say("glue: verify: no release changed; nothing to watch")
    else:
        names = ", ".join(r.name for r in changed)
        say(f"glue: verify: watching the pods of {names} for {window:g}s")
    pairs = [(r.namespace, r.name) for r in changed]
    return verify.verify(kube, pairs, window, since=since)


def _reason(problem: PodProblem) -> str:
    """A pod problem that failed verification, in one line, for the record and a hold."""
    where = f"{problem.pod}" + (f" [{problem.container}]" if problem.container else "")
    detail = f": {problem.message}" if problem.message else ""
    return f"verification: {where}: {problem.reason}{detail}"


def _previous_revision(loaded: LoadedConfig, env: str, kube: Kube) -> str:
    """The deployment repository commit the environment's record says was deployed
    before this deploy ("" when none is recorded)."""
    from gitops_glue.cluster import record

    found = record.read(kube, loaded.config.environment(env).record_namespace, env)
    return found.git_revision if found else ""


def _roll_back(
    loaded: LoadedConfig,
    env: str,
    failed: Mapping[str, PodProblem],
    previous: str,
    opts: ApplyOptions,
    say: Progress,
) -> RolledBack:
    """``on_failure: rollback``: revert ``env``'s glue commits since the ``previous``
    deploy that name a failed service, holding those services (the reason names the
    failure): ``glue rollback --to-commit PREVIOUS --hold``, limited to those services.
    With a remote target the reverted files are also written to the checkout, so the
    rolled-back version is what helmfile deploys next."""
    from gitops_glue.files import atomic_write_text
    from gitops_glue.integrations import ci
    from gitops_glue.repo.rollback import RollbackRequest, rollback
    from gitops_glue.repo.target import Checkout

    services = tuple(sorted(failed))
    if not previous:
        return RolledBack(services, error=f"no earlier deploy of {env} is recorded to return to")
    reason = f"glue apply rolled it back: {_reason(failed[services[0]])}"[:500]
    req = RollbackRequest(
        env, to_commit=previous, services=services, ci=ci.detect(), hold_reason=reason
    )
    say(f"glue: on_failure rollback: reverting {', '.join(services)} to {previous[:10]}")
    try:
        with opts.rollback_to() if opts.rollback_to else Checkout(loaded) as target:
            done = rollback(target, req)
    except GlueError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        return RolledBack(services, error=f"{exc.message}{hint}")
    if done.commit is None:
        return RolledBack(services, error="the failed version's commits are already reverted")
    if done.remote:
        for edit in done.change.edits:
            atomic_write_text(loaded.root / edit.path, edit.new_text)
    reverted = tuple(c.sha for c in done.change.details.reverted)
    return RolledBack(services, done.commit, done.remote, reverted)


def _deploy(
    loaded: LoadedConfig,
    target: Target,
    kube: Kube,
    opts: ApplyOptions,
    say: Progress,
    selection: ChangedReport | None,
    where: ClusterRef,
    gate: PlanGate | None = None,
    in_freeze: Mapping[str, object] | None = None,
) -> ApplyResult:
    """Deploy: check the tools, list the releases, then lock, recover and run helmfile."""
    from gitops_glue.cluster import diagnose
    from gitops_glue.cluster.lock import DeployLock
    from gitops_glue.deploy.helmfile import list_releases
    from gitops_glue.tools import tail

    env = loaded.config.environment(target.env)
    major = target.tools.check()
    items = list_releases(target)
    names = [r.name for r in items]
    result = ApplyResult(env.name, names, [], False, opts.holder, selection=selection)
    result.review = gate
    result.freeze = dict(in_freeze) if in_freeze is not None else None
    forwarder = _SignalForwarder()

    def run_once(result: ApplyResult, revision: str | None = None) -> dict[str, PodProblem]:
        """helmfile apply of the files as they are now, --verify, the record; the failed
        services (with why). ``revision``: the commit the files are (default: HEAD).
        Raises when helmfile fails or is interrupted."""
        # What the record will say: the files as helmfile is about to deploy them.
        versions = deployed_versions(loaded, env.name, names)
        if revision:
            versions = (versions[0], revision)
        # --verify watches the releases helmfile gives a new Helm revision.
        before = {r: _revision(kube, r) for r in items} if opts.verify else {}
        started = dt.datetime.now(dt.timezone.utc)
        code: int | None = None
        output = ""
        if forwarder.signal is None:
            code, output = _run_helmfile(target, major, opts, forwarder, say, where)
        if code is None:
            say("glue: interrupted: recovering releases left pending, then unlocking")
            result.recoveries += preflight(
                kube,
                items,
                timeout=opts.timeout,
                recover=Recover.auto,
                helm=target.tools.helm,
                say=say,
                where=where,
            )
            raise DeployInterrupted(
                f"deploy to {env.name!r} interrupted by signal {forwarder.signal}; no "
                "release is left pending and the lock is released",
                result,
            )
        if code not in (0, 2):
            for release in items:
                result.problems += diagnose.not_ready_pods(kube, release.namespace, release.name)
            result.error = tail(output, 20)
            with suppress(Exception):  # the failure is reported either way
                _write_record(loaded, env.name, kube, versions, opts.holder, [], deployed=False)
            detail = "\n".join(p.describe() for p in result.problems)
            raise DeployFailed(
                f"helmfile apply failed for {env.name!r} (exit {code})"
                + (f"\nfailing pods:\n{detail}" if detail else f"\n{result.error}"),
                result,
            )
        result.changed = code == 2
        failed: dict[str, PodProblem] = {}
        verified: list[str] = []
        if opts.verify:
            changed = [r for r in items if _revision(kube, r) != before[r]]
            result.verification = _verify(kube, changed, opts.verify, started, say)
            failing = {p.release: p for p in reversed(result.verification.failures)}
            for name, version in versions[0].items():
                if version.release in failing:
                    failed[name] = failing[version.release]
                elif any(r.name == version.release for r in changed):
                    verified.append(name)
            result.problems = list(result.verification.failures)
        _write_record(
            loaded,
            env.name,
            kube,
            versions,
            opts.holder,
            result.recoveries,
            failed=failed,
            verified=verified,
            review=gate.record() if gate is not None and not revision else None,
            freeze=in_freeze,
        )
        result.record_written = True
        return failed

    with forwarder.installed():
        lock = DeployLock(
            kube,
            env.record_namespace,
            env.name,
            holder=opts.holder,
            duration=opts.lock_duration,
            timeout=opts.lock_timeout,
            progress=say,
        )
        if not lock.acquire(stop=lambda: forwarder.signal is not None):
            raise DeployInterrupted(
                f"deploy to {env.name!r} interrupted by signal {forwarder.signal} while waiting "
                "for the deploy lock; nothing was deployed",
                result,
            )
        try:
            result.took_over = lock.took_over
            result.recoveries = preflight(
                kube,
                items,
                timeout=opts.timeout,
                recover=opts.recover,
                helm=target.tools.helm,
                say=say,
                where=where,
            )
            rolls_back = opts.verify and opts.on_failure is OnFailure.rollback
            previous = _previous_revision(loaded, env.name, kube) if rolls_back else ""
            failed = run_once(result)
            if failed and rolls_back:
                result.rollback = _roll_back(loaded, env.name, failed, previous, opts, say)
                if result.rollback.commit:
                    say("glue: applying the rolled-back version (verified too, never rolled back)")
                    again = ApplyResult(env.name, names, [], False, opts.holder)
                    try:
                        run_once(again, result.rollback.commit)
                    except DeployFailed as exc:
                        why = f"deploying the rolled-back version failed: {exc.message}"
                        result.rollback = replace(result.rollback, error=why)
                    result.rollback = replace(result.rollback, verification=again.verification)
            if result.verification is not None and not result.verification.ok:
                detail = "\n".join(p.describe() for p in result.problems)
                rolled = f"\n{result.rollback.text(env.name)}" if result.rollback else ""
                raise DeployFailed(
                    f"{env.name!r} deployed, then failed verification: "
                    f"{result.verification.summary()}\nfailing pods:\n{detail}{rolled}",
                    result,
                )
            return result
        finally:
            lock.release()
