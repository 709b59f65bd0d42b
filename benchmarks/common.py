"""What every benchmark script shares: timing runs, printing them, and handing them to
``run_all.py`` (``make bench``), which writes the table in benchmarks/README.md.

Nothing here passes or fails: a script prints median and min-max of several runs, the
ratio to its peer where there is one, and the issue's target next to it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the commands run here keep their bytecode. A development shell may set
#: PYTHONDONTWRITEBYTECODE (this machine does): glue would then compile its ~40 modules
#: from source at every start (~0.04 s), which no installed glue does (pip writes the
#: bytecode at install). The warm-up run writes it here, outside the work tree.
PYCACHE = Path.home() / ".cache" / "gitops-glue-bench" / "pycache"
BYTECODE_ENV = {"PYTHONPYCACHEPREFIX": str(PYCACHE)}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


@dataclass(frozen=True)
class Timing:
    median: float
    low: float
    high: float
    runs: int


@dataclass
class Row:
    what: str
    median: float
    low: float
    high: float
    runs: int
    unit: str = "s"
    ratio: str = ""
    target: str = ""


@dataclass
class Report:
    """The rows one script measured; printed as they come, written as JSON at the end."""

    script: str
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        what: str,
        timing: Timing,
        *,
        unit: str = "s",
        peer: Timing | None = None,
        target: str = "",
    ) -> None:
        ratio = f"{timing.median / peer.median:.2f}x" if peer and peer.median else ""
        row = Row(what, timing.median, timing.low, timing.high, timing.runs, unit, ratio, target)
        self.rows.append(row)
        print(format_row(row), flush=True)

    def write(self) -> None:
        out = os.environ.get("GLUE_BENCH_JSON")
        if out:
            Path(out).write_text(
                json.dumps({"script": self.script, "rows": [asdict(r) for r in self.rows]})
            )


def format_row(row: Row) -> str:
    scale, unit = (1000.0, "ms") if row.unit == "s" else (1.0, row.unit)
    text = (
        f"{row.what:<58} median {row.median * scale:8.1f} {unit}"
        f"  (min {row.low * scale:.1f}, max {row.high * scale:.1f}, {row.runs} runs)"
    )
    if row.ratio:
        text += f"  {row.ratio} its peer"
    if row.target:
        text += f"  [target {row.target}]"
    return text


def timed(samples: list[float]) -> Timing:
    return Timing(statistics.median(samples), min(samples), max(samples), len(samples))


def child_cpu() -> float:
    """CPU time (user + system) of the child processes this one has waited for."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def side_by_side(
    runs: int, *steps: Callable[[int], object], warmup: bool = True, cpu: bool = False
) -> list[Timing]:
    """Time each step ``runs`` times, interleaved (a, b, a, b, ...) so that load from
    other work on the machine falls on both alike. A step gets the run number.

    With ``cpu``, the CPU time of the commands a step runs (user + system, summed over
    them) instead of the wall time: it moves much less with other load on the machine.
    """
    clock = child_cpu if cpu else time.perf_counter
    if warmup:
        for step in steps:
            step(-1)
    samples: list[list[float]] = [[] for _ in steps]
    for i in range(runs):
        for n, step in enumerate(steps):
            start = clock()
            step(i)
            samples[n].append(clock() - start)
    return [timed(s) for s in samples]


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ for a timed command: bytecode cached (see PYCACHE), git identity set."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **BYTECODE_ENV, **GIT_ENV, **(extra or {})}


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=bench_env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def fresh_glue(state: Path) -> list[str]:
    """glue as a user installs it: runtime dependencies only, in a new venv under
    ``state`` (not the development environment, whose extra packages glue's imports can
    pick up: httpcore2 imports trio, ~40 ms, whenever it is installed). Run it with
    :func:`user_env`."""
    venv = state / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check", str(ROOT)],
        check=True,
    )
    return [str(venv / "bin/glue")]


def user_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a :func:`fresh_glue`: the bytecode pip wrote into its venv is used
    (the benchmarks' cache prefix would hide it, and glue would compile at every run)."""
    return {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"}


def glue_to_time(dev: bool, state: Path, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The glue a benchmark times and its environment: with ``dev`` the development one
    and ``env``, else a :func:`fresh_glue` under ``state`` and :func:`user_env`."""
    return (glue_command(), env) if dev else (fresh_glue(state), user_env(env))


def glue_command() -> list[str]:
    """The installed ``glue`` next to this Python, else ``python -m gitops_glue``.

    Not the first ``glue`` on PATH: that can be a version manager's shim (pyenv's is a
    shell script that costs ~0.05 s a run), which is not glue's time.
    """
    beside = Path(sys.executable).parent / "glue"
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-m", "gitops_glue"]


def example_repo(dest: Path) -> Path:
    """A git checkout of the project's example deployment repo, one commit on main."""
    dest.mkdir(parents=True)
    for name in ("glue.yaml", "helmfile.yaml.gotmpl", "environments", "charts"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    git_init(dest)
    return dest


def git_init(dest: Path) -> None:
    run(["git", "init", "-q", "--initial-branch=main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "initial"], dest)


def yq_command() -> tuple[str | None, str]:
    """mikefarah's yq (the Go one teams script with), and how it was found.

    Debian's ``yq`` package is a jq wrapper in Python (kislyuk/yq), another tool: it is
    not used. ``$YQ`` or a yq built with ``go install github.com/mikefarah/yq/v4``.
    """
    candidates = [
        os.environ.get("YQ", ""),
        str(Path.home() / "go/bin/yq"),
        str(Path.home() / ".cache/gitops-glue-bench/bin/yq"),
        shutil.which("yq") or "",
    ]
    for path in candidates:
        if not path or not Path(path).is_file():
            continue
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        if "mikefarah" in out.stdout + out.stderr:
            return path, (out.stdout or out.stderr).strip()
    return None, "mikefarah yq not found (set $YQ)"
