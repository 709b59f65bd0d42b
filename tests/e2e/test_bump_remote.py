"""`glue bump-tag --remote` over real SSH (OpenSSH sshd on 127.0.0.1, git-shell deploy key)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.helpers import glue, many_services_seed, start_glue
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env

pytestmark = pytest.mark.ssh


def trailers(message: str) -> dict[str, str]:
    return dict(
        line.split(": ", 1)
        for line in message.splitlines()
        if ": " in line and line.split(": ", 1)[0].replace("-", "").isalnum()
    )


def test_bump_pushes_one_commit_with_the_bot_identity(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    initial = ssh_remote.head()
    gh_output = tmp_path / "gh_output"
    gh_output.touch()
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "staging",
        "--remote",
        ssh_remote.url,
        "--revision",
        "4e5f6a7b8c9d",
        "-o",
        "json",
        cwd=tmp_path,
        env=ssh_env(
            ssh_git_server,
            GITHUB_ACTIONS="true",
            GITHUB_OUTPUT=str(gh_output),
            GITHUB_REPOSITORY="example/a",
            GITHUB_RUN_ID="77",
            GITHUB_SERVER_URL="https://github.com",
            GITHUB_ACTOR="octocat",
        ),
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    log = ssh_remote.log()
    assert [c.sha for c in log] == [data["commit"], initial]
    assert log[0].parents == (initial,)
    t = trailers(log[0].message)
    assert log[0].message.startswith("feat(staging): update a to 4e5f6a7\n")
    assert t["Upstream-Repository"] == "example/a"
    assert t["Upstream-Revision"] == "4e5f6a7b8c9d"
    assert t["Pipeline"] == "https://github.com/example/a/actions/runs/77"
    author = ssh_remote.git("log", "-1", "--format=%an <%ae>").strip()
    assert author == "glue-bot <glue-bot@users.noreply.example.com>"
    staging = ssh_remote.show("main", "environments/staging.yaml")
    assert '    tag: "4e5f6a7"  # service a\n  revision: "4e5f6a7b8c9d"\n' in staging
    assert (data["file"], data["old_tag"], data["new_tag"]) == (
        "environments/staging.yaml",
        "3f9c2e1",
        "4e5f6a7",
    )
    outputs = gh_output.read_text().splitlines()
    assert f"commit={data['commit']}" in outputs and "new_tag=4e5f6a7" in outputs
    assert list(tmp_path.iterdir()) == [gh_output]  # no clone left in the working directory


def test_key_text_from_environment_with_passphrase(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    key = ssh_git_server.passphrase_key
    run = glue(
        "bump-tag",
        "b",
        "0a1b2c3",
        "--env",
        "dev",
        "--remote",
        ssh_remote.url,
        "--dotenv",
        str(tmp_path / "bump.env"),
        cwd=tmp_path,
        env={
            "GLUE_SSH_KEY": key.private.read_text(),
            "GLUE_SSH_KEY_PASSPHRASE": key.passphrase,
            "GLUE_SSH_KNOWN_HOSTS": ssh_git_server.known_hosts_line,
        },
    )
    assert run.code == 0, run.err
    assert ssh_remote.log()[0].message.startswith("feat(dev): update b to 0a1b2c3")
    dotenv = (tmp_path / "bump.env").read_text().splitlines()
    assert "GLUE_NEW_TAG=0a1b2c3" in dotenv and "GLUE_OLD_TAG=9a8b7c6" in dotenv


def test_unknown_or_wrong_host_key_is_refused(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    before = ssh_remote.head()
    args = ("bump-tag", "a", "4e5f6a7", "--env", "dev", "--remote", ssh_remote.url)
    missing = glue(
        *args, cwd=tmp_path, env={"GLUE_SSH_KEY_FILE": str(ssh_git_server.deploy_key.private)}
    )
    assert missing.code == 2
    assert f"host key of [127.0.0.1]:{ssh_git_server.port} is unknown" in missing.err
    assert f"ssh-keyscan -p {ssh_git_server.port} 127.0.0.1" in missing.err
    wrong = glue(
        *args,
        "--known-hosts",
        str(ssh_git_server.wrong_known_hosts),
        cwd=tmp_path,
        env={"GLUE_SSH_KEY_FILE": str(ssh_git_server.deploy_key.private)},
    )
    assert wrong.code == 2, wrong.err
    assert "is unknown or changed: refusing to connect" in wrong.err
    assert ssh_remote.head() == before
    insecure = glue(
        *args,
        "--insecure-no-host-key-check",
        cwd=tmp_path,
        env={
            "GLUE_SSH_KEY_FILE": str(ssh_git_server.deploy_key.private),
            "GLUE_SSH_KNOWN_HOSTS": ssh_git_server.wrong_known_hosts_line,
        },
    )
    assert insecure.code == 0, insecure.err
    assert "WARNING: --insecure-no-host-key-check" in insecure.err


def test_refused_key_fails_without_showing_it(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    key_text = ssh_git_server.stranger_key.private.read_text()
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env={"GLUE_SSH_KEY": key_text, "GLUE_SSH_KNOWN_HOSTS": ssh_git_server.known_hosts_line},
    )
    assert run.code == 1
    assert "authentication" in run.err
    assert "Traceback" not in run.err
    for line in key_text.splitlines()[1:-1]:
        assert line not in run.out + run.err
    assert list(Path(tempfile.gettempdir()).glob("glue-*")) == []


def test_hook_rejection_fails_fast_with_the_server_message(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    ssh_remote.reject_pushes("main is frozen for the release")
    before = ssh_remote.head()
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "--remote",
        ssh_remote.url,
        "-o",
        "json",
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 1
    assert "the remote refused the push to 'main'" in run.err
    assert "main is frozen for the release" in run.err
    assert "lost a race" not in run.err  # not retried
    assert ssh_remote.head() == before


def test_dry_run_and_unchanged_push_nothing(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    before = ssh_remote.head()
    dry = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "--remote",
        ssh_remote.url,
        "--dry-run",
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert dry.code == 0, dry.err
    assert '+    tag: "4e5f6a7"  # service a' in dry.out
    same = glue(
        "bump-tag",
        "a",
        "3f9c2e1",
        "--env",
        "dev",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert same.code == 0 and same.out.startswith("unchanged:")
    assert ssh_remote.head() == before


def test_one_bump_opens_two_ssh_connections(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    # The fetch and the push connection, opened at once; reading glue.yaml (for
    # digest_key) uses that fetch. Each connection costs the server ~0.2 s.
    before = ssh_git_server.log_text().count("Accepted publickey")
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 0, run.err
    assert ssh_git_server.log_text().count("Accepted publickey") - before == 2


def test_policy_is_read_from_the_remote_config(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    run = glue(
        "bump-tag",
        "a",
        "latest",
        "--env",
        "prod",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 2 and "refuses the mutable tag 'latest'" in run.err
    assert len(ssh_remote.log()) == 1


def _start_bump(
    service: str, tag: str, env: str, url: str, server: SshGitServer, cwd: Path
) -> subprocess.Popen[str]:
    args = ("bump-tag", service, tag, "--env", env, "--remote", url)
    return start_glue(*args, cwd=cwd, env=ssh_env(server))


@pytest.mark.slow
def test_sixteen_racing_bumps_all_land_in_linear_history(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    remote = ssh_git_server.new_remote("race16", seed=many_services_seed(8, ["dev", "prod"]))
    jobs = [(f"s{i}", env) for i in range(8) for env in ("dev", "prod")]
    procs = [
        _start_bump(svc, "1234567", env, remote.url, ssh_git_server, tmp_path) for svc, env in jobs
    ]
    results = [
        (
            p.wait(timeout=300),
            p.stdout.read() if p.stdout else "",
            p.stderr.read() if p.stderr else "",
        )
        for p in procs
    ]
    for code, _out, err in results:
        assert code == 0, err
    log = remote.log()
    assert len(log) == 17
    assert all(len(c.parents) == 1 for c in log[:-1])  # linear: no merge commits
    for i in range(8):
        for env in ("dev", "prod"):
            assert f's{i}:\n  image:\n    tag: "1234567"\n' in remote.show(
                "main", f"envs/{env}.yaml"
            )
    assert sum(json.loads(out)["attempts"] > 1 for _c, out, _e in results) > 0  # races happened


def test_two_bumps_of_the_same_tag_make_one_commit(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    procs = [
        _start_bump("a", "7654321", "dev", ssh_remote.url, ssh_git_server, tmp_path)
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    log = ssh_remote.log()
    assert len(log) == 2  # exactly one new commit
    # Either the loser saw the tag in place ("unchanged"), or both built the identical
    # commit in the same second, so the second push had nothing to add.
    assert {o["commit"] for o in outs if o["status"] == "changed"} == {log[0].sha}
