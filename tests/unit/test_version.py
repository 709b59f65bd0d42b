"""The version is written once, in pyproject.toml; every other mention must agree."""

from __future__ import annotations

import re
from pathlib import Path

import gitops_glue

ROOT = Path(__file__).resolve().parents[2]
SEMVER = re.compile(r"(?<![\w.])\d+\.\d+\.\d+(?![\w.])")


def pyproject_version() -> str:
    # tomllib is 3.11+; the [project] table's version line is all we need.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    found = re.search(r'^version\s*=\s*"([^"]+)"', project, re.MULTILINE)
    assert found, "pyproject.toml has no [project] version"
    return found.group(1)


def test_package_version_is_pyprojects() -> None:
    assert gitops_glue.__version__ == pyproject_version(), (
        "the installed metadata is older than pyproject.toml: run `pip install -e .`"
    )


def test_ci_templates_name_pyprojects_version() -> None:
    expected = pyproject_version()
    mentions = []
    for path in sorted((ROOT / "ci-templates").rglob("*")):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            mentions += [(path.relative_to(ROOT), number, v) for v in SEMVER.findall(line)]
    assert mentions, "ci-templates name no glue version any more: drop this test"
    stale = [f"{path}:{number}: {v}" for path, number, v in mentions if v != expected]
    assert not stale, (
        f"ci-templates must name glue {expected} (pyproject.toml) in every place: "
        + ", ".join(stale)
    )
