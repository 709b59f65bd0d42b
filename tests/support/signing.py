"""Signing keys made by the test itself: an SSH key with git's allowed signers file, and
a GnuPG keyring of its own (``GNUPGHOME``) with one key; and git's verdict on commits."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.sshgit import KeyPair, generate_key

#: The example glue.yaml's bot identity: the principal of the allowed signers files.
BOT = "glue-bot@users.noreply.example.com"


@dataclass(frozen=True)
class SshSigner:
    key: KeyPair
    allowed_signers: Path  # git's allowed signers file listing only this key


def ssh_signer(folder: Path, name: str = "signing", passphrase: str = "") -> SshSigner:
    """A new ed25519 key ``folder/name`` and an allowed signers file for it."""
    folder.mkdir(parents=True, exist_ok=True)
    key = generate_key(folder / name, passphrase=passphrase)
    allowed = folder / f"{name}.allowed_signers"
    allowed_line(allowed, key)
    return SshSigner(key, allowed)


def allowed_line(allowed: Path, key: KeyPair) -> None:
    """Add ``key`` to the allowed signers file ``allowed`` (for the bot's principal)."""
    with allowed.open("a") as fh:
        fh.write(f'{BOT} namespaces="git" {key.key_blob}\n')


@dataclass(frozen=True)
class GpgKeyring:
    home: Path  # GNUPGHOME
    fingerprint: str  # the first key's

    @property
    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}

    def add_key(self, uid: str, passphrase: str = "") -> str:
        """Make another key (``passphrase``: protected by it); its fingerprint."""
        return _gen_key(self.home, uid, passphrase)


def _gpg(home: Path, *args: str) -> str:
    proc = subprocess.run(
        ["gpg", "--batch", "--no-tty", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GNUPGHOME": str(home)},
        check=True,
        timeout=120,
    )
    return proc.stdout


def _gen_key(home: Path, uid: str, passphrase: str) -> str:
    _gpg(
        home, "--pinentry-mode", "loopback", "--passphrase", passphrase,
        "--quick-gen-key", uid, "ed25519", "sign", "never",
    )  # fmt: skip
    listing = _gpg(home, "--with-colons", "--list-secret-keys", uid)
    fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    return fingerprints[0]


@pytest.fixture(name="gnupg")
def gnupg_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKeyring]:
    """A keyring of the test's own with the bot's key (no passphrase); its gpg-agent is
    stopped at the end."""
    # A short path: gpg-agent's socket lives in it (at most 107 bytes).
    home = tmp_path_factory.mktemp("gpg")
    home.chmod(0o700)
    try:
        yield GpgKeyring(home, _gen_key(home, f"Glue Bot <{BOT}>", ""))
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"],
            env={**os.environ, "GNUPGHOME": str(home)},
            capture_output=True,
            check=False,
            timeout=60,
        )


def verify_commit(
    git_dir: Path, rev: str, *, allowed: Path | None = None, gnupg: GpgKeyring | None = None
) -> subprocess.CompletedProcess[str]:
    """``git verify-commit REV`` in ``git_dir`` (a checkout's .git or a bare repository),
    with ``allowed`` as ``gpg.ssh.allowedSignersFile`` and ``gnupg``'s keyring."""
    return _git(git_dir, ["verify-commit", rev], allowed, gnupg)


def signed_with(
    git_dir: Path, rev: str, *, allowed: Path | None = None, gnupg: GpgKeyring | None = None
) -> str:
    """The fingerprint of the key that signed ``rev``, as git sees it ("" when unsigned)."""
    return _git(git_dir, ["log", "-1", "--format=%GF", rev], allowed, gnupg).stdout.strip()


def _git(
    git_dir: Path, args: list[str], allowed: Path | None, gnupg: GpgKeyring | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    if gnupg is not None:
        env.update(gnupg.env)
    return subprocess.run(
        [
            "git",
            f"--git-dir={git_dir}",
            "-c",
            f"gpg.ssh.allowedSignersFile={allowed or '/dev/null'}",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def signed_config(folder: Path, sign: str, signing_key: str | None = None) -> None:
    """Turn on ``git.sign`` in ``folder``'s glue.yaml (the example's)."""
    config = folder / "glue.yaml"
    text = config.read_text()
    assert "\ngit:\n" in text
    extra = f"  sign: {sign}\n" + (f"  signing_key: '{signing_key}'\n" if signing_key else "")
    config.write_text(text.replace("\ngit:\n", "\ngit:\n" + extra, 1))
