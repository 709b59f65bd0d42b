"""Merge-request mode and glue review on a real forge: Gitea, built from its Go module
(scripts/gitea), over SSH with a deploy key and over HTTPS with a token, with a
protected main that refuses direct pushes, and auto-merge on a required status."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.gitea import GiteaRepo, GiteaServer
from tests.support.helpers import TESTBED_BIN, glue
from tests.support.sshgit import KeyPair, generate_key

pytestmark = pytest.mark.gitea


@pytest.fixture
def deploy_key(gitea_repo: GiteaRepo, tmp_path: Path) -> KeyPair:
    key = generate_key(tmp_path / "deploy_ed25519", comment="glue-deploy")
    gitea_repo.add_deploy_key(key.public, write=True)
    return key


def put_file(repo: GiteaRepo, path: str, text: str, message: str) -> None:
    """Change one file on main through Gitea's contents API, as a person would on the web."""
    current = repo.api("GET", f"/contents/{path}?ref=main")
    repo.api(
        "PUT",
        f"/contents/{path}",
        json={
            "content": base64.b64encode(text.encode()).decode(),
            "sha": current["sha"],
            "message": message,
            "branch": "main",
        },
    )


def reviewed_prod(
    gitea: GiteaServer, repo: GiteaRepo, *, auto_merge: bool = False, people_push: bool = False
) -> None:
    """prod takes merge requests on this Gitea; main is protected (a direct push of the
    deploy key is refused), optionally with a required status check; ``people_push``:
    the admin may still change main directly (a person's hotfix)."""
    text = repo.file("glue.yaml").replace(
        "  - name: prod\n", "  - name: prod\n    via: merge-request\n"
    )
    text += (
        f"\nmerge_requests:\n  forge: gitea\n  api_url: {gitea.api_url}\n"
        f"  labels: [glue, prod-change]\n  auto_merge: {str(auto_merge).lower()}\n"
    )
    put_file(repo, "glue.yaml", text, "prod through review")
    repo.protect_branch(
        "main",
        status_checks=["ci/test"] if auto_merge else (),
        push_users=[gitea.admin_user] if people_push else (),
    )


def ssh(gitea: GiteaServer, key: KeyPair, **extra: str) -> dict[str, str]:
    return {
        "GLUE_SSH_KEY_FILE": str(key.private),
        "GLUE_SSH_KNOWN_HOSTS": gitea.ssh_known_hosts,
        "GITEA_TOKEN": gitea.admin_token,
        **gitea.env(),
        **extra,
    }


def bump(url: str, env: dict[str, str], cwd: Path, tag: str, *more: str) -> dict[str, object]:
    run = glue(
        "bump-tag",
        "--env",
        "prod",
        "a",
        tag,
        "--remote",
        url,
        "-o",
        "json",
        *more,
        cwd=cwd,
        env=env,
    )
    assert run.code == 0, run.err
    data: dict[str, object] = json.loads(run.out)
    return data


