"""The SSH git server fixture is real: OpenSSH, host key checking, git-shell only.

Also pins down how pygit2 (libgit2 + bundled libssh2) behaves over SSH, which the
product code relies on: host key verification, shallow fetch, rejected pushes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from tests.support.sshgit import (
    BareRemote,
    KeyPair,
    SshGitServer,
    descendants,
    libgit2_homedir,
    pid_alive,
)

pytestmark = pytest.mark.ssh


def git_cli(
    *args: str,
    env: dict[str, str],
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        **env,
    }
    return subprocess.run(
        ["git", *args], env=full, cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


class Callbacks(pygit2.RemoteCallbacks):
    """Key from the fixture; host key accepted only if libgit2 found it in known_hosts."""

    def __init__(self, key: KeyPair, user: str) -> None:
        super().__init__(
            credentials=pygit2.Keypair(user, str(key.public_path), str(key.private), key.passphrase)
        )
        self.checks: list[tuple[object, bool, bytes]] = []
        self.updates: list[tuple[str, str | None]] = []
        self.remote_messages: list[str] = []

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        self.checks.append((certificate, valid, host))
        return valid

    def push_update_reference(self, refname: str, message: str | None) -> None:
        self.updates.append((refname, message))

    def sideband_progress(self, string: str) -> None:
        self.remote_messages.append(string)


@pytest.fixture
def libgit2_home(ssh_git_server: SshGitServer) -> Iterator[Path]:
    """libgit2 reads .ssh/known_hosts from the server's ``client_home``."""
    with libgit2_homedir(ssh_git_server.client_home) as home:
        yield home


def test_git_clone_over_ssh_sees_the_seeded_commit(ssh_remote: BareRemote, tmp_path: Path) -> None:
    assert ssh_remote.url.startswith(f"ssh://{ssh_remote.server.user}@127.0.0.1:")
    proc = git_cli("clone", ssh_remote.url, str(tmp_path / "c"), env=ssh_remote.git_env())
    assert proc.returncode == 0, proc.stderr + ssh_remote.server.log_text()
    head = git_cli("-C", str(tmp_path / "c"), "log", "--format=%H %s", env={}).stdout.split()
    [seeded] = ssh_remote.log("main")
    assert head == [seeded.sha, "initial"]
    assert seeded.parents == ()
    assert (tmp_path / "c" / "glue.yaml").read_text() == ssh_remote.show("main", "glue.yaml")
    assert "Accepted publickey" in ssh_remote.server.log_text()


def test_wrong_known_hosts_line_makes_clone_fail(ssh_remote: BareRemote, tmp_path: Path) -> None:
    server = ssh_remote.server
    assert server.wrong_known_hosts_line.startswith(f"[127.0.0.1]:{server.port} ssh-ed25519 ")
    assert server.wrong_known_hosts_line != server.known_hosts_line
    proc = git_cli(
        "clone",
        ssh_remote.url,
        str(tmp_path / "c"),
        env=ssh_remote.git_env(known_hosts=server.wrong_known_hosts),
    )
    assert proc.returncode != 0
    assert "Host key verification failed" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_deploy_key_gets_no_shell(ssh_git_server: SshGitServer) -> None:
    echo = ssh_git_server.ssh("echo", "hi")
    assert echo.returncode != 0 and "hi" not in echo.stdout
    assert "unrecognized command" in echo.stderr
    login = ssh_git_server.ssh()
    assert login.returncode != 0 and login.stdout == ""
    stranger = ssh_git_server.ssh("true", key=ssh_git_server.stranger_key)
    assert stranger.returncode == 255 and "Permission denied" in stranger.stderr


def test_pygit2_clone_with_ed25519_keypair(
    ssh_remote: BareRemote, libgit2_home: Path, tmp_path: Path
) -> None:
    server = ssh_remote.server
    callbacks = Callbacks(server.deploy_key, server.user)
    repo = pygit2.clone_repository(ssh_remote.url, str(tmp_path / "c"), callbacks=callbacks)
    assert str(repo.head.target) == ssh_remote.head("main")
    # called for SSH with no certificate object, valid from known_hosts, host without port
    assert callbacks.checks == [(None, True, b"127.0.0.1")]


def test_pygit2_key_with_passphrase(
    ssh_remote: BareRemote, libgit2_home: Path, tmp_path: Path
) -> None:
    server = ssh_remote.server
    assert server.passphrase_key.passphrase
    callbacks = Callbacks(server.passphrase_key, server.user)
    pygit2.clone_repository(ssh_remote.url, str(tmp_path / "c"), callbacks=callbacks)


