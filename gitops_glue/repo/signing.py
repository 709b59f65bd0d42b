"""Signing the commits glue makes (``git.sign: ssh`` or ``gpg``), the way git signs them.

git signs a commit by signing the commit object's text (without the signature) and
storing the signature in its ``gpgsig`` header; ``git verify-commit`` checks it with
``gpg.ssh.allowedSignersFile`` (SSH) or the GnuPG keyring. glue does the same, with
the same programs git runs:

- ``ssh``: ``ssh-keygen -Y sign -n git -f KEY``. The key is ``GLUE_SIGNING_KEY``
  (the private key's text), else the file ``GLUE_SIGNING_KEY_FILE`` or
  ``git.signing_key`` names, else, for a remote reached over SSH, the deploy key.
  Its passphrase: ``GLUE_SIGNING_KEY_PASSPHRASE`` (the deploy key's own,
  ``GLUE_SSH_KEY_PASSPHRASE``, when it signs), handed to ``ssh-keygen`` through
  ``SSH_ASKPASS``. The key text is copied into a private temp folder
  (``glue-sign-*``, mode 0700) for each run of ``ssh-keygen`` and removed after it.
- ``gpg``: ``gpg --detach-sign --armor --local-user KEYID`` with the keyring of
  ``GNUPGHOME`` (default ``~/.gnupg``); the passphrase, if any, goes in through a
  pipe (``--pinentry-mode loopback --passphrase-fd``).

:func:`signer_for` checks the key once, by signing a probe, before anything is
written or pushed: a missing or unusable key is a :class:`UsageError` (exit 2)
whose message names where the key came from, never the key. Key texts and
passphrases are registered with :mod:`gitops_glue.redact`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gitops_glue import redact
from gitops_glue.errors import OperationError, UsageError

if TYPE_CHECKING:
    from gitops_glue.config import GitSettings

#: The prefix of the private temp folders a signature is made in.
TEMP_PREFIX = "glue-sign-"
#: Seconds one run of ssh-keygen or gpg may take (gpg may start its agent first).
TIMEOUT = 60.0
_PROBE = b"glue: signing probe\n"


@dataclass(frozen=True)
class Signer:
    """Signs commit objects with one key; made (and checked) by :func:`signer_for`."""

    kind: Literal["ssh", "gpg"]
    #: ssh: the private key's text; gpg: the key id as given.
    key: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)
    #: Where the key came from, for messages (never the key itself).
    source: str = ""
    #: ssh: the public key line; gpg: the fingerprint of the key that signs (once probed).
    public: str = ""
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        redact.register(self.passphrase)
        if self.kind == "ssh":
            redact.register(self.key)

    def sign(self, content: bytes) -> str:
        """The armored signature of ``content`` (a commit object without its signature)."""
        if self.kind == "ssh":
            return _ssh_sign(self, content)
        return _gpg_sign(self, content)[0]


def signer_for(
    git: GitSettings,
    environ: Mapping[str, str],
    *,
    deploy_key: str | None = None,
    deploy_key_passphrase: str | None = None,
) -> Signer | None:
    """The signer ``git.sign`` asks for (None: commits are not signed), checked by
    signing a probe. ``deploy_key``: the key glue pushes with over SSH, which signs when
    no other SSH key is given. Raises :class:`UsageError` for a missing or unusable key."""
    if git.sign is None:
        return None
    env = dict(environ)
    passphrase = environ.get("GLUE_SIGNING_KEY_PASSPHRASE") or None
    if git.sign == "gpg":
        if environ.get("GLUE_SIGNING_KEY") or environ.get("GLUE_SIGNING_KEY_FILE"):
            raise UsageError(
                "GLUE_SIGNING_KEY(_FILE) holds an SSH signing key, but git.sign is gpg; nothing "
                "was changed",
                hint="with git.sign: gpg the key is git.signing_key (a key id) in the GnuPG "
                "keyring of GNUPGHOME; unset GLUE_SIGNING_KEY, or use git.sign: ssh",
            )
        assert git.signing_key is not None  # the config requires it
        unchecked = Signer("gpg", git.signing_key, passphrase, "git.signing_key", environ=env)
        fingerprint = _gpg_sign(unchecked, _PROBE)[1]
        return dataclasses.replace(unchecked, public=fingerprint)
    text, source = _ssh_key(git, environ, deploy_key)
    if source == "the deploy key" and passphrase is None:
        passphrase = deploy_key_passphrase or None
    unchecked = Signer("ssh", text, passphrase, source, environ=env)
    signer = dataclasses.replace(unchecked, public=_ssh_public(unchecked))
    _ssh_sign(signer, _PROBE)
    return signer


def _ssh_key(git: GitSettings, environ: Mapping[str, str], deploy: str | None) -> tuple[str, str]:
    """The SSH private key's text and where it came from."""
    text = environ.get("GLUE_SIGNING_KEY")
    if text:
        redact.register(text)
        return text, "GLUE_SIGNING_KEY"
    for path, name in (
        (environ.get("GLUE_SIGNING_KEY_FILE"), "GLUE_SIGNING_KEY_FILE"),
        (git.signing_key, "git.signing_key"),
    ):
        if path:
            file = Path(path).expanduser()
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
                raise UsageError(
                    f"{name} {path}: cannot read the SSH signing key: {why}; nothing was changed",
                    hint="point it at the private key file (relative paths start in the "
                    "folder glue runs in), or set GLUE_SIGNING_KEY to the key's text",
                ) from None
            redact.register(text)
            return text, f"{name} {path}"
    if deploy:
        return deploy, "the deploy key"
    raise UsageError(
        "git.sign is ssh, but no SSH signing key is given; nothing was changed",
        hint="set GLUE_SIGNING_KEY to the private key's text (or GLUE_SIGNING_KEY_FILE / "
        "git.signing_key to its file); with --remote over SSH the deploy key signs",
    )


