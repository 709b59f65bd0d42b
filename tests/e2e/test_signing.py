"""Signed commits (``git.sign: ssh | gpg``): every kind of commit glue makes passes ``git
verify-commit``, in a checkout and pushed to a real sshd; a server that refuses unsigned
pushes takes glue's; a missing or unusable key is exit 2 with nothing written; the key
never shows in the output."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.e2e.test_merge_requests import reviewed_prod
from tests.support.forges import GITHUB_TOKEN, GitHubStandIn, github_fixture  # noqa: F401
from tests.support.helpers import Run, copy_example, example_repo, git, glue, refuses_bump
from tests.support.signing import (
    GpgKeyring,
    allowed_line,
    gnupg_fixture,  # noqa: F401
    signed_config,
    signed_with,
    ssh_signer,
    verify_commit,
)
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env

#: One command of each kind glue commits with (the order matters: each builds on the last).
EVERY_KIND = {
    "bump": ("bump-tag", "a", "4e5f6a7", "--env", "dev"),
    "promote": ("promote", "a", "--to", "staging"),
    "release": ("release", "a", "--tag", "v1.2.4", "--to", "prod"),
    "rollback": ("rollback", "--env", "dev"),
    "hold": ("hold", "b", "--env", "prod", "--reason", "audit week"),
    "reject": ("reject", "a", "1111111", "--reason", "corrupts carts"),
    "unhold": ("unhold", "b", "--env", "prod"),
}


def run_every_kind(
    *remote: str, cwd: Path, env: dict[str, str], outputs: list[Run]
) -> dict[str, str]:
    """Run each command of :data:`EVERY_KIND` (with ``remote``'s options); the commits."""
    made: dict[str, str] = {}
    for kind, args in EVERY_KIND.items():
        run = glue(*args, *remote, "-o", "json", cwd=cwd, env=env)
        outputs.append(run)
        assert run.code == 0, f"{kind}: {run.err}"
        commit = json.loads(run.out)["commit"]
        assert commit, f"{kind} committed nothing: {run.out}"
        made[kind] = commit
    return made


def no_secret_in(outputs: list[Run], *secrets: str) -> None:
    """No line of a secret (a key's, a passphrase) in anything glue printed."""
    lines = [line.strip() for s in secrets for line in s.splitlines() if len(line.strip()) > 8]
    assert lines
    for run in outputs:
        for line in lines:
            assert line not in run.out and line not in run.err


def signed_repo(tmp_path: Path, sign: str, signing_key: str | None = None) -> Path:
    repo = example_repo(tmp_path / "deploy")
    signed_config(repo, sign, signing_key)
    git(repo, "commit", "-q", "-am", "sign glue's commits")
    return repo


# --------------------------------------------------------------------------- checkout


def test_ssh_signed_commits_of_every_kind_pass_git_verify_commit(
    tmp_path: Path, private_tmpdir: Path
) -> None:
    signer = ssh_signer(tmp_path / "keys")
    repo = signed_repo(tmp_path, "ssh", str(signer.key.private))
    outputs: list[Run] = []
    made = run_every_kind(cwd=repo, env={}, outputs=outputs)
    for kind, commit in made.items():
        verified = verify_commit(repo / ".git", commit, allowed=signer.allowed_signers)
        assert verified.returncode == 0, f"{kind}: {verified.stderr}"
        assert 'Good "git" signature for glue-bot@users.noreply.example.com' in verified.stderr
    # What a human commits is not signed, and git says so.
    assert verify_commit(repo / ".git", "HEAD~7", allowed=signer.allowed_signers).returncode != 0
    # Signed commits are still ordinary glue commits: author, files, a clean checkout.
    assert git(repo, "log", "-1", "--format=%an <%ae>").strip() == (
        "glue-bot <glue-bot@users.noreply.example.com>"
    )
    assert git(repo, "status", "--porcelain") == ""
    # Another key (not in the allowed signers file) does not verify: the signature is
    # the key's, not a formality.
    other = ssh_signer(tmp_path / "other")
    assert verify_commit(repo / ".git", made["bump"], allowed=other.allowed_signers).returncode
    no_secret_in(outputs, signer.key.private.read_text())
    assert not list(private_tmpdir.glob("glue-sign-*"))  # no copy of the key left behind


def test_gpg_signed_commits_of_every_kind_pass_git_verify_commit(
    tmp_path: Path, gnupg: GpgKeyring
) -> None:
    repo = signed_repo(tmp_path, "gpg", gnupg.fingerprint)
    made = run_every_kind(cwd=repo, env=gnupg.env, outputs=[])
    for kind, commit in made.items():
        verified = verify_commit(repo / ".git", commit, gnupg=gnupg)
        assert verified.returncode == 0, f"{kind}: {verified.stderr}"
        assert 'Good signature from "Glue Bot <glue-bot@users.noreply.example.com>"' in (
            verified.stderr
        )
        assert signed_with(repo / ".git", commit, gnupg=gnupg) == gnupg.fingerprint
    assert git(repo, "status", "--porcelain") == ""


def test_gpg_key_with_a_passphrase_signs_with_glue_signing_key_passphrase(
    tmp_path: Path, gnupg: GpgKeyring
) -> None:
    fingerprint = gnupg.add_key("Locked Bot <locked@example.com>", passphrase="gpg pass 4711")
    repo = signed_repo(tmp_path, "gpg", fingerprint)
    env = {**gnupg.env, "GLUE_SIGNING_KEY_PASSPHRASE": "gpg pass 4711"}
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo, env=env)
    assert run.code == 0, run.err
    assert verify_commit(repo / ".git", "HEAD", gnupg=gnupg).returncode == 0
    assert signed_with(repo / ".git", "HEAD", gnupg=gnupg) == fingerprint
    no_secret_in([run], "gpg pass 4711")