def test_pygit2_host_key_checking(ssh_remote: BareRemote, tmp_path: Path) -> None:
    server = ssh_remote.server
    wrong_home = tmp_path / "wrong-home"
    (wrong_home / ".ssh").mkdir(parents=True)
    (wrong_home / ".ssh" / "known_hosts").write_text(server.wrong_known_hosts_line + "\n")
    with libgit2_homedir(wrong_home):
        callbacks = Callbacks(server.deploy_key, server.user)
        with pytest.raises(pygit2.GitError, match="invalid or unknown remote ssh hostkey"):
            pygit2.clone_repository(ssh_remote.url, str(tmp_path / "c1"), callbacks=callbacks)
        assert callbacks.checks == [(None, False, b"127.0.0.1")]
        # Beware: without a certificate_check override pygit2 accepts ANY ssh host key.
        lax = pygit2.RemoteCallbacks(
            credentials=pygit2.Keypair(server.user, None, str(server.deploy_key.private), "")
        )
        pygit2.clone_repository(ssh_remote.url, str(tmp_path / "c2"), callbacks=lax)


def test_pygit2_shallow_clone_over_ssh(
    ssh_remote: BareRemote, libgit2_home: Path, tmp_path: Path
) -> None:
    ssh_remote.commit({"glue.yaml": "changed: true\n"}, "second")
    server = ssh_remote.server
    repo = pygit2.clone_repository(
        ssh_remote.url,
        str(tmp_path / "c"),
        depth=1,
        callbacks=Callbacks(server.deploy_key, server.user),
    )
    assert repo.is_shallow
    assert [c.message for c in repo.walk(repo.head.target)] == ["second\n"]


def test_pre_receive_rejection_is_shown_to_git_cli_pusher(
    ssh_remote: BareRemote, tmp_path: Path
) -> None:
    env = ssh_remote.git_env()
    work = tmp_path / "c"
    assert git_cli("clone", "-q", ssh_remote.url, str(work), env=env).returncode == 0
    assert (
        git_cli("-C", str(work), "commit", "-q", "--allow-empty", "-m", "mine", env={}).returncode
        == 0
    )
    ssh_remote.reject_pushes("main is frozen: release in progress")
    push = git_cli("-C", str(work), "push", "origin", "main", env=env)
    assert push.returncode != 0
    assert "remote: main is frozen: release in progress" in push.stderr
    assert "pre-receive hook declined" in push.stderr
    assert [c.message for c in ssh_remote.log()] == ["initial"]
    ssh_remote.accept_pushes()
    assert git_cli("-C", str(work), "push", "origin", "main", env=env).returncode == 0
    assert [c.message for c in ssh_remote.log()] == ["mine", "initial"]


def test_pygit2_push_declined_by_hook_does_not_raise(
    ssh_remote: BareRemote, libgit2_home: Path, tmp_path: Path
) -> None:
    server = ssh_remote.server
    repo = pygit2.clone_repository(
        ssh_remote.url, str(tmp_path / "c"), callbacks=Callbacks(server.deploy_key, server.user)
    )
    sig = pygit2.Signature("T", "t@example.com")
    parent = repo.head.target
    repo.create_commit(
        "refs/heads/main", sig, sig, "mine", repo[parent].peel(pygit2.Tree).id, [parent]
    )
    ssh_remote.reject_pushes("frozen")
    callbacks = Callbacks(server.deploy_key, server.user)
    repo.remotes["origin"].push(["refs/heads/main"], callbacks=callbacks)  # no exception!
    assert callbacks.updates == [("refs/heads/main", "pre-receive hook declined")]
    assert "frozen\n" in callbacks.remote_messages
    # someone else pushes first: libgit2 refuses locally, before sending anything
    ssh_remote.accept_pushes()
    ssh_remote.commit({"other": "x\n"}, "someone else")
    callbacks = Callbacks(server.deploy_key, server.user)
    with pytest.raises(pygit2.GitError, match="contains commits that are not present locally"):
        repo.remotes["origin"].push(["refs/heads/main"], callbacks=callbacks)
    assert callbacks.updates == []


def test_server_side_helpers(ssh_remote: BareRemote) -> None:
    [initial] = ssh_remote.log()
    sha = ssh_remote.commit({"environments/dev.yaml": "x: 1\n"}, "bump dev")
    assert ssh_remote.head() == sha
    assert ssh_remote.log()[0] == (sha, (initial.sha,), "bump dev")
    assert ssh_remote.show("main", "environments/dev.yaml") == "x: 1\n"
    assert ssh_remote.log("nope") == [] and ssh_remote.head("nope") is None
    assert ssh_remote.branches() == ["main"]
    empty = ssh_remote.server.new_remote("empty")
    assert empty.log() == [] and empty.path != ssh_remote.path


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    with SshGitServer.start(tmp_path / "srv") as server:
        remote = server.new_remote("r", seed={"a.txt": "a\n"})
        proc = git_cli("clone", "-q", remote.url, str(tmp_path / "c"), env=remote.git_env())
        assert proc.returncode == 0, proc.stderr + server.log_text()
        pid = server.pid
        assert pid_alive(pid)
    assert not pid_alive(pid)
    assert not [p for p in descendants(pid) if pid_alive(p)]
    assert "Received signal 15; terminating." in server.log_text()
