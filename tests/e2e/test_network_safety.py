"""Hostile or broken network peers: every wait is bounded, nothing is sent twice blindly,
redirects are refused, host keys match by port, temp folders do not pile up (issue 15)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.helpers import Run, glue
from tests.support.registry import RegistryServer
from tests.support.slackserver import SlackServer, start_slack
from tests.support.sshgit import BareRemote, SshGitServer, silent_port, ssh_env


def one_error_line(run: Run) -> str:
    assert "Traceback" not in run.err
    errors = [line for line in run.err.splitlines() if line.startswith("glue: error:")]
    assert len(errors) == 1, run.err
    return errors[0]


def announce(registry: RegistryServer, env: dict[str, str], timeout: float = 60) -> Run:
    # A process of its own: a hang must not hang the test session (timeout kills it).
    return glue(
        "announce",
        "--image",
        f"{registry.host}/team/a",
        "--tag",
        "3f9c2e1",
        env=env,
        subprocess=True,
        timeout=timeout,
    )


# --------------------------------------------------------------------------- Slack


@pytest.mark.parametrize("status", [302, 307])
def test_slack_redirect_is_an_error_and_the_other_host_gets_nothing(
    registry: RegistryServer, slack: SlackServer, status: int
) -> None:
    other, running = start_slack()
    try:
        slack.fail_next(status, "", {"Location": other.webhook_url})
        run = announce(registry, {"SLACK_WEBHOOK_URL": slack.webhook_url})
        assert run.code == 1, run.err
        line = one_error_line(run)
        assert f"redirect ({status})" in line
        assert other.requests == []
        assert len(slack.requests) == 1
        assert slack.webhook_secret not in run.out + run.err
    finally:
        running.stop()


def test_slack_webhook_trickling_its_answer_fails_at_the_deadline(
    registry: RegistryServer, slack: SlackServer
) -> None:
    slack.trickle_next(1.0)  # 100 bytes, one a second: each read is quick
    started = time.monotonic()
    run = announce(
        registry, {"SLACK_WEBHOOK_URL": slack.webhook_url, "GLUE_NETWORK_TIMEOUT": "2"}, 40
    )
    assert run.code == 1, run.err
    assert "within 2s" in one_error_line(run)
    assert time.monotonic() - started < 30
    assert len(slack.requests) == 1


def test_slack_that_hangs_after_the_post_is_not_posted_again(
    registry: RegistryServer, slack: SlackServer
) -> None:
    slack.hang_next(60)
    run = announce(
        registry, {"SLACK_WEBHOOK_URL": slack.webhook_url, "GLUE_NETWORK_TIMEOUT": "2"}, 40
    )
    assert run.code == 1, run.err
    line = one_error_line(run)
    assert "may have been posted" in line
    assert len(slack.webhook_requests()) == 1  # an unknown outcome is never repeated
    assert slack.webhook_secret not in run.out + run.err


def test_bad_network_timeout_setting_is_a_usage_error(
    registry: RegistryServer, slack: SlackServer
) -> None:
    run = announce(
        registry, {"SLACK_WEBHOOK_URL": slack.webhook_url, "GLUE_NETWORK_TIMEOUT": "soon"}
    )
    assert run.code == 2
    assert "GLUE_NETWORK_TIMEOUT" in one_error_line(run)
    assert slack.requests == []


# --------------------------------------------------------------------------- SSH

BUMP = ("bump-tag", "a", "4e5f6a7", "--env", "staging", "--remote")


def glue_temp_folders(tmpdir: Path) -> list[str]:
    return sorted(
        p.name for p in tmpdir.iterdir() if p.name.startswith(("glue-bump-", "glue-ssh-"))
    )


@pytest.mark.ssh
def test_ssh_server_that_never_speaks_fails_at_the_deadline(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    with silent_port() as port:
        started = time.monotonic()
        run = glue(
            *BUMP,
            f"ssh://git@127.0.0.1:{port}/srv/deploy.git",
            cwd=tmp_path,
            env=ssh_env(
                ssh_git_server,
                GLUE_SSH_KNOWN_HOSTS=f"[127.0.0.1]:{port} {ssh_git_server.host_key.key_blob}",
                GLUE_NETWORK_TIMEOUT="2",
            ),
            subprocess=True,
            timeout=60,
        )
    assert run.code == 1, run.err
    assert "within 2s" in one_error_line(run)
    assert time.monotonic() - started < 30


@pytest.mark.ssh
@pytest.mark.parametrize("host", ["127.0.0.1", "[127.0.0.1]:22"])
def test_known_hosts_entry_for_another_port_is_refused(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path, host: str
) -> None:
    before = ssh_remote.head()
    line = f"{host} {ssh_git_server.host_key.key_blob}"
    run = glue(
        *BUMP, ssh_remote.url, cwd=tmp_path, env=ssh_env(ssh_git_server, GLUE_SSH_KNOWN_HOSTS=line)
    )
    assert run.code == 2, run.err
    assert "host key" in one_error_line(run)
    assert ssh_remote.head() == before


@pytest.mark.ssh
def test_known_hosts_entry_with_the_servers_port_among_others_is_accepted(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    wrong_key = ssh_git_server.wrong_known_hosts_line.split(" ", 1)[1]
    hosts = "\n".join(
        [
            f"# the deploy server\n127.0.0.1 {wrong_key}",
            f"example.com,[127.0.0.1]:{ssh_git_server.port} {ssh_git_server.host_key.key_blob}",
        ]
    )
    run = glue(
        *BUMP, ssh_remote.url, cwd=tmp_path, env=ssh_env(ssh_git_server, GLUE_SSH_KNOWN_HOSTS=hosts)
    )
    assert run.code == 0, run.err


@pytest.mark.ssh
def test_remote_bump_leaves_no_temp_folders_and_removes_stale_ones(
    ssh_git_server: SshGitServer,
    ssh_remote: BareRemote,
    tmp_path: Path,
    private_tmpdir: Path,
) -> None:
    stale_bump = private_tmpdir / "glue-bump-killed1"
    stale_ssh = private_tmpdir / "glue-ssh-killed2"
    recent = private_tmpdir / "glue-bump-running3"  # may belong to a glue still running
    for folder in (stale_bump, stale_ssh, recent):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "file").write_text("x")
    old = time.time() - 2 * 3600
    for folder in (stale_bump, stale_ssh):
        os.utime(folder, (old, old))
    refused = glue(
        *BUMP,
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server, GLUE_SSH_KNOWN_HOSTS=ssh_git_server.wrong_known_hosts_line),
    )
    assert refused.code == 2
    assert glue_temp_folders(private_tmpdir) == [recent.name]
    run = glue(*BUMP, ssh_remote.url, cwd=tmp_path, env=ssh_env(ssh_git_server))
    assert run.code == 0, run.err
    assert glue_temp_folders(private_tmpdir) == [recent.name]


@pytest.mark.ssh
def test_missing_or_wrong_key_passphrase_says_so(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    key = ssh_git_server.passphrase_key
    base = {
        "GLUE_SSH_KEY": key.private.read_text(),
        "GLUE_SSH_KNOWN_HOSTS": ssh_git_server.known_hosts_line,
    }
    missing = glue(*BUMP, ssh_remote.url, cwd=tmp_path, env=base)
    assert missing.code == 2, missing.err
    assert "needs a passphrase" in one_error_line(missing)
    assert "GLUE_SSH_KEY_PASSPHRASE" in missing.err
    wrong = glue(
        *BUMP, ssh_remote.url, cwd=tmp_path, env={**base, "GLUE_SSH_KEY_PASSPHRASE": "not-it"}
    )
    assert wrong.code == 2, wrong.err
    assert "wrong passphrase" in one_error_line(wrong)
    assert "not-it" not in wrong.err
    assert "Unsupported private key file format" not in missing.err + wrong.err


@pytest.mark.ssh
def test_disconnect_after_the_branch_was_updated_reports_the_landed_commit(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    before = ssh_remote.head()
    ssh_remote.drop_connection_after_update()
    run = glue(*BUMP, ssh_remote.url, "-o", "json", cwd=tmp_path, env=ssh_env(ssh_git_server))
    landed = ssh_remote.head()
    assert landed != before
    assert run.code == 0, run.err
    import json

    data = json.loads(run.out)
    assert data["commit"] == landed
    assert data.get("changed", True) is True


# --------------------------------------------------------------------------- registry


def test_registry_that_never_answers_fails_at_the_deadline() -> None:
    with silent_port() as port:
        started = time.monotonic()
        run = glue(
            "announce",
            "--image",
            f"127.0.0.1:{port}/team/a",
            "--tag",
            "3f9c2e1",
            "--verify",
            env={"GLUE_NETWORK_TIMEOUT": "2"},
            subprocess=True,
            timeout=60,
        )
    assert run.code == 1, run.err
    assert "within 2s" in one_error_line(run)
    assert time.monotonic() - started < 12  # not requests' 15 s per read


def test_known_hosts_patterns_follow_openssh_rules() -> None:
    import base64
    import hashlib
    import hmac

    from gitops_glue.repo.remote import known_hosts_for

    salt = b"0123456789abcdef0123"
    hashed = hmac.new(salt, b"[git.example.com]:2222", hashlib.sha1).digest()
    entry = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(hashed).decode()}"
    text = "\n".join(
        [
            f"{entry} ssh-ed25519 HASHED",
            "git.example.com ssh-ed25519 PLAIN",
            "[*.example.com]:2222,![bad.example.com]:2222 ssh-ed25519 WILDCARD",
            "@revoked [git.example.com]:2222 ssh-ed25519 REVOKED",
        ]
    )
    assert known_hosts_for(text, "git.example.com", 2222).splitlines() == [
        "[git.example.com]:2222 ssh-ed25519 HASHED",
        "[git.example.com]:2222 ssh-ed25519 WILDCARD",
    ]
    assert known_hosts_for(text, "bad.example.com", 2222) == ""
    assert known_hosts_for(text, "git.example.com", 22) == "git.example.com ssh-ed25519 PLAIN"
    assert known_hosts_for(text, "git.example.com", None) == "git.example.com ssh-ed25519 PLAIN"