def test_over_ssh_the_protected_main_refuses_and_a_pull_request_is_opened_and_updated(
    gitea: GiteaServer, gitea_repo: GiteaRepo, deploy_key: KeyPair, tmp_path: Path
) -> None:
    reviewed_prod(gitea, gitea_repo)
    main = gitea_repo.branch_tip("main")
    env = ssh(gitea, deploy_key)
    # Pushing straight to the protected main is what the review mode exists for.
    run = glue(
        "bump-tag", "--env", "prod", "a", "v1.2.3", "--remote", gitea_repo.ssh_url,
        "--via", "push", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert run.code == 1, run.err
    assert "the remote refused the push to 'main'" in run.err
    assert gitea_repo.branch_tip("main") == main

    data = bump(gitea_repo.ssh_url, env, tmp_path, "v1.2.3")
    assert data["status"] == "proposed"
    (pull,) = [p for p in gitea_repo.pulls("open")]
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("glue/prod/a", "main")
    assert pull["title"] == "feat(prod): update a to v1.2.3"
    assert "| a | `2b4d6f8` | `v1.2.3` |" in pull["body"]
    assert sorted(label["name"] for label in pull["labels"]) == ["glue", "prod-change"]
    assert pull["head"]["sha"] == data["commit"]
    assert '    tag: "v1.2.3"  # service a' in gitea_repo.file(
        "environments/prod.yaml", "glue/prod/a"
    )

    newer = bump(gitea_repo.ssh_url, env, tmp_path, "v1.2.4")
    assert newer["merge_request"]["action"] == "updated"  # type: ignore[index]
    (pull,) = [p for p in gitea_repo.pulls("open")]
    assert pull["title"] == "feat(prod): update a to v1.2.4"
    assert pull["head"]["sha"] == newer["commit"]
    assert gitea_repo.branch_tip("main") == main


def test_over_https_with_a_token(gitea: GiteaServer, gitea_repo: GiteaRepo, tmp_path: Path) -> None:
    reviewed_prod(gitea, gitea_repo)
    env = {
        "GLUE_GIT_TOKEN": gitea.admin_token,
        "GLUE_GIT_USERNAME": gitea.admin_user,
        "GITEA_TOKEN": gitea.admin_token,
        **gitea.env(),
    }
    data = bump(gitea_repo.https_url, env, tmp_path, "v1.2.3")
    assert data["merge_request"]["action"] == "opened"  # type: ignore[index]
    assert gitea_repo.branch_tip("glue/prod/a") == data["commit"]
    (pull,) = gitea_repo.pulls("open")
    assert pull["title"] == "feat(prod): update a to v1.2.3"


def test_a_request_made_moot_by_another_merge_is_closed_with_a_note(
    gitea: GiteaServer, gitea_repo: GiteaRepo, deploy_key: KeyPair, tmp_path: Path
) -> None:
    reviewed_prod(gitea, gitea_repo, people_push=True)
    env = ssh(gitea, deploy_key)
    bump(gitea_repo.ssh_url, env, tmp_path, "v1.2.3")
    (pull,) = gitea_repo.pulls("open")
    # A person lands the same version on main another way (as the admin, not the key).
    prod = gitea_repo.file("environments/prod.yaml")
    prod = prod.replace('"2b4d6f8"  # service a', '"v1.2.3"  # service a')
    put_file(gitea_repo, "environments/prod.yaml", prod, "a v1.2.3 by hand")
    data = bump(gitea_repo.ssh_url, env, tmp_path, "v1.2.3")
    assert data["status"] == "unchanged"
    assert data["merge_request"]["action"] == "closed"  # type: ignore[index]
    assert gitea_repo.pull(pull["number"])["state"] == "closed"
    notes = [c["body"] for c in gitea_repo.comments(pull["number"])]
    assert any("already has this change to prod" in n for n in notes)


@pytest.mark.slow  # waits: back-off rounds, a forge merging on a status
def test_review_comments_and_auto_merges_with_the_plan_in_the_merge_commit(
    gitea: GiteaServer, gitea_repo: GiteaRepo, deploy_key: KeyPair, tmp_path: Path
) -> None:
    if not (TESTBED_BIN / "helmfile").exists():
        pytest.fail(f"helmfile is not built in {TESTBED_BIN}: run scripts/testbed install")
    reviewed_prod(gitea, gitea_repo, auto_merge=True)
    env = ssh(gitea, deploy_key)
    data = bump(gitea_repo.ssh_url, env, tmp_path, "v1.2.3")
    number = data["merge_request"]["number"]  # type: ignore[index]
    base = gitea_repo.branch_tip("main")
    # The merge request pipeline: a clone of the repository at the request's head.
    clone = tmp_path / "clone"
    git_env = {**gitea.env(), "GIT_TERMINAL_PROMPT": "0"}
    url = gitea_repo.https_url.replace(
        "https://", f"https://{gitea.admin_user}:{gitea.admin_token}@"
    )
    subprocess.run(
        ["git", "clone", "-q", "-b", "glue/prod/a", url, str(clone)],
        check=True,
        env={**os.environ, **git_env},
    )
    run = glue(
        "-C", str(clone), "review", "--base", str(base), "--merge-request", str(number),
        "-o", "json",
        env={
            "GLUE_HELMFILE": str(TESTBED_BIN / "helmfile"),
            "GLUE_HELM": str(TESTBED_BIN / "helm3"),
            "GITEA_TOKEN": gitea.admin_token,
            **gitea.env(),
        },
    )  # fmt: skip
    assert run.code == 3, run.err
    result = json.loads(run.out)
    assert result["auto_merge"] is True
    (comment,) = gitea_repo.comments(number)
    assert comment["body"].startswith("<!-- glue:review -->")
    assert "+        image: registry.example.com/team/a:v1.2.3" in comment["body"]
    # Auto-merge waits for the required status; then Gitea squashes with glue's message.
    assert not gitea_repo.pull(number)["merged"]
    gitea_repo.set_commit_status(str(data["commit"]), "success", "ci/test")
    deadline = time.monotonic() + 60
    while not (pull := gitea_repo.pull(number))["merged"] and time.monotonic() < deadline:
        time.sleep(0.3)
    assert pull["merged"], gitea.log_text()[-2000:]
    message = gitea_repo.commit_message(str(gitea_repo.branch_tip("main")))
    assert message.startswith("feat(prod): update a to v1.2.3")
    prod_trailer = [t for t in result["trailers"] if t.startswith("Glue-Reviewed-Plan: prod ")]
    assert prod_trailer and prod_trailer[0] in message
    assert "Glue-Service: a\n" in message
    assert '    tag: "v1.2.3"  # service a' in gitea_repo.file("environments/prod.yaml")
