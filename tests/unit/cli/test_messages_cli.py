"""glue notify / announce / status as a user meets them, in-process: choices, exit codes,
--best-effort, what is printed when Slack is not configured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import copy_example
from tests.unit.cli.conftest import Glue

HOOK = ["notify", "-e", "prod", "--tag", "v1.2.3", "--service", "a"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--phase", "mid-upgrade"), ("--output", "yaml"), ("--thread", "sideways")],
)
def test_notify_choices_are_checked_before_anything_runs(
    glue_in_process: Glue, tmp_path: Path, option: str, value: str
) -> None:
    args = [*HOOK, "--phase", "pre-upgrade", option, value, "--best-effort"]
    run = glue_in_process(*args, cwd=tmp_path)
    assert run.code == 2
    assert f"Invalid value for '{option}'" in run.err
    assert value in run.err


def test_notify_hook_mode_needs_exactly_one_service(glue_in_process: Glue, tmp_path: Path) -> None:
    run = glue_in_process(*HOOK, "--service", "b", "--phase", "pre-upgrade", cwd=tmp_path)
    assert run.code == 2
    assert run.err == "glue: error: --tag needs exactly one --service: the service it is for\n"


def test_notify_best_effort_turns_a_failure_into_a_warning(
    glue_in_process: Glue, tmp_path: Path
) -> None:
    run = glue_in_process(
        *HOOK, "--service", "b", "--phase", "pre-upgrade", "--best-effort", cwd=tmp_path
    )
    assert run.code == 0
    assert run.out == ""
    assert run.err == (
        "glue: warning: no notification sent (--best-effort): "
        "--tag needs exactly one --service: the service it is for\n"
    )


def test_notify_phases_are_the_documented_ones(glue_in_process: Glue) -> None:
    run = glue_in_process("notify", "--help")
    assert run.code == 0
    for phase in ("pre-install", "pre-upgrade", "post-install", "post-upgrade", "post-rollback"):
        assert phase in run.out
    assert "<text|json|slack>" in run.out and "<reply|update>" in run.out


def test_announce_dry_run_prints_the_message_and_writes_the_dotenv(
    glue_in_process: Glue, tmp_path: Path
) -> None:
    dotenv = tmp_path / "announce.env"
    run = glue_in_process(
        "announce",
        "--image",
        "registry.example.com/team/a",
        "--tag",
        "3f9c2e1",
        "--revision",
        "3f9c2e1",
        "--dotenv",
        str(dotenv),
        "--dry-run",
        cwd=tmp_path,
    )
    assert run.code == 0
    assert run.out.startswith("New image: a 3f9c2e1 (registry.example.com/team/a:3f9c2e1)\n")
    assert "`registry.example.com/team/a:3f9c2e1`" in run.out
    assert run.err == "glue: dry run: nothing was sent\n"
    assert "GLUE_TAG=3f9c2e1\n" in dotenv.read_text()


def test_announce_uses_the_template_glue_yaml_names(glue_in_process: Glue, tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "deploy")
    (repo / "glue.yaml").write_text(
        (repo / "glue.yaml").read_text() + "templates:\n  announce: announce.j2\n"
    )
    (repo / "announce.j2").write_text("custom body for {{ service }}")
    run = glue_in_process(
        "-C", str(repo), "announce", "--image", "r.example.com/a", "--tag", "v1", "-o", "json"
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["message"]["blocks"][1]["text"]["text"] == "custom body for a"
    assert data["sent"] is False


def test_status_from_a_checkout(glue_in_process: Glue, tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "deploy")
    run = glue_in_process("status", cwd=repo / "environments")
    assert run.code == 0, run.err
    assert run.out.splitlines()[0].split() == ["SERVICE", "dev", "staging", "prod"]
    data = json.loads(glue_in_process("-C", str(repo), "status", "-o", "json").out)
    assert data["services"]["a"]["dev"]["tag"] == "3f9c2e1"
    assert data["services"]["a"]["dev"]["file"] == "environments/dev.yaml"
