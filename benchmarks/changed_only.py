"""``glue apply --changed-only`` on 20 releases with one changed, against
``helmfile apply`` of all 20 (same repo, same cluster).

Starts its own testbed cluster (pods Ready at once unless --delay: with one rollout in
each command, a delay adds the same to both and measures kwok, not the selection),
builds the example repository widened to 20 releases of charts/app, deploys them once
with ``glue apply`` (which writes the deploy record --changed-only compares with), then
alternates, each on a fresh one-release change (`glue set` of one release's tag, then
`git commit`, as a user would):

    glue apply --env staging --changed-only
    helmfile -e staging apply --detailed-exitcode --suppress-secrets   (all 20)

After each helmfile run an untimed `glue apply --changed-only` brings the deploy record
up to the new commit, so the next glue run again sees exactly one changed release.
glue runs helmfile through a wrapper that times each helmfile run it makes; their
medians are printed to show where glue's time goes.

Helm 3 (with helmfile 0.166) by default; ``--helm 4`` runs Helm 4 with helmfile v1. glue
runs from a fresh venv, installed as a user would (``--dev-glue``: the development one).

Run: python benchmarks/changed_only.py [--runs 5] [--quick] [--releases 20] [--delay 5s]
     [--helm 3|4] [--dev-glue]
Target (issue 17): glue's wall time at most 0.25 of helmfile's.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict

from cluster_bench import (
    HELMFILE_APPLY,
    clocked_glue_env,
    covered,
    git,
    helm_major,
    load_line,
    log,
    make_repo,
    release_names,
    run,
    testbed,
)
from common import Report, glue_to_time, timed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 runs")
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--delay", default="", help="pod ready delay, e.g. 5s (default none)")
    parser.add_argument(
        "--helm", type=int, choices=(3, 4), default=3, help="Helm major version (default 3)"
    )
    parser.add_argument(
        "--dev-glue", action="store_true", help="run the development glue, not a fresh venv's"
    )
    opts = parser.parse_args()
    runs = 3 if opts.quick else opts.runs
    names = release_names(opts.releases)
    load_start = os.getloadavg()
    report = Report("changed_only")
    with testbed("changed", opts.delay) as (testbed_env, scratch):
        env, helmfile_bin = helm_major(testbed_env, opts.helm)
        clock, cost, glue_env = clocked_glue_env(env, scratch, helmfile_bin)
        repo = make_repo(scratch / "repo", opts.releases, "bench-changed")
        glue, glue_env = glue_to_time(opts.dev_glue, scratch, glue_env)
        apply_changed = [*glue, "apply", "--env", "staging", "--changed-only"]
        helmfile = [helmfile_bin, *HELMFILE_APPLY[1:]]
        log(f"first deploy of {opts.releases} releases with glue apply (untimed)")
        run([*glue, "apply", "--env", "staging"], repo, glue_env)
        times: dict[str, list[float]] = {"glue": [], "helmfile": []}
        spans: dict[str, list[float]] = defaultdict(list)
        change = 0
        for i in range(runs):
            for kind in ("glue", "helmfile") if i % 2 == 0 else ("helmfile", "glue"):
                release = names[(change * 7) % len(names)]  # a different one each time
                tag = f"{change:04d}{'a' if kind == 'glue' else 'b'}00"
                change += 1
                key = f"{release}.image.tag"
                run([*glue, "set", "environments/staging.yaml", key, tag], repo, env)
                git(repo, "commit", "-qam", f"{release} {tag}")
                if kind == "helmfile":
                    times["helmfile"].append(run(helmfile, repo, env))
                    log(f"run {i + 1}/{runs} helmfile apply (all)  {times['helmfile'][-1]:6.2f} s")
                    clock.reset()
                    run(apply_changed, repo, glue_env)  # the record follows, untimed
                    continue
                clock.reset()
                times["glue"].append(run(apply_changed, repo, glue_env))
                made = clock.spans()
                applied = [s for s in made if s.args.startswith("apply")]
                assert len(applied) == 1 and release in applied[0].args, made
                for span in made:
                    spans[span.args.split(" (")[0]].append(span.seconds)
                spans["(time any helmfile runs)"].append(covered(made))
                log(
                    f"run {i + 1}/{runs} glue apply --changed-only {times['glue'][-1]:6.2f} s "
                    f"({', '.join(f'{s.args} {s.seconds:.2f}' for s in made)})"
                )
    g, h = timed(times["glue"]), timed(times["helmfile"])
    print(load_line(load_start))
    print(
        f"{opts.releases} releases, one changed per run (a new commit each), pods Ready "
        f"{'at once' if not opts.delay else opts.delay + ' after scheduling'}; "
        f"{runs} runs each, alternating; Helm {opts.helm}, {helmfile_bin}"
    )
    helm = f"Helm {opts.helm}"
    report.add(f"helmfile apply, all {opts.releases} releases ({helm})", h)
    report.add(
        f"glue apply --changed-only, 1 of {opts.releases} changed ({helm})",
        g,
        peer=h,
        target="<= 0.25x helmfile",
    )
    print(f"ratio glue / helmfile (medians): {g.median / h.median:.2f} (target <= 0.25)")
    alone = statistics.median(spans["apply"])
    print(
        f"the one release's helmfile apply alone (inside glue): {alone:.2f} s = "
        f"{alone / h.median:.2f} of helmfile's all-{opts.releases} run: the ratio if glue "
        "added nothing"
    )
    print("glue's helmfile runs, per glue apply --changed-only (median; some run side by side):")
    for name, took in spans.items():
        per_run = len(took) // max(1, len(times["glue"]))
        print(f"  {name:<28} x{per_run}  {statistics.median(took) * 1000:7.0f} ms")
    outside = statistics.median(
        w - s for w, s in zip(times["glue"], spans["(time any helmfile runs)"], strict=True)
    )
    print(
        f"  glue outside helmfile runs      {outside * 1000:7.0f} ms "
        f"(incl. {cost * 1000:.1f} ms wrapper cost per helmfile run)"
    )
    report.write()


if __name__ == "__main__":
    main()
