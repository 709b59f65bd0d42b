"""Time `glue bump-tag --remote` against the same bump scripted with the git CLI.

Both flows talk to the same local OpenSSH server (tests/support/sshgit.py: sshd on 127.0.0.1,
git-shell deploy key, pinned host key), so the numbers compare the client side only.

* glue flow, one run: ``glue bump-tag a TAG --env dev --remote URL`` in a new process,
  with ``GLUE_SSH_KEY_FILE`` / ``GLUE_SSH_KNOWN_HOSTS``.
* git-CLI flow, one run (what pipelines script today), in a fresh temp dir:
  ``git clone --depth 1 --branch main --single-branch URL dir``, replace the
  ``a.image.tag`` line of ``environments/dev.yaml`` (in-process Python, standing in for
  ``yq e -i`` / ``sed -i``; cheaper than either, so this favours git),
  ``git commit -am``, ``git push origin main``, with ``GIT_SSH_COMMAND`` from the server.

Every run uses a new 7-hex-digit tag, so every run really commits and pushes.  The two
flows alternate (after one untimed warm-up of each) to spread machine noise evenly.

Target (issue 17): glue / git-CLI at most 1.0 (median against median).

Then the race: 16 ``glue bump-tag ... -o json`` processes (8 services x 2 environments,
each its own new tag) started at once against one fresh remote, repeated on a fresh
remote each time. Per race: the wall time until all 16 have exited; per bump: its own
wall time (latency) and the push attempts its JSON reports (``attempts``). Afterwards
the server's bare repository is checked: every bump's tag is in its values file, and
history is linear (16 new commits, each with one parent, on top of the seed). Targets
(issue 17): all 16 land, linear history, at most 2.5 push attempts per bump on
average; total wall (median, min-max) and p95 per-bump latency are reported. For
context, each race is also compared with one lone bump on the same kind of remote.

This is a measurement, not a test: it prints medians and ratios with their targets and
never fails because a target is missed (it prints WARNING lines if runs misbehave).

Run from the repository root: python benchmarks/bump_remote.py [--runs N] [--races N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.helpers import many_services_seed  # noqa: E402
from tests.support.sshgit import BareRemote, SshGitServer  # noqa: E402

TIMEOUT = 300.0
SINGLE_TARGET = 1.0  # glue / git-CLI, at most
ATTEMPTS_TARGET = 2.5  # push attempts per racing bump, on average, at most
RACE_SERVICES = 8
RACE_ENVS = ("dev", "prod")
# The `a:` block of environments/dev.yaml in the example repository:
#   a:\n  image:\n    tag: "3f9c2e1"  # service a
A_TAG_LINE = re.compile(r'(?m)^(a:\n  image:\n    tag: )"[^"\n]*"')

_used_tags: set[str] = set()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def new_tag() -> str:
    """A 7-hex-digit tag not used before in this process (so every bump changes files)."""
    while True:
        tag = secrets.token_hex(4)[:7]
        if tag not in _used_tags:
            _used_tags.add(tag)
            return tag


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """os.environ without GLUE_/GIT_ settings that could change either flow, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLUE_", "GIT_"))}
    env.update(extra)
    return env


def glue_env(server: SshGitServer) -> dict[str, str]:
    return clean_env(
        {
            "GLUE_SSH_KEY_FILE": str(server.deploy_key.private),
            "GLUE_SSH_KNOWN_HOSTS": server.known_hosts_line,
        }
    )


def glue_command(service: str, tag: str, env: str, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gitops_glue",
        "bump-tag",
        service,
        tag,
        "--env",
        env,
        "--remote",
        url,
        "-o",
        "json",
    ]


def run_checked(cmd: list[str], *, env: Mapping[str, str], cwd: Path) -> None:
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")


# ------------------------------------------------------------------------ one bump
def glue_bump(server: SshGitServer, remote: BareRemote, work: Path) -> float:
    """One ``glue bump-tag --remote``; returns wall seconds."""
    cmd = glue_command("a", new_tag(), "dev", remote.url)
    env = glue_env(server)
    start = time.perf_counter()
    run_checked(cmd, env=env, cwd=work)
    return time.perf_counter() - start


