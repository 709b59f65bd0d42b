"""The Gitea fixture is real: HTTPS with a test CA, its built-in SSH server, branch
protection, pull requests, comments and auto-merge through the API.

Also pins down what glue's merge-request mode relies on: how pygit2 (libgit2) trusts the
test CA, what a push to a protected branch looks like to pygit2, and that Gitea merges a
pull request scheduled with ``merge_when_checks_succeed`` once the required status is
``success``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pygit2
import pytest

from tests.support.gitea import GiteaRepo, GiteaServer
from tests.support.sshgit import KeyPair, generate_key, libgit2_homedir

pytestmark = pytest.mark.gitea

SIG = pygit2.Signature("Glue Test", "glue@example.com")


class Callbacks(pygit2.RemoteCallbacks):
    """Records what libgit2 reports; host keys only if libgit2 found them in known_hosts."""

    def __init__(self, credentials: Any) -> None:
        super().__init__(credentials=credentials)
        self.updates: list[tuple[str, str | None]] = []
        self.remote_messages: list[str] = []

    def certificate_check(self, certificate: Any, valid: bool, host: bytes) -> bool:
        return valid

    def push_update_reference(self, refname: str, message: str | None) -> None:
        self.updates.append((refname, message))

    def sideband_progress(self, string: str) -> None:
        self.remote_messages.append(string)


@pytest.fixture
def deploy_key(gitea_repo: GiteaRepo, tmp_path: Path) -> KeyPair:
    """A read-write deploy key of ``gitea_repo``."""
    key = generate_key(tmp_path / "deploy_ed25519", comment="glue-deploy")
    gitea_repo.add_deploy_key(key.public, write=True)
    return key


@pytest.fixture
def libgit2_home(gitea: GiteaServer) -> Iterator[Path]:
    """libgit2 reads .ssh/known_hosts (the Gitea SSH server's host key) from here."""
    with libgit2_homedir(gitea.client_home) as home:
        yield home


def ssh_callbacks(key: KeyPair) -> Callbacks:
    return Callbacks(pygit2.Keypair("git", str(key.public_path), str(key.private), ""))


def commit_files(repo: pygit2.Repository, branch: str, files: Mapping[str, str], msg: str) -> str:
    """Commit ``files`` on top of HEAD as ``refs/heads/<branch>``; returns the sha."""
    parent = repo.head.target
    builder = repo.TreeBuilder(repo[parent].peel(pygit2.Tree))
    for name, text in files.items():
        builder.insert(name, repo.create_blob(text.encode()), pygit2.enums.FileMode.BLOB)
    sha = repo.create_commit(f"refs/heads/{branch}", SIG, SIG, msg, builder.write(), [parent])
    return str(sha)


def test_api_version_and_swagger_are_served(gitea: GiteaServer) -> None:
    assert gitea.api_url.startswith("https://127.0.0.1:") and gitea.api_url.endswith("/api/v1")
    assert gitea.api("GET", "/version")["version"] == "1.27.3"
    assert gitea.api("GET", "/user")["login"] == gitea.admin_user
    spec = gitea.swagger()
    assert spec["basePath"] == "/api/v1"
    assert "post" in spec["paths"]["/repos/{owner}/{repo}/pulls"]
    assert "post" in spec["paths"]["/repos/{owner}/{repo}/pulls/{index}/merge"]
    merge = spec["definitions"]["MergePullRequestOption"]["properties"]
    assert "merge_when_checks_succeed" in merge


def test_requests_trusts_the_test_ca_through_env(gitea: GiteaServer) -> None:
    """A client process trusts the server only with the CA from ``env()``."""
    script = "import requests,sys; print(requests.get(sys.argv[1], timeout=30).status_code)"
    base = {k: v for k, v in os.environ.items() if k not in gitea.env()}
    url = f"{gitea.api_url}/version"
    run = [sys.executable, "-c", script, url]
    trusted = subprocess.run(run, env={**base, **gitea.env()}, capture_output=True, text=True)
    assert trusted.stdout.strip() == "200", trusted.stderr
    untrusted = subprocess.run(run, env=base, capture_output=True, text=True)
    assert untrusted.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_protected_main_refuses_a_deploy_key_push_over_ssh_another_branch_lands(
    gitea: GiteaServer,
    gitea_repo: GiteaRepo,
    deploy_key: KeyPair,
    libgit2_home: Path,
    tmp_path: Path,
) -> None:
    gitea_repo.protect_branch("main")
    assert gitea_repo.ssh_url == f"ssh://git@127.0.0.1:{gitea.ssh_port}/{gitea_repo.full_name}.git"
    repo = pygit2.clone_repository(
        gitea_repo.ssh_url, str(tmp_path / "c"), callbacks=ssh_callbacks(deploy_key)
    )
    initial = gitea_repo.branch_tip("main")
    assert str(repo.head.target) == initial
    commit_files(repo, "main", {"glue.yaml": "direct: push\n"}, "direct push")
    callbacks = ssh_callbacks(deploy_key)
    repo.remotes["origin"].push(["refs/heads/main"], callbacks=callbacks)  # no exception
    [(ref, message)] = callbacks.updates
    assert ref == "refs/heads/main" and message == "pre-receive hook declined"
    assert "protected" in "".join(callbacks.remote_messages).lower()
    assert gitea_repo.branch_tip("main") == initial

    sha = commit_files(repo, "glue/bump", {"glue.yaml": "via: branch\n"}, "bump on a branch")
    callbacks = ssh_callbacks(deploy_key)
    repo.remotes["origin"].push(["refs/heads/glue/bump"], callbacks=callbacks)
    assert callbacks.updates == [("refs/heads/glue/bump", None)]
    assert gitea_repo.branch_tip("glue/bump") == sha
    assert gitea_repo.commit_message(sha) == "bump on a branch"


def test_read_only_deploy_key_cannot_push(
    gitea_repo: GiteaRepo, libgit2_home: Path, tmp_path: Path
) -> None:
    key = generate_key(tmp_path / "ro_ed25519", comment="read-only")
    gitea_repo.add_deploy_key(key.public, write=False)
    repo = pygit2.clone_repository(
        gitea_repo.ssh_url, str(tmp_path / "c"), callbacks=ssh_callbacks(key)
    )
    commit_files(repo, "feature", {"a.txt": "a\n"}, "feature")
    with pytest.raises(pygit2.GitError):
        repo.remotes["origin"].push(["refs/heads/feature"], callbacks=ssh_callbacks(key))
    assert gitea_repo.branch_tip("feature") is None


# pygit2 over HTTPS, in a fresh process: libgit2 reads SSL_CERT_FILE when pygit2 is
# imported; set_ssl_cert_locations works at any time (process-wide).
PUSH_OVER_HTTPS = """
import sys, pygit2
path, url, user, token, ca = sys.argv[1:]
if ca:
    pygit2.settings.set_ssl_cert_locations(ca, None)
repo = pygit2.Repository(path)
callbacks = pygit2.RemoteCallbacks(credentials=pygit2.UserPass(user, token))
try:
    repo.remotes.create_anonymous(url).push(["refs/heads/feature"], callbacks=callbacks)
except pygit2.GitError as e:
    sys.exit(f"GitError: {e}")
"""


@pytest.mark.parametrize("trust", ["SSL_CERT_FILE", "set_ssl_cert_locations", "nothing"])
def test_pygit2_pushes_over_https_with_a_token(
    gitea: GiteaServer, gitea_repo: GiteaRepo, tmp_path: Path, trust: str
) -> None:
    repo = pygit2.init_repository(str(tmp_path / "r"), initial_head="main")
    tree = repo.TreeBuilder()
    tree.insert("a.txt", repo.create_blob(b"a\n"), pygit2.enums.FileMode.BLOB)
    sha = repo.create_commit("refs/heads/feature", SIG, SIG, "over https", tree.write(), [])
    env = {k: v for k, v in os.environ.items() if k not in gitea.env()}
    if trust == "SSL_CERT_FILE":
        env["SSL_CERT_FILE"] = str(gitea.ca_file)
    ca = str(gitea.ca_file) if trust == "set_ssl_cert_locations" else ""
    args = [str(tmp_path / "r"), gitea_repo.https_url, gitea.admin_user, gitea.admin_token, ca]
    push = subprocess.run(
        [sys.executable, "-c", PUSH_OVER_HTTPS, *args], env=env, capture_output=True, text=True
    )
    if trust == "nothing":
        assert push.returncode != 0 and "certificate" in push.stderr.lower(), push.stderr
        assert gitea_repo.branch_tip("feature") is None
    else:
        assert push.returncode == 0, push.stderr
        assert gitea_repo.branch_tip("feature") == str(sha)


@pytest.mark.slow  # waits: back-off rounds, a forge merging on a status
def test_pull_request_comment_and_auto_merge_on_a_required_status(
    gitea: GiteaServer,
    gitea_repo: GiteaRepo,
    deploy_key: KeyPair,
    libgit2_home: Path,
    tmp_path: Path,
) -> None:
    gitea_repo.protect_branch("main", status_checks=["ci/test"])
    initial = gitea_repo.branch_tip("main")
    repo = pygit2.clone_repository(
        gitea_repo.ssh_url, str(tmp_path / "c"), callbacks=ssh_callbacks(deploy_key)
    )
    head = commit_files(repo, "glue/bump", {"glue.yaml": "tag: v2\n"}, "bump app to v2")
    repo.remotes["origin"].push(["refs/heads/glue/bump"], callbacks=ssh_callbacks(deploy_key))

    pull = gitea_repo.api(
        "POST",
        "/pulls",
        json={"head": "glue/bump", "base": "main", "title": "Bump app to v2", "body": "by glue"},
    )
    index = pull["number"]
    assert [(p["number"], p["state"]) for p in gitea_repo.pulls()] == [(index, "open")]
    assert gitea_repo.pull(index)["head"]["sha"] == head

    comment = gitea_repo.api("POST", f"/issues/{index}/comments", json={"body": "diff: v1"})
    gitea_repo.api("PATCH", f"/issues/comments/{comment['id']}", json={"body": "diff: v2"})
    assert [c["body"] for c in gitea_repo.comments(index)] == ["diff: v2"]

    # While Gitea checks the pull request for conflicts (at once on creation, from a queue
    # after a push) it answers 405 "Please try again later", even to
    # merge_when_checks_succeed; then 201: scheduled, and 409 to scheduling it again.
    merge = {"Do": "merge", "merge_when_checks_succeed": True}
    deadline = time.monotonic() + 60
    while True:
        scheduled = gitea.request(
            "POST", f"/repos/{gitea_repo.full_name}/pulls/{index}/merge", json=merge
        )
        if scheduled.status_code != 405 or time.monotonic() > deadline:
            break
        assert "try again later" in scheduled.text
        time.sleep(0.2)
    assert scheduled.status_code == 201, scheduled.text
    again = gitea.request("POST", f"/repos/{gitea_repo.full_name}/pulls/{index}/merge", json=merge)
    assert again.status_code == 409, again.text
    gitea_repo.set_commit_status(head, "pending", "ci/test")
    assert not gitea_repo.pull(index)["merged"]
    assert gitea_repo.branch_tip("main") == initial

    gitea_repo.set_commit_status(head, "success", "ci/test")
    deadline = time.monotonic() + 60
    while not (merged := gitea_repo.pull(index))["merged"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert merged["merged"], gitea.log_text()[-3000:]
    assert merged["state"] == "closed"
    tip = gitea_repo.branch_tip("main")
    assert tip == merged["merge_commit_sha"] and tip != initial
    assert "Bump app to v2" in gitea_repo.commit_message(str(tip))
    assert gitea_repo.file("glue.yaml") == "tag: v2\n"


def test_repo_helpers(gitea: GiteaServer, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    (seed / "sub").mkdir(parents=True)
    (seed / "sub" / "x.txt").write_text("x\n")
    repo = gitea.new_repo("helpers", seed, owner="glue-org")
    assert repo.full_name.startswith("glue-org/helpers")
    assert repo.branches() == ["main"]
    tip = repo.branch_tip("main")
    assert tip and repo.commit_message(tip) == "initial\n"  # as git commit wrote it
    assert repo.file("sub/x.txt") == "x\n"
    assert repo.branch_tip("nope") is None
    assert repo.labels() == []
    repo.add_label("glue")
    assert [label["name"] for label in repo.labels()] == ["glue"]
    status = repo.set_commit_status(tip, "failure", "ci/test", description="red")
    assert status["status"] == "failure"
    again = gitea.new_repo("helpers", owner="glue-org")
    assert again.full_name != repo.full_name and again.branch_tip("main") is None
