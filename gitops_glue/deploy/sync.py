"""``glue sync``: the cluster pulls its deployment repository (pull mode).

One round (:func:`sync_once`): fetch the branch tip (read-only credentials, the SSH
host key verified: :mod:`gitops_glue.repo.remote`); when it is the deploy record's
``git-revision``, do nothing (no helmfile apply). Else, under the environment's deploy
lock (the Lease ``glue apply`` takes too), read the record again (a CI apply or
another sync may have deployed it meanwhile), then run ``glue apply --changed-only``
on a checkout of the tip with the branch's history (a full fetch, only then) in a
private work folder: its recovery, record and verification as configured. The record
then names the tip; a tip that changes no release's inputs is recorded without
running helmfile. A failed apply keeps the
previous revision recorded, and is alerted through ``glue notify``'s Slack path once
per failing revision (remembered in the cluster: :mod:`gitops_glue.cluster.sync_state`).

:func:`sync_every` repeats rounds with a jittered interval and a capped exponential
back-off after failures, and stops on SIGTERM/SIGINT: a signal during a deploy goes
to ``glue apply`` (helmfile stopped, pending releases recovered, lock released); at
any other time it abandons the round (nothing deployed, the lock released).
A health file (``--health-file``) is touched after every good round and removed
after ``unhealthy_after`` failed rounds in a row: the Deployment's probes.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_glue.errors import ExitCode, GlueError

if TYPE_CHECKING:
    from types import FrameType

    from gitops_glue.cluster.kube import Kube
    from gitops_glue.cluster.sync_state import SyncState
    from gitops_glue.config import LoadedConfig
    from gitops_glue.deploy.apply import ApplyOptions, ApplyRequest, ApplyResult
    from gitops_glue.repo.remote import RemoteOptions
    from gitops_glue.tools import Tools

Progress = Callable[[str], None]


class SyncStopped(GlueError):
    """SIGTERM/SIGINT outside a deploy: the round was abandoned, nothing deployed."""

    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True)
class SyncRequest:
    env: str
    remote: RemoteOptions
    #: A private folder for the checkouts (one per fetched revision, the last kept).
    workdir: Path
    options: ApplyOptions
    tools: Tools
    environ: Mapping[str, str]
    kubeconfig: str | None = None
    kube_context: str | None = None
    #: Alert (glue notify's Slack path) when a revision fails, once per revision.
    alert: bool = True
    #: Fetch and diff what would be applied; write, lock and alert nothing.
    dry_run: bool = False
    #: Where the sync state is kept before any glue.yaml was fetched (a fetch failing
    #: from the first round on): glue.yaml's namespace of ``env`` wins once known.
    record_namespace: str | None = None


@dataclass
class SyncResult:
    env: str
    #: "up-to-date" (nothing to do), "applied", "recorded" (no release changed: the
    #: revision recorded without helmfile), "failed"; --dry-run: "would-apply".
    action: str
    revision: str = ""  # the branch tip fetched ("" when the fetch failed)
    previous: str = ""  # the record's revision before the round
    apply: ApplyResult | None = None
    error: str = ""
    exit_code: int = 0
    alerted: bool = False
    notes: list[str] = field(default_factory=list)
    state: SyncState | None = None  # as kept after the round

    @property
    def ok(self) -> bool:
        return self.action != "failed"

    def text(self) -> str:
        tip = self.revision[:10] or "?"
        if self.action == "up-to-date":
            line = f"sync {self.env}: up to date at {tip}"
        elif self.action == "recorded":
            line = f"sync {self.env}: {tip} changes no release; recorded it (no helmfile apply)"
        elif self.action == "applied":
            line = f"sync {self.env}: applied {tip} (was {self.previous[:10] or 'nothing'})"
        elif self.action == "would-apply":
            line = f"sync {self.env}: would apply {tip} (was {self.previous[:10] or 'nothing'})"
        else:
            line = f"sync {self.env}: FAILED at {tip}: {self.error}"
        lines = [line]
        if self.apply is not None and self.action in ("applied", "would-apply"):
            lines.append(self.apply.text())
        if self.alerted:
            lines.append("alerted (Slack)")
        lines += self.notes
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.env,
            "action": self.action,
            "revision": self.revision or None,
            "previous": self.previous or None,
            "apply": self.apply.to_json() if self.apply is not None else None,
            "error": self.error or None,
            "alerted": self.alerted,
            "notes": self.notes,
        }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class _Place:
    """The files of the last fetched revision and its cluster, kept between rounds."""

    def __init__(self) -> None:
        self.revision = ""
        self.loaded: LoadedConfig | None = None
        self.kube: Kube | None = None
        #: ``loaded.root`` is a checkout with the branch's history (else files only).
        self.history = False
        self.seen = ""  # the tip the last fetch found (even when its files failed)


def _fetch_tip(req: SyncRequest, place: _Place) -> tuple[str, Any, Any]:
    """Fetch the branch tip (shallow) and, when it moved, make ``place`` its files: enough
    to compare it with the record. The tip's id, the spec and the credentials."""
    from gitops_glue import network
    from gitops_glue.repo import gitrepo, remote

    auth, _warnings = remote.make_auth(req.remote, req.environ)
    spec = remote.RemoteSpec(
        req.remote.url, req.remote.branch, timeout=network.timeout_from_env(req.environ)
    )
    with remote.Connection(spec, auth, push=False) as conn:
        tip = place.seen = str(conn.tip().id)
        if place.revision != tip or place.loaded is None:
            dest = _fresh(req, f"{tip[:16]}-files")
            gitrepo.export_revision(Path(conn.session.repo.path), tip, dest)
            _use(req, place, tip, dest, history=False)
    return tip, spec, auth


