"""The command line as a user meets it: help, version, get/set, exit codes.

Run in-process (see conftest.py) unless the test is about the process itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_glue import __version__, keypath
from gitops_glue.errors import UsageError
from tests.unit.cli.conftest import Glue

VALUES = Path(__file__).resolve().parents[2] / "data" / "values"


@pytest.fixture
def glue(glue_in_process: Glue) -> Glue:
    return glue_in_process


def test_version_and_help(glue: Glue) -> None:
    assert glue("--version").out.strip() == f"glue {__version__}"
    run = glue("--help")
    assert run.code == 0
    for command in ("get", "set", "bump-tag", "status"):
        assert command in run.out
    assert "Exit codes: 0 ok, 1 operation failed, 2 bad input" in run.out
    sub = glue("bump-tag", "--help")
    assert sub.code == 0 and "--dry-run" in sub.out and "GLUE_ENV" in sub.out


def test_help_does_not_import_heavy_libraries() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gitops_glue", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}
    for heavy in ("pygit2", "requests", "jinja2", "pydantic", "ruamel.yaml", "rich"):
        assert heavy not in imported


def test_get_prints_values(glue: Glue) -> None:
    path = VALUES / "platform.yaml"
    assert glue("get", str(path), "api.image.tag").out == "1.10\n"
    assert glue("get", str(path), "worker.enabled").out == "true\n"
    assert json.loads(glue("get", str(path), "api.resources", "-o", "json").out) == {
        "limits": {"cpu": "500m", "memory": "256Mi"}
    }
    assert glue("get", str(VALUES / "multidoc.yaml"), "overrides.b.image.tag").out == "v2.0.0\n"


def test_set_edits_in_place_and_reports_unchanged(glue: Glue, tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    original = (VALUES / "crlf.yaml").read_bytes()
    path.write_bytes(original)
    run = glue("set", str(path), "image.tag", "0a0a0a0")
    assert (run.code, run.out, run.err) == (0, "", "")
    assert path.read_bytes() == original.replace(b'"abc1234"', b'"0a0a0a0"')
    again = glue("set", str(path), "image.tag", "0a0a0a0")
    assert again.code == 0 and "unchanged" in again.out


def test_get_and_set_read_a_relative_file_from_the_directory_of_dash_c(
    glue: Glue, tmp_path: Path
) -> None:
    (tmp_path / "env").mkdir()
    path = tmp_path / "env" / "dev.yaml"
    path.write_text("a:\n  tag: v1  # keep\n")
    assert glue("-C", str(tmp_path), "get", "env/dev.yaml", "a.tag").out == "v1\n"
    run = glue("-C", str(tmp_path), "set", "env/dev.yaml", "a.tag", "v2")
    assert run.code == 0, run.err
    assert path.read_text() == "a:\n  tag: v2  # keep\n"
    # An absolute FILE stays where it is.
    assert glue("-C", "/", "get", str(path), "a.tag").out == "v2\n"


def test_set_dry_run_and_json(glue: Glue, tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("a:\n  b: 1  # keep\n")
    run = glue("set", str(path), "a.b", "2", "--dry-run", "-o", "json")
    data = json.loads(run.out)
    assert data["status"] == "would-change" and data["old"] == 1 and data["line"] == 2
    assert "+  b: 2  # keep" in data["diff"]
    assert path.read_text() == "a:\n  b: 1  # keep\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.c", "x"], "no key 'c' under a (keys there: b)"),
        (["a..b", "x"], "invalid key path"),
        (["a", "x"], "a is a mapping, not a single value"),
    ],
)
def test_set_errors_leave_the_file_alone(
    glue: Glue, tmp_path: Path, args: list[str], message: str
) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("a:\n  b: 1  # keep\n")
    run = glue("set", str(path), *args)
    assert run.code == 2
    assert message in run.err
    assert "Traceback" not in run.err
    assert path.read_text() == "a:\n  b: 1  # keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.yaml"]  # no temp files left


def test_set_create(glue: Glue, tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("a:\n  b: 1\n")
    assert glue("set", str(path), "a.c.d", "true", "--create").code == 0
    assert path.read_text() == "a:\n  b: 1\n  c:\n    d: 'true'\n"


def test_missing_file_and_bad_usage(glue: Glue) -> None:
    run = glue("get", "/nonexistent.yaml", "a")
    assert run.code == 2 and run.err.strip() == "glue: error: /nonexistent.yaml: no such file"
    assert glue("bump-tag", "a").code == 2
    assert glue("no-such-command").code == 2


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a.image.tag", ("a", "image", "tag")),
        ("containers.0.image", ("containers", "0", "image")),
        ("containers[0].image", ("containers", 0, "image")),
        ('metadata.annotations["example.com/rev"]', ("metadata", "annotations", "example.com/rev")),
        ("metadata.annotations.example\\.com/rev", ("metadata", "annotations", "example.com/rev")),
        ("list[-1]", ("list", -1)),
    ],
)
def test_key_paths(text: str, parsed: tuple[str | int, ...]) -> None:
    result = keypath.parse(text)
    assert tuple(s.key for s in result) == parsed
    assert tuple(s.key for s in keypath.parse(keypath.render(result))) == parsed


@pytest.mark.parametrize("text", ["", "a.", ".a", "a..b", "a[", "a[x]", "a\\"])
def test_bad_key_paths(text: str) -> None:
    with pytest.raises(UsageError):
        keypath.parse(text)
