"""The status board at scale: 200 services in 6 environments.

Times ``glue status --html DIR`` as a user runs it (the repository read, its history
walked, the page and its assets written), beside ``glue status --output json`` (the
same data, no page), and the page's render alone from that JSON in this process.
The repository's history holds one glue commit per service in its first environment
(bumps as glue writes them), so the page has a history and a timeline for each.

Run: python benchmarks/board.py [--runs N] [--services 200]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

from common import GIT_ENV, Report, glue_command, run, side_by_side

from gitops_glue.board.render import board_view, render_board

ENVS = ("dev", "qa", "test", "staging", "preprod", "prod")


def write_repo(dest: Path, services: int) -> None:
    """glue.yaml, one values file per environment with services s0..sN-1, and a glue
    commit moving each service in dev."""
    glue_yaml = ["version: 1", "environments:"]
    for env in ENVS:
        glue_yaml += [f"  - name: {env}", f"    values: [envs/{env}.yaml]"]
    glue_yaml.append("services:")
    for i in range(services):
        glue_yaml += [
            f"  s{i}:",
            f"    tag_key: s{i}.image.tag",
            f"    source_repo: https://git.example.com/team/s{i}",
        ]
    (dest / "envs").mkdir(parents=True)
    (dest / "glue.yaml").write_text("\n".join(glue_yaml) + "\n")
    for env in ENVS:
        (dest / "envs" / f"{env}.yaml").write_text(
            "".join(f's{i}:\n  image:\n    tag: "{i:07x}"\n' for i in range(services))
        )
    git = ["git", "-C", str(dest)]
    run([*git, "init", "-q", "--initial-branch=main"])
    run([*git, "add", "-A"])
    run([*git, "commit", "-q", "-m", "initial"], env=GIT_ENV)
    dev = dest / "envs" / "dev.yaml"
    for i in range(services):
        dev.write_text(dev.read_text().replace(f'"{i:07x}"', f'"{i + 1:07x}"', 1))
        message = (
            f"feat(dev): update s{i} to {i + 1:07x}\n\nGlue-Environment: dev\n"
            f"Glue-Service: s{i}\nGlue-Tag: {i + 1:07x}\nGlue-Previous-Tag: {i:07x}\n"
            f"Pipeline: https://ci.example.com/p/{i}\nTriggered-By: bench\n"
        )
        run([*git, "commit", "-q", "-am", message], env=GIT_ENV)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--services", type=int, default=200)
    args = parser.parse_args()
    report = Report("board")
    glue = glue_command()
    label = f"{args.services} services x {len(ENVS)} environments"
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        write_repo(repo, args.services)
        site = Path(tmp) / "site"
        html, data = side_by_side(
            args.runs,
            lambda _: run([*glue, "status", "--html", str(site)], repo),
            lambda _: run([*glue, "status", "--output", "json"], repo),
        )
        report.add(f"glue status --html, {label}, wall", html, target="< 1 s")
        report.add(f"glue status --output json, {label}, wall (same data, no page)", data)
        status = json.loads(run([*glue, "status", "--output", "json"], repo))
        now = dt.datetime.now(dt.timezone.utc)
        (rendered,) = side_by_side(
            args.runs * 3, lambda _: render_board(board_view(status, cluster=False, now=now))
        )
        size = (site / "index.html").stat().st_size
        report.add(f"the page's render alone from the JSON ({size // 1024} KiB), {label}", rendered)
    report.write()


if __name__ == "__main__":
    main()
