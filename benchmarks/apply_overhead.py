"""glue apply's own time: what glue spends before helmfile apply starts and after it
ends, on a chart whose pods take 5 s to become Ready.

Starts its own testbed cluster with GLUE_TESTBED_POD_READY_DELAY=5s (kwok makes each
pod Running+Ready 5 s after it is scheduled), deploys the example repository's staging
environment (services a and b) once, then alternates

    glue apply --env staging                     (glue: lock first, then helmfile apply)
    helmfile -e staging apply --detailed-exitcode --suppress-secrets   (bare, for scale)

each after a fresh `glue set` of a's tag (so every run really upgrades a and waits for
its new pod). glue runs helmfile through a wrapper (GLUE_HELMFILE) that writes down when
each helmfile run starts and ends; glue's own time is glue's wall time minus the
`helmfile apply` run's span (so the other helmfile runs glue makes, listed in the
output, count as glue's), split into before helmfile apply starts and after it ends
(the wrapper's timestamps against the moments glue was started and exited). Prints
median and min-max of glue's own time, of the whole deploy and of own time as a share
of it. glue runs from a fresh venv, installed as a user would (``--dev-glue``: the
development environment's, whose extra packages can slow its imports).

Run: python benchmarks/apply_overhead.py [--runs 5] [--quick] [--delay 5s] [--dev-glue]
Targets: glue's own time under 0.3 s, printed also as a % of the deploy; a healthy
``glue apply --verify 10s`` costs at most 10.5 s more than ``glue apply`` (it then runs
pairs of the two, alternating, each after a fresh tag).
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import Counter

from cluster_bench import (
    HELMFILE_APPLY,
    clocked_glue_env,
    git,
    load_line,
    log,
    make_repo,
    run,
    run_between,
    testbed,
)
from common import Report, glue_to_time, timed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 runs")
    parser.add_argument("--delay", default="5s", help="pod ready delay (default 5s)")
    parser.add_argument(
        "--dev-glue", action="store_true", help="run the development glue, not a fresh venv's"
    )
    opts = parser.parse_args()
    runs = 3 if opts.quick else opts.runs
    load_start = os.getloadavg()
    report = Report("apply_overhead")
    with testbed("apply", opts.delay) as (env, scratch):
        clock, cost, glue_env = clocked_glue_env(env, scratch)
        repo = make_repo(scratch / "repo", 2, "bench-apply")
        glue, glue_env = glue_to_time(opts.dev_glue, scratch, glue_env)
        helmfile = HELMFILE_APPLY
        log("first deploy (untimed)")
        run([*glue, "apply", "--env", "staging"], repo, glue_env)

        def new_tag(tag: str) -> None:
            """Commit a new tag of a, so the next apply really upgrades it."""
            run([*glue, "set", "environments/staging.yaml", "a.image.tag", tag], repo, env)
            git(repo, "commit", "-qam", f"a {tag}")

        own: list[float] = []
        walls: list[float] = []
        shares: list[float] = []
        bare: list[float] = []
        calls: Counter[str] = Counter()
        other_runs: list[float] = []
        before: list[float] = []
        after: list[float] = []
        for i in range(runs):
            for kind in ("glue", "helmfile") if i % 2 == 0 else ("helmfile", "glue"):
                new_tag(f"{i:03d}{'a' if kind == 'glue' else 'b'}000")
                if kind == "helmfile":
                    bare.append(run(helmfile, repo, env))
                    log(f"run {i + 1}/{runs} helmfile apply {bare[-1]:6.2f} s")
                    continue
                clock.reset()
                start, end = run_between([*glue, "apply", "--env", "staging"], repo, glue_env)
                spans = clock.spans()
                applied = [s for s in spans if s.args.startswith("apply")]
                assert len(applied) == 1, spans
                calls.update(s.args for s in spans)
                other_runs.append(sum(s.seconds for s in spans) - applied[0].seconds)
                walls.append(end - start)
                own.append(walls[-1] - applied[0].seconds)
                before.append(applied[0].start - start)
                after.append(end - applied[0].end)
                shares.append(own[-1] / walls[-1] * 100)
                log(
                    f"run {i + 1}/{runs} glue apply     {walls[-1]:6.2f} s "
                    f"(helmfile apply {applied[0].seconds:.2f} s, glue's own {own[-1]:.3f} s: "
                    f"{before[-1]:.3f} before, {after[-1]:.3f} after)"
                )
        # --verify 10s on a healthy deploy: the window plus what watching costs.
        plain: list[float] = []
        verified: list[float] = []
        for i in range(runs):
            for kind in ("plain", "verify") if i % 2 == 0 else ("verify", "plain"):
                new_tag(f"{i:03d}{'c' if kind == 'plain' else 'd'}000")
                extra = ["--verify", "10s"] if kind == "verify" else ["--verify", "0"]
                took = run([*glue, "apply", "--env", "staging", *extra], repo, glue_env)
                (verified if kind == "verify" else plain).append(took)
                log(f"run {i + 1}/{runs} glue apply {' '.join(extra)}: {took:6.2f} s")
    print(load_line(load_start))
    print(
        f"glue apply on the example repo (2 releases, a upgraded each run), pods Ready "
        f"{opts.delay} after scheduling; {runs} runs, alternating with bare helmfile apply"
    )
    print(
        "helmfile runs glue made per apply: "
        + ", ".join(f"{name} x{n // runs}" for name, n in calls.items())
        + "; glue itself also runs `helm version` once (not wrapped, counted as glue's)"
    )
    report.add("glue apply: glue's own time (wall - helmfile apply)", timed(own), target="< 0.3 s")
    report.add("  of it: before helmfile apply starts", timed(before))
    report.add("  of it: after helmfile apply ends", timed(after))
    report.add("  of it: glue's other helmfile runs (build, list)", timed(other_runs))
    report.add("glue apply: whole deploy (wall)", timed(walls), peer=timed(bare))
    report.add("bare helmfile apply of the same change (wall)", timed(bare))
    report.add("glue's own time as a share of the whole deploy", timed(shares), unit="%")
    report.add(
        "glue apply --verify 10s - glue apply, healthy (wall)",
        timed([v - p for v, p in zip(verified, plain, strict=True)]),
        target="<= 10.5 s",
    )
    gap = statistics.median(walls) - statistics.median(bare)
    print(
        f"wrapper cost per helmfile run (bash start, counted as glue's): {cost * 1000:.1f} ms; "
        f"glue wall - bare helmfile wall (medians): {gap:+.2f} s"
    )
    report.write()


if __name__ == "__main__":
    main()