def git_cli_bump(server: SshGitServer, remote: BareRemote, work: Path) -> float:
    """clone --depth 1, edit, commit -am, push, in a fresh temp dir; returns wall seconds."""
    tag = new_tag()
    env = clean_env(server.git_env(key=server.deploy_key, known_hosts=server.known_hosts))
    tmp = Path(tempfile.mkdtemp(prefix="git-cli-", dir=work))
    clone = tmp / "deploy"
    try:
        start = time.perf_counter()
        run_checked(
            [
                "git",
                "clone",
                "-q",
                "--depth",
                "1",
                "--branch",
                "main",
                "--single-branch",
                remote.url,
                str(clone),
            ],
            env=env,
            cwd=tmp,
        )
        values = clone / "environments" / "dev.yaml"
        text, count = A_TAG_LINE.subn(rf'\g<1>"{tag}"', values.read_text())
        if count != 1:
            raise RuntimeError(f"a.image.tag line not found in {values}")
        values.write_text(text)
        run_checked(
            [
                "git",
                "-c",
                "user.name=ci-bot",
                "-c",
                "user.email=ci-bot@example.com",
                "commit",
                "-q",
                "-am",
                f"feat(dev): update a to {tag}",
            ],
            env=env,
            cwd=clone,
        )
        run_checked(["git", "push", "-q", "origin", "main"], env=env, cwd=clone)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- race
def race_seed() -> dict[str, str]:
    return many_services_seed(RACE_SERVICES, RACE_ENVS)


def lone_bump(server: SshGitServer, work: Path, number: int) -> float:
    """One bump on a fresh race remote, nobody else pushing: the race's unit."""
    remote = server.new_remote(f"lone{number}", seed=race_seed())
    start = time.perf_counter()
    run_checked(glue_command("s0", new_tag(), "dev", remote.url), env=glue_env(server), cwd=work)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Race:
    wall: float  # seconds from the first start until the last of the 16 exited
    latencies: list[float]  # each bump's own wall seconds (successful bumps)
    attempts: list[int]  # push attempts each successful bump reports
    landed: int  # bumps whose tag is in their values file on the server
    bumps: int
    linear: bool  # 16 new one-parent commits in a chain on top of the seed


