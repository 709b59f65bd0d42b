"""``glue bump-tag --remote``: edit a deployment repo that is not checked out.

Fetch only the branch tip (shallow), run the same edit as a local bump on
that tree, commit as the bot, push. When the push is refused, ask the remote
where the branch is: if it moved since our fetch we lost a race, so fetch the
new tip, run the edit again on it (never a textual patch) and push again,
with bounded, jittered back-off; if it did not move, the refusal is final
(protected branch, hook, permissions) and is reported at once with the
server's message. Deciding by the branch position rather than by the error's
wording works for every server (GitLab says "incorrect old value provided").
A push whose connection dropped after the server updated the branch is found
the same way (the branch is at our commit) and reported as landed.

Every fetch and push ends within ``GLUE_NETWORK_TIMEOUT`` seconds (libgit2's
connect and read timeouts, and a watchdog over the whole operation). The
temporary repository (``glue-bump-*``) and SSH home (``glue-ssh-*``) live in
the system temp folder and are removed on every exit path; folders of these
names (and ``glue-sign-*``, a signing key's copy: :mod:`gitops_glue.repo.signing`)
that a killed run left behind (owned by this user, untouched for an hour) are
removed by the next remote run.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

from gitops_glue import network, redact
from gitops_glue.errors import OperationError, UsageError
from gitops_glue.repo.commit import Change, CommitTarget, D, Landed, Plan, View

if TYPE_CHECKING:
    import pygit2

    from gitops_glue.config import GlueConfig
    from gitops_glue.repo.signing import Signer
    from gitops_glue.repo.versions import Reader

Progress = Callable[[str], None]

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class Auth:
    """How to authenticate to the remote. Secrets are registered for masking."""

    ssh_key: str | None = None  # private key text (OpenSSH or PEM)
    ssh_key_passphrase: str | None = None
    known_hosts: str | None = None  # known_hosts lines for the server
    insecure_skip_host_key_check: bool = False
    token: str | None = None  # HTTPS token
    username: str = "x-access-token"  # HTTPS user name that goes with the token

    def __post_init__(self) -> None:
        redact.register(self.ssh_key, self.ssh_key_passphrase, self.token)


def check_branch_name(branch: str) -> None:
    """Refuse a ``--branch`` git would refuse (``git check-ref-format --branch``): before
    any network work, as bad input (exit 2)."""
    problem = branch_name_problem(branch)
    if problem:
        raise UsageError(
            f"--branch {branch!r}: not a valid git branch name: {problem}",
            hint="give the deployment repository's branch, like main "
            "(see git check-ref-format for the rules)",
        )


def branch_name_problem(branch: str) -> str | None:
    """What makes ``branch`` an invalid branch name (git's check-ref-format rules), or None."""
    if not branch:
        return "it is empty"
    if branch.startswith("-"):
        return "it starts with -"
    if branch in ("HEAD", "@"):
        return f"{branch} is not a branch name"
    bad = re.search(r"[\x00-\x20\x7f~^:?*\[\\]", branch)
    if bad:
        return f"it contains {bad.group()!r}"
    if ".." in branch:
        return "it contains .."
    if "@{" in branch:
        return "it contains @{"
    if branch.startswith("/") or branch.endswith("/") or "//" in branch:
        return "it starts or ends with /, or contains //"
    if branch.endswith("."):
        return "it ends with ."
    for part in branch.split("/"):
        if part.startswith("."):
            return f"the part {part!r} starts with ."
        if part.endswith(".lock"):
            return f"the part {part!r} ends with .lock"
    return None


@dataclass(frozen=True)
class RemoteSpec:
    url: str
    branch: str = "main"
    max_attempts: int = 20
    base_delay: float = 0.05  # smallest back-off unit; see backoff_delay
    timeout: float = network.DEFAULT_TIMEOUT  # seconds: the bound on each fetch and push

    def __post_init__(self) -> None:
        check_branch_name(self.branch)


TEMP_PREFIXES = ("glue-bump-", "glue-ssh-", "glue-sign-")
STALE_AFTER = 3600.0  # seconds: a temp folder untouched this long belongs to a killed run


def remove_stale_temp_folders(now: float | None = None) -> list[str]:
    """Remove ``glue-bump-*``/``glue-ssh-*``/``glue-sign-*`` folders that killed runs left in
    the temp folder.

    Only real folders (not links) owned by this user and not modified for
    :data:`STALE_AFTER` seconds: a glue still running keeps its folders fresh.
    Returns the names removed.
    """
    base = tempfile.gettempdir()
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIXES):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if now - info.st_mtime < STALE_AFTER:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    return removed


def _hashed_host_matches(pattern: str, name: str) -> bool:
    """OpenSSH's hashed entry ``|1|salt|hash``: HMAC-SHA1 of ``name`` keyed by ``salt``."""
    import base64
    import binascii
    import hashlib
    import hmac

    parts = pattern.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        digest = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(mac, digest)


