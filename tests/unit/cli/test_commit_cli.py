"""bump-tag, promote, release, rollback, should-release: option names and output shape.

In process (see conftest): one meaning per option name across the commit
commands, and the same JSON fields for every command's commit result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import Run, git
from tests.unit.cli.conftest import Glue

COMMON = {"status", "files", "commit", "dry_run", "remote", "attempts", "notes", "skipped", "diff"}


def test_every_commit_command_reports_the_same_fields(glue_in_process: Glue, repo: Path) -> None:
    runs = {
        "bump-tag": ["bump-tag", "a", "4e5f6a7", "--env", "dev"],
        "promote": ["promote", "b", "--to", "staging"],
        "release": ["release", "a", "--tag", "v1.2.4", "--to", "prod"],
    }
    for name, args in runs.items():
        run = glue_in_process(*args, "--dry-run", "-o", "json", cwd=repo)
        assert run.code == 0, (name, run.err)
        data = json.loads(run.out)
        assert set(data) >= COMMON, name
        assert data["status"] == "would-change" and data["commit"] is None
        assert len(data["files"]) == 1 and data["diff"].startswith("--- a/environments/")
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"  # dry runs wrote nothing
    assert glue_in_process("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo).code == 0
    run = glue_in_process("rollback", "--env", "dev", "--dry-run", "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert set(data) >= COMMON and data["files"] == ["environments/dev.yaml"]
    assert data["reverted"][0]["title"] == "feat(dev): update a to 4e5f6a7"


@pytest.mark.parametrize(
    "args",
    [
        ["rollback", "--env", "dev", "--to", "HEAD"],  # a commit is --to-commit now
        ["release", "a", "--tag", "v1.2.4", "--to", "prod", "--remote-branch", "main"],
        ["should-release", "--branch", "main", "--env", "dev", "--remote-branch", "main"],
    ],
)
def test_old_option_names_are_refused(glue_in_process: Glue, repo: Path, args: list[str]) -> None:
    run = glue_in_process(*args, cwd=repo)
    assert run.code == 2, run.err
    assert "No such option" in run.err


def test_branch_is_the_deployment_branch_and_source_branch_the_images(
    glue_in_process: Glue, repo: Path
) -> None:
    # --branch no longer names the image's branch: release needs --tag or --source-branch.
    run = glue_in_process("release", "a", "--branch", "main", "--to", "staging", cwd=repo)
    assert run.code == 2 and "give exactly one of --tag TAG and --source-branch BRANCH" in run.err
    config = repo / "glue.yaml"
    config.write_text(config.read_text() + "auto_release:\n  - {branch: main, to: dev}\n")
    answers: list[Run] = [
        glue_in_process("should-release", "--source-branch", "main", "--env", "dev", cwd=repo),
        glue_in_process(
            "should-release",
            "--env",
            "dev",
            "-o",
            "json",
            cwd=repo,
            env={"GLUE_SOURCE_BRANCH": "main", "GLUE_BRANCH": "elsewhere"},
        ),
    ]
    assert answers[0].out.strip() == "true"
    assert json.loads(answers[1].out) == {
        "source_branch": "main",
        "environment": "dev",
        "release": True,
    }
    missing = glue_in_process("should-release", "--env", "dev", cwd=repo)
    assert missing.code == 2 and "--source-branch BRANCH is required" in missing.err


def test_rollback_to_commit_from_the_environment(glue_in_process: Glue, repo: Path) -> None:
    start = git(repo, "rev-parse", "HEAD").strip()
    for tag in ("1111111", "2222222"):
        assert glue_in_process("bump-tag", "a", tag, "--env", "dev", cwd=repo).code == 0
    run = glue_in_process(
        "rollback", "--env", "dev", "-o", "json", cwd=repo, env={"GLUE_TO_COMMIT": start}
    )
    assert run.code == 0, run.err
    assert len(json.loads(run.out)["reverted"]) == 2
    bad = glue_in_process("rollback", "--env", "dev", "--to-commit", "nope", cwd=repo)
    assert bad.code == 2 and "--to-commit 'nope': no such commit" in bad.err


def test_ssh_remote_without_a_deploy_key_is_refused_before_connecting(
    glue_in_process: Glue, tmp_path: Path
) -> None:
    url = "ssh://git@127.0.0.1:1/deploy.git"  # nothing listens: a connection would fail otherwise
    for args in (
        ["bump-tag", "a", "1234567", "--env", "dev"],
        ["promote", "a", "--to", "staging"],
        ["rollback", "--env", "dev"],
    ):
        run = glue_in_process(*args, "--remote", url, cwd=tmp_path)
        assert run.code == 2, run.err
        assert "an SSH remote needs a deploy key" in run.err
    run = glue_in_process(
        "bump-tag",
        "a",
        "1",
        "--env",
        "dev",
        "--remote",
        url,
        cwd=tmp_path,
        env={"GLUE_SSH_KEY": "not a key"},
    )
    assert run.code == 2 and "host key of [127.0.0.1]:1 is unknown" in run.err
