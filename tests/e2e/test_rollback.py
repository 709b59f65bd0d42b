"""`glue rollback`: revert an environment's glue commits, never anyone else's."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

from gitops_glue.repo.commit import parse_trailers
from tests.support.helpers import git, glue, snapshot
from tests.support.sshgit import BareRemote, SshGitServer


def head(repo: Path) -> pygit2.Commit:
    return pygit2.Repository(str(repo)).head.peel(pygit2.Commit)


def tag_of(repo: Path, env: str, service: str) -> str:
    status = json.loads(glue("status", "-o", "json", cwd=repo).out)
    return str(status["services"][service][env]["tag"])


def test_rollback_reverts_only_the_last_bump_among_unrelated_commits(repo: Path) -> None:
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo).code == 0
    bump = head(repo)
    # Unrelated work after it: another file, and another key in the same file.
    (repo / "NOTES.md").write_text("deploy notes\n")
    dev = repo / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace("b:\n", "b:\n  replicaCount: 3\n"))
    git(repo, "add", "NOTES.md", "environments/dev.yaml")
    git(repo, "commit", "-qm", "hand edits")
    assert glue("bump-tag", "a", "5f6a7b8", "--env", "staging", cwd=repo).code == 0
    before = snapshot(repo)

    dry = glue("rollback", "--env", "dev", "--dry-run", cwd=repo)
    assert dry.code == 0, dry.err
    assert f"{str(bump.id)[:10]} feat(dev): update a to 4e5f6a7" in dry.out
    assert '+    tag: "3f9c2e1"  # service a' in dry.out
    assert snapshot(repo) == before

    run = glue("rollback", "--env", "dev", "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [c["commit"] for c in data["reverted"]] == [str(bump.id)]
    commit = head(repo)
    assert commit.message.startswith("revert(dev): roll back feat(dev): update a to 4e5f6a7\n")
    trailers = parse_trailers(commit.message)
    assert ("Glue-Reverts", str(bump.id)) in trailers
    assert ("Glue-Action", "rollback") in trailers and ("Glue-Service", "a") in trailers
    assert commit.author.name == "glue-bot"
    assert tag_of(repo, "dev", "a") == "3f9c2e1"
    assert "replicaCount: 3" in dev.read_text()  # the unrelated edit stays
    assert (repo / "NOTES.md").exists()
    assert tag_of(repo, "staging", "a") == "5f6a7b8"  # other environments untouched
    assert git(repo, "diff", "--name-only", "HEAD~1", "HEAD").split() == ["environments/dev.yaml"]
    assert git(repo, "status", "--porcelain") == ""


def test_a_second_rollback_goes_one_further_back(repo: Path) -> None:
    for tag in ("1111111", "2222222"):
        assert glue("bump-tag", "a", tag, "--env", "dev", cwd=repo).code == 0
    assert glue("rollback", "--env", "dev", cwd=repo).code == 0
    assert tag_of(repo, "dev", "a") == "1111111"
    assert glue("rollback", "--env", "dev", cwd=repo).code == 0
    assert tag_of(repo, "dev", "a") == "3f9c2e1"
    nothing = glue("rollback", "--env", "dev", cwd=repo)
    assert nothing.code == 2 and "no glue change of 'dev' to roll back" in nothing.err


def test_rollback_to_a_commit_reverts_every_glue_change_after_it(repo: Path) -> None:
    start = git(repo, "rev-parse", "HEAD").strip()
    assert glue("bump-tag", "a", "1111111", "--env", "dev", cwd=repo).code == 0
    assert glue("promote", "a", "--to", "staging", cwd=repo).code == 0
    assert glue("bump-tag", "b", "2222222", "--env", "dev", cwd=repo).code == 0
    run = glue("rollback", "--env", "dev", "--to-commit", start[:8], "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    titles = [c["title"] for c in json.loads(run.out)["reverted"]]
    assert titles == ["feat(dev): update b to 2222222", "feat(dev): update a to 1111111"]
    assert head(repo).message.startswith("revert(dev): roll back 2 changes\n")
    assert (tag_of(repo, "dev", "a"), tag_of(repo, "dev", "b")) == ("3f9c2e1", "9a8b7c6")
    assert tag_of(repo, "staging", "a") == "1111111"  # staging's promotion is not dev's
    # Staging's rollback reverts the promotion.
    assert glue("rollback", "--env", "staging", cwd=repo).code == 0
    assert tag_of(repo, "staging", "a") == "3f9c2e1"
    bad = glue("rollback", "--env", "dev", "--to-commit", "0" * 40, cwd=repo)
    assert bad.code == 2 and "no such commit" in bad.err


def test_rollback_refuses_to_take_unrelated_changes_with_it(repo: Path) -> None:
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo).code == 0
    dev = repo / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace('tag: "4e5f6a7"', 'tag: "9999999"'))
    git(repo, "commit", "-qam", "hotfix by hand")
    before, old_head = snapshot(repo), head(repo).id
    run = glue("rollback", "--env", "dev", cwd=repo)
    assert run.code == 2
    assert "later commits changed the same lines of environments/dev.yaml" in run.err
    assert snapshot(repo) == before and head(repo).id == old_head
    # A commit that only looks like glue's, changing more than dev's values, is refused too.
    (repo / "charts/app/values.yaml").write_text("replicaCount: 9\n")
    git(repo, "commit", "-qam", "chart change\n\nGlue-Environment: dev")
    run = glue("rollback", "--env", "dev", cwd=repo)
    assert run.code == 2 and "outside dev's values files: not reverting it" in run.err
    assert head(repo).message.startswith("chart change")


@pytest.mark.ssh
def test_rollback_over_ssh(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    env = {
        "GLUE_SSH_KEY_FILE": str(ssh_git_server.deploy_key.private),
        "GLUE_SSH_KNOWN_HOSTS": ssh_git_server.known_hosts_line,
    }
    assert (
        glue(
            "bump-tag",
            "b",
            "0a1b2c3",
            "--env",
            "prod",
            "--remote",
            ssh_remote.url,
            cwd=tmp_path,
            env=env,
        ).code
        == 0
    )
    bump = ssh_remote.head()
    ssh_remote.commit({"README.md": "deployment repo\n"}, "docs")
    dry = glue(
        "rollback", "--env", "prod", "--remote", ssh_remote.url, "--dry-run", cwd=tmp_path, env=env
    )
    assert dry.code == 0, dry.err
    assert "feat(prod): update b to 0a1b2c3" in dry.out
    docs = ssh_remote.head()
    run = glue(
        "rollback", "--env", "prod", "--remote", ssh_remote.url, "-o", "json", cwd=tmp_path, env=env
    )
    assert run.code == 0, run.err
    log = ssh_remote.log()
    assert log[0].sha == json.loads(run.out)["commit"] and log[0].parents == (docs,)
    assert ("Glue-Reverts", bump) in parse_trailers(log[0].message)
    assert '    tag: "1d2e3f4"  # service b' in ssh_remote.show("main", "environments/prod.yaml")
    assert ssh_remote.show("main", "README.md") == "deployment repo\n"