def _host_patterns_match(field: str, name: str) -> bool:
    """Does a known_hosts host field match ``name`` the way OpenSSH matches it?

    Comma-separated patterns with ``*``/``?`` wildcards, case-insensitive; a
    matching ``!pattern`` vetoes the line; ``|1|...`` entries are hashed names.
    """
    matched = False
    for entry in field.split(","):
        negated = entry.startswith("!")
        pattern = entry[1:] if negated else entry
        if pattern.startswith("|"):
            hit = _hashed_host_matches(pattern, name)
        else:
            # Only * and ? are wildcards ("[host]:port" is literal, unlike fnmatch's).
            regex = "".join(
                ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
            )
            hit = re.fullmatch(regex, name, re.I | re.S) is not None
        if hit and negated:
            return False
        matched = matched or hit
    return matched


def known_hosts_for(text: str, host: str, port: int | None) -> str:
    """The lines of ``text`` that OpenSSH would use for ``host``:``port``, in libssh2's terms.

    OpenSSH looks a server up as ``host`` on port 22 and only as ``[host]:port`` on
    any other port; libssh2 (libgit2's SSH) also accepts a plain ``host`` line for
    any port. So only the lines OpenSSH would match are kept, each rewritten to
    name exactly that host. Marker lines (``@cert-authority``, ``@revoked``) are
    dropped: libgit2 cannot use certificates, and a revoked key is not trusted by
    being left out.
    """
    name = host if port in (None, 22) else f"[{host}]:{port}"
    kept: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith(("#", "@")):
            continue
        if _host_patterns_match(fields[0], name):
            kept.append(" ".join([name, *fields[1:]]))
    return "\n".join(kept)


BACKOFF_CAP = 4.0  # seconds: the longest single wait between attempts
BACKOFF_SPREAD = 4  # round trips the first wait is spread over (measured best of 1, 2, 4, 8)


def backoff_delay(attempt: int, cycle: float, base: float) -> float:
    """How long to wait after the ``attempt``-th push lost a race.

    Exponential back-off with full jitter, in units of one fetch-and-push
    round trip (``cycle``, as measured by this process): the server takes one
    push per round trip, so contenders should spread out over several of them
    rather than arrive together again, and every attempt that loses costs the
    server two more connections. benchmarks/bump_remote.py races 16 bumps.
    """
    unit = max(base, cycle) * BACKOFF_SPREAD
    return random.uniform(0, min(BACKOFF_CAP, unit * 2 ** (attempt - 1)))  # noqa: S311


def is_ssh_url(url: str) -> bool:
    return url.startswith("ssh://") or ("://" not in url and _SCP_LIKE.match(url) is not None)


def host_of(url: str) -> tuple[str, int | None]:
    """Host and port of an SSH URL (``ssh://user@host:port/path`` or ``user@host:path``)."""
    from urllib.parse import urlsplit

    if url.startswith("ssh://"):
        parts = urlsplit(url)
        return parts.hostname or "", parts.port
    match = _SCP_LIKE.match(url)
    return (match.group("host"), None) if match else ("", None)