def _fresh(req: SyncRequest, name: str) -> Path:
    """An empty private folder ``name`` in the work folder."""
    req.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    dest = req.workdir / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(mode=0o700)
    return dest


def _use(req: SyncRequest, place: _Place, tip: str, dest: Path, *, history: bool) -> None:
    """``place`` is ``dest`` (``tip``'s files) from now on; the folders before it go."""
    from gitops_glue.cluster import context
    from gitops_glue.config import load_config

    for old in req.workdir.iterdir():
        if old != dest and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    loaded = load_config(dest)
    kube = context.for_environment(
        loaded, req.env, kubeconfig=req.kubeconfig, context=req.kube_context, tools=req.tools
    ).kube()
    # Only once both are known: a revision whose glue.yaml fails is fetched again.
    place.revision, place.history, place.loaded, place.kube = tip, history, loaded, kube


def _with_history(req: SyncRequest, place: _Place, spec: Any, auth: Any) -> None:
    """Before a deploy: ``place`` becomes a checkout of the tip with the branch's history
    (a full fetch), which --changed-only compares with the recorded revision."""
    from gitops_glue.repo import gitrepo, remote

    if place.history:
        return
    dest = _fresh(req, f"{place.revision[:16]}-git")
    with remote.Connection(spec, auth, push=False, history=True) as conn:
        conn.tip()
        got = gitrepo.checkout_of(
            Path(conn.session.repo.path), conn.session.tracking, dest, req.remote.branch
        )
    # The branch may have moved since the first fetch: this round deploys what it got.
    _use(req, place, got, dest, history=True)


def _recorded(loaded: LoadedConfig, env: str, kube: Kube) -> tuple[str, str]:
    """The record's revision and who deployed it ("" when nothing is recorded)."""
    from gitops_glue.cluster import record

    found = record.read(kube, loaded.config.environment(env).record_namespace, env)
    return (found.git_revision, found.deployed_by) if found else ("", "")


def _record_revision(loaded: LoadedConfig, env: str, kube: Kube, tip: str, holder: str) -> None:
    """A tip that changes no release: the record names it (its services as they were)."""
    from gitops_glue.cluster import record

    ns = loaded.config.environment(env).record_namespace
    found = record.read(kube, ns, env)
    if found is not None:
        record.write(
            kube, ns, replace(found, git_revision=tip, deployed_at=_now(), deployed_by=holder)
        )


