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

Then the race: 16 ``glue bump-tag`` processes (8 services x 2 environments) started at
once against one fresh remote; timed until all 16 have exited, repeated on a fresh
remote each time, median reported and compared with one single bump on the same kind
of remote (the 8-service repository, fresh each time, so like is compared with like).

This is a measurement, not a test: it prints medians and ratios with their targets and
never fails because a target is missed (it prints WARNING lines if runs misbehave).

Run from the repository root: python benchmarks/bump_remote.py [--runs N] [--races N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.helpers import many_services_seed  # noqa: E402
from tests.support.sshgit import BareRemote, SshGitServer  # noqa: E402

TIMEOUT = 300.0
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


def race(server: SshGitServer, work: Path, number: int) -> float:
    """16 concurrent bumps on a fresh remote; returns seconds until all have exited."""
    remote = server.new_remote(f"race{number}", seed=race_seed())
    tag = new_tag()
    env = glue_env(server)
    jobs = [(f"s{i}", e) for i in range(RACE_SERVICES) for e in RACE_ENVS]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            glue_command(svc, tag, e, remote.url),
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for svc, e in jobs
    ]
    results = [(p.communicate(timeout=TIMEOUT), p.returncode) for p in procs]
    elapsed = time.perf_counter() - start

    attempts = 0
    for (svc, e), ((out, err), code) in zip(jobs, results, strict=True):
        if code != 0:
            progress(
                f"  WARNING: race {number}: bump {svc}/{e} exited {code}: {err.strip()[-300:]}"
            )
            continue
        try:
            attempts += int(json.loads(out).get("attempts", 1))
        except (ValueError, AttributeError):
            attempts += 1
    commits = len(remote.log())
    if commits != len(jobs) + 1:
        progress(
            f"  WARNING: race {number}: remote has {commits} commits, expected {len(jobs) + 1}"
        )
    progress(
        f"  race {number}: {elapsed:6.2f} s, {attempts} push attempts for "
        f"{len(jobs)} bumps, {commits} commits on main"
    )
    return elapsed


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description="Median wall time of glue bump-tag --remote vs the git-CLI flow."
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each flow")
    parser.add_argument("--races", type=int, default=3, help="16-bump races (fresh remote)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each flow")
    args = parser.parse_args()

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

        races: list[float] = []
        lone: list[float] = []
        for n in range(1, args.races + 1):
            lone.append(lone_bump(server, work, n))
            progress(f"one bump on a fresh 8-service remote: {lone[-1]:.3f} s")
            progress(f"race {n}/{args.races}: 16 glue bump-tag processes at once")
            races.append(race(server, work, n))

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
        f"  glue / git-CLI = {ratio:.2f}x  (target: glue <= 0.5x git-CLI flow)"
        f"  -> {'met' if ratio <= 0.5 else 'NOT met'}"
    )
    if races:
        race_median = statistics.median(races)
        race_ratio = race_median / statistics.median(lone)
        print(
            f"16 racing bumps: {race_median:.2f} s = {race_ratio:.1f} x one bump "
            f"({statistics.median(lone):.3f} s, same remote kind) "
            f"(target: < 16x)  -> {'met' if race_ratio < 16 else 'NOT met'}"
            f"  [median of {len(races)}: {', '.join(f'{r:.2f}' for r in races)} s]"
        )


if __name__ == "__main__":
    main()