# --------------------------------------------------------------------------- remote


def test_remote_commits_are_signed_with_the_deploy_key(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    """Over SSH the deploy key signs when no other key is given."""
    seed = copy_example(tmp_path / "seed")
    signed_config(seed, "ssh")
    remote = ssh_git_server.new_remote("deploy", seed=seed)
    allowed = tmp_path / "allowed_signers"
    allowed_line(allowed, ssh_git_server.deploy_key)
    outputs: list[Run] = []
    made = run_every_kind(
        "--remote", remote.url, cwd=tmp_path, env=ssh_env(ssh_git_server), outputs=outputs
    )
    assert [c.sha for c in remote.log()][: len(made)] == list(reversed(made.values()))
    for kind, commit in made.items():
        verified = verify_commit(remote.path, commit, allowed=allowed)
        assert verified.returncode == 0, f"{kind}: {verified.stderr}"
    no_secret_in(outputs, ssh_git_server.deploy_key.private.read_text())


def test_remote_commits_signed_with_a_key_of_their_own_and_with_gpg(
    ssh_git_server: SshGitServer, tmp_path: Path, gnupg: GpgKeyring
) -> None:
    signer = ssh_signer(tmp_path / "keys", passphrase="sign pass 0815")
    remote = ssh_git_server.new_example_remote()
    config = remote.show("main", "glue.yaml").replace("\ngit:\n", "\ngit:\n  sign: ssh\n", 1)
    remote.commit({"glue.yaml": config}, "sign glue's commits")
    env = ssh_env(
        ssh_git_server,
        GLUE_SIGNING_KEY=signer.key.private.read_text(),
        GLUE_SIGNING_KEY_PASSPHRASE="sign pass 0815",
    )
    args = ("bump-tag", "a", "4e5f6a7", "--env", "dev", "--remote", remote.url)
    run = glue(*args, cwd=tmp_path, env=env)
    assert run.code == 0, run.err
    assert verify_commit(remote.path, "main", allowed=signer.allowed_signers).returncode == 0
    no_secret_in([run], signer.key.private.read_text(), "sign pass 0815")

    config = config.replace("  sign: ssh\n", f"  sign: gpg\n  signing_key: {gnupg.fingerprint}\n")
    remote.commit({"glue.yaml": config}, "sign with gpg")
    args = ("bump-tag", "a", "5e5f6a7", "--env", "dev", "--remote", remote.url)
    run = glue(*args, cwd=tmp_path, env=ssh_env(ssh_git_server, **gnupg.env))
    assert run.code == 0, run.err
    assert verify_commit(remote.path, "main", gnupg=gnupg).returncode == 0


def test_a_server_that_refuses_unsigned_pushes_takes_glues_signed_commits(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    remote = ssh_git_server.new_example_remote()
    allowed = tmp_path / "allowed_signers"
    allowed_line(allowed, ssh_git_server.deploy_key)
    require_signed_pushes(remote, allowed)
    before = remote.head()
    args = ("bump-tag", "a", "4e5f6a7", "--env", "dev", "--remote", remote.url)
    unsigned = glue(*args, cwd=tmp_path, env=ssh_env(ssh_git_server))
    assert unsigned.code == 1
    assert "unsigned or unknown signature" in unsigned.err
    assert remote.head() == before

    # The server's own commit (no hook runs for it) turns signing on.
    config = remote.show("main", "glue.yaml").replace("\ngit:\n", "\ngit:\n  sign: ssh\n", 1)
    remote.commit({"glue.yaml": config}, "sign glue's commits")
    signed = glue(*args, "-o", "json", cwd=tmp_path, env=ssh_env(ssh_git_server))
    assert signed.code == 0, signed.err
    assert remote.head() == json.loads(signed.out)["commit"]
    promoted = glue("promote", "a", "--to", "staging", "--remote", remote.url, cwd=tmp_path,
                    env=ssh_env(ssh_git_server))  # fmt: skip
    assert promoted.code == 0, promoted.err


def require_signed_pushes(remote: BareRemote, allowed: Path) -> None:
    """A pre-receive hook that runs ``git verify-commit`` on every commit a push brings
    and refuses the push unless each is signed by a key of ``allowed``."""
    remote.pre_receive.parent.mkdir(exist_ok=True)
    remote.pre_receive.write_text(
        "#!/bin/sh\n"
        "zero=0000000000000000000000000000000000000000\n"
        "while read old new ref; do\n"
        '  [ "$new" = "$zero" ] && continue\n'
        '  if [ "$old" = "$zero" ]; then range="$new --not --all"; else range="$old..$new"; fi\n'
        "  for commit in $(git rev-list $range); do\n"
        f"    git -c gpg.ssh.allowedSignersFile={shlex.quote(str(allowed))} "
        'verify-commit "$commit" >/dev/null 2>&1 || {\n'
        '      echo "$commit: unsigned or unknown signature; signed commits only" >&2\n'
        "      exit 1\n"
        "    }\n"
        "  done\n"
        "done\n"
    )
    remote.pre_receive.chmod(0o755)


def test_a_merge_request_branch_commit_is_signed(
    ssh_git_server: SshGitServer, github: GitHubStandIn, tmp_path: Path
) -> None:
    seed = reviewed_prod(tmp_path / "seed")
    config = seed / "glue.yaml"
    config.write_text(
        config.read_text() + f"\nmerge_requests:\n  forge: github\n"
        f"  api_url: {github.base_url}\n  project: acme/deploy\n"
    )
    signed_config(seed, "ssh")
    remote = ssh_git_server.new_remote("deploy", seed=seed)
    allowed = tmp_path / "allowed_signers"
    allowed_line(allowed, ssh_git_server.deploy_key)
    run = glue(
        "bump-tag", "--env", "prod", "a", "v1.2.3", "--remote", remote.url, "-o", "json",
        cwd=tmp_path, env=ssh_env(ssh_git_server, GITHUB_TOKEN=GITHUB_TOKEN),
    )  # fmt: skip
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["merge_request"]["branch"] == "glue/prod/a"
    assert remote.head("glue/prod/a") == data["commit"]
    verified = verify_commit(remote.path, data["commit"], allowed=allowed)
    assert verified.returncode == 0, verified.stderr


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("missing file", "cannot read the SSH signing key: No such file or directory"),
        ("no key at all", "no SSH signing key is given"),
        ("not a key", "is not a private key ssh-keygen can use"),
        ("passphrase missing", "is protected by a passphrase"),
        ("passphrase wrong", "the passphrase is wrong"),
        ("public key given", "is not a private key ssh-keygen can use"),
    ],
)
def test_an_unusable_ssh_key_is_exit_2_before_anything_is_written(
    tmp_path: Path, case: str, says: str
) -> None:
    locked = ssh_signer(tmp_path / "keys", "locked", passphrase="right pass 1234")
    config_key = {"missing file": str(tmp_path / "no-such-key")}.get(case)
    repo = signed_repo(tmp_path, "ssh", config_key)
    env = {
        "not a key": {"GLUE_SIGNING_KEY": "this is no key but a secret 0123456789"},
        "passphrase missing": {"GLUE_SIGNING_KEY": locked.key.private.read_text()},
        "passphrase wrong": {
            "GLUE_SIGNING_KEY": locked.key.private.read_text(),
            "GLUE_SIGNING_KEY_PASSPHRASE": "wrong pass 5678",
        },
        "public key given": {"GLUE_SIGNING_KEY_FILE": str(locked.key.public_path)},
    }.get(case, {})
    err = refuses_bump(repo, env, "a", "4e5f6a7", "--env", "dev")
    assert says in err
    assert "nothing was changed" in err
    assert "hint: " in err
    for secret in (locked.key.private.read_text(), "0123456789", "wrong pass 5678"):
        for line in secret.splitlines():
            assert line.strip() not in err
    # A dry run writes nothing and signs nothing: it needs no key.
    dry = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", "--dry-run", cwd=repo, env=env)
    assert dry.code == 0, dry.err


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("unknown key id", "no such secret key in the GnuPG keyring"),
        ("passphrase missing", "is protected by a passphrase"),
        ("passphrase wrong", "the passphrase is wrong"),
        ("gpg not installed", "gpg is not installed"),
        ("ssh key given", "GLUE_SIGNING_KEY(_FILE) holds an SSH signing key"),
    ],
)
def test_an_unusable_gpg_key_is_exit_2_before_anything_is_written(
    tmp_path: Path, gnupg: GpgKeyring, case: str, says: str
) -> None:
    key = gnupg.fingerprint
    if case.startswith("passphrase"):
        key = gnupg.add_key("Locked Bot <locked@example.com>", passphrase="gpg pass 2468")
    elif case == "unknown key id":
        key = "0123456789ABCDEF0123456789ABCDEF01234567"
    repo = signed_repo(tmp_path, "gpg", key)
    env = {
        **gnupg.env,
        **{
            "passphrase wrong": {"GLUE_SIGNING_KEY_PASSPHRASE": "wrong pass 1357"},
            "gpg not installed": {"PATH": str(tmp_path / "empty")},
            "ssh key given": {"GLUE_SIGNING_KEY_FILE": str(tmp_path / "some-key")},
        }.get(case, {}),
    }
    err = refuses_bump(repo, env, "a", "4e5f6a7", "--env", "dev")
    assert says in err
    assert "wrong pass 1357" not in err