def sync_once(
    req: SyncRequest, say: Progress, place: _Place | None = None, remembered: str = ""
) -> SyncResult:
    """One round (see the module's docstring). Failures are returned (``action``
    "failed"), not raised; a signal raises :class:`SyncStopped` or apply's
    ``DeployInterrupted``. ``remembered``: the revision this process alerted about
    last (when the cluster cannot be asked)."""
    from gitops_glue.deploy import apply as apply_mod

    place = place or _Place()
    place.seen = ""
    result = SyncResult(req.env, "failed")
    try:
        tip, spec, auth = _fetch_tip(req, place)
        result.revision = tip
        assert place.loaded is not None and place.kube is not None
        result.previous, _by = _recorded(place.loaded, req.env, place.kube)
        if result.previous != tip:
            _with_history(req, place, spec, auth)
            assert place.loaded is not None and place.kube is not None
            result.revision = tip = place.revision
            loaded, kube = place.loaded, place.kube
            if req.dry_run:
                dry = _apply_request(req, loaded, True, True)
                result.apply = apply_mod.apply(loaded, dry, say)
                result.action = "would-apply"
            else:
                result.action = _deploy(req, loaded, kube, tip, result, say)
        else:
            result.action = "up-to-date"
    except (apply_mod.DeployInterrupted, SyncStopped):
        raise
    except GlueError as exc:
        result.revision = result.revision or place.seen
        hint = f" ({exc.hint})" if exc.hint else ""
        result.action, result.error = "failed", f"{exc.message}{hint}"
        result.exit_code = int(exc.exit_code)
        failed = getattr(exc, "result", None)
        if isinstance(failed, apply_mod.ApplyResult):
            result.apply = failed
    if not req.dry_run:
        _after(req, place, result, say, remembered)
    return result


def _apply_request(
    req: SyncRequest, loaded: LoadedConfig, changed_only: bool, dry_run: bool = False
) -> ApplyRequest:
    from gitops_glue.deploy.apply import ApplyRequest
    from gitops_glue.deploy.helmfile import Target

    return ApplyRequest(
        target=Target(env=req.env, root=loaded.root, tools=req.tools),
        options=req.options,
        kubeconfig=req.kubeconfig,
        kube_context=req.kube_context,
        changed_only=changed_only,
        dry_run=dry_run,
    )


def _deploy(
    req: SyncRequest, loaded: LoadedConfig, kube: Kube, tip: str, result: SyncResult, say: Progress
) -> str:
    """Under the deploy lock: apply --changed-only of the checkout, unless someone else
    deployed ``tip`` meanwhile. The action taken."""
    from gitops_glue.cluster.lock import DeployLock
    from gitops_glue.deploy import apply as apply_mod
    from gitops_glue.repo import gitrepo

    env = loaded.config.environment(req.env)
    opts = req.options
    lock = DeployLock(
        kube,
        env.record_namespace,
        env.name,
        holder=opts.holder,
        duration=opts.lock_duration,
        timeout=opts.lock_timeout,
        progress=lambda m: say(f"glue: {m}"),
    )
    lock.acquire()
    try:
        # Someone may have deployed it while we waited: the record decides.
        result.previous, by = _recorded(loaded, req.env, kube)
        if result.previous == tip:
            result.notes.append(f"already deployed by {by or 'another deploy'}")
            return "up-to-date"
        changed_only = True
        if result.previous and gitrepo.commit_message(loaded.root, result.previous) is None:
            # History rewritten (a force-push): no base to compare with.
            result.notes.append(
                f"the recorded revision {result.previous[:10]} is not in the branch's "
                "history: deploying every release"
            )
            changed_only = False
        say(f"glue: sync: {result.previous[:10] or 'nothing'} -> {tip[:10]}")
        applied = apply_mod.apply(loaded, _apply_request(req, loaded, changed_only), say)
        result.apply = applied
        if applied.nothing_changed:
            _record_revision(loaded, req.env, kube, tip, opts.holder)
            return "recorded"
        return "applied"
    finally:
        lock.release()  # apply released its own (the same holder); a no-op then


