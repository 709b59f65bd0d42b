"""``glue set`` / ``glue get`` in a large chart values file, side by side with ``yq -i``,
in CPU time (user + system).

The file: 4,700 lines shaped like a real umbrella chart's values (nested maps, lists of
maps, comments, block scalars, anchors), generated here. The key set is near the end, as
an image tag in a subchart's section is.

glue runs from a fresh venv, installed as a user would (runtime dependencies only: the
default install); ``--dev-glue`` times the development environment's instead.

Run: python benchmarks/values.py [--runs N] [--lines 4700] [--dev-glue]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import Report, glue_to_time, run, side_by_side, yq_command


def values_file(lines: int) -> str:
    """A chart values file of about ``lines`` lines, ending with section ``last``."""
    out: list[str] = ["# Umbrella chart values (generated for benchmarks/values.py)", ""]
    n = 0
    while len(out) < lines - 40:
        out += [
            f"# component {n}: its own image, resources and probes",
            f"component{n}:",
            "  enabled: true",
            "  image:",
            f"    repository: registry.example.com/team/component-{n}",
            '    tag: "1.0.0"',
            "    pullPolicy: IfNotPresent",
            "  replicaCount: 2",
            "  resources: &res" + str(n),
            "    requests: {cpu: 100m, memory: 128Mi}",
            "    limits: {cpu: 500m, memory: 512Mi}",
            "  env:",
            "    - name: LOG_LEVEL",
            "      value: info",
            "    - name: FEATURE_FLAGS",
            '      value: "a,b,c"',
            "  config: |",
            "    [server]",
            f"    port = {8000 + n}",
            "    timeout = 30s",
            "  probes:",
            "    liveness: {path: /healthz, port: http, initialDelaySeconds: 10}",
            "    readiness: {path: /ready, port: http}",
            "  tolerations: []",
            "",
        ]
        n += 1
    out += [
        "last:",
        "  image:",
        "    repository: registry.example.com/team/last",
        '    tag: "0000000"  # set by CI',
        "",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--lines", type=int, default=4700)
    parser.add_argument(
        "--dev-glue", action="store_true", help="time the development glue, not a fresh venv's"
    )
    args = parser.parse_args()
    report = Report("values")
    with tempfile.TemporaryDirectory() as tmp:
        glue, env = glue_to_time(args.dev_glue, Path(tmp), {})
        file = Path(tmp) / "values.yaml"
        file.write_text(values_file(args.lines))
        count = len(file.read_text().splitlines())
        key = "last.image.tag"

        def glue_set(i: int) -> None:
            run([*glue, "set", str(file), key, f"{i + 2:07x}"], env=env)

        def glue_get(_: int) -> None:
            run([*glue, "get", str(file), key], env=env)

        yq, version = yq_command()
        if yq is None:
            print(f"yq side skipped: {version}")
            set_, get = side_by_side(args.runs, glue_set, glue_get, cpu=True)
            report.add(f"glue set, {count}-line values file, CPU", set_)
        else:

            def yq_set(i: int) -> None:
                run([yq, "-i", f'.{key} = "{i + 2:07x}"', str(file)])

            set_, get, peer = side_by_side(args.runs, glue_set, glue_get, yq_set, cpu=True)
            report.add(f"yq -i, {count}-line values file, CPU", peer)
            report.add(
                f"glue set, {count}-line values file, CPU", set_, peer=peer, target="<= 3x yq"
            )
        report.add(f"glue get, {count}-line values file, CPU", get)
    report.write()


if __name__ == "__main__":
    main()
