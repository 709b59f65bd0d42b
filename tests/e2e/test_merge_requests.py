"""Merge-request mode: what it refuses before anything is written.

The forge flows themselves (open, update, close, auto-merge, races) run against a
real Gitea (tests/e2e/test_merge_requests_gitea.py) and the GitHub and GitLab
stand-ins that check each request against the forges' API descriptions
(tests/e2e/test_merge_requests_forges.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.helpers import copy_example, git, glue, refuses_bump
from tests.support.sshgit import SshGitServer, ssh_env


def reviewed_prod(dest: Path) -> Path:
    """The example repo with prod taking changes through merge requests."""
    copy_example(dest)
    config = dest / "glue.yaml"
    text = config.read_text()
    marker = "  - name: prod\n"
    assert marker in text
    config.write_text(text.replace(marker, marker + "    via: merge-request\n"))
    return dest


def test_a_checkout_refuses_an_environment_that_takes_merge_requests(tmp_path: Path) -> None:
    repo = reviewed_prod(tmp_path / "deploy")
    git(repo, "init", "-q", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    err = refuses_bump(repo, {}, "--env", "prod", "a", "v1.2.3")
    assert "changes to 'prod' go through merge requests" in err
    assert "--via push" in err
    # The other environments push as before, and --via push is the way round it.
    assert glue("-C", str(repo), "bump-tag", "--env", "dev", "a", "1234567").code == 0
    run = glue("-C", str(repo), "bump-tag", "--env", "prod", "--via", "push", "a", "v1.2.3")
    assert run.code == 0, run.err
    assert git(repo, "log", "-1", "--format=%s").strip() == "feat(prod): update a to v1.2.3"


def test_an_unknown_via_is_a_usage_error(tmp_path: Path) -> None:
    repo = reviewed_prod(tmp_path / "deploy")
    git(repo, "init", "-q", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    err = refuses_bump(repo, {}, "--env", "dev", "--via", "pull-request", "a", "1234567")
    assert "--via 'pull-request' is not one of push, merge-request" in err


@pytest.mark.ssh
def test_without_a_forge_token_nothing_is_pushed(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    seed = reviewed_prod(tmp_path / "seed")
    config = seed / "glue.yaml"
    config.write_text(
        config.read_text() + "\nmerge_requests:\n  forge: github\n"
        "  api_url: http://127.0.0.1:9\n  project: example/deploy\n"
    )
    remote = ssh_git_server.new_remote("deploy", seed=seed)
    before = (remote.branches(), remote.head())
    run = glue(
        "bump-tag", "--env", "prod", "a", "v1.2.3", "--remote", remote.url,
        cwd=tmp_path, env=ssh_env(ssh_git_server),
    )  # fmt: skip
    assert run.code == 2, run.err
    assert "opening a pull request needs a github token" in run.err
    assert "GLUE_FORGE_TOKEN or GITHUB_TOKEN" in run.err
    assert (remote.branches(), remote.head()) == before