def _after(
    req: SyncRequest, place: _Place, result: SyncResult, say: Progress, remembered: str
) -> None:
    """Keep the round in the sync state ConfigMap; alert a newly failing revision."""
    from gitops_glue.cluster import sync_state

    state: SyncState | None = None
    kube, ns = _state_place(req, place, result)
    if kube is not None:
        try:
            state = sync_state.read(kube, ns, req.env)
        except GlueError as exc:
            result.notes.append(f"could not read the sync state: {exc.message}")
    state = state or sync_state.SyncState()
    now = _now()
    state = replace(
        state,
        branch=req.remote.branch,
        remote=_masked(req.remote.url),
        seen_revision=result.revision or state.seen_revision,
        checked_at=now,
    )
    if result.action in ("applied", "recorded"):
        state = replace(state, applied_revision=result.revision, applied_at=now)
    if result.ok:
        verification = result.apply.verification if result.apply else None
        if result.action == "up-to-date" and state.failing_revision == result.revision:
            state = replace(state, failures=0)  # still the failed revision: stays flagged
        elif verification is None or verification.ok:
            state = replace(state, failing_revision="", failing_since="", error="", failures=0)
    else:
        key = result.revision or "(fetch)"
        since = state.failing_since if state.failing_revision == key else now
        state = replace(
            state,
            failing_revision=key,
            failing_since=since,
            error=result.error[:1000],
            failures=state.failures + 1,
        )
        if req.alert and key not in (state.alerted_revision, remembered):
            result.alerted = _alert(req, place, result, say)
            if result.alerted:
                state = replace(state, alerted_revision=key)
        elif req.alert:
            result.notes.append(f"already alerted about {key[:10]}")
    result.state = state
    if kube is not None:
        try:
            sync_state.write(kube, ns, req.env, state)
        except GlueError as exc:
            result.notes.append(f"could not keep the sync state: {exc.message}")


def _state_place(req: SyncRequest, place: _Place, result: SyncResult) -> tuple[Kube | None, str]:
    """The cluster and namespace of the sync state: glue.yaml's, else
    ``req.record_namespace`` on the current cluster; (None, "") when neither is known."""
    from gitops_glue.cluster.kube import Kube

    if place.loaded is not None and place.kube is not None:
        return place.kube, place.loaded.config.environment(req.env).record_namespace
    if not req.record_namespace:
        return None, ""
    try:
        return Kube(req.kubeconfig, req.kube_context), req.record_namespace
    except GlueError as exc:
        result.notes.append(f"could not keep the sync state: {exc.message}")
        return None, ""


def _masked(url: str) -> str:
    from gitops_glue import redact

    return redact.mask_url(url)


def _alert(req: SyncRequest, place: _Place, result: SyncResult, say: Progress) -> bool:
    """Tell Slack the sync of ``result.revision`` fails (glue notify's failed phase when
    there is a checkout of it; else a plain message). Whether it was sent."""
    from gitops_glue.messages import slack

    target = slack.Target.from_env(req.environ)
    if not target.configured:
        result.notes.append("not alerted: Slack is not configured")
        return False
    try:
        if place.loaded is not None and place.history and place.revision == result.revision:
            _notify_failed(req, place, result, say)
        else:
            text = f":x: glue sync of {req.env} failed: {result.error}"
            slack.post(target, slack.Message(text, [slack.section(slack.escape(text))]))
    except GlueError as exc:
        result.notes.append(f"could not alert: {exc.message}")
        return False
    return True


