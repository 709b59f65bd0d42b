"""``glue verify-history``: are the commits that touch glue's files signed, and do their
trailers tell the truth?

Every commit reachable from the tip and not from ``--since`` (all of them when it is
not given) is looked at; those that change one of glue's files against their first
parent (``glue.yaml``, ``glue-holds.yaml``, every values file glue.yaml names, as the
commit's own glue.yaml, its parent's and the tip's name them) or carry a ``Glue-*``
trailer are checked:

- **Signature**: git's verdict (``git log --format=%G?``, the check ``git
  verify-commit`` makes) with ``gpg.ssh.allowedSignersFile`` set to
  ``--allowed-signers`` and the GnuPG keyring of ``GNUPGHOME``. An SSH signature
  passes when its key is in the allowed signers file (``G``); a GPG one when its
  key's fingerprint (or the primary key's) is one ``--gpg-key`` names and the
  signature is good (``G``, or ``U``: good, the key's owner not certified in the
  keyring). A merge commit passes unsigned when it takes each of glue's files it
  changes from one of its parents: the commits it brings in are checked themselves.
  That is how a merge request merged with a merge commit (by the forge, unsigned or
  signed with the forge's key) keeps passing.
- **Trailers**: ``Glue-*`` trailers must be the message's last paragraph as glue
  writes them (:func:`~gitops_glue.repo.commit.glue_trailers`), and say what the
  commit did: one ``Glue-Environment`` naming an environment of the commit's
  glue.yaml, services it lists, each ``Glue-Tag`` the tag the service has in that
  environment after the commit, ``Glue-Previous-Tag`` the one it had before (in the
  first parent), ``Glue-Hold``/``Glue-Unhold``/``Glue-Reject`` what glue-holds.yaml
  holds after the commit.

It only reads: the checkout is not written to, and no hook, cluster or network is used.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue.errors import GlueError, OperationError, UsageError
from gitops_glue.files import CONFIG_NAME

if TYPE_CHECKING:
    from gitops_glue.config import GlueConfig
    from gitops_glue.repo.gitrepo import AuditHistory, LoggedCommit
    from gitops_glue.repo.versions import Reader

#: Seconds ``git log`` may take to check the signatures (it runs ssh-keygen or gpg
#: once per signed commit).
GIT_TIMEOUT = 600.0


@dataclass(frozen=True)
class AuditRequest:
    root: Path  # the folder of glue.yaml (in a checkout)
    rev: str = "HEAD"
    since: str | None = None  # None: from the first commit
    allowed_signers: Path | None = None  # git's allowed signers file (SSH keys)
    gpg_keys: tuple[str, ...] = ()  # fingerprints (or long key ids) of allowed GPG keys
    environ: Mapping[str, str] = field(default_factory=dict)  # GNUPGHOME, PATH


@dataclass(frozen=True)
class Signature:
    """git's verdict on a commit's signature (``%G?`` and the key it names)."""

    status: str  # G, B, U, X, Y, R, E, N
    key: str = ""  # %GK: the key id (GPG) or the SHA256 fingerprint (SSH)
    fingerprint: str = ""  # %GF
    primary: str = ""  # %GP: the primary key's fingerprint (GPG)
    signer: str = ""  # %GS: the signer's name (GPG user id, SSH principal)

    @property
    def kind(self) -> str:
        if self.status == "N":
            return ""
        return "ssh" if self.key.startswith("SHA256:") else "gpg"

    def to_json(self) -> dict[str, str]:
        return {
            "status": self.status,
            "kind": self.kind,
            "key": self.fingerprint or self.key,
            "signer": self.signer,
        }


@dataclass(frozen=True)
class Failure:
    """A checked commit that does not pass, and why."""

    commit: LoggedCommit
    signature: Signature
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        c = self.commit
        return {
            "commit": c.sha,
            "title": c.title,
            "author": c.author,
            "date": c.committed,
            "signature": self.signature.to_json(),
            "problems": list(self.problems),
        }

    def lines(self) -> list[str]:
        c = self.commit
        head = f"{c.sha[:12]} {c.committed[:10]} {c.title} ({c.author})"
        return [head, *(f"  {p}" for p in self.problems)]


@dataclass(frozen=True)
class AuditReport:
    tip: str
    since: str | None
    walked: int  # commits in the range
    checked: int  # commits that touch glue's files or carry glue trailers
    failures: tuple[Failure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "tip": self.tip,
            "since": self.since,
            "commits": self.walked,
            "checked": self.checked,
            "failed": [f.to_json() for f in self.failures],
        }

    def text(self) -> str:
        lines = [line for f in self.failures for line in f.lines()]
        since = f"since {self.since[:12]}" if self.since else "from the first commit"
        verdict = (
            f"{len(self.failures)} of {self.checked} failed"
            if self.failures
            else f"all {self.checked} signed and consistent"
        )
        lines.append(
            f"{self.checked} of {self.walked} commits {since} to {self.tip[:12]} touch "
            f"glue's files or carry its trailers: {verdict}"
        )
        return "\n".join(lines)


def verify_history(req: AuditRequest) -> AuditReport:
    """Check the history ``req`` names; see the module's docstring."""
    from gitops_glue.repo.gitrepo import AuditHistory

    if req.allowed_signers is None and not req.gpg_keys:
        raise UsageError(
            "say which keys may sign: --allowed-signers FILE (SSH keys) and/or --gpg-key "
            "FINGERPRINT (GPG keys in GNUPGHOME's keyring)",
            hint="the allowed signers file is git's format: 'glue-bot@example.com "
            "ssh-ed25519 AAAA...' per line (gpg.ssh.allowedSignersFile)",
        )
    signers = _allowed_signers(req.allowed_signers)
    allowed_gpg = tuple(_gpg_id(key) for key in req.gpg_keys)
    history = AuditHistory(req.root)
    tip = history.resolve(req.rev)
    if tip is None:
        raise UsageError(f"--rev {req.rev!r}: no such commit in {history.workdir}")
    since = None
    if req.since is not None:
        since = history.resolve(req.since)
        if since is None:
            raise UsageError(
                f"--since {req.since!r}: no such commit in {history.workdir}",
                hint="fetch the whole history (git fetch --unshallow; fetch-depth: 0 in CI)"
                if history.shallow
                else None,
            )
        if not history.is_ancestor(since, tip):
            raise UsageError(
                f"--since {req.since!r} is not in the history of {req.rev}",
                hint="give a commit, tag or branch that the checked history starts from",
            )
    elif history.shallow:
        raise UsageError(
            "this clone is shallow: its first commits are missing, so the history cannot "
            "be checked from the first commit",
            hint="fetch the whole history (git fetch --unshallow; fetch-depth: 0 in CI), or "
            "give --since a commit the clone has",
        )
    commits = history.commits(tip, since)
    audit = _Audit(history, tip)
    checked = [c for c in commits if audit.concerns(c)]
    signatures = _signatures(history.workdir, [c.sha for c in checked], signers, req.environ)
    failures = []
    for c in checked:
        sig = signatures.get(c.sha, Signature("N"))
        problems = [*audit.signature_problems(c, sig, allowed_gpg), *audit.trailer_problems(c)]
        if problems:
            failures.append(Failure(c, sig, tuple(problems)))
    return AuditReport(tip, since, len(commits), len(checked), tuple(failures))


