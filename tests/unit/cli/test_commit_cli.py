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


REPOSITORY_OPTIONS = [
    "--remote <str> ",
    "[env var: GLUE_REMOTE]",
    "--branch <str> ",
    "[env var: GLUE_BRANCH; default: main]",
    "--ssh-key-file <path> ",
    "[env var: GLUE_SSH_KEY_FILE]",
    "--known-hosts <path> ",
    "--insecure-no-host-key-check ",
]


@pytest.mark.parametrize(
    "command",
    ["bump-tag", "promote", "release", "rollback", "hold", "unhold", "reject", "should-release"],
)
def test_every_command_that_commits_offers_the_repository_options(
    glue_in_process: Glue, command: str
) -> None:
    run = glue_in_process(command, "--help")
    assert run.code == 0, run.err
    shown = " ".join(run.out.split())  # help wraps where the terminal ends
    for text in REPOSITORY_OPTIONS:
        assert text in shown, (command, text)
    pushes = (
        "--max-attempts <int range> " in shown
        and "GLUE_MAX_ATTEMPTS; default: 20; 1<=x<=50]" in shown
    )
    assert pushes == (command != "should-release")  # should-release only reads


def test_the_repository_options_reach_the_remote_branch(glue_in_process: Glue, repo: Path) -> None:
    url = "ssh://git@127.0.0.1:1/deploy.git"  # refused before connecting: nothing listens
    run = glue_in_process(
        "hold", "a", "--env", "dev", "--reason", "x", "--remote", url, "--branch", "bad..name"
    )
    assert run.code == 2 and "--branch 'bad..name': not a valid git branch name" in run.err
    run = glue_in_process("unhold", "a", "--env", "dev", env={"GLUE_MAX_ATTEMPTS": "51"})
    assert run.code == 2 and "51 is not in the range 1<=x<=50" in run.err
    before = git(repo, "rev-parse", "HEAD")
    run = glue_in_process("reject", "a", "v0.9", "--reason", "x", "--branch", "bad..name", cwd=repo)
    assert run.code == 0, run.err  # without --remote, --branch is not used: the checkout is
    assert git(repo, "rev-parse", "HEAD^") == before


def test_bump_tag_hands_the_next_ci_job_its_result_in_a_dotenv(
    glue_in_process: Glue, repo: Path, tmp_path: Path
) -> None:
    dotenv = tmp_path / "bump.env"
    run = glue_in_process(
        "bump-tag", "a", "4e5f6a7", "--env", "dev", "--dotenv", str(dotenv), cwd=repo
    )
    assert run.code == 0, run.err
    lines = dotenv.read_text().splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "GLUE_STATUS",
        "GLUE_SERVICE",
        "GLUE_OLD_TAG",
        "GLUE_NEW_TAG",
        "GLUE_FILE",
        "GLUE_ENVIRONMENT",
        "GLUE_COMMIT",
    ]
    head = git(repo, "rev-parse", "HEAD").strip()
    assert "GLUE_STATUS=changed" in lines and f"GLUE_COMMIT={head}" in lines
    assert "GLUE_SERVICE=a" in lines and "GLUE_NEW_TAG=4e5f6a7" in lines
