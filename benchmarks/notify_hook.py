"""``glue notify`` as a Helm hook Job runs it: no checkout, ``--service`` and ``--tag``,
against the testbed's API server (deploy record and thread state in ConfigMaps) and the
Slack stand-in. Wall time and peak RSS of each command, start and finish messages.

Starts its own testbed cluster (scripts/testbed up; needs the tools built, see
scripts/TESTBED.md) and takes it down at the end. ``python -c "import ssl"`` is
printed for scale: a Python that opens one TLS connection starts at about that.

glue runs from a fresh venv with only its runtime dependencies (as in the hook image):
a development environment carries more (trio, for one, which httpcore2 imports when it
is installed: +0.06 s at every start). ``--dev-glue`` times the glue on PATH instead.

Run: python benchmarks/notify_hook.py [--runs N] [--dev-glue]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cluster_bench import testbed
from common import ROOT, Report, Timing, fresh_glue, glue_command, timed, user_env

sys.path.insert(0, str(ROOT))
from tests.support.slackserver import start_slack


def measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_maxrss / 1024


def measure(
    args: argparse.Namespace, report: Report, env: dict[str, str], scratch: Path, slack: Any
) -> None:
    """Wall time and peak RSS of the hook Job's notify commands, into ``report``."""
    ns = "bench-notify"
    subprocess.run(["kubectl", "create", "namespace", ns], env=env, check=True)
    work = scratch / "empty"  # a hook Job has no checkout
    work.mkdir()
    env = user_env(env) | {
        "SLACK_WEBHOOK_URL": slack.webhook_url,
        "GLUE_RECORD_NAMESPACE": ns,
        "GLUE_NOTIFY_SERVICE": "a",
    }
    glue = [*(glue_command() if args.dev_glue else fresh_glue(scratch)), "notify", "-e", "dev"]
    walls: dict[str, list[float]] = {"start": [], "finish": [], "python": []}
    rss: dict[str, list[float]] = {"start": [], "finish": [], "python": []}
    for i in range(-1, args.runs):  # run -1 warms the caches, untimed
        tag = f"{i + 2:07x}"
        steps = {
            "python": [sys.executable, "-c", "import ssl"],
            "start": [*glue, "--phase", "pre-upgrade", "--tag", tag],
            "finish": [*glue, "--phase", "post-upgrade", "--tag", tag],
        }
        for kind, cmd in steps.items():
            wall, peak = measured(cmd, work, env)
            if i >= 0:
                walls[kind].append(wall)
                rss[kind].append(peak)
    report.add('python -c "import ssl" (for scale)', timed(walls["python"]))
    for kind, phase in (("start", "pre-upgrade"), ("finish", "post-upgrade")):
        report.add(f"glue notify --phase {phase} --tag, wall", timed(walls[kind]),
                   target="< 0.35 s")  # fmt: skip
        t: Timing = timed(rss[kind])
        report.add(f"glue notify --phase {phase} --tag, peak RSS", t, unit="MB",
                   target="< 80 MB")  # fmt: skip
    print(f"Slack stand-in got {len(slack.webhook_requests())} messages", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dev-glue", action="store_true", help="the glue on PATH")
    args = parser.parse_args()
    report = Report("notify_hook")
    slack, running = start_slack()
    try:
        with testbed("notify") as (env, scratch):
            measure(args, report, env, scratch, slack)
    finally:
        running.stop()
    report.write()


if __name__ == "__main__":
    main()