def _notify_failed(req: SyncRequest, place: _Place, result: SyncResult, say: Progress) -> None:
    from gitops_glue.cluster.diagnose import FailureReport
    from gitops_glue.files import atomic_write_text
    from gitops_glue.messages import notify
    from gitops_glue.messages.phase import Phase

    assert place.loaded is not None
    report = req.workdir / "apply-report.json"
    data = (
        result.apply.to_json()
        if result.apply is not None
        else FailureReport([], result.error).to_json()
    )
    if not data.get("error") and not data.get("failing_pods"):
        data = {**data, "error": result.error}
    atomic_write_text(report, json.dumps(data) + "\n")
    notify.run(
        notify.NotifyRequest(
            phase=Phase.failed,
            environment=req.env,
            directory=place.loaded.root,
            actor=f"glue sync ({req.remote.branch} at {result.revision[:10]})",
            apply_report=report,
            kubeconfig=req.kubeconfig,
            kube_context=req.kube_context,
        ),
        progress=say,
    )


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class LoopOptions:
    interval: float = 60.0
    jitter: float = 0.1  # each wait is the interval +- this fraction
    max_backoff: float = 900.0  # the longest wait after failures
    health_file: Path | None = None
    unhealthy_after: int = 3  # failed rounds in a row that make the health file go
    rounds: int | None = None  # stop after this many rounds (None: until signalled)


def next_wait(interval: float, failures: int, opts: LoopOptions, rand: float) -> float:
    """Seconds until the next round: the interval, doubled for each failure in a row
    (capped at ``max_backoff``, never below the interval), +- the jitter (``rand`` in
    [0, 1))."""
    base = interval * (2 ** min(failures, 30)) if failures else interval
    base = min(base, max(opts.max_backoff, interval))
    return base * (1 + opts.jitter * (2 * rand - 1))


class _Stopper:
    """SIGTERM/SIGINT between deploys: remember it and abandon the round (raise)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.wake = threading.Event()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            return
        self.signal = signum
        self.wake.set()
        raise SyncStopped(
            f"glue sync stopped by signal {signum}: nothing was being deployed; the round "
            "was abandoned and no lock is held"
        )

    @contextmanager
    def installed(self) -> Iterator[_Stopper]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in old.items():
                signal.signal(signum, handler)


def update_health(opts: LoopOptions, result: SyncResult, failures: int) -> None:
    """The health file after a round: touched when it went well, removed after
    ``unhealthy_after`` failed rounds in a row."""
    path = opts.health_file
    if path is None:
        return
    if result.ok:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{_now()} {result.action} {result.revision}\n")
    elif failures >= opts.unhealthy_after:
        with suppress(FileNotFoundError):
            path.unlink()


def sync_every(
    req: SyncRequest,
    opts: LoopOptions,
    say: Progress,
    report: Callable[[SyncResult], None],
) -> int:
    """Rounds until a signal (or ``opts.rounds``); each round's result to ``report``.
    The number of rounds run. Raises :class:`SyncStopped` or ``DeployInterrupted``
    when a signal ended it (the lock released either way)."""
    from gitops_glue.deploy import apply as apply_mod

    place = _Place()
    failures = 0
    alerted = ""
    rounds = 0
    stopper = _Stopper()
    with stopper.installed():
        try:
            while opts.rounds is None or rounds < opts.rounds:
                result = sync_once(req, say, place, alerted)
                rounds += 1
                if result.ok:
                    failures = 0
                else:
                    failures = max(failures + 1, result.state.failures if result.state else 0)
                    if result.alerted:
                        alerted = result.revision or "(fetch)"
                update_health(opts, result, failures)
                report(result)
                if opts.rounds is not None and rounds >= opts.rounds:
                    break
                wait = next_wait(opts.interval, failures, opts, random.random())  # noqa: S311 (jitter)
                if failures:
                    say(f"glue: sync: {failures} failed round(s) in a row; next in {wait:.0f}s")
                stopper.wake.wait(wait)
        except apply_mod.DeployInterrupted:
            raise  # the deploy stopped helmfile, recovered and unlocked
    if stopper.signal is not None:
        raise SyncStopped(
            f"glue sync stopped by signal {stopper.signal}: nothing was being deployed"
        )
    return rounds


__all__ = [
    "LoopOptions",
    "SyncRequest",
    "SyncResult",
    "SyncStopped",
    "next_wait",
    "sync_every",
    "sync_once",
]
