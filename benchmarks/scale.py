"""200 services in 4 environments: ``glue status`` and the ``glue notify`` message render.

The render (what ``glue notify --dry-run`` prints: the change set against the deploy
record, then the Slack message) is timed in this process, half the services changed:
the whole command needs a cluster for the record (the testbed), which this script does
not start.

Run: python benchmarks/scale.py [--runs N] [--services 200]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import Report, git_init, glue_command, run, side_by_side

from gitops_glue.cluster.record import ServiceVersion
from gitops_glue.messages.changes import compute
from gitops_glue.messages.notice import Notice, build_message
from gitops_glue.messages.phase import Phase

ENVS = ("dev", "qa", "staging", "prod")


def write_repo(dest: Path, services: int) -> None:
    """glue.yaml and one values file per environment with services s0..sN-1."""
    glue_yaml = ["version: 1", "environments:"]
    for env in ENVS:
        glue_yaml += [f"  - name: {env}", f"    values: [envs/{env}.yaml]"]
    glue_yaml.append("services:")
    for i in range(services):
        glue_yaml += [f"  s{i}:", f"    tag_key: s{i}.image.tag"]
    (dest / "envs").mkdir(parents=True)
    (dest / "glue.yaml").write_text("\n".join(glue_yaml) + "\n")
    for env in ENVS:
        (dest / "envs" / f"{env}.yaml").write_text(
            "".join(
                f'# service s{i}\ns{i}:\n  image:\n    tag: "{i:07x}"\n\n' for i in range(services)
            )
        )
    git_init(dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--services", type=int, default=200)
    args = parser.parse_args()
    report = Report("scale")
    glue = glue_command()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        write_repo(repo, args.services)
        label = f"{args.services} services x {len(ENVS)} environments"
        (status,) = side_by_side(args.runs, lambda _: run([*glue, "status"], repo))
        report.add(f"glue status, {label}", status, target="< 0.5 s")
        old = {f"s{i}": ServiceVersion(f"{i:07x}", release=f"s{i}") for i in range(args.services)}
        new = {
            name: ServiceVersion(f"{i + (i % 2):07x}", release=name) for i, name in enumerate(old)
        }

        def render(_: int) -> None:
            changes = compute("prod", old, new)
            for phase in (Phase.pre_upgrade, Phase.post_upgrade):
                build_message(Notice(phase, changes, actor="bench"))

        (rendered,) = side_by_side(args.runs * 3, render)
        report.add(
            f"notify render (start + finish message), {args.services} services",
            rendered,
            target="< 0.1 s",
        )
    report.write()


if __name__ == "__main__":
    main()