@contextlib.contextmanager
def _ssh_home(known_hosts: str | None, url: str) -> Iterator[None]:
    """Point libgit2's home at a temp folder whose ``.ssh/known_hosts`` has only our lines.

    libgit2 checks SSH host keys against ``HOME/.ssh/known_hosts`` and hands the
    verdict to the certificate callback. It reads ``$HOME`` once at import, so
    the home is switched with ``SET_HOMEDIR`` (process-wide) and restored after.
    """
    import pygit2

    home = tempfile.mkdtemp(prefix="glue-ssh-")
    saved = pygit2.option(pygit2.enums.Option.GET_HOMEDIR)
    try:
        ssh_dir = Path(home, ".ssh")
        ssh_dir.mkdir(mode=0o700)
        fd = os.open(ssh_dir / "known_hosts", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(known_hosts_for(known_hosts or "", *host_of(url)) + "\n")
        pygit2.option(pygit2.enums.Option.SET_HOMEDIR, home)
        yield
    finally:
        pygit2.option(pygit2.enums.Option.SET_HOMEDIR, saved or "")
        shutil.rmtree(home, ignore_errors=True)


class _Callbacks:
    """pygit2 RemoteCallbacks factory that remembers what the server said."""

    def __init__(self, spec: RemoteSpec, auth: Auth) -> None:
        self.spec = spec
        self.auth = auth
        self.host_key_rejected = False
        self.used_key = False
        self.rejections: dict[str, str] = {}
        self.sideband: list[str] = []  # what the server's hooks printed

    def make(self) -> pygit2.RemoteCallbacks:
        import pygit2

        outer = self

        class Callbacks(pygit2.RemoteCallbacks):
            auth_attempts = 0  # per connection: each operation makes new callbacks

            def credentials(
                self, url: str, username_from_url: str | None, allowed_types: Any
            ) -> Any:
                self.auth_attempts += 1
                if self.auth_attempts > 3:
                    raise OperationError(_auth_failed(outer.spec.url))
                types = pygit2.enums.CredentialType
                if allowed_types & types.SSH_KEY and outer.auth.ssh_key:
                    outer.used_key = True
                    return pygit2.KeypairFromMemory(
                        username_from_url or "git",
                        None,
                        outer.auth.ssh_key,
                        outer.auth.ssh_key_passphrase or "",
                    )
                if allowed_types & types.USERPASS_PLAINTEXT and outer.auth.token:
                    return pygit2.UserPass(
                        username_from_url or outer.auth.username, outer.auth.token
                    )
                raise UsageError(_no_credentials(url, allowed_types, types))

            def certificate_check(self, certificate: Any, valid: bool, host: bytes | str) -> bool:
                # Must be overridden: pygit2's default accepts any SSH host key.
                if valid or outer.auth.insecure_skip_host_key_check:
                    return True
                outer.host_key_rejected = True
                return False

            def sideband_progress(self, string: str) -> None:
                outer.sideband.append(string)

            def push_update_reference(self, refname: str, message: str | None) -> None:
                if message:
                    outer.rejections[refname] = message

        return Callbacks()


def _auth_failed(url: str) -> str:
    return f"authentication to {redact.mask_url(url)} failed: the server refused the key or token"


def _no_credentials(url: str, allowed: Any, types: Any) -> str:
    if allowed & types.SSH_KEY:
        return (
            f"{redact.mask_url(url)} needs an SSH key: pass --ssh-key-file FILE or set "
            "GLUE_SSH_KEY to the private key text"
        )
    return (
        f"{redact.mask_url(url)} needs credentials: set GLUE_GIT_TOKEN (HTTPS) or use an "
        "SSH URL with a deploy key"
    )


def host_key_error(url: str) -> UsageError:
    host, port = host_of(url)
    entry = f"[{host}]:{port}" if port and port != 22 else host
    return UsageError(
        f"the SSH host key of {entry} is unknown or changed: refusing to connect",
        hint=f"supply the server's known_hosts line with --known-hosts FILE or "
        f"GLUE_SSH_KNOWN_HOSTS (get it with: ssh-keyscan{' -p ' + str(port) if port else ''} "
        f"{host}, and check it against the host's published fingerprint)",
    )


class _Session:
    """A temporary bare repository talking to one remote.

    :meth:`sync` fetches the branch tip and, at the same time, opens the push
    connection (SSH handshake, authentication and the server's reference
    advertisement), so a bump waits for one round of connection set-up, not
    two. The push uses its own remote object, looked up before the thread
    starts; connecting touches only that object and the transport, never the
    repository the fetch writes to. The push itself runs on the repository
    that fetched, the one that knows where the shallow history ends.
    """

    def __init__(
        self,
        spec: RemoteSpec,
        auth: Auth,
        workdir: str,
        *,
        history: bool = False,
        push_branch: str | None = None,
    ) -> None:
        import pygit2

        self.history = history
        self.spec = spec
        self.auth = auth
        self.callbacks = _Callbacks(spec, auth)
        self.repo = pygit2.init_repository(workdir, bare=True)
        self.remote = self.repo.remotes.create("origin", spec.url)
        self.tracking = f"refs/remotes/origin/{spec.branch}"
        #: Where commits go: the branch itself, or (merge-request mode) a review branch
        #: built on it, which every fetch brings along when it exists.
        self.push_branch = push_branch or spec.branch
        self.push_tracking = f"refs/remotes/origin/{self.push_branch}"
        self.local = spec.url.startswith(("file://", "/", "."))
        self._pusher: pygit2.remotes.Remote | None = None
        self.advertised: str | None = None  # the push branch's tip the push connection saw

    def _wrap(self, action: str, exc: Exception) -> Exception:
        if isinstance(exc, (UsageError, OperationError)):
            return exc
        if self.callbacks.host_key_rejected:
            return host_key_error(self.spec.url)
        text = redact.redact(str(exc))
        if "timed out" in text.lower():
            return OperationError(
                f"{action} {redact.mask_url(self.spec.url)} did not answer within "
                f"{network.span(self.spec.timeout)} ({text})",
                hint=f"{network.ENV_VAR} sets this deadline",
            )
        if self.callbacks.used_key and "private key" in text.lower():
            # libssh2 says "Unsupported private key file format" for a wrong passphrase too.
            if key_is_encrypted(self.auth.ssh_key or ""):
                return UsageError(
                    "wrong passphrase for the deploy key (GLUE_SSH_KEY_PASSPHRASE)",
                    hint="set GLUE_SSH_KEY_PASSPHRASE to the key's passphrase",
                )
            return UsageError(
                "the deploy key is not a private key glue can read",
                hint="use an OpenSSH or PEM private key (ed25519, ECDSA or RSA)",
            )
        if "authentication" in text.lower() or "credentials" in text.lower():
            return OperationError(_auth_failed(self.spec.url) + f" ({text})")
        return OperationError(f"{action} {redact.mask_url(self.spec.url)} failed: {text}")

    def fetch(self) -> pygit2.Commit:
        """Shallow-fetch the branch tip and return it."""
        import pygit2

        refspecs = [f"+refs/heads/{self.spec.branch}:{self.tracking}"]
        if self.push_branch != self.spec.branch:
            # Gone from the remote (merged and deleted): no stale copy stays behind.
            with contextlib.suppress(KeyError):
                self.repo.references.delete(self.push_tracking)
            refspecs.append(f"+refs/heads/{self.push_branch}:{self.push_tracking}")
        # libgit2's local transport cannot fetch shallow; network remotes can.
        try:
            network.run_with_deadline(
                lambda: self.remote.fetch(
                    refspecs,
                    callbacks=self.callbacks.make(),
                    depth=0 if self.local or self.history else 1,
                ),
                self.spec.timeout,
                f"fetching from {redact.mask_url(self.spec.url)}",
            )
        except network.DeadlineExceeded:
            raise
        except Exception as exc:
            raise self._wrap("fetching from", exc) from None
        try:
            return self.repo.references[self.tracking].peel(pygit2.Commit)
        except KeyError:
            raise UsageError(
                f"the remote has no branch {self.spec.branch!r}",
                hint="pass --branch with the deployment repository's branch",
            ) from None

    def push_branch_tip(self) -> pygit2.Commit | None:
        """The push branch's tip as the last fetch saw it (None: no such branch)."""
        import pygit2

        try:
            return self.repo.references[self.push_tracking].peel(pygit2.Commit)
        except KeyError:
            return None

    def sync(self) -> pygit2.Commit:
        """:meth:`fetch`, while a second thread opens the push connection."""
        import threading

        if self.local:  # nothing to overlap: no network round trips
            return self.fetch()
        self._disconnect_pusher()
        pusher = self.repo.remotes["origin"]
        thread = threading.Thread(target=self._connect_pusher, args=(pusher,), daemon=True)
        thread.start()
        try:
            return self.fetch()
        finally:
            thread.join(self.spec.timeout)

    def _connect_pusher(self, pusher: pygit2.remotes.Remote) -> None:
        """Open the push connection and note where the server says the branch is.

        Any failure only means :meth:`push` connects on its own and reports it.
        """
        from pygit2.ffi import C  # libgit2's GIT_DIRECTION_PUSH; pygit2 has no enum for it

        try:
            pusher.connect(self.callbacks.make(), direction=C.GIT_DIRECTION_PUSH)
            ref = f"refs/heads/{self.push_branch}"
            self.advertised = next(
                (str(h.oid) for h in pusher.list_heads(connect=False) if h.name == ref), None
            )
            self._pusher = pusher
        except Exception:  # push() connects again and says what is wrong
            self._pusher = None
            self.advertised = None

    def _disconnect_pusher(self) -> None:
        self._pusher = None  # libgit2 closes the connection when the remote is freed
        self.advertised = None

    def push_is_stale(self, tip: pygit2.Commit | None) -> bool:
        """True when the open push connection saw the push branch somewhere else than
        ``tip`` (None: the branch was not there).

        Such a push cannot succeed (the server compares the branch with what it
        advertised), so it counts as a lost race without sending anything.
        """
        return self._pusher is not None and self.advertised != (str(tip.id) if tip else None)

    def push(self, commit: pygit2.Oid, *, force: bool = False) -> str | None:
        """Push ``commit`` to the push branch; the server's refusal message, or None.

        ``force`` (a review branch rebuilt on a new base) replaces the branch; the
        server still refuses it when the branch moved since the push connection saw
        it, because git's push names the old tip it replaces."""
        local = "refs/heads/glue-push"
        self.repo.references.create(local, commit, force=True)
        self.callbacks.rejections.clear()
        self.callbacks.sideband.clear()
        remote = self._pusher or self.remote
        self._disconnect_pusher()  # a connection serves one push
        try:
            network.run_with_deadline(
                lambda: remote.push(
                    [f"{'+' if force else ''}{local}:refs/heads/{self.push_branch}"],
                    callbacks=self.callbacks.make(),
                ),
                self.spec.timeout,
                f"pushing to {redact.mask_url(self.spec.url)}",
            )
        except network.DeadlineExceeded as exc:
            return redact.redact(str(exc))  # the branch's position tells whether it landed
        except Exception as exc:
            wrapped = self._wrap("pushing to", exc)
            if isinstance(wrapped, UsageError) or "authentication" in str(wrapped):
                raise wrapped from None
            return redact.redact(str(exc))
        # A declined push does not raise: libgit2 reports it per reference.
        rejected = self.callbacks.rejections.get(f"refs/heads/{self.push_branch}")
        if not rejected:
            return None
        said = " ".join("".join(self.callbacks.sideband).split())
        return redact.redact(f"{rejected}: {said}" if said else rejected)


def config_at(reader: Reader, branch: str) -> GlueConfig:
    """The ``glue.yaml`` of a fetched tree."""
    from gitops_glue.config import parse_config
    from gitops_glue.files import CONFIG_NAME

    config_text = reader(CONFIG_NAME)
    if config_text is None:
        raise UsageError(
            f"the remote branch {branch!r} has no {CONFIG_NAME} at its root",
            hint="is --remote the deployment repository?",
        )
    return parse_config(config_text, CONFIG_NAME)


def read_remote_config(spec: RemoteSpec, auth: Auth) -> GlueConfig:
    """The ``glue.yaml`` at the tip of the remote branch (a shallow fetch)."""
    from gitops_glue.repo import gitrepo

    with Connection(spec, auth, push=False) as conn:
        tip = conn.tip()
        return config_at(gitrepo.tree_reader(conn.session.repo, tip.tree), spec.branch)


class Connection:
    """A temporary clone of the remote branch whose first fetch starts at once.

    The fetch (and, with ``push``, the push connection: see :meth:`_Session.sync`)
    runs on a background thread from construction on, so a caller can do its
    own slow start-up work (imports, reading options) while the network round
    trips are under way, and collect the tip with :meth:`tip`.
    """

    def __init__(
        self,
        spec: RemoteSpec,
        auth: Auth,
        *,
        push: bool = True,
        history: bool = False,
        push_branch: str | None = None,
    ) -> None:
        import threading

        import pygit2

        remove_stale_temp_folders()
        trust_extra_ca(os.environ)
        millis = int(spec.timeout * 1000)
        pygit2.option(pygit2.enums.Option.SET_SERVER_CONNECT_TIMEOUT, millis)
        pygit2.option(pygit2.enums.Option.SET_SERVER_TIMEOUT, millis)
        self.timeout = spec.timeout
        self._cleanup = contextlib.ExitStack()
        workdir = tempfile.mkdtemp(prefix="glue-bump-")
        self._cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            if is_ssh_url(spec.url):
                self._cleanup.enter_context(_ssh_home(auth.known_hosts, spec.url))
            self.session = _Session(spec, auth, workdir, history=history, push_branch=push_branch)
        except BaseException:
            self._cleanup.close()
            raise
        self._tip: pygit2.Commit | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._first_fetch, args=(push,), daemon=True)
        self._thread.start()

    def _first_fetch(self, push: bool) -> None:
        try:
            self._tip = self.session.sync() if push else self.session.fetch()
        except BaseException as exc:  # handed to the caller by tip()
            self._error = exc

    def tip(self) -> pygit2.Commit:
        """The fetched branch tip (waits for the first fetch; raises what it raised)."""
        # The fetch and the push connection each have their own deadline; a margin.
        self._thread.join(2 * self.timeout + 5)
        if self._thread.is_alive():
            raise network.DeadlineExceeded(
                f"fetching from {redact.mask_url(self.session.spec.url)} did not end within "
                f"{network.span(self.timeout)}"
            )
        if self._error is not None:
            raise self._error
        assert self._tip is not None
        return self._tip

    def close(self) -> None:
        # Interrupted mid-fetch: libgit2 cannot be stopped from outside, and
        # the thread is a daemon, so do not wait long for it.
        self._thread.join(timeout=5)
        self._cleanup.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def push_change(
    spec: RemoteSpec,
    auth: Auth,
    plan: Plan[D],
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    history: bool = False,
    connection: Connection | None = None,
    environ: Mapping[str, str] | None = None,
) -> Landed[D]:
    """Fetch the branch tip, ``plan`` a change on it, commit it as the bot and push.

    ``plan`` is called again on every new tip after a lost race, so the change
    is always computed from what the branch holds, with the branch's own
    ``glue.yaml``. ``history``: fetch the whole branch history (rollback reads
    it) instead of only the tip. ``connection``: one started earlier (see
    :class:`Connection`); the caller closes it. ``environ``: where the signing key
    of ``git.sign`` is looked for (default: ``os.environ``).
    """
    from gitops_glue.repo import gitrepo

    say = progress or (lambda _msg: None)
    signer_of = _signers(spec, auth, os.environ if environ is None else environ)
    if (
        not is_ssh_url(spec.url)
        and auth.token is None
        and not spec.url.startswith(("file://", "/"))
    ):
        say("note: no GLUE_GIT_TOKEN set; trying the HTTPS remote without credentials")
    conn = connection or Connection(spec, auth, push=not dry_run, history=history)
    try:
        session = conn.session
        attempt = 0
        started = time.monotonic()
        tip = conn.tip()
        while True:
            attempt += 1
            config, change = _plan_on(session.repo, tip, spec.branch, plan)
            files = change.files()
            if not files or dry_run:
                return Landed(change, None, attempt)
            commit = gitrepo.create_commit(
                session.repo, tip, files, change.message, config.git.author, None, signer_of(config)
            )
            if session.push_is_stale(tip):
                # The push connection saw the branch elsewhere than the fetch did:
                # it moved, so this is a lost race and nothing needs sending.
                moved_to = session.advertised or "?"
            else:
                refusal = session.push(commit)
                if refusal is None:
                    return Landed(change, str(commit), attempt)
                # Lost race, final refusal, or landed with the connection lost
                # before the server said so? Only the branch's position tells,
                # and a refusal is reported at once, without any back-off.
                moved = session.fetch()
                if moved.id == commit:
                    say(f"the connection failed after the push landed ({refusal})")
                    return Landed(change, str(commit), attempt)
                if moved.id == tip.id:
                    raise OperationError(
                        f"the remote refused the push to {spec.branch!r}: {refusal}",
                        hint="the branch did not move, so this is not a race: check branch "
                        "protection, server hooks and the deploy key's write access",
                    )
                moved_to = str(moved.id)
            _wait_after_lost_race(
                spec, spec.branch, attempt, started, moved_to, say, "pushing at the same time"
            )
            started = time.monotonic()
            tip = session.sync()
    finally:
        if connection is None:
            conn.close()


