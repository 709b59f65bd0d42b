"""What `glue apply` adds over a bare `helmfile apply`, on the example repo.

Starts its own testbed cluster (scripts/testbed up), deploys the example
repository's staging environment, then alternates runs of

    helmfile -e staging apply --detailed-exitcode --suppress-secrets
    glue apply --env staging

each after a fresh tag bump (so every run really upgrades both releases), and
prints the median wall time of each and the overhead. With --releases N the
example's helmfile is widened to N releases to show how the overhead grows.

Run: python benchmarks/apply_overhead.py [--runs 5] [--releases 2]
Target: glue's overhead under 5%, and no per-release work that grows faster
than the number of releases.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTBED = ROOT / "scripts" / "testbed"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise SystemExit(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return took


def testbed_env(name: str, state: Path) -> dict[str, str]:
    """The environment after ``eval "$(scripts/testbed env NAME)"``."""
    env = {**os.environ, "GLUE_TESTBED_STATE": str(state)}
    out = subprocess.run(
        ["bash", "-c", f'eval "$("{TESTBED}" env {name})" && env -0'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def make_repo(dest: Path, releases: int, namespace: str) -> Path:
    dest.mkdir(parents=True)
    for name in ("glue.yaml", "helmfile.yaml.gotmpl", "environments", "charts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    staging = dest / "environments/staging.yaml"
    staging.write_text(staging.read_text().replace("example-staging", namespace))
    config = dest / "glue.yaml"
    config.write_text(config.read_text().replace("example-staging", namespace))
    if releases > 2:
        extra = [f"s{i}" for i in range(releases - 2)]
        helmfile = dest / "helmfile.yaml.gotmpl"
        names = " ".join(f'"{n}"' for n in ["a", "b", *extra])
        helmfile.write_text(helmfile.read_text().replace('list "a" "b"', f"list {names}"))
        base = dest / "environments/base.yaml"
        base.write_text(
            base.read_text()
            + "".join(
                f"\n{n}:\n  image:\n    repository: registry.example.com/team/{n}\n"
                f'    tag: "0000000"\n'
                for n in extra
            )
        )
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "i"],
    ):
        subprocess.run(["git", *args], cwd=dest, check=True)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--releases", type=int, nargs="+", default=[2, 8])
    opts = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="glue-bench-apply-"))
    name = f"bench-{os.getpid()}"
    base_env = {**os.environ, "GLUE_TESTBED_STATE": str(state)}
    log(f"starting testbed cluster {name} (first use builds the tools)")
    subprocess.run([str(TESTBED), "up", name], env=base_env, check=True)
    try:
        env = testbed_env(name, state)
        results = []
        for count in opts.releases:
            repo = make_repo(state / f"repo{count}", count, f"bench-{count}")
            glue = [sys.executable, "-m", "gitops_glue"]
            helmfile = [
                "helmfile",
                "-e",
                "staging",
                "apply",
                "--detailed-exitcode",
                "--suppress-secrets",
            ]
            sh(helmfile, repo, env)  # first install, untimed
            times: dict[str, list[float]] = {"helmfile": [], "glue": []}
            for run in range(opts.runs):
                for kind in ("glue", "helmfile") if run % 2 else ("helmfile", "glue"):
                    tag = f"{run:03d}{len(times[kind]):02d}{'a' if kind == 'glue' else 'b'}0"
                    subprocess.run(
                        [*glue, "set", "environments/staging.yaml", "a.image.tag", tag],
                        cwd=repo,
                        env=env,
                        check=True,
                        capture_output=True,
                    )
                    args = [*glue, "apply", "--env", "staging"] if kind == "glue" else helmfile
                    took = sh(args, repo, env)
                    times[kind].append(took)
                    log(f"releases={count} run {run + 1}/{opts.runs} {kind:8s} {took:6.2f} s")
            h, g = statistics.median(times["helmfile"]), statistics.median(times["glue"])
            results.append((count, h, g))
        print("median wall time of an apply that upgrades one release:")
        for count, h, g in results:
            print(
                f"  {count:3d} releases: helmfile {h:6.2f} s   glue apply {g:6.2f} s   "
                f"overhead {g - h:+5.2f} s ({(g / h - 1) * 100:+5.1f}%)"
            )
        print("target: overhead < 5%, growing no faster than the number of releases")
    finally:
        subprocess.run([str(TESTBED), "down", name], env=base_env, check=False)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
