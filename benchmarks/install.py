"""Installing glue where the image does not carry it (a CI job, a hook Job's image build).

For glue as it is now and for the previous dependency set (the official ``kubernetes``
client instead of lightkube, and pydantic), each in fresh venvs, side by side:

- installed size: glue and its runtime dependencies in site-packages (pip and setuptools,
  which every venv has, left out);
- ``pip install`` from a warm wheel cache: every wheel built or downloaded beforehand into
  a wheelhouse, installed with ``--no-index`` (no network in the timing);
- the first ``glue bump-tag`` after it, in a fresh example repo (bytecode not yet compiled
  for the new venv's dependencies: what a CI job pays once).

Run: python benchmarks/install.py [--runs N]   (or `make bench`)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ROOT, Report, Timing, example_repo, run, side_by_side, timed

SKIP = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth")
#: What glue needed before issue 17 in place of lightkube (and PyYAML): the official
#: client, and pydantic for glue.yaml's model. msgspec stays, only so that today's glue
#: runs for the first-bump timing (0.7 MB).
PREVIOUS = ("kubernetes>=29,<37", "pydantic>=2.6")


def runtime_dependencies() -> list[str]:
    """``[project] dependencies`` of pyproject.toml (one quoted requirement a line)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]
    return re.findall(r'^\s*"([^"]+)",', block, re.M)


def previous_dependencies() -> list[str]:
    """Today's dependencies with the official client and pydantic in place of lightkube's."""
    kept = [d for d in runtime_dependencies() if not re.match(r"(lightkube|PyYAML)\b", d, re.I)]
    return [*kept, *PREVIOUS]


def wheelhouse(dest: Path, requirements: list[str], glue_wheel: Path) -> Path:
    dest.mkdir(parents=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(dest), *requirements])
    shutil.copy2(glue_wheel, dest / glue_wheel.name)
    return dest


def site_size(venv: Path) -> int:
    (site,) = venv.glob("lib/python*/site-packages")
    total = 0
    for entry in site.iterdir():
        if entry.name.startswith(SKIP):
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = Report("install")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        built = tmp / "glue-wheel"
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(built), str(ROOT)])
        (glue_wheel,) = built.glob("gitops_glue-*.whl")
        houses = {
            "now": wheelhouse(tmp / "wh-now", runtime_dependencies(), glue_wheel),
            "previous": wheelhouse(tmp / "wh-previous", previous_dependencies(), glue_wheel),
        }
        sizes: dict[str, int] = {}
        first_bump: dict[str, list[float]] = {"now": [], "previous": []}

        def install(which: str) -> Callable[[int], None]:
            def step(i: int) -> None:
                venv = tmp / f"venv-{which}-{i}"
                # venv creation (ensurepip) is not part of the timing: done before.
                wheels = sorted(str(w) for w in houses[which].glob("*.whl"))
                # PYTHONPYCACHEPREFIX unset: pip writes the bytecode into site-packages, as
                # it does for a user (the other runs here keep theirs in the bench cache).
                run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-index",
                     "--no-deps", "--disable-pip-version-check", *wheels],
                    env={"PYTHONPYCACHEPREFIX": ""})  # fmt: skip

            return step

        for which in houses:
            for i in range(-1, args.runs):
                run([sys.executable, "-m", "venv", str(tmp / f"venv-{which}-{i}")])
        now, previous = side_by_side(args.runs, install("now"), install("previous"))
        for which in houses:
            sizes[which] = site_size(tmp / f"venv-{which}-0")
            for i in range(args.runs):
                repo = example_repo(tmp / f"repo-{which}-{i}")
                glue = tmp / f"venv-{which}-{i}/bin/glue"
                start = time.perf_counter()
                run([str(glue), "bump-tag", "-e", "dev", "a", "abcdef1"], repo,
                    env={"PYTHONPYCACHEPREFIX": ""})  # fmt: skip
                first_bump[which].append(time.perf_counter() - start)
        mb = 1 / 1e6
        report.add(
            "installed size, previous deps (kubernetes client, pydantic)",
            Timing(sizes["previous"] * mb, sizes["previous"] * mb, sizes["previous"] * mb, 1),
            unit="MB",
        )
        report.add(
            "installed size, glue + runtime deps now (lightkube)",
            Timing(sizes["now"] * mb, sizes["now"] * mb, sizes["now"] * mb, 1),
            unit="MB",
            peer=Timing(sizes["previous"] * mb, 0, 0, 1),
            target="<= 40 MB",
        )
        report.add("pip install from wheelhouse, previous deps", previous)
        report.add("pip install from wheelhouse, now", now, peer=previous, target="<= 0.5x")
        before, after = timed(first_bump["previous"]), timed(first_bump["now"])
        report.add("first glue bump-tag after install, previous deps", before)
        report.add("first glue bump-tag after install, now", after, peer=before)
        both_before = Timing(
            previous.median + before.median, previous.low + before.low,
            previous.high + before.high, args.runs,
        )  # fmt: skip
        both_now = Timing(
            now.median + after.median, now.low + after.low, now.high + after.high, args.runs
        )
        report.add("pip install + first bump-tag, previous deps", both_before)
        report.add("pip install + first bump-tag, now", both_now, peer=both_before,
                   target="<= 0.5x")  # fmt: skip
    report.write()


if __name__ == "__main__":
    main()