# --------------------------------------------------------------------------- ssh


def _ssh_env(signer: Signer, folder: Path) -> dict[str, str]:
    """ssh-keygen's environment: no agent, the passphrase through ``SSH_ASKPASS``."""
    env = {k: v for k, v in signer.environ.items() if k != "SSH_AUTH_SOCK"}
    askpass = folder / "askpass"
    fd = os.open(askpass, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("#!/bin/sh\nprintf '%s\\n' \"$GLUE_SIGNING_KEY_PASSPHRASE\"\n")
    env.update(
        SSH_ASKPASS=str(askpass),
        SSH_ASKPASS_REQUIRE="force",
        GLUE_SIGNING_KEY_PASSPHRASE=signer.passphrase or "",
    )
    env.pop("DISPLAY", None)
    return env


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        # CI secrets often lose the last newline or gain CRs; ssh-keygen wants neither.
        fh.write(text.replace("\r\n", "\n").strip("\n") + "\n")


def _in_private_folder(signer: Signer, args: list[str], data: bytes | None) -> bytes:
    folder = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        env_ready = _ssh_env(signer, folder)
        key = folder / "key"
        _write_private(key, signer.key)
        if signer.public:
            (folder / "key.pub").write_text(signer.public + "\n", encoding="utf-8")
        try:
            proc = subprocess.run(
                ["ssh-keygen", *args, "-f", str(key)],
                input=data if data is not None else b"",
                capture_output=True,
                env=env_ready,
                timeout=TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            raise UsageError(
                "git.sign is ssh, but ssh-keygen is not installed; nothing was changed",
                hint="install OpenSSH's client (8.2 or newer, for ssh-keygen -Y sign), "
                "which git needs for SSH signing too",
            ) from None
        except subprocess.TimeoutExpired:
            raise OperationError(
                f"ssh-keygen did not sign within {TIMEOUT:.0f} s; nothing was changed"
            ) from None
        if proc.returncode != 0:
            raise _ssh_problem(signer, proc.stderr.decode("utf-8", "replace"))
        return proc.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ssh_public(signer: Signer) -> str:
    """The public key line of the signer's private key (checks the key and passphrase)."""
    out = _in_private_folder(signer, ["-y"], None).decode("utf-8", "replace").strip()
    return " ".join(out.split()[:2])


def _ssh_sign(signer: Signer, content: bytes) -> str:
    out = _in_private_folder(signer, ["-Y", "sign", "-n", "git"], content)
    text = out.decode("utf-8", "replace")
    if "-----BEGIN SSH SIGNATURE-----" not in text:
        raise OperationError("ssh-keygen gave no signature; nothing was changed")
    return text


def _last_reason(stderr: str) -> str:
    """The last line a program printed, without a ``Load key "PATH":`` prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else "no reason given"
    if last.startswith("Load key ") and '": ' in last:
        last = last.split('": ', 1)[1]
    return redact.redact(last)[:200]


def _ssh_problem(signer: Signer, stderr: str) -> UsageError:
    reason = _last_reason(stderr)
    where = f"the SSH signing key ({signer.source})"
    if "passphrase" in stderr:
        if signer.passphrase:
            return UsageError(
                f"{where}: the passphrase is wrong; nothing was changed",
                hint="set GLUE_SIGNING_KEY_PASSPHRASE to the key's passphrase",
            )
        return UsageError(
            f"{where} is protected by a passphrase; nothing was changed",
            hint="set GLUE_SIGNING_KEY_PASSPHRASE to it, or sign with a key without one "
            "kept in a CI secret",
        )
    return UsageError(
        f"{where} is not a private key ssh-keygen can use ({reason}); nothing was changed",
        hint="give the private key (the file without .pub) in OpenSSH or PEM format",
    )


# --------------------------------------------------------------------------- gpg


def _gpg_sign(signer: Signer, content: bytes) -> tuple[str, str]:
    """The armored signature and the signing key's fingerprint."""
    args = [
        "gpg",
        "--batch",
        "--no-tty",
        "--status-fd=2",
        "--pinentry-mode",
        "loopback",
        "--detach-sign",
        "--armor",
        "--local-user",
        signer.key,
    ]
    read_fd = -1
    if signer.passphrase:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, signer.passphrase.encode("utf-8") + b"\n")
        os.close(write_fd)
        args[1:1] = ["--passphrase-fd", str(read_fd)]
    try:
        proc = subprocess.run(
            args,
            input=content,
            capture_output=True,
            env=dict(signer.environ) if signer.environ else None,
            pass_fds=(read_fd,) if read_fd >= 0 else (),
            timeout=TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError(
            "git.sign is gpg, but gpg is not installed; nothing was changed",
            hint="install GnuPG (the gnupg package), as git needs for GPG signing",
        ) from None
    except subprocess.TimeoutExpired:
        raise OperationError(
            f"gpg did not sign within {TIMEOUT:.0f} s; nothing was changed",
            hint="is gpg-agent waiting for a passphrase? set GLUE_SIGNING_KEY_PASSPHRASE",
        ) from None
    finally:
        if read_fd >= 0:
            os.close(read_fd)
    stderr = proc.stderr.decode("utf-8", "replace")
    created = [
        line.split() for line in stderr.splitlines() if line.startswith("[GNUPG:] SIG_CREATED ")
    ]
    if proc.returncode != 0 or not created:
        raise _gpg_problem(signer, stderr)
    fingerprint = created[-1][-1] if len(created[-1]) >= 8 else ""
    return proc.stdout.decode("utf-8", "replace"), fingerprint


def _gpg_problem(signer: Signer, stderr: str) -> UsageError:
    where = f"the GPG signing key {signer.key!r} (git.signing_key)"
    home = signer.environ.get("GNUPGHOME") or "~/.gnupg"
    status = {line.split()[1] for line in stderr.splitlines() if line.startswith("[GNUPG:] ")}
    if "BAD_PASSPHRASE" in status or "Bad passphrase" in stderr:
        return UsageError(
            f"{where}: the passphrase is wrong; nothing was changed",
            hint="set GLUE_SIGNING_KEY_PASSPHRASE to the key's passphrase",
        )
    if "No secret key" in stderr or "INV_SGNR" in status:
        return UsageError(
            f"{where}: no such secret key in the GnuPG keyring ({home}); nothing was changed",
            hint="import the key there (gpg --import), point GNUPGHOME at its keyring, or "
            "fix git.signing_key",
        )
    if "PINENTRY_LAUNCHED" in status or "passphrase" in stderr.lower() or "input" in stderr:
        return UsageError(
            f"{where} is protected by a passphrase; nothing was changed",
            hint="set GLUE_SIGNING_KEY_PASSPHRASE to it",
        )
    gpg_lines = [line for line in stderr.splitlines() if line.startswith("gpg: ")]
    reason = redact.redact(gpg_lines[-1][5:].strip())[:200] if gpg_lines else "no reason given"
    return UsageError(
        f"gpg could not sign with {where} ({reason}); nothing was changed",
        hint=f"check that gpg --local-user {signer.key} --sign works with GNUPGHOME={home}",
    )
