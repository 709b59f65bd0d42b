"""Local commands on the example repository, as a developer or a CI job runs them.

- ``glue --help`` against bare ``python -c pass``, in CPU time;
- the libraries alone, imported by that Python: typer (all ``glue --help`` needs), and
  typer, pygit2, PyYAML and msgspec (what a local ``glue bump-tag`` loads): the floor
  under each of the two, glue's own modules and work left out;
- ``glue status`` on the example repo, in wall time;
- ``glue bump-tag -e dev a TAG`` in CPU time, against the flow teams script today:
  ``yq -i`` on the values file, then ``git commit -am`` (mikefarah's yq; skipped when it
  is missing).

glue runs from a fresh venv, installed as a user would (runtime dependencies only);
``--dev-glue`` times the development environment's instead.

Run: python benchmarks/local.py [--runs N] [--dev-glue]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import Report, example_repo, glue_to_time, run, side_by_side, yq_command

#: The libraries a local ``glue bump-tag`` loads, but ruamel.yaml (glue.yaml's reader
#: today; libyaml could read it): the floor under it while it loads them.
BUMP_LIBRARIES = "typer, pygit2, yaml, msgspec"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument(
        "--dev-glue", action="store_true", help="time the development glue, not a fresh venv's"
    )
    args = parser.parse_args()
    report = Report("local")
    with tempfile.TemporaryDirectory() as tmp:
        glue, env = glue_to_time(args.dev_glue, Path(tmp), {})
        # The same Python glue runs on: the fresh venv's (or this one, with --dev-glue).
        python = sys.executable if args.dev_glue else str(Path(glue[0]).parent / "python")
        repo = example_repo(Path(tmp) / "repo")
        # typer as glue imports it: plain click help, no rich (gitops_glue/cli/__init__.py)
        plain = {**env, "TYPER_USE_RICH": "0"}

        def imports(modules: str) -> Callable[[int], object]:
            return lambda _: run([python, "-c", f"import {modules}"], env=plain)

        bare, cli_floor, help_ = side_by_side(
            args.runs,
            lambda _: run([python, "-c", "pass"], env=env),
            imports("typer"),
            lambda _: run([*glue, "--help"], env=env),
            cpu=True,
        )
        report.add("python -c pass (for scale), CPU", bare)
        report.add("import typer (glue --help's floor), CPU", cli_floor)
        report.add("glue --help, CPU", help_, peer=bare, target="< 0.1 s CPU")
        (status,) = side_by_side(args.runs, lambda _: run([*glue, "status"], repo, env))
        report.add("glue status, example repo, wall", status, target="< 0.25 s")

        yq, version = yq_command()
        values = repo / "environments" / "dev.yaml"

        def bump(i: int) -> None:
            run([*glue, "bump-tag", "-e", "dev", "a", f"{i + 2:07x}"], repo, env)

        target = "<= 0.15 s CPU"
        floor = imports(BUMP_LIBRARIES)
        if yq is None:
            print(f"yq flow skipped: {version}")
            glue_bump, bump_floor = side_by_side(args.runs, bump, floor, cpu=True)
            report.add("glue bump-tag, local, CPU", glue_bump, target=target)
        else:

            def scripted(i: int) -> None:
                run([yq, "-i", f'.a.image.tag = "v{i + 2}.0.0"', str(values)])
                run(["git", "commit", "-q", "-am", f"a: v{i + 2}.0.0"], repo)

            glue_bump, flow, bump_floor = side_by_side(args.runs, bump, scripted, floor, cpu=True)
            report.add(f"yq -i + git commit -am ({version.split()[-1]}), CPU", flow)
            report.add("glue bump-tag, local, CPU", glue_bump, peer=flow, target=target)
        report.add(f"import {BUMP_LIBRARIES} (bump-tag's floor), CPU", bump_floor)
    report.write()


if __name__ == "__main__":
    main()