def _plan_on(
    repo: pygit2.Repository, tip: pygit2.Commit, branch: str, plan: Plan[D]
) -> tuple[GlueConfig, Change[D]]:
    """``plan``'s change on ``tip`` (a commit of ``repo``), read with the tip's own
    ``glue.yaml``: after a lost race the branch's settings may have changed too."""
    from gitops_glue.repo import gitrepo

    reader = gitrepo.tree_reader(repo, tip.tree)
    config = config_at(reader, branch)
    return config, plan(View(config, reader, gitrepo.GitHistory(repo, tip)))


def _wait_after_lost_race(
    spec: RemoteSpec,
    branch: str,
    attempt: int,
    started: float,
    moved_to: str,
    say: Progress,
    racing: str,
) -> None:
    """After a lost push race: give up at the last attempt, else wait the back-off.

    The wait comes before the next fetch, so the retry pushes on the freshest tip
    there is, instead of on one that aged during the wait."""
    if attempt >= spec.max_attempts:
        raise OperationError(
            f"gave up after {attempt} attempts: {branch!r} kept moving while "
            f"pushing (other pipelines {racing})",
            hint="raise --max-attempts or serialise the bump jobs",
        )
    # One fetch-and-push round trip, measured: the back-off's unit.
    delay = backoff_delay(attempt, time.monotonic() - started, spec.base_delay)
    say(
        f"push lost a race: {branch} moved to {moved_to[:10]}; re-applying on "
        f"the new tip in {delay:.1f}s (attempt {attempt + 1}/{spec.max_attempts})"
    )
    time.sleep(delay)