def test_an_unusable_key_pushes_nothing(
    ssh_git_server: SshGitServer, tmp_path: Path, private_tmpdir: Path
) -> None:
    remote = ssh_git_server.new_example_remote()
    config = remote.show("main", "glue.yaml").replace(
        "\ngit:\n", f"\ngit:\n  sign: ssh\n  signing_key: {tmp_path / 'no-such-key'}\n", 1
    )
    remote.commit({"glue.yaml": config}, "sign glue's commits")
    before = remote.head()
    locked = ssh_signer(tmp_path / "keys", "locked", passphrase="remote pass 9999")
    for env, says in (
        ({}, "cannot read the SSH signing key"),
        ({"GLUE_SIGNING_KEY": locked.key.private.read_text()}, "protected by a passphrase"),
    ):
        run = glue(
            "bump-tag", "a", "4e5f6a7", "--env", "dev", "--remote", remote.url,
            cwd=tmp_path, env=ssh_env(ssh_git_server, **env),
        )  # fmt: skip
        assert run.code == 2, run.err
        assert says in run.err
        assert remote.head() == before and remote.branches() == ["main"]
        no_secret_in([run], locked.key.private.read_text())
    assert not list(private_tmpdir.glob("glue-*"))  # no clone, no copy of a key left behind


def test_signing_settings_are_checked_when_glue_yaml_is_read(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "deploy")
    config = repo / "glue.yaml"
    text = config.read_text()
    for extra, says in (
        ("  signing_key: ~/.ssh/id\n", "git.signing_key: set git.sign (ssh or gpg) too"),
        ("  sign: gpg\n", "git.sign: gpg needs git.signing_key too"),
        ("  sign: pgp\n", "git.sign: use one of 'gpg', 'ssh'"),
    ):
        config.write_text(text.replace("\ngit:\n", "\ngit:\n" + extra, 1))
        run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
        assert run.code == 2
        assert f"glue.yaml:6: {says}" in run.err