def race(server: SshGitServer, work: Path, number: int) -> Race:
    """16 concurrent bumps on a fresh remote, then what the server holds."""
    remote = server.new_remote(f"race{number}", seed=race_seed())
    seed = remote.head()
    env = glue_env(server)
    jobs = [(f"s{i}", e, new_tag()) for i in range(RACE_SERVICES) for e in RACE_ENVS]
    outcome: list[tuple[float, str, str, int] | None] = [None] * len(jobs)

    def wait(index: int, proc: subprocess.Popen[str], started: float) -> None:
        out, err = proc.communicate(timeout=TIMEOUT)
        outcome[index] = (time.perf_counter() - started, out, err, proc.returncode)

    start = time.perf_counter()
    waiters = []
    for index, (svc, e, tag) in enumerate(jobs):
        started = time.perf_counter()
        proc = subprocess.Popen(
            glue_command(svc, tag, e, remote.url),
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        waiter = threading.Thread(target=wait, args=(index, proc, started))
        waiter.start()
        waiters.append(waiter)
    for waiter in waiters:
        waiter.join()
    wall = time.perf_counter() - start

    latencies: list[float] = []
    attempts: list[int] = []
    for (svc, e, _tag), result in zip(jobs, outcome, strict=True):
        assert result is not None
        seconds, out, err, code = result
        try:
            data = json.loads(out) if code == 0 else {}
        except ValueError:
            data = {}
        if data.get("status") != "changed":
            progress(
                f"  WARNING: race {number}: bump {svc}/{e} exited {code}: {err.strip()[-300:]}"
            )
            continue
        latencies.append(seconds)
        attempts.append(int(data["attempts"]))

    files = {e: remote.show("main", f"envs/{e}.yaml") for e in RACE_ENVS}
    landed = sum(f'{svc}:\n  image:\n    tag: "{tag}"\n' in files[e] for svc, e, tag in jobs)
    log = remote.log()  # newest first
    linear = (
        len(log) == len(jobs) + 1
        and log[-1].sha == seed
        and all(c.parents == (log[k + 1].sha,) for k, c in enumerate(log[:-1]))
    )
    if not linear:
        progress(
            f"  WARNING: race {number}: history is not {len(jobs)} one-parent commits in a row"
        )
    progress(
        f"  race {number}: {wall:6.2f} s, {sum(attempts)} push attempts for {len(attempts)} "
        f"bumps (max {max(attempts, default=0)}), {landed}/{len(jobs)} landed, "
        f"{len(log) - 1} new commits, linear {'yes' if linear else 'NO'}"
    )
    return Race(wall, latencies, attempts, landed, len(jobs), linear)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with ``pct``% of values at or below it)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description="Median wall time of glue bump-tag --remote vs the git-CLI flow."
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each flow")
    parser.add_argument("--races", type=int, default=3, help="16-bump races (fresh remote)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each flow")
    args = parser.parse_args()

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-bump-") as tmp, SshGitServer.start() as server:
        work = Path(tmp)
        progress(f"sshd on 127.0.0.1:{server.port} (git-shell deploy key)")
        remote = server.new_example_remote("bench")
        flows = (("glue", glue_bump), ("git-CLI", git_cli_bump))
        samples: dict[str, list[float]] = {name: [] for name, _ in flows}

        for i in range(args.warmup):
            for name, flow in flows:
                seconds = flow(server, remote, work)
                progress(f"warm-up {i + 1}/{args.warmup} {name:8s} {seconds:6.3f} s")
        for i in range(args.runs):
            # alternate which flow goes first, so drift hits both alike
            order = flows if i % 2 == 0 else flows[::-1]
            for name, flow in order:
                seconds = flow(server, remote, work)
                samples[name].append(seconds)
                progress(f"run {i + 1}/{args.runs} {name:8s} {seconds:6.3f} s")

        expected = 1 + (args.warmup + args.runs) * len(flows)
        commits = len(remote.log())
        if commits != expected:
            progress(f"WARNING: remote has {commits} commits, expected {expected}")

        races: list[Race] = []
        lone: list[float] = []
        for n in range(1, args.races + 1):
            lone.append(lone_bump(server, work, n))
            progress(f"one bump on a fresh 8-service remote: {lone[-1]:.3f} s")
            progress(f"race {n}/{args.races}: 16 glue bump-tag processes at once")
            races.append(race(server, work, n))
    load_end = os.getloadavg()

    print(
        f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end "
        f"({os.cpu_count()} CPUs; sshd and both clients share them)"
    )
    if samples["glue"]:
        glue_median = statistics.median(samples["glue"])
        git_median = statistics.median(samples["git-CLI"])
        ratio = glue_median / git_median
        print(f"single bump over ssh, median of {args.runs} runs each:")
        for name, values in samples.items():
            print(
                f"  {name:8s} median {statistics.median(values):6.3f} s  "
                f"(min {min(values):.3f}, max {max(values):.3f})"
            )
        print(
            f"  glue / git-CLI = {ratio:.2f}x  (target: <= {SINGLE_TARGET:.1f})"
            f"  -> {verdict(ratio <= SINGLE_TARGET)}"
        )
    if races:
        walls = [r.wall for r in races]
        latencies = [x for r in races for x in r.latencies]
        attempts = [a for r in races for a in r.attempts]
        landed = sum(r.landed for r in races)
        bumps = sum(r.bumps for r in races)
        linear = sum(r.linear for r in races)
        mean_attempts = statistics.mean(attempts) if attempts else math.inf
        print(f"16 racing bumps on one fresh remote, {len(races)} races:")
        print(
            f"  total wall        median {statistics.median(walls):5.2f} s  "
            f"(min {min(walls):.2f}, max {max(walls):.2f})"
        )
        if latencies:
            print(
                f"  per-bump latency  p95 {percentile(latencies, 95):5.2f} s  "
                f"(median {statistics.median(latencies):.2f}, max {max(latencies):.2f}; "
                f"{len(latencies)} bumps)"
            )
        print(
            f"  push attempts     mean {mean_attempts:.2f} per bump (max "
            f"{max(attempts, default=0)})  (target: <= {ATTEMPTS_TARGET} on average)"
            f"  -> {verdict(mean_attempts <= ATTEMPTS_TARGET)}"
        )
        print(
            f"  landed            {landed}/{bumps} tags in their files on the server"
            f"  (target: all 16 of every race)  -> {verdict(landed == bumps)}"
        )
        print(
            f"  linear history    {'yes' if linear == len(races) else 'NO'} in {linear}/"
            f"{len(races)} races (16 one-parent commits on the seed)"
            f"  -> {verdict(linear == len(races))}"
        )
        print(
            f"  for context: {statistics.median(walls) / statistics.median(lone):.1f}x one "
            f"lone bump on the same kind of remote ({statistics.median(lone):.3f} s)"
        )


if __name__ == "__main__":
    main()