@dataclass(frozen=True)
class ReviewPush(Generic[D]):
    """What :func:`push_review_change` did with a change on a review branch."""

    change: Change[D]
    base: str  # the base branch's tip the change was planned on
    #: The review branch's commit holding the change (None: no change, or a dry run).
    commit: str | None
    #: ``pushed``; ``same`` (the branch already holds this change on this base);
    #: ``kept`` (the branch holds a change ``keep`` said to keep); ``unchanged``
    #: (the base already has it); ``dry-run``.
    outcome: str
    kept_message: str = ""  # ``kept``: that commit's message
    attempts: int = 1


def push_review_change(
    spec: RemoteSpec,
    auth: Auth,
    plan: Plan[D],
    review_branch: str,
    *,
    keep: Callable[[str, str], bool],
    dry_run: bool = False,
    progress: Progress | None = None,
    history: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ReviewPush[D]:
    """Plan a change on the tip of ``spec.branch`` and put it, as one commit on that
    tip, on ``review_branch`` (merge-request mode).

    The review branch is rebuilt on the newest base each time, so it is replaced,
    not extended; the replacement is leased: it lands only if the branch is where
    this run last saw it, and a lost race re-plans on fresh tips, as
    :func:`push_change` does. ``keep(theirs, ours)`` says from the two commit
    messages whether the commit found on the review branch must stay (a newer
    pipeline's change). ``environ``: as for :func:`push_change`.
    """
    import pygit2

    from gitops_glue.repo import gitrepo

    say = progress or (lambda _msg: None)
    signer_of = _signers(spec, auth, os.environ if environ is None else environ)
    conn = Connection(spec, auth, push=not dry_run, history=history, push_branch=review_branch)
    try:
        session = conn.session
        attempt = 0
        started = time.monotonic()
        tip = conn.tip()
        while True:
            attempt += 1
            config, change = _plan_on(session.repo, tip, spec.branch, plan)
            files = change.files()
            base = str(tip.id)
            if not files or dry_run:
                outcome = "unchanged" if not files else "dry-run"
                return ReviewPush(change, base, None, outcome, attempts=attempt)
            there = session.push_branch_tip()
            if there is not None and keep(there.message, change.message):
                return ReviewPush(change, base, str(there.id), "kept", there.message, attempt)
            commit = gitrepo.create_commit(
                session.repo, tip, files, change.message, config.git.author, None, signer_of(config)
            )
            if (
                there is not None
                and _stored_parents(session.repo, there) == [str(tip.id)]
                and session.repo[commit].peel(pygit2.Commit).tree_id == there.tree_id
            ):
                return ReviewPush(change, base, str(there.id), "same", attempts=attempt)
            if session.push_is_stale(there):
                moved_to = session.advertised or "nothing (deleted)"
            else:
                refusal = session.push(commit, force=True)
                if refusal is None:
                    return ReviewPush(change, base, str(commit), "pushed", attempts=attempt)
                session.fetch()
                now = session.push_branch_tip()
                if now is not None and now.id == commit:
                    say(f"the connection failed after the push landed ({refusal})")
                    return ReviewPush(change, base, str(commit), "pushed", attempts=attempt)
                if (now.id if now else None) == (there.id if there else None):
                    raise OperationError(
                        f"the remote refused the push to {review_branch!r}: {refusal}",
                        hint="the branch did not move, so this is not a race: check that the "
                        "deploy key or token may push branches other than the protected one",
                    )
                moved_to = str(now.id) if now else "nothing (deleted)"
            _wait_after_lost_race(
                spec, review_branch, attempt, started, moved_to, say, "updating the same request"
            )
            started = time.monotonic()
            tip = session.sync()
    finally:
        conn.close()


def _signers(
    spec: RemoteSpec, auth: Auth, environ: Mapping[str, str]
) -> Callable[[GlueConfig], Signer | None]:
    """The signer a tip's ``git.sign`` asks for, made and checked once per setting:
    before the first commit is built, so a missing key stops the run before a push.
    Over SSH the deploy key signs unless another key is given."""
    from gitops_glue.repo import signing

    made: dict[tuple[str | None, str | None], Signer | None] = {}
    deploy = auth.ssh_key if is_ssh_url(spec.url) else None

    def signer_of(config: GlueConfig) -> Signer | None:
        setting = (config.git.sign, config.git.signing_key)
        if setting not in made:
            made[setting] = signing.signer_for(
                config.git,
                environ,
                deploy_key=deploy,
                deploy_key_passphrase=auth.ssh_key_passphrase,
            )
        return made[setting]

    return signer_of


def trust_extra_ca(environ: Mapping[str, str]) -> None:
    """HTTPS remotes behind a private CA: the certificates in ``GIT_SSL_CAINFO`` (git's
    own variable) or ``SSL_CERT_FILE`` are trusted too. libgit2 reads ``SSL_CERT_FILE``
    only when it is loaded, which a long-lived process may have done before."""
    import pygit2

    ca = environ.get("GIT_SSL_CAINFO") or environ.get("SSL_CERT_FILE")
    if ca and os.path.isfile(ca):
        pygit2.settings.set_ssl_cert_locations(ca, None)


def review_branch_tip(spec: RemoteSpec, auth: Auth, branch: str) -> tuple[str, str] | None:
    """The id and message of the tip of ``branch`` of the remote (None: no such branch)."""
    with Connection(spec, auth, push=False, push_branch=branch) as conn:
        conn.tip()
        tip = conn.session.push_branch_tip()
        return (str(tip.id), tip.message) if tip is not None else None


def _stored_parents(repo: pygit2.Repository, commit: pygit2.Commit) -> list[str]:
    """The parents a commit names, as stored: a shallow fetch shows its tip parentless."""
    _kind, data = repo.odb.read(commit.id)
    head = bytes(data).split(b"\n\n", 1)[0].decode("utf-8", "replace")
    return [line[len("parent ") :] for line in head.split("\n") if line.startswith("parent ")]


# --------------------------------------------------------------------------- target


@dataclass(frozen=True)
class RemoteOptions:
    """How the user named the remote branch and its credentials (the CLI's options)."""

    url: str
    branch: str = "main"
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    insecure_no_host_key_check: bool = False
    max_attempts: int = 20

    def __post_init__(self) -> None:
        check_branch_name(self.branch)


def key_is_encrypted(key: str) -> bool:
    """Is this private key text protected by a passphrase (OpenSSH or PEM format)?"""
    import base64
    import binascii

    if "ENCRYPTED" in key:  # PEM: "Proc-Type: 4,ENCRYPTED" or "BEGIN ENCRYPTED PRIVATE KEY"
        return True
    match = re.search(
        r"-----BEGIN OPENSSH PRIVATE KEY-----(.*?)-----END OPENSSH PRIVATE KEY-----", key, re.S
    )
    if not match:
        return False
    try:
        blob = base64.b64decode("".join(match.group(1).split()))
    except (binascii.Error, ValueError):
        return False
    magic = b"openssh-key-v1\0"
    if not blob.startswith(magic) or len(blob) < len(magic) + 4:
        return False
    size = int.from_bytes(blob[len(magic) : len(magic) + 4], "big")
    cipher = blob[len(magic) + 4 : len(magic) + 4 + size]
    return cipher != b"none"


def make_auth(options: RemoteOptions, environ: Mapping[str, str]) -> tuple[Auth, list[str]]:
    """The credentials for ``options`` (files, or ``GLUE_SSH_*``/``GLUE_GIT_*`` in ``environ``).

    An SSH remote needs a deploy key and the server's host key (unless the
    check is switched off, which is warned about: the second value, warnings).
    """
    from gitops_glue.files import read_text

    key = read_text(options.ssh_key_file) if options.ssh_key_file else environ.get("GLUE_SSH_KEY")
    hosts = (
        read_text(options.known_hosts_file)
        if options.known_hosts_file
        else environ.get("GLUE_SSH_KNOWN_HOSTS")
    )
    insecure = options.insecure_no_host_key_check
    auth = Auth(
        ssh_key=key,
        ssh_key_passphrase=environ.get("GLUE_SSH_KEY_PASSPHRASE"),
        known_hosts=hosts,
        insecure_skip_host_key_check=insecure,
        token=environ.get("GLUE_GIT_TOKEN"),
        username=environ.get("GLUE_GIT_USERNAME", "x-access-token"),
    )
    warnings: list[str] = []
    if is_ssh_url(options.url):
        if not key:
            raise UsageError(
                "an SSH remote needs a deploy key",
                hint="pass --ssh-key-file FILE or set GLUE_SSH_KEY to the key text",
            )
        if not auth.ssh_key_passphrase and key_is_encrypted(key):
            raise UsageError(
                "the deploy key needs a passphrase: set GLUE_SSH_KEY_PASSPHRASE",
                hint="or use a deploy key without a passphrase, kept in a CI secret",
            )
        if not hosts and not insecure:
            raise host_key_error(options.url)
        if insecure:
            warnings.append(
                "WARNING: --insecure-no-host-key-check: the SSH server's identity is NOT verified"
            )
    return auth, warnings


class RemoteBranch(CommitTarget):
    """A branch of a remote repository: fetch into a private temp repo, commit, push.

    A lost push race re-runs the planner on the new tip (see
    :func:`push_change`). :meth:`start` begins the fetch early, so it runs
    while the caller does other start-up work; close the target when done.
    """

    def __init__(
        self, options: RemoteOptions, environ: Mapping[str, str], progress: Progress | None = None
    ) -> None:
        self.say: Progress = progress or (lambda _msg: None)
        self.environ = environ
        self.auth, warnings = make_auth(options, environ)
        for warning in warnings:
            self.say(warning)
        self.spec = RemoteSpec(
            options.url,
            options.branch,
            options.max_attempts,
            timeout=network.timeout_from_env(environ),
        )
        self.remote = redact.mask_url(options.url)
        self._connection: Connection | None = None
        self._history = False

    def start(self, *, push: bool = True, history: bool = False) -> None:
        """Start fetching now (and, with ``push``, opening the push connection)."""
        if self._connection is None:
            self._connection = Connection(self.spec, self.auth, push=push, history=history)
            self._history = history

    def config(self) -> GlueConfig:
        """The tip's ``glue.yaml``: from the fetch :meth:`start` began, else a fetch of its own."""
        if self._connection is None:
            return read_remote_config(self.spec, self.auth)
        from gitops_glue.repo import gitrepo

        conn = self._connection  # no second SSH connection (~0.2 s of server time each)
        return config_at(gitrepo.tree_reader(conn.session.repo, conn.tip().tree), self.spec.branch)

    def land(self, plan: Plan[D], *, dry_run: bool, history: bool) -> Landed[D]:
        connection = self._connection
        if connection is not None and history and not self._history:
            self.close()  # a shallow fetch cannot serve a planner that reads history
            connection = None
        self._connection = None  # one connection serves one change
        try:
            return push_change(
                self.spec,
                self.auth,
                plan,
                dry_run=dry_run,
                progress=self.say,
                history=history,
                connection=connection,
                environ=self.environ,
            )
        finally:
            if connection is not None:
                connection.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
