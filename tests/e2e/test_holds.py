"""Holds and rejected versions (issue 19 items 1-2): in a checkout, and over real SSH."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

from gitops_glue.repo.commit import parse_trailers
from tests.support.helpers import git, glue, snapshot
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env

AUTO = "auto_release:\n  - {branch: main, to: dev}\n  - {branch: main, to: prod}\n"
ALICE = {"GLUE_ACTOR": "alice"}


def head(repo: Path) -> pygit2.Commit:
    return pygit2.Repository(str(repo)).head.peel(pygit2.Commit)


def tag_of(repo: Path, env: str, service: str) -> str:
    return str(
        json.loads(glue("status", "-o", "json", cwd=repo).out)["services"][service][env]["tag"]
    )


# --------------------------------------------------------------------------- holds


def test_rollback_hold_stops_the_next_automated_bump_until_overridden(repo: Path) -> None:
    config = repo / "glue.yaml"
    config.write_text(config.read_text() + AUTO)
    git(repo, "commit", "-qam", "auto-release to prod")
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "prod", cwd=repo).code == 0

    rolled = glue(
        "rollback", "--env", "prod", "--hold", "--reason", "checkout 500s", cwd=repo, env=ALICE
    )
    assert rolled.code == 0, rolled.err
    commit = head(repo)
    assert commit.message.startswith("revert(prod): roll back feat(prod): update a to 4e5f6a7\n")
    assert "Holds a in prod: checkout 500s" in commit.message
    trailers = parse_trailers(commit.message)
    assert ("Glue-Action", "rollback") in trailers and ("Glue-Hold", "prod a") in trailers
    assert sorted(git(repo, "diff", "--name-only", "HEAD~1", "HEAD").split()) == [
        "environments/prod.yaml",
        "glue-holds.yaml",
    ]
    assert tag_of(repo, "prod", "a") == "2b4d6f8"

    # The next pipeline's automated bump of a new tag into prod: refused, nothing written.
    before, tip = snapshot(repo), head(repo).id
    auto = glue("bump-tag", "a", "5f6a7b8", "--env", "prod", "--if-auto-release", "main", cwd=repo)
    assert auto.code == 2
    assert "a is held in prod" in auto.err and "by alice" in auto.err
    assert "checkout 500s" in auto.err and "--override-hold" in auto.err
    assert snapshot(repo) == before and head(repo).id == tip
    # promote and release into prod are refused the same way; other environments are free.
    for args in (
        ("promote", "a", "--to", "prod"),
        ("release", "a", "--to", "prod", "--tag", "v1.2.3"),
    ):
        run = glue(*args, cwd=repo)
        assert run.code == 2 and "a is held in prod" in run.err, (args, run.err)
    assert head(repo).id == tip
    assert glue("bump-tag", "a", "5f6a7b8", "--env", "dev", cwd=repo).code == 0
    # b is not held in prod.
    assert glue("bump-tag", "b", "5f6a7b8", "--env", "prod", cwd=repo).code == 0

    forced = glue("bump-tag", "a", "5f6a7b8", "--env", "prod", "--override-hold", cwd=repo)
    assert forced.code == 0, forced.err
    message = head(repo).message
    assert ("Glue-Override-Hold", "prod a") in parse_trailers(message)
    assert "Overrides the hold on a in prod (set by alice at " in message
    assert tag_of(repo, "prod", "a") == "5f6a7b8"
    # The override does not lift the hold.
    again = glue("bump-tag", "a", "6a7b8c9", "--env", "prod", cwd=repo)
    assert again.code == 2 and "a is held in prod" in again.err

    released = glue("unhold", "a", "--env", "prod", cwd=repo)
    assert released.code == 0, released.err
    assert head(repo).message.startswith("chore(prod): release the hold on a\n")
    assert glue("bump-tag", "a", "6a7b8c9", "--env", "prod", cwd=repo).code == 0


def test_hold_needs_a_reason_and_shows_in_status(repo: Path) -> None:
    tip = head(repo).id
    bare = glue("hold", "a", "--env", "prod", cwd=repo)
    assert bare.code == 2 and "--reason is required" in bare.err
    unknown = glue("hold", "zz", "--env", "prod", "--reason", "x", cwd=repo)
    assert unknown.code == 2
    assert head(repo).id == tip

    run = glue(
        "hold", "a", "--env", "prod", "--reason", "freeze", "-o", "json", cwd=repo, env=ALICE
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["status"] == "changed" and data["files"] == ["glue-holds.yaml"]
    assert data["mark"]["by"] == "alice" and data["mark"]["reason"] == "freeze"
    assert data["mark"]["at"].endswith("Z")
    commit = head(repo)
    assert commit.message.startswith("chore(prod): hold a\n")
    assert ("Glue-Hold", "prod a") in parse_trailers(commit.message)
    assert git(repo, "status", "--porcelain") == ""
    # Holding again with the same reason commits nothing.
    same = glue("hold", "a", "--env", "prod", "--reason", "freeze", cwd=repo, env=ALICE)
    assert same.code == 0 and same.out.startswith("unchanged:") and head(repo).id == commit.id

    text = glue("status", cwd=repo)
    assert text.code == 0
    assert "2b4d6f8 (held)" in text.out
    assert "held: a in prod by alice at " in text.out and "'freeze'" in text.out
    cells = json.loads(glue("status", "-o", "json", cwd=repo).out)["services"]
    assert cells["a"]["prod"]["hold"]["reason"] == "freeze"
    assert cells["a"]["prod"]["hold"]["by"] == "alice"
    assert "hold" not in cells["a"]["dev"] and "hold" not in cells["b"]["prod"]

    assert glue("unhold", "a", "--env", "prod", cwd=repo).code == 0
    assert "(held)" not in glue("status", cwd=repo).out
    nothing = glue("unhold", "a", "--env", "prod", cwd=repo)
    assert nothing.code == 0 and "not held" in nothing.out


def test_rollback_of_a_held_service_needs_the_override(repo: Path) -> None:
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo).code == 0
    assert glue("hold", "a", "--env", "dev", "--reason", "debugging", cwd=repo).code == 0
    tip = head(repo).id
    refused = glue("rollback", "--env", "dev", cwd=repo)
    assert refused.code == 2 and "a is held in dev" in refused.err and head(repo).id == tip
    done = glue("rollback", "--env", "dev", "--override-hold", cwd=repo)
    assert done.code == 0, done.err
    assert ("Glue-Override-Hold", "dev a") in parse_trailers(head(repo).message)
    assert tag_of(repo, "dev", "a") == "3f9c2e1"


# --------------------------------------------------------------------------- rejected


def test_rejected_tag_goes_into_no_environment(repo: Path) -> None:
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo).code == 0
    run = glue("reject", "a", "4e5f6a7", "--reason", "corrupts carts", cwd=repo, env=ALICE)
    assert run.code == 0, run.err
    assert "a 4e5f6a7 is still in dev" in run.err  # said, so someone rolls it back
    commit = head(repo)
    assert commit.message.startswith("chore: reject a 4e5f6a7\n")
    assert ("Glue-Reject", "a 4e5f6a7") in parse_trailers(commit.message)
    before, tip = snapshot(repo), commit.id
    for args in (
        ("bump-tag", "a", "4e5f6a7", "--env", "staging"),
        ("bump-tag", "--env", "prod", "b=1.2.3", "a=4e5f6a7"),
        ("promote", "a", "--to", "staging"),
        ("release", "a", "--to", "prod", "--tag", "4e5f6a7"),
        ("bump-tag", "a", "4e5f6a7", "--env", "staging", "--override-hold"),
    ):
        refused = glue(*args, cwd=repo)
        assert refused.code == 2, (args, refused.err)
        assert "a 4e5f6a7 is rejected" in refused.err and "corrupts carts" in refused.err
        assert "by alice" in refused.err
    assert snapshot(repo) == before and head(repo).id == tip
    # Another tag still goes anywhere; the rejected one can be moved away from.
    assert glue("bump-tag", "a", "5f6a7b8", "--env", "dev", cwd=repo).code == 0
    rejected = json.loads(glue("status", "-o", "json", cwd=repo).out)["rejected"]
    assert rejected["a"]["4e5f6a7"]["reason"] == "corrupts carts"
    assert "rejected: a 4e5f6a7 by alice" in glue("status", cwd=repo).out
    # Rolling dev back to the rejected tag is refused too.
    back = glue("rollback", "--env", "dev", cwd=repo)
    assert back.code == 2 and "a 4e5f6a7 is rejected" in back.err


def test_rollback_reject_rejects_the_version_rolled_back_from(repo: Path) -> None:
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo).code == 0
    no_reason = glue("rollback", "--env", "dev", "--reject", cwd=repo)
    assert no_reason.code == 2 and "--reason is required" in no_reason.err
    run = glue("rollback", "--env", "dev", "--reject", "--reason", "leaks memory", cwd=repo)
    assert run.code == 0, run.err
    message = head(repo).message
    assert ("Glue-Reject", "a 4e5f6a7") in parse_trailers(message)
    assert "Rejects a 4e5f6a7: leaks memory" in message
    assert tag_of(repo, "dev", "a") == "3f9c2e1"
    again = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert again.code == 2 and "leaks memory" in again.err


# --------------------------------------------------------------------------- over SSH


@pytest.mark.ssh
def test_holds_and_rejections_over_ssh(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    env = ssh_env(ssh_git_server, GLUE_ACTOR="ci-bot")
    remote = ("--remote", ssh_remote.url)
    held = glue(
        "hold", "a", "--env", "staging", "--reason", "load test", *remote, cwd=tmp_path, env=env
    )
    assert held.code == 0, held.err
    assert '"staging":\n    "a": {by: "ci-bot"' in ssh_remote.show("main", "glue-holds.yaml")
    rejected = glue(
        "reject", "b", "v9.9.9", "--reason", "bad build", *remote, cwd=tmp_path, env=env
    )
    assert rejected.code == 0, rejected.err
    tip = ssh_remote.head()

    refused = glue("bump-tag", "a", "4e5f6a7", "--env", "staging", *remote, cwd=tmp_path, env=env)
    assert (
        refused.code == 2 and "a is held in staging" in refused.err and "load test" in refused.err
    )
    for args in (
        ("bump-tag", "b", "v9.9.9", "--env", "dev"),
        ("release", "b", "--to", "prod", "--tag", "v9.9.9"),
    ):
        run = glue(*args, *remote, cwd=tmp_path, env=env)
        assert run.code == 2 and "b v9.9.9 is rejected" in run.err, (args, run.err)
    # promote of a rejected tag: put it into dev by hand first (as a hand edit would).
    dev = ssh_remote.show("main", "environments/dev.yaml").replace("9a8b7c6", "v9.9.9")
    ssh_remote.commit({"environments/dev.yaml": dev}, "hand edit")
    tip = ssh_remote.head()
    promoted = glue("promote", "b", "--to", "staging", *remote, cwd=tmp_path, env=env)
    assert promoted.code == 2 and "b v9.9.9 is rejected" in promoted.err
    assert ssh_remote.head() == tip  # nothing pushed

    forced = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "staging",
        "--override-hold",
        *remote,
        cwd=tmp_path,
        env=env,
    )
    assert forced.code == 0, forced.err
    log = ssh_remote.log()
    assert log[1].sha == tip
    assert ("Glue-Override-Hold", "staging a") in parse_trailers(log[0].message)
    assert list(tmp_path.iterdir()) == []
