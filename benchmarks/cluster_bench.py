"""What the cluster benchmarks (apply_overhead.py, changed_only.py, notify_hook.py)
share: their own testbed cluster, a deployment repo with N releases, and a helmfile
wrapper that writes down when each helmfile run starts and ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import GIT_ENV, ROOT, bench_env

TESTBED = ROOT / "scripts" / "testbed"


def load_line(start: tuple[float, float, float]) -> str:
    """The machine's load (2 cores shared with other work: the numbers are noisy)."""
    end = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs; load average (1, 5, 15 min) at the start "
        f"{' '.join(f'{x:.1f}' for x in start)}, at the end {' '.join(f'{x:.1f}' for x in end)}"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def testbed(prefix: str, ready_delay: str = "") -> Iterator[tuple[dict[str, str], Path]]:
    """A testbed cluster of its own (``scripts/testbed up`` in a temp state dir), always
    torn down; yields the environment of ``eval "$(scripts/testbed env NAME)"`` (plus
    bench_env) and a scratch folder inside the state dir."""
    state = Path(tempfile.mkdtemp(prefix=f"glue-bench-{prefix}-"))
    name = f"{prefix}-{os.getpid()}"
    base = {**os.environ, "GLUE_TESTBED_STATE": str(state)}
    up_env = {**base, "GLUE_TESTBED_POD_READY_DELAY": ready_delay}
    log(f"starting testbed cluster {name} (pod ready delay: {ready_delay or 'none'})")
    try:
        subprocess.run(
            [str(TESTBED), "up", name], env=up_env, check=True, stdout=subprocess.DEVNULL
        )
        out = subprocess.run(
            ["bash", "-c", f'eval "$("{TESTBED}" env {name})" && env -0'],
            env=base,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
        scratch = state / "scratch"
        scratch.mkdir()
        yield bench_env(env), scratch
    finally:
        subprocess.run([str(TESTBED), "down", name], env=base, check=False)
        shutil.rmtree(state, ignore_errors=True)


def release_names(count: int) -> list[str]:
    return ["a", "b", *(f"s{i}" for i in range(count - 2))]


def make_repo(dest: Path, releases: int, namespace: str) -> Path:
    """The example deployment repo, its staging environment in ``namespace``, widened to
    ``releases`` releases of charts/app (a, b, s0, s1, ...), each with its tag in
    environments/staging.yaml; one commit on main."""
    dest.mkdir(parents=True)
    for name in ("glue.yaml", "helmfile.yaml.gotmpl", "environments", "charts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    staging = dest / "environments/staging.yaml"
    staging.write_text(staging.read_text().replace("example-staging", namespace))
    config = dest / "glue.yaml"
    config.write_text(config.read_text().replace("example-staging", namespace))
    extra = release_names(releases)[2:]
    if extra:
        helmfile = dest / "helmfile.yaml.gotmpl"
        names = " ".join(f'"{n}"' for n in release_names(releases))
        helmfile.write_text(helmfile.read_text().replace('list "a" "b"', f"list {names}"))
        base = dest / "environments/base.yaml"
        base.write_text(
            base.read_text()
            + "".join(
                f"\n{n}:\n  image:\n    repository: registry.example.com/team/{n}\n"
                f"  replicaCount: 1\n"
                for n in extra
            )
        )
        staging.write_text(
            staging.read_text() + "".join(f'\n{n}:\n  image:\n    tag: "0000000"\n' for n in extra)
        )
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "initial")
    return dest


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True)


