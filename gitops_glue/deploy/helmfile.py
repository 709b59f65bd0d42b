"""``glue diff`` and ``glue apply``: helmfile deployments that are safe to run,
safe to cancel and safe to retry.

apply = helmfile apply started at once behind a gate (see gate.py) | lock
(Lease) -> preflight (recover releases stuck pending) -> open the gate, or run
helmfile again if its diffs went stale -> (signals forwarded once) -> on
failure, diagnose the pods -> on success, write the deploy record -> unlock.
A SIGKILLed run leaves a Lease that expires and pending releases that the next
run's preflight recovers; its gate refuses whatever helmfile still asks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gitops_glue.cluster import helm_storage as rel
from gitops_glue.errors import ExitCode, GlueError, OperationError, UsageError

if TYPE_CHECKING:
    from gitops_glue.cluster.diagnose import PodProblem
    from gitops_glue.cluster.kube import Kube
    from gitops_glue.cluster.record import ServiceVersion
    from gitops_glue.config import LoadedConfig
    from gitops_glue.deploy.gate import Gate

Progress = Callable[[str], None]

_COMPARING = re.compile(r"^Comparing release=(?P<release>[^,\s]+)")
_CHANGE = re.compile(
    r"^(?P<ns>[^,\s]+), (?P<name>[^,\s]+), (?P<kind>\S+)(?: \((?P<group>[^)]*)\))?"
    r" has (?P<what>changed|been added|been removed)"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Tools:
    helmfile: str = "helmfile"
    helm: str = "helm"

    @classmethod
    def from_env(cls) -> Tools:
        return cls(os.environ.get("GLUE_HELMFILE", "helmfile"), os.environ.get("GLUE_HELM", "helm"))

    def helm_major(self) -> int:
        out = _run_quiet([self.helm, "version", "--template", "{{.Version}}"])
        match = re.match(r"v?(\d+)\.", out.strip())
        if not match:
            raise UsageError(f"cannot tell the version of {self.helm}: {out.strip()[:200]}")
        return int(match.group(1))

    def helmfile_version(self) -> tuple[int, ...]:
        out = _run_quiet([self.helmfile, "version", "-o", "short"], helmfile_env())
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
        return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)

    def check(self) -> int:
        """The helm major version; refuse combinations that cannot work."""
        major = self.helm_major()
        # Only asked when it matters: `helmfile version` also checks GitHub for updates.
        if major >= 4 and self.helmfile_version() < (1, 0, 0):
            raise UsageError(
                f"helmfile {'.'.join(map(str, self.helmfile_version()))} cannot drive Helm "
                f"{major} (it calls 'helm version --client', which Helm 4 removed)",
                hint="use helmfile >= 1.0 with Helm 4, or Helm 3 (GLUE_HELM=path/to/helm3)",
            )
        return major


def helmfile_env(helm_major: int = 3) -> dict[str, str]:
    """The environment helmfile runs in.

    No colour codes in what glue parses; no update check against GitHub; and for
    Helm 4, helm-diff (3.9.x) must dry-run through ``helm upgrade``, because Helm 4
    refuses the ``template --validate --dry-run=client`` it uses otherwise.
    """
    env = {**os.environ, "HELM_DIFF_COLOR": "false", "HELMFILE_UPGRADE_NOTICE_DISABLED": "1"}
    return {**helm_diff_env(helm_major), **env}


def helm_diff_env(helm_major: int) -> dict[str, str]:
    """What helm-diff needs for this Helm major version (the caller's environment wins)."""
    return {"HELM_DIFF_USE_UPGRADE_DRY_RUN": "true"} if helm_major >= 4 else {}


def _run_quiet(args: list[str], env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=60, check=False, env=env
        )
    except FileNotFoundError:
        raise UsageError(
            f"{args[0]} not found", hint="install it or point GLUE_HELM / GLUE_HELMFILE at it"
        ) from None
    return proc.stdout + proc.stderr


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    labels: str = ""


@dataclass(frozen=True)
class Target:
    """What to deploy: an environment of a deployment repo, maybe narrowed by selectors."""

    env: str
    root: Path
    selectors: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    tools: Tools = field(default_factory=Tools)

    def helmfile_args(self, *sub: str) -> list[str]:
        args = [self.tools.helmfile, "--helm-binary", self.tools.helm, "-e", self.env]
        for sel in self.selectors:
            args += ["--selector", sel]
        return [*args, *sub, *self.extra_args]


def start_listing(target: Target) -> subprocess.Popen[str]:
    """Start ``helmfile list --output json`` (finish with :func:`finish_listing`)."""
    return subprocess.Popen(
        target.helmfile_args("list", "--output", "json"),
        env=helmfile_env(),
        cwd=target.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_listing(target: Target, proc: subprocess.Popen[str]) -> list[Release]:
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0 and target.extra_args and "unknown flag" in err:
        # The extra arguments were meant for apply or diff (--skip-diff-on-install, ...),
        # not for list: the releases are the same without them.
        return finish_listing(target, start_listing(replace(target, extra_args=())))
    if proc.returncode != 0:
        raise UsageError(
            f"helmfile cannot read the deployment for {target.env!r}: {_tail(err or out)}"
        )
    try:
        items = json.loads(out or "[]")
    except ValueError:
        raise OperationError(f"helmfile list gave no JSON: {_tail(out)}") from None
    return [
        Release(i["name"], i.get("namespace") or "default", i.get("labels", ""))
        for i in items
        if i.get("enabled", True) and i.get("installed", True)
    ]


def list_releases(target: Target) -> list[Release]:
    """The releases helmfile would touch (``helmfile list --output json``)."""
    return finish_listing(target, start_listing(target))


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(_ANSI.sub("", text).strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class DiffResult:
    env: str
    changes: dict[str, list[str]]  # release -> "Deployment a has changed" lines
    unchanged: list[str]
    output: str  # helmfile's diff, secrets suppressed

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.CHANGES if self.changes else ExitCode.OK

    def summary_markdown(self) -> str:
        lines = [f"### glue diff: {self.env}", ""]
        if not self.changes:
            lines.append("No changes.")
        for release, items in self.changes.items():
            lines.append(f"- **{release}** would change:")
            lines += [f"  - {item}" for item in items]
        if self.unchanged:
            lines.append(f"- unchanged: {', '.join(self.unchanged)}")
        body = "\n".join(lines)
        diff = self.output.strip()
        if diff:
            body += "\n\n<details><summary>diff</summary>\n\n```diff\n" + diff + "\n```\n</details>"
        return body[: 1024 * 1000] + "\n"

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.env,
            "changed": bool(self.changes),
            "changes": self.changes,
            "unchanged": self.unchanged,
        }


def parse_diff(output: str, releases: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    changes: dict[str, list[str]] = {}
    current: str | None = None
    for raw in output.splitlines():
        line = _ANSI.sub("", raw)
        m = _COMPARING.match(line)
        if m:
            current = m.group("release")
            continue
        c = _CHANGE.match(line)
        if c:
            release = current or c.group("name")
            kind = c.group("kind") + (f" ({c.group('group')})" if c.group("group") else "")
            changes.setdefault(release, []).append(
                f"{kind} {c.group('ns')}/{c.group('name')} has {c.group('what')}"
            )
    return changes, [r for r in releases if r not in changes]


def diff(target: Target) -> DiffResult:
    major = target.tools.check()
    names = [r.name for r in list_releases(target)]
    proc = subprocess.run(
        # One release at a time, so each release's diff follows its "Comparing" line.
        target.helmfile_args(
            "diff", "--detailed-exitcode", "--suppress-secrets", "--concurrency", "1"
        ),
        cwd=target.root,
        capture_output=True,
        text=True,
        check=False,
        env=helmfile_env(major),
        timeout=1800,
    )
    if proc.returncode not in (0, 2):
        raise OperationError(
            f"helmfile diff failed for {target.env!r} "
            f"(exit {proc.returncode}):\n{_tail(proc.stderr or proc.stdout, 30)}"
        )
    output = _ANSI.sub("", proc.stdout)
    changes, unchanged = parse_diff(output, names)
    if proc.returncode == 2 and not changes:
        changes = {"(unknown)": ["helmfile reported changes it did not list"]}
    return DiffResult(target.env, changes, unchanged, output)


# --------------------------------------------------------------------------- apply


@dataclass
class ApplyResult:
    env: str
    releases: list[str]
    recoveries: list[rel.Recovery]
    changed: bool
    lock_holder: str
    took_over: str | None = None
    record_written: bool = False
    problems: list[PodProblem] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.env,
            "releases": self.releases,
            "changed": self.changed,
            "recoveries": [r.to_json() for r in self.recoveries],
            "lock_holder": self.lock_holder,
            "took_over_lock_from": self.took_over,
            "record_written": self.record_written,
            "failing_pods": [p.to_json() for p in self.problems],
            "error": self.error,
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


@dataclass(frozen=True)
class ApplyOptions:
    timeout: float = 300  # the deploy timeout: pending older than this is stale
    lock_timeout: float = 600
    lock_duration: int = 60
    recover: Literal["auto", "never"] = "auto"
    grace: float = 6.0  # after forwarding a signal, how long helmfile gets to stop
    holder: str = ""


class _SignalForwarder:
    """Forward the first SIGINT/SIGTERM to helmfile once; remember we were asked to stop."""

    def __init__(self) -> None:
        self.run: _HelmfileRun | None = None  # the helmfile run the signal goes to
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal is not None:
            return  # forwarded once already; the grace period is running
        self.signal = signum
        child = self.run.proc if self.run else None
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


class _HelmfileRun:
    """One ``helmfile apply`` process, its output relayed line by line.

    While ``held``, lines are kept back instead of shown: a run that glue stops
    before its gate opens (see :mod:`gate`) shows nothing.
    """

    def __init__(self, target: Target, gate: Gate, on_line: Progress, *, held: bool) -> None:
        self.on_line = on_line
        self.lines: list[str] = []
        self._held: list[str] | None = [] if held else None
        self._mutex = threading.Lock()
        gated = replace(target, tools=replace(target.tools, helm=gate.helm))
        self.proc = subprocess.Popen(
            gated.helmfile_args("apply", "--detailed-exitcode", "--suppress-secrets"),
            cwd=target.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=helmfile_env(),
        )
        self._pump = threading.Thread(target=self._relay, daemon=True)
        self._pump.start()

    def _relay(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            text = _ANSI.sub("", line.rstrip("\n"))
            with self._mutex:
                self.lines.append(line)
                if self._held is not None:
                    self._held.append(text)
                    continue
            self.on_line(text)

    def show(self) -> None:
        """Stop holding lines back; show those held so far."""
        with self._mutex:
            held, self._held = self._held or [], None
        for text in held:
            self.on_line(text)

    def stop(self, grace: float, *, term: bool = True) -> bool:
        """End the run: TERM to its process group (unless ``term`` is False: it has been
        signalled already), KILL after ``grace``. True when it had to be killed."""
        killed = False
        if self.proc.poll() is None:
            if term:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                killed = True
        self._pump.join(timeout=5)
        return killed

    def wait(self, opts: ApplyOptions, forwarder: _SignalForwarder) -> tuple[int | None, str]:
        """Wait for helmfile; None as the code when it was interrupted."""
        proc = self.proc
        deadline = time.monotonic() + opts.timeout + 120
        while proc.poll() is None:
            if forwarder.signal is not None:
                if self.stop(opts.grace, term=False):
                    self.on_line(f"glue: helmfile did not stop within {opts.grace:.0f}s; killed it")
                break
            if time.monotonic() > deadline:
                self.on_line("glue: helmfile ran past the deploy timeout; stopping it")
                self.stop(opts.grace)
                break
            # Wakes as soon as helmfile exits; the timeout only paces the checks above.
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        self._pump.join(timeout=5)
        self.show()
        if forwarder.signal is not None:
            return None, "".join(self.lines)
        return proc.returncode, "".join(self.lines)


def _diffs_still_true(gate: Gate, states: list[rel.ReleaseState]) -> bool:
    """Whether every diff helmfile ran saw the releases as they are now (lock held)."""
    deadline = time.monotonic() + 30
    while gate.snapshots_in_flight():
        if time.monotonic() > deadline:
            return False  # a helm list that never finished (its diff was killed): unknown
        time.sleep(0.005)  # a diff is reading the releases right now: a helm list, ~0.1 s
    for seen in gate.snapshots():
        if seen.releases is None:
            return False
        for state in states:
            if seen.namespace and state.namespace != seen.namespace:
                continue
            latest = state.latest
            now = (latest.number, latest.status) if latest else None
            if seen.releases.get(state.name) != now:
                return False
    return True


def _preflight(
    kube: Kube,
    items: list[Release],
    opts: ApplyOptions,
    tools: Tools,
    say: Progress,
    *,
    lock_held: bool,
) -> tuple[list[rel.Recovery], list[rel.ReleaseState]]:
    """Recover the releases stuck pending; what was done, and each release as it was found."""
    done = []
    states = []
    for release in items:
        state = rel.state(kube, release.name, release.namespace)
        states.append(state)
        plan = rel.plan_recovery(state, lock_held=lock_held, timeout=opts.timeout)
        if plan is None:
            continue
        if opts.recover == "never":
            raise OperationError(
                f"release {release.namespace}/{release.name} is stuck in "
                f"{plan.stuck_status} (revision {plan.stuck_revision}) and --recover=never",
                hint="run again with --recover=auto, or fix it by hand: helm history "
                f"{release.name} -n {release.namespace}",
            )
        say(f"glue: {plan.describe()}")
        rel.recover(plan, tools.helm, timeout=opts.timeout)
        done.append(plan)
    return done, states


def _deployed_versions(
    loaded: LoadedConfig, target: Target, deployed: list[str]
) -> tuple[dict[str, ServiceVersion], str]:
    """The tag and revision of every deployed service, from the files; the git HEAD."""
    from gitops_glue.cluster import record
    from gitops_glue.repo import envfiles, gitrepo

    env = loaded.config.environment(target.env)
    read = gitrepo.worktree_reader(loaded.root)
    services = {}
    for name, svc in loaded.config.services.items():
        release = svc.release_name(name)
        if release not in deployed:
            continue
        tag = envfiles.effective(read, env, svc.tag_key).value
        revision = (
            envfiles.effective(read, env, svc.revision_key).value if svc.revision_key else None
        )
        services[name] = record.ServiceVersion(
            None if tag is None else str(tag), None if revision is None else str(revision), release
        )
    try:
        import pygit2

        head = str(pygit2.Repository(str(loaded.root)).head.target)
    except Exception:  # not a checkout: the record simply has no git revision
        head = ""
    return services, head


def _write_record(
    loaded: LoadedConfig,
    target: Target,
    kube: Kube,
    versions: tuple[dict[str, ServiceVersion], str],
    holder: str,
    recoveries: list[rel.Recovery],
) -> None:
    import datetime as dt

    from gitops_glue.cluster import record

    env = loaded.config.environment(target.env)
    previous = record.read(kube, env.record_namespace, env.name)
    services = dict(previous.services) if previous else {}
    services.update(versions[0])
    record.write(
        kube,
        env.record_namespace,
        record.DeployRecord(
            environment=env.name,
            services=services,
            git_revision=versions[1],
            deployed_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            deployed_by=holder,
            recoveries=[r.to_json() for r in recoveries],
        ),
    )


# helmfile apply arguments that let it sync a release it did not diff: its presync
# hooks could then run before the gate opens, so helmfile starts only after the lock.
_SKIPS_DIFFS = {"--skip-diff-on-install"}


def apply(
    load: Callable[[], LoadedConfig],
    target: Target,
    make_kube: Callable[[], Kube],
    opts: ApplyOptions,
    say: Progress,
) -> ApplyResult:
    """Deploy: helmfile starts at once behind a gate, which opens once the lock is held,
    stuck releases are recovered and what helmfile diffed is still true (see :mod:`gate`)."""
    from gitops_glue.deploy.gate import Gate

    gate = Gate(target.tools.helm)
    background = ThreadPoolExecutor(max_workers=2)
    forwarder = _SignalForwarder()
    try:
        with forwarder.installed():
            run = None
            if not any(a.split("=", 1)[0] in _SKIPS_DIFFS for a in target.extra_args):
                run = _HelmfileRun(target, gate, say, held=True)
                forwarder.run = run

            def check() -> int:
                major = target.tools.check()
                # helm diff needs these, known now that the helm version is: diffs may start.
                gate.set_env({k: v for k, v in helm_diff_env(major).items() if k not in os.environ})
                return major

            checked = background.submit(check)
            # glue's own start-up (config, Kubernetes client, helmfile list) now runs beside
            # helmfile's diffs on the same cores; the deploy goes first.
            _lower_priority()
            try:
                return _apply_locked(
                    load(), target, make_kube, opts, say, gate, run, forwarder, background, checked
                )
            finally:
                if not gate.is_open:
                    gate.close()
                if forwarder.run is not None:
                    forwarder.run.stop(0)  # given up on before it ended: nothing it holds runs
    finally:
        background.shutdown(wait=False)
        gate.remove()


def _lower_priority() -> None:
    """Lower this thread's CPU priority (inherited by the threads and processes it starts)."""
    with suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10))


def _apply_locked(
    loaded: LoadedConfig,
    target: Target,
    make_kube: Callable[[], Kube],
    opts: ApplyOptions,
    say: Progress,
    gate: Gate,
    run: _HelmfileRun | None,
    forwarder: _SignalForwarder,
    background: ThreadPoolExecutor,
    checked: Future[int],
) -> ApplyResult:
    from gitops_glue.cluster import diagnose
    from gitops_glue.cluster.lock import DeployLock

    env = loaded.config.environment(target.env)
    listing = start_listing(target)
    try:
        # helm version and helmfile list run while the Kubernetes client loads.
        kube = make_kube()
        checked.result()
    except BaseException:
        listing.kill()
        listing.wait()
        raise
    items = finish_listing(target, listing)
    names = [r.name for r in items]
    result = ApplyResult(env.name, names, [], False, opts.holder)
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
        result.recoveries, states = _preflight(kube, items, opts, target.tools, say, lock_held=True)
        # What the record will say is read from the files while helmfile works.
        versions = background.submit(_deployed_versions, loaded, target, names)
        if forwarder.signal is None:
            if run is None or result.recoveries or not _diffs_still_true(gate, states):
                if run is not None:
                    # helmfile diffed releases that changed since: its plan is stale.
                    say("glue: the releases changed since helmfile compared them; running it again")
                    gate.close()
                    run.stop(opts.grace)
                gate.open()
                run = _HelmfileRun(target, gate, say, held=False)
                forwarder.run = run
            else:
                gate.open()
                run.show()
            code, output = run.wait(opts, forwarder)
        else:
            code, output = None, ""
        if code is None:
            say("glue: interrupted: recovering releases left pending, then unlocking")
            recovered, _states = _preflight(
                kube,
                items,
                ApplyOptions(timeout=opts.timeout, recover="auto"),
                target.tools,
                say,
                lock_held=True,
            )
            result.recoveries += recovered
            raise DeployInterrupted(
                f"deploy to {env.name!r} interrupted by signal {forwarder.signal}; no "
                "release is left pending and the lock is released",
                result,
            )
        if code not in (0, 2):
            for release in items:
                result.problems += diagnose.not_ready_pods(kube, release.namespace, release.name)
            result.error = _tail(output, 20)
            detail = "\n".join(p.describe() for p in result.problems)
            raise DeployFailed(
                f"helmfile apply failed for {env.name!r} (exit {code})"
                + (f"\nfailing pods:\n{detail}" if detail else f"\n{result.error}"),
                result,
            )
        result.changed = code == 2
        _write_record(loaded, target, kube, versions.result(), opts.holder, result.recoveries)
        result.record_written = True
        return result
    finally:
        lock.release()
