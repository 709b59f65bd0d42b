"""``glue verify-history``: glue's own signed commits pass; a commit added by hand without a
signature, one signed with a key that is not allowed, and one whose trailers lie are listed
(exit 1); bad input is exit 2; the checkout is only read."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.test_signing import run_every_kind, signed_repo
from tests.support.helpers import git, glue, snapshot
from tests.support.signing import GpgKeyring, SshSigner, gnupg_fixture, ssh_signer  # noqa: F401


def commit_by_hand(
    repo: Path,
    message: str,
    edits: dict[str, tuple[str, str]],
    *sign: str,
    env: dict[str, str] | None = None,
) -> str:
    """Replace text in files (path -> (old, new)) and commit it as a person would with
    ``git commit`` (``sign``: the ``-c`` settings and ``-S`` to sign); the new commit."""
    for rel, (old, new) in edits.items():
        path = repo / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1))
    subprocess.run(
        ["git", "-C", str(repo), *sign[:-1], "commit", "-q", "-a", *sign[-1:], "-m", message],
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "Mallory",
            "GIT_AUTHOR_EMAIL": "mallory@example.com",
            "GIT_COMMITTER_NAME": "Mallory",
            "GIT_COMMITTER_EMAIL": "mallory@example.com",
            **(env or {}),
        },
    )
    return git(repo, "rev-parse", "HEAD").strip()


def ssh_signed(signer: SshSigner) -> tuple[str, ...]:
    return ("-c", "gpg.format=ssh", "-c", f"user.signingkey={signer.key.private}", "-S")


def verify(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    run = glue("verify-history", *args, "-o", "json", cwd=repo, env=env)
    assert run.code in (0, 1), run.err
    data = json.loads(run.out)
    assert data["ok"] == (run.code == 0)
    return run.code, data


def test_glues_signed_commits_pass_and_hand_made_or_forged_ones_are_listed(
    tmp_path: Path,
) -> None:
    signer = ssh_signer(tmp_path / "keys")
    repo = signed_repo(tmp_path, "ssh", str(signer.key.private))
    start = git(repo, "rev-parse", "HEAD").strip()
    made = run_every_kind(cwd=repo, env={}, outputs=[])
    # A person's unsigned commit outside glue's files is none of glue's business.
    (repo / "README.md").write_text("how we deploy\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "docs: a readme")
    allowed = ("--allowed-signers", str(signer.allowed_signers))

    code, data = verify(repo, "--since", start, *allowed)
    assert code == 0, data
    assert (data["commits"], data["checked"], data["failed"]) == (len(made) + 1, len(made), [])
    text = glue("verify-history", "--since", start, *allowed, cwd=repo)
    assert text.code == 0
    assert f"{len(made)} of {len(made) + 1} commits since {start[:12]}" in text.out
    assert "all 7 signed and consistent" in text.out
    # From the first commit on, the two unsigned commits that set the repository up fail.
    code, data = verify(repo, *allowed)
    assert code == 1
    initial = git(repo, "rev-parse", "HEAD~9").strip()
    assert [f["commit"] for f in data["failed"]] == [start, initial]
    assert data["failed"][0]["problems"] == ["not signed"]

    unsigned = commit_by_hand(
        repo,
        "hotfix: a 7777777 in dev",
        {"environments/dev.yaml": ('tag: "3f9c2e1"  # service a', 'tag: "7777777"  # service a')},
    )
    forged = commit_by_hand(
        repo,
        "feat(dev): update a to 9.9.9\n\n"
        "Glue-Environment: dev\nGlue-Service: a\nGlue-Tag: 9.9.9\nGlue-Previous-Tag: 7777777",
        {"environments/dev.yaml": ('tag: "9a8b7c6"  # service b', 'tag: "9a8b7c7"  # service b')},
        *ssh_signed(signer),
    )
    stranger = ssh_signer(tmp_path / "stranger")
    foreign = commit_by_hand(
        repo,
        "chore: staging b",
        {"environments/staging.yaml": ('"1d2e3f4"  # service b', '"1d2e3f5"  # service b')},
        *ssh_signed(stranger),
    )
    before = snapshot(repo)
    code, data = verify(repo, "--since", start, *allowed)
    assert code == 1
    failed = {f["commit"]: f for f in data["failed"]}
    assert list(failed) == [foreign, forged, unsigned]  # newest first
    assert failed[unsigned]["problems"] == ["not signed"]
    assert failed[unsigned]["author"] == "Mallory <mallory@example.com>"
    assert failed[forged]["signature"]["status"] == "G"  # a good signature, a lying trailer
    assert failed[forged]["problems"] == [
        "Glue-Tag says a is 9.9.9 in dev, but after this commit dev's files have 7777777"
    ]
    (problem,) = failed[foreign]["problems"]
    assert problem.startswith("signed with the SSH key SHA256:")
    assert problem.endswith("which the allowed signers file does not list")
    # The text lists the same commits, each with its reason.
    text = glue("verify-history", "--since", start, *allowed, cwd=repo)
    assert text.code == 1
    assert f"{unsigned[:12]} " in text.out and "  not signed" in text.out
    assert f"{forged[:12]} " in text.out and "  Glue-Tag says a is 9.9.9" in text.out
    assert "3 of 10 failed" in text.out
    # It only read.
    assert snapshot(repo) == before
    assert git(repo, "status", "--porcelain") == ""
    # Both keys allowed: only the hand-made and the forged commits are left.
    both = tmp_path / "both"
    both.write_text(signer.allowed_signers.read_text() + stranger.allowed_signers.read_text())
    code, data = verify(repo, "--since", start, "--allowed-signers", str(both))
    assert [f["commit"] for f in data["failed"]] == [forged, unsigned]


def test_a_merge_that_takes_glues_files_from_its_parents_passes_unsigned(tmp_path: Path) -> None:
    signer = ssh_signer(tmp_path / "keys")
    repo = signed_repo(tmp_path, "ssh", str(signer.key.private))
    start = git(repo, "rev-parse", "HEAD").strip()
    allowed = ("--allowed-signers", str(signer.allowed_signers))
    # glue's signed commit on a branch (a merge request's), merged by the forge unsigned.
    git(repo, "checkout", "-q", "-b", "glue/prod/a")
    assert glue("bump-tag", "a", "v1.2.3", "--env", "prod", cwd=repo).code == 0
    git(repo, "checkout", "-q", "main")
    assert glue("bump-tag", "b", "1234567", "--env", "dev", cwd=repo).code == 0
    git(repo, "merge", "-q", "--no-ff", "glue/prod/a", "-m", "Merge glue/prod/a")
    code, data = verify(repo, "--since", start, *allowed)
    assert code == 0, data
    assert data["checked"] == 3

    # A merge that writes something of its own into glue's files must be signed.
    git(repo, "checkout", "-q", "-b", "glue/prod/b", "HEAD~1")
    assert glue("bump-tag", "b", "7654321", "--env", "prod", cwd=repo).code == 0
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "--no-commit", "glue/prod/b")
    prod = repo / "environments" / "prod.yaml"
    prod.write_text(prod.read_text().replace('"v1.2.3"  # service a', '"6.6.6"  # service a'))
    git(repo, "commit", "-q", "-am", "Merge glue/prod/b")
    evil = git(repo, "rev-parse", "HEAD").strip()
    code, data = verify(repo, "--since", start, *allowed)
    assert code == 1
    assert [(f["commit"], f["problems"]) for f in data["failed"]] == [(evil, ["not signed"])]


def test_gpg_signatures_pass_for_the_fingerprints_given(tmp_path: Path, gnupg: GpgKeyring) -> None:
    repo = signed_repo(tmp_path, "gpg", gnupg.fingerprint)
    start = git(repo, "rev-parse", "HEAD").strip()
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo, env=gnupg.env).code == 0
    assert glue("hold", "a", "--env", "dev", "--reason", "x", cwd=repo, env=gnupg.env).code == 0
    code, data = verify(repo, "--since", start, "--gpg-key", gnupg.fingerprint, env=gnupg.env)
    assert code == 0, data
    assert data["checked"] == 2
    # The long key id is enough; an SSH allowed signers file alone does not allow GPG keys.
    code, _ = verify(repo, "--since", start, "--gpg-key", gnupg.fingerprint[-16:], env=gnupg.env)
    assert code == 0
    empty = tmp_path / "allowed_signers"
    empty.write_text("")
    code, data = verify(repo, "--since", start, "--allowed-signers", str(empty), env=gnupg.env)
    assert code == 1 and len(data["failed"]) == 2
    assert "which --gpg-key does not allow" in data["failed"][0]["problems"][0]

    other = gnupg.add_key("Mallory <mallory@example.com>")
    forged_hold = commit_by_hand(
        repo,
        "chore(dev): hold b\n\nGlue-Hold: dev b\nGlue-Hold-By: mallory",
        {"environments/dev.yaml": ('"9a8b7c6"  # service b', '"9a8b7c7"  # service b')},
        "-c",
        f"user.signingkey={other}",
        "-S",
        env=gnupg.env,
    )
    code, data = verify(repo, "--since", start, "--gpg-key", gnupg.fingerprint, env=gnupg.env)
    assert code == 1
    (failure,) = data["failed"]
    assert failure["commit"] == forged_hold
    assert failure["problems"] == [
        f"signed with the GPG key {other} (Mallory <mallory@example.com>), which --gpg-key "
        "does not allow",
        "Glue-Hold: dev b, but glue-holds.yaml holds no such hold",
    ]
    # Without the key in the keyring the signature cannot be checked at all.
    elsewhere = tmp_path / "empty-gnupg"
    elsewhere.mkdir(mode=0o700)
    code, data = verify(
        repo, "--since", start, "--gpg-key", gnupg.fingerprint, env={"GNUPGHOME": str(elsewhere)}
    )
    assert code == 1 and len(data["failed"]) == 3
    assert "which is not in the keyring (GNUPGHOME)" in data["failed"][-1]["problems"][0]
    subprocess.run(
        ["gpgconf", "--kill", "gpg-agent"],
        env={**os.environ, "GNUPGHOME": str(elsewhere)},
        check=False,
        capture_output=True,
    )


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    signer = ssh_signer(tmp_path / "keys")
    repo = signed_repo(tmp_path, "ssh", str(signer.key.private))
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "README.md").write_text("side\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "side")
    git(repo, "checkout", "-q", "main")
    allowed = ("--allowed-signers", str(signer.allowed_signers))
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    for args, where, says in (
        ((), repo, "say which keys may sign: --allowed-signers FILE"),
        (("--since", "nosuch", *allowed), repo, "--since 'nosuch': no such commit"),
        (("--since", "side", *allowed), repo, "--since 'side' is not in the history of HEAD"),
        (("--rev", "nosuch", *allowed), repo, "--rev 'nosuch': no such commit"),
        (("--allowed-signers", str(tmp_path / "none")), repo, "none: no such file"),
        (("--gpg-key", "Glue Bot"), repo, "--gpg-key 'Glue Bot': give the key's fingerprint"),
        (allowed, shallow, "this clone is shallow"),
    ):
        run = glue("verify-history", *args, cwd=where)
        assert run.code == 2, (args, run.out, run.err)
        assert run.err.count("glue: error: ") == 1 and says in run.err, run.err
    # A shallow clone is checked from a commit it has.
    head = git(shallow, "rev-parse", "HEAD").strip()
    assert glue("verify-history", "--since", head, *allowed, cwd=shallow).code == 0