def run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a deploy command (exit 0 or 2 is fine); its wall time."""
    start, end = run_between(args, cwd, env)
    return end - start


def run_between(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run a deploy command (exit 0 or 2 is fine); when it started and ended (time.time())."""
    start = time.time()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    end = time.time()
    if proc.returncode not in (0, 2):
        raise SystemExit(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return start, end


@dataclass(frozen=True)
class Span:
    args: str  # the helmfile subcommand and its selectors
    start: float  # time.time() clock
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class HelmfileClock:
    """A helmfile wrapper (bash, no fork before the first timestamp) that appends
    ``start``/``end`` lines with $EPOCHREALTIME to a log, then the real helmfile's exit
    code is its own. Point GLUE_HELMFILE at ``path``."""

    def __init__(self, folder: Path, real: str) -> None:
        self.path = folder / "helmfile-clock"
        self.log = folder / "helmfile-clock.log"
        self.path.write_text(
            # Not /usr/bin/env: glue reads helmfile's view with only helm on PATH.
            "#!/bin/bash\n"
            f'echo "start $$ $EPOCHREALTIME $*" >>"{self.log}"\n'
            f'"{real}" "$@"\n'
            "rc=$?\n"
            f'echo "end $$ $EPOCHREALTIME" >>"{self.log}"\n'
            "exit $rc\n"
        )
        self.path.chmod(0o755)

    def reset(self) -> None:
        self.log.write_text("")

    def spans(self) -> list[Span]:
        starts: dict[str, tuple[float, str]] = {}
        out = []
        for line in self.log.read_text().splitlines():
            kind, pid, stamp, *rest = line.split(" ", 3)
            if kind == "start":
                starts[pid] = (float(stamp), rest[0] if rest else "")
            elif pid in starts:
                began, args = starts.pop(pid)
                out.append(Span(short(args), began, float(stamp)))
        return out


def covered(spans: list[Span]) -> float:
    """Seconds during which at least one of ``spans`` ran (glue may run two at once)."""
    total, reach = 0.0, float("-inf")
    for span in sorted(spans, key=lambda s: s.start):
        if span.end > reach:
            total += span.end - max(span.start, reach)
            reach = span.end
    return total


def short(args: str) -> str:
    """``--helm-binary helm -e staging --selector name=a apply --detailed-exitcode``
    -> ``apply (--selector name=a)``: the subcommand, and the selectors."""
    words = args.split()
    sub, selectors, i = "", [], 0
    while i < len(words):
        word = words[i]
        if word in ("--helm-binary", "-e", "--environment", "--kube-context"):
            i += 2
            continue
        if word in ("--selector", "-l"):
            selectors.append(words[i + 1])
            i += 2
            continue
        if not sub and not word.startswith("-"):
            sub = word
        i += 1
    more = " --embed-values" if "--embed-values" in words else ""
    return sub + more + (f" (-l {','.join(selectors)})" if selectors else "")


def wrapper_cost(folder: Path, runs: int = 9) -> float:
    """Median time the wrapper adds around a helmfile run (bash start, two log lines):
    counted in glue's own time below, so it is measured and printed."""
    calibrate = folder / "calibrate"
    calibrate.mkdir()
    clock = HelmfileClock(calibrate, "/bin/true")
    took = []
    for _ in range(runs):
        clock.reset()
        start = time.perf_counter()
        subprocess.run([str(clock.path)], check=True)
        wall = time.perf_counter() - start
        took.append(wall - sum(s.seconds for s in clock.spans()))
    took.sort()
    shutil.rmtree(calibrate)
    return took[len(took) // 2]


#: What a team runs without glue: helmfile's own apply of the staging environment.
HELMFILE_APPLY = ["helmfile", "-e", "staging", "apply", "--detailed-exitcode", "--suppress-secrets"]


def helm_major(env: dict[str, str], major: int) -> tuple[dict[str, str], str]:
    """``env`` running Helm ``major`` (the testbed's ``helm`` follows GLUE_TESTBED_HELM),
    and the helmfile that drives it: 0.166 for Helm 3, v1 (``helmfile1``) for Helm 4.
    Under Helm 4, helm-diff needs HELM_DIFF_USE_UPGRADE_DRY_RUN (glue sets it itself; a
    bare helmfile run needs it from the environment)."""
    if major == 3:
        return {**env, "GLUE_TESTBED_HELM": "3"}, "helmfile"
    return {**env, "GLUE_TESTBED_HELM": "4", "HELM_DIFF_USE_UPGRADE_DRY_RUN": "true"}, "helmfile1"


def clocked_glue_env(
    env: dict[str, str], scratch: Path, helmfile: str = "helmfile"
) -> tuple[HelmfileClock, float, dict[str, str]]:
    """A HelmfileClock around the testbed's ``helmfile``, the wrapper's measured cost,
    and ``env`` with GLUE_HELMFILE pointing at the wrapper (for the glue commands)."""
    real = shutil.which(helmfile, path=env["PATH"])
    assert real, "no helmfile on the testbed's PATH"
    clock = HelmfileClock(scratch, real)
    return clock, wrapper_cost(scratch), {**env, "GLUE_HELMFILE": str(clock.path)}
