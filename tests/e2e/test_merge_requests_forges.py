"""Merge-request mode against GitHub and GitLab stand-ins that refuse any request their
published API description does not allow (tests/support/forges.py), with the branch
pushed over real SSH (tests/support/sshgit.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_merge_requests import reviewed_prod
from tests.support.forges import (
    GITHUB_TOKEN,
    GITLAB_TOKEN,
    GitHubStandIn,
    GitLabStandIn,
    github_fixture,  # noqa: F401
    gitlab_fixture,  # noqa: F401
)
from tests.support.helpers import glue, start_glue
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env

pytestmark = pytest.mark.ssh


def remote_for(server: SshGitServer, tmp_path: Path, forge: str, api_url: str) -> BareRemote:
    seed = reviewed_prod(tmp_path / "seed")
    config = seed / "glue.yaml"
    config.write_text(
        config.read_text() + f"\nmerge_requests:\n  forge: {forge}\n"
        f"  api_url: {api_url}\n  project: acme/deploy\n  labels: [glue, prod-change]\n"
    )
    return server.new_remote("deploy", seed=seed)


def bump(
    server: SshGitServer, remote: BareRemote, tmp_path: Path, tag: str, **env: str
) -> dict[str, object]:
    run = glue(
        "bump-tag", "--env", "prod", "a", tag, "--remote", remote.url, "-o", "json",
        cwd=tmp_path, env=ssh_env(server, **env),
    )  # fmt: skip
    assert run.code == 0, run.err
    data: dict[str, object] = json.loads(run.out)
    return data


def test_github_a_bump_opens_one_pull_request_and_a_newer_tag_updates_it(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "github", github.base_url)
    main = remote.head()
    data = bump(ssh_git_server, remote, tmp_path, "v1.2.3", GITHUB_TOKEN=GITHUB_TOKEN)
    assert data["status"] == "proposed"
    request = data["merge_request"]
    assert isinstance(request, dict) and request["action"] == "opened"
    assert request["branch"] == "glue/prod/a"
    # main is as it was; the branch holds one commit on main's tip.
    assert remote.head() == main
    log = remote.log("glue/prod/a")
    assert log[0].sha == data["commit"] and log[0].parents == (main,)
    assert '    tag: "v1.2.3"  # service a\n' in remote.show(
        "glue/prod/a", "environments/prod.yaml"
    )
    (pull,) = github.open_pulls()
    assert (pull.head, pull.base, pull.title) == (
        "glue/prod/a",
        "main",
        "feat(prod): update a to v1.2.3",
    )
    assert "| a | `2b4d6f8` | `v1.2.3` |" in (pull.body or "")
    assert sorted(pull.labels) == ["glue", "prod-change"]
    assert request["number"] == pull.number

    again = bump(ssh_git_server, remote, tmp_path, "v1.2.4", GITHUB_TOKEN=GITHUB_TOKEN)
    assert again["merge_request"]["action"] == "updated"  # type: ignore[index]
    (pull,) = github.open_pulls()
    assert pull.title == "feat(prod): update a to v1.2.4"
    assert "| a | `2b4d6f8` | `v1.2.4` |" in (pull.body or "")
    log = remote.log("glue/prod/a")
    assert log[0].parents == (main,)  # replaced, not stacked
    assert '    tag: "v1.2.4"  # service a\n' in remote.show(
        "glue/prod/a", "environments/prod.yaml"
    )

    # The same tag again: nothing to push, nothing to update.
    same = bump(ssh_git_server, remote, tmp_path, "v1.2.4", GITHUB_TOKEN=GITHUB_TOKEN)
    assert same["merge_request"]["action"] == "unchanged"  # type: ignore[index]
    assert remote.log("glue/prod/a")[0].sha == log[0].sha


def test_github_a_request_the_base_already_has_is_closed_with_a_note(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "github", github.base_url)
    bump(ssh_git_server, remote, tmp_path, "v1.2.3", GITHUB_TOKEN=GITHUB_TOKEN)
    (pull,) = github.open_pulls()
    # Someone merged the same version another way.
    prod = remote.show("main", "environments/prod.yaml").replace(
        '"2b4d6f8"  # service a', '"v1.2.3"  # service a'
    )
    remote.commit({"environments/prod.yaml": prod}, "hotfix: a v1.2.3")
    data = bump(ssh_git_server, remote, tmp_path, "v1.2.3", GITHUB_TOKEN=GITHUB_TOKEN)
    assert data["status"] == "unchanged"
    assert data["merge_request"]["action"] == "closed"  # type: ignore[index]
    assert github.open_pulls() == []
    notes = [c.body for c in github.comments_on(pull.number)]
    assert any("already has this change to prod" in n for n in notes)


def test_github_an_older_pipeline_never_replaces_a_newer_ones_change(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "github", github.base_url)
    ci = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/a",
    }
    newer = bump(
        ssh_git_server,
        remote,
        tmp_path,
        "v1.2.5",
        GITHUB_TOKEN=GITHUB_TOKEN,
        GITHUB_RUN_ID="200",
        **ci,
    )
    older = bump(
        ssh_git_server,
        remote,
        tmp_path,
        "v1.2.4",
        GITHUB_TOKEN=GITHUB_TOKEN,
        GITHUB_RUN_ID="100",
        **ci,
    )
    assert older["status"] == "skipped"
    assert older["merge_request"]["action"] == "kept"  # type: ignore[index]
    assert remote.log("glue/prod/a")[0].sha == newer["commit"]
    (pull,) = github.open_pulls()
    assert pull.title == "feat(prod): update a to v1.2.5"


def test_gitlab_a_bump_opens_a_merge_request_with_labels(
    ssh_git_server: SshGitServer, gitlab: GitLabStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "gitlab", gitlab.base_url)
    data = bump(ssh_git_server, remote, tmp_path, "v1.2.3", GITLAB_TOKEN=GITLAB_TOKEN)
    assert data["merge_request"]["action"] == "opened"  # type: ignore[index]
    (request,) = gitlab.open_merge_requests()
    assert (request.source_branch, request.target_branch) == ("glue/prod/a", "main")
    assert sorted(request.labels) == ["glue", "prod-change"]
    assert request.remove_source_branch is True
    again = bump(ssh_git_server, remote, tmp_path, "v1.2.4", GITLAB_TOKEN=GITLAB_TOKEN)
    assert again["merge_request"]["action"] == "updated"  # type: ignore[index]
    (request,) = gitlab.open_merge_requests()
    assert "`v1.2.4`" in (request.description or "")


def test_a_wrong_token_fails_after_the_branch_push_and_says_which_token(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "github", github.base_url)
    run = glue(
        "bump-tag", "--env", "prod", "a", "v1.2.3", "--remote", remote.url,
        cwd=tmp_path, env=ssh_env(ssh_git_server, GITHUB_TOKEN="not-the-token"),
    )  # fmt: skip
    assert run.code == 1, run.err
    assert "refused glue's token" in run.err and "GLUE_FORGE_TOKEN or GITHUB_TOKEN" in run.err
    assert "not-the-token" not in run.err + run.out
    assert github.open_pulls() == []


@pytest.mark.slow
def test_eight_racing_pipelines_leave_one_request_per_service_set_with_the_newest_tags(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "github", github.base_url)
    ci = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_TOKEN": GITHUB_TOKEN,
    }
    # Pipelines of a (runs 101-104) and b (runs 201-204), started in a shuffled order.
    jobs = [("a", f"v1.0.{n}", 100 + n) for n in (3, 1, 4, 2)]
    jobs += [("b", f"v2.0.{n}", 200 + n) for n in (2, 4, 1, 3)]
    procs = [
        start_glue(
            "bump-tag",
            "--env",
            "prod",
            service,
            tag,
            "--remote",
            remote.url,
            cwd=tmp_path,
            env=ssh_env(
                ssh_git_server, GITHUB_RUN_ID=str(run), GITHUB_REPOSITORY=f"acme/{service}", **ci
            ),
        )
        for service, tag, run in jobs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert {r["status"] for r in results} <= {"proposed", "skipped"}
    pulls = sorted(github.open_pulls(), key=lambda p: p.head)
    assert [(p.head, p.title) for p in pulls] == [
        ("glue/prod/a", "feat(prod): update a to v1.0.4"),
        ("glue/prod/b", "feat(prod): update b to v2.0.4"),
    ]
    assert "`v1.0.4`" in (pulls[0].body or "") and "`v2.0.4`" in (pulls[1].body or "")
    assert '    tag: "v1.0.4"  # service a\n' in remote.show(
        "glue/prod/a", "environments/prod.yaml"
    )
    assert '    tag: "v2.0.4"  # service b\n' in remote.show(
        "glue/prod/b", "environments/prod.yaml"
    )
    # One commit on main's tip each; main untouched.
    main = remote.head()
    assert remote.log("glue/prod/a")[0].parents == (main,)
    assert remote.log("glue/prod/b")[0].parents == (main,)


def test_the_ci_outputs_name_the_merge_request(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "github", github.base_url)
    outputs = tmp_path / "github_output"
    outputs.touch()
    bump(
        ssh_git_server, remote, tmp_path, "v1.2.3",
        GITHUB_TOKEN=GITHUB_TOKEN, GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(outputs),
    )  # fmt: skip
    (pull,) = github.open_pulls()
    lines = outputs.read_text().splitlines()
    assert "status=proposed" in lines
    assert f"merge_request_number={pull.number}" in lines
    assert any(line.startswith("merge_request_url=http") for line in lines)


def test_promote_and_rollback_go_through_review_too(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    remote = remote_for(ssh_git_server, tmp_path, "github", github.base_url)
    env = ssh_env(ssh_git_server, GITHUB_TOKEN=GITHUB_TOKEN)
    run = glue(
        "promote", "a", "--to", "prod", "--remote", remote.url, "-o", "json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["status"] == "proposed" and data["merge_request"]["branch"] == "glue/prod/a"
    (pull,) = github.open_pulls()
    assert pull.title.startswith("feat(prod): promote a")
    assert "| a | `2b4d6f8` | `" in (pull.body or "")
    assert remote.show("main", "environments/prod.yaml").count('"2b4d6f8"  # service a') == 1
    # A rollback of prod's last glue change goes to a branch of its own.
    prod = remote.show("main", "environments/prod.yaml")
    prod = prod.replace('"2b4d6f8"  # service a', '"v1.2.3"  # service a')
    remote.commit(
        {"environments/prod.yaml": prod},
        "feat(prod): update a to v1.2.3\n\nGlue-Environment: prod\nGlue-Service: a\n"
        "Glue-Tag: v1.2.3\nGlue-Previous-Tag: 2b4d6f8",
    )
    main = remote.head()
    run = glue(
        "rollback", "-e", "prod", "--remote", remote.url, "-o", "json", cwd=tmp_path, env=env
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["merge_request"]["branch"] == "glue/prod/rollback"
    assert remote.head() == main
    assert '"2b4d6f8"  # service a' in remote.show("glue/prod/rollback", "environments/prod.yaml")
    titles = sorted(p.title for p in github.open_pulls())
    assert len(titles) == 2 and any("revert" in t.lower() or "roll" in t.lower() for t in titles)