def _allowed_signers(path: Path | None) -> str:
    """The allowed signers file as git is told (``/dev/null``: no SSH key is allowed)."""
    if path is None:
        return "/dev/null"
    if not path.is_file():
        raise UsageError(
            f"--allowed-signers {path}: no such file",
            hint="git's allowed signers file: 'glue-bot@example.com ssh-ed25519 AAAA...' per line",
        )
    return str(path.resolve())


def _gpg_id(key: str) -> str:
    """A ``--gpg-key`` as git prints fingerprints: upper-case hex, no blanks."""
    value = "".join(key.split()).upper().removeprefix("0X")
    if len(value) < 16 or any(c not in "0123456789ABCDEF" for c in value):
        raise UsageError(
            f"--gpg-key {key!r}: give the key's fingerprint (40 hex digits) or long key id (16)",
            hint="gpg --list-keys --with-colons shows it (the fpr line)",
        )
    return value


def _signatures(
    workdir: Path, shas: Sequence[str], allowed_signers: str, environ: Mapping[str, str]
) -> dict[str, Signature]:
    """git's verdict on each commit's signature, in one ``git log``."""
    if not shas:
        return {}
    args = [
        "git",
        "-c",
        f"gpg.ssh.allowedSignersFile={allowed_signers}",
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "--no-show-signature",
        "--format=%H%x00%G?%x00%GK%x00%GF%x00%GP%x00%GS%x1e",
    ]
    try:
        proc = subprocess.run(
            args,
            cwd=workdir,
            input="\n".join(shas) + "\n",
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(environ) or None,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise OperationError(
            "git is not installed; glue verify-history asks git to check the signatures",
            hint="install git (and ssh-keygen for SSH signatures, gpg for GPG ones)",
        ) from None
    except subprocess.TimeoutExpired:
        raise OperationError(
            f"git did not check the signatures within {GIT_TIMEOUT:.0f} s"
        ) from None
    if proc.returncode != 0:
        raise OperationError(f"git log failed: {proc.stderr.strip()[-500:]}")
    out: dict[str, Signature] = {}
    for record in proc.stdout.split("\x1e"):
        fields = record.strip("\n").split("\x00")
        if len(fields) == 6:
            sha, status, key, fingerprint, primary, signer = fields
            out[sha] = Signature(status or "N", key, fingerprint, primary, signer)
    return out


_VERDICTS = {
    "N": "not signed",
    "B": "bad signature: the commit was changed after it was signed, or the signature is forged",
    "X": "the signature has expired",
    "Y": "signed with a key that has expired",
    "R": "signed with a revoked key",
}


class _Audit:
    """What one run knows: the history, and glue.yaml as each commit has it."""

    def __init__(self, history: AuditHistory, tip: str) -> None:
        self.history = history
        self.configs: dict[str, GlueConfig | str | None] = {}
        self.tip_files = self.glue_files(tip)

    def config(self, sha: str) -> GlueConfig | str | None:
        """The commit's glue.yaml (a string: why it does not load; None: there is none)."""
        from gitops_glue.config import parse_config

        blob = self.history.blob_id(sha, CONFIG_NAME)
        if blob is None:
            return None
        if blob not in self.configs:
            try:
                text = self.history.reader(sha)(CONFIG_NAME)
                self.configs[blob] = parse_config(text or "", CONFIG_NAME)
            except GlueError as exc:
                self.configs[blob] = exc.message
        return self.configs[blob]

    def glue_files(self, sha: str) -> set[str]:
        from gitops_glue.repo import holds, versions

        files = {CONFIG_NAME, holds.PATH}
        config = self.config(sha)
        if config is not None and not isinstance(config, str):
            for env in config.environments:
                files.update(versions.files_of(config, env))
        return files

    def touched(self, c: LoggedCommit) -> set[str]:
        """glue's files commit ``c`` changes against its first parent."""
        files = self.tip_files | self.glue_files(c.sha)
        if c.parents:
            files |= self.glue_files(c.parents[0])
        return self.history.changed(c.sha) & files

    def concerns(self, c: LoggedCommit) -> bool:
        from gitops_glue.repo.commit import parse_trailers

        return bool(self.touched(c)) or _has_glue_trailer(parse_trailers(c.message))

    # ------------------------------------------------------------------ signature

    def signature_problems(
        self, c: LoggedCommit, sig: Signature, allowed_gpg: Sequence[str]
    ) -> list[str]:
        if _allowed(sig, allowed_gpg):
            return []
        if len(c.parents) > 1 and self._takes_from_parents(c):
            return []
        if sig.status in _VERDICTS:
            return [_VERDICTS[sig.status]]
        if sig.kind == "ssh":
            if sig.status == "U":
                return [
                    f"signed with the SSH key {sig.fingerprint or sig.key}, which the allowed "
                    "signers file does not list"
                ]
            return [f"the SSH signature cannot be checked (key {sig.key})"]
        if sig.status == "E":
            return [
                f"signed with the GPG key {sig.key}, which is not in the keyring (GNUPGHOME) "
                "to check it"
            ]
        who = f" ({sig.signer})" if sig.signer else ""
        return [
            f"signed with the GPG key {sig.fingerprint or sig.key}{who}, which --gpg-key does "
            "not allow"
        ]

    def _takes_from_parents(self, c: LoggedCommit) -> bool:
        """A merge whose every changed glue file is as one of its parents has it."""
        for rel in self.touched(c):
            mine = self.history.blob_id(c.sha, rel)
            if all(self.history.blob_id(p, rel) != mine for p in c.parents):
                return False
        return True

    # ------------------------------------------------------------------ trailers

    def trailer_problems(self, c: LoggedCommit) -> list[str]:
        from gitops_glue.repo.commit import glue_trailers, parse_trailers

        if not _has_glue_trailer(parse_trailers(c.message)):
            return []
        trailers = glue_trailers(c.message)
        if trailers is None:
            return [
                "its Glue-* trailers are not the message's last paragraph of plain "
                "'Key: value' lines, as glue writes them"
            ]
        config = self.config(c.sha)
        if config is None:
            return [f"carries Glue-* trailers, but has no {CONFIG_NAME}"]
        if isinstance(config, str):
            return [f"carries Glue-* trailers, but its {CONFIG_NAME} does not load: {config}"]
        problems: list[str] = []
        try:
            problems += self._version_problems(c, config, trailers)
            problems += self._holds_problems(c, config, trailers)
        except GlueError as exc:
            problems.append(f"cannot read glue's files at this commit: {exc.message}")
        return problems

    def _version_problems(
        self, c: LoggedCommit, config: GlueConfig, trailers: Sequence[tuple[str, str]]
    ) -> list[str]:
        from gitops_glue.repo import versions

        envs = [v for k, v in trailers if k == "Glue-Environment"]
        moves = _service_moves(trailers)
        if not envs:
            return ["Glue-Service without Glue-Environment"] if moves else []
        if len(envs) > 1:
            return [f"more than one Glue-Environment: {', '.join(envs)}"]
        names = {e.name: e for e in config.environments}
        problems: list[str] = []
        for key in ("Glue-Environment", "Glue-Source-Environment"):
            for value in (v for k, v in trailers if k == key):
                if value not in names:
                    problems.append(f"{key}: {value} is not an environment of {CONFIG_NAME}")
        if envs[0] not in names:
            return problems
        env = names[envs[0]]
        after = self.history.reader(c.sha)
        before: Reader | None = self.history.reader(c.parents[0]) if c.parents else None
        for service, tag, previous in moves:
            if service not in config.services:
                problems.append(f"Glue-Service: {service} is not a service of {CONFIG_NAME}")
                continue
            if tag is not None:
                found = versions.tag_of(after, config, env, service)
                if found != tag:
                    problems.append(
                        f"Glue-Tag says {service} is {tag} in {env.name}, but after this "
                        f"commit {env.name}'s files have {found or 'no tag'}"
                    )
            if previous is not None and before is not None:
                had = versions.tag_of(before, config, env, service)
                if had != previous:
                    problems.append(
                        f"Glue-Previous-Tag says {service} was {previous} in {env.name}, but "
                        f"before this commit {env.name}'s files had {had or 'no tag'}"
                    )
        return problems

    def _holds_problems(
        self, c: LoggedCommit, config: GlueConfig, trailers: Sequence[tuple[str, str]]
    ) -> list[str]:
        from gitops_glue.repo import holds

        wanted = [(k, v) for k, v in trailers if k in ("Glue-Hold", "Glue-Unhold", "Glue-Reject")]
        if not wanted:
            return []
        ledger = holds.parse(self.history.reader(c.sha)(holds.PATH))
        problems: list[str] = []
        for key, value in wanted:
            first, _, second = value.partition(" ")
            if key == "Glue-Hold" and ledger.hold(first, second) is None:
                problems.append(f"Glue-Hold: {value}, but {holds.PATH} holds no such hold")
            elif key == "Glue-Unhold" and ledger.hold(first, second) is not None:
                problems.append(f"Glue-Unhold: {value}, but {holds.PATH} still holds it")
            elif key == "Glue-Reject" and ledger.rejection(first, second) is None:
                problems.append(f"Glue-Reject: {value}, but {holds.PATH} does not reject it")
        return problems


def _has_glue_trailer(trailers: Sequence[tuple[str, str]]) -> bool:
    return any(k.lower().startswith("glue-") for k, _v in trailers)


def _allowed(sig: Signature, allowed_gpg: Sequence[str]) -> bool:
    if sig.kind == "ssh":
        return sig.status == "G"
    if sig.kind == "gpg" and sig.status in ("G", "U"):
        prints = [p.upper() for p in (sig.fingerprint, sig.primary) if p]
        return any(p.endswith(key) for p in prints for key in allowed_gpg)
    return False


def _service_moves(
    trailers: Sequence[tuple[str, str]],
) -> list[tuple[str, str | None, str | None]]:
    """(service, Glue-Tag, Glue-Previous-Tag) per ``Glue-Service`` trailer, in order: the
    tags that follow a service, up to the next one, are its."""
    out: list[tuple[str, str | None, str | None]] = []
    for key, value in trailers:
        if key == "Glue-Service":
            out.append((value, None, None))
        elif key == "Glue-Tag" and out:
            out[-1] = (out[-1][0], value, out[-1][2])
        elif key == "Glue-Previous-Tag" and out:
            out[-1] = (out[-1][0], out[-1][1], value)
    return out
