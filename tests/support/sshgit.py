"""A real OpenSSH git server for tests, started and stopped by the tests themselves.

Debian's ``/usr/sbin/sshd`` runs as the current user (root in CI, any user elsewhere)
on 127.0.0.1 and a free port, with everything it needs in one temporary directory:
its own host key, ``authorized_keys``, config, pid file and a VERBOSE log.  The deploy
keys in ``authorized_keys`` are restricted to ``git-shell``: they can clone, fetch and
push, never get a shell, forward ports or allocate a pty.

Use it through the pytest fixtures (``pytest_plugins = ["tests.support.sshgit"]``):

``ssh_git_server``
    A running :class:`SshGitServer` (session-scoped: one sshd per test session).
``ssh_remote``
    A fresh :class:`BareRemote` on that server for each test, seeded with the
    project's example deployment repository (one commit on ``main``).

or directly, as a context manager::

    with SshGitServer.start(tmp_path) as server:
        remote = server.new_remote("deploy", seed=some_dir)
        subprocess.run(["git", "clone", remote.url, "x"], env={**os.environ, **remote.git_env()})

Clone URL form: ``ssh://USER@127.0.0.1:PORT/ABSOLUTE/PATH/deploy.git`` (git-shell
receives the absolute path as given; the port must be in the URL since it is not 22).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = ("glue.yaml", "helmfile.yaml.gotmpl", "environments", "charts")
SSHD = Path("/usr/sbin/sshd")
HOST = "127.0.0.1"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Seed User",
    "GIT_AUTHOR_EMAIL": "seed@example.com",
    "GIT_COMMITTER_NAME": "Seed User",
    "GIT_COMMITTER_EMAIL": "seed@example.com",
}
STARTUP_TIMEOUT = 10.0


class SshGitError(RuntimeError):
    """The test SSH server could not be set up (the message includes the sshd log)."""


class Commit(NamedTuple):
    sha: str
    parents: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class KeyPair:
    """An SSH key pair on disk; ``public`` is the one-line ``.pub`` text."""

    private: Path
    public_path: Path
    passphrase: str = ""

    @property
    def public(self) -> str:
        return self.public_path.read_text().strip()

    @property
    def key_type(self) -> str:
        return self.public.split()[0]

    @property
    def key_blob(self) -> str:
        """``<type> <base64>`` without the comment."""
        return " ".join(self.public.split()[:2])


def _run(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    cwd: Path | None = None,
) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        cwd=cwd,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise SshGitError(
            f"{shlex.join(str(a) for a in args)} failed ({proc.returncode}):\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def _git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_IDENTITY)
    env.update(extra or {})
    return env


def generate_key(
    path: Path, key_type: str = "ed25519", passphrase: str = "", comment: str = "gitops-glue-test"
) -> KeyPair:
    """``ssh-keygen`` a new key pair at ``path`` / ``path.pub``."""
    args: list[str] = [
        "ssh-keygen",
        "-q",
        "-t",
        key_type,
        "-N",
        passphrase,
        "-C",
        comment,
        "-f",
        str(path),
    ]
    if key_type == "rsa":
        args[4:4] = ["-b", "3072"]
    elif key_type == "ecdsa":
        args[4:4] = ["-b", "256"]
    _run(*args)
    return KeyPair(path, path.with_name(path.name + ".pub"), passphrase)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def descendants(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc; Linux only)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        kids = [p for p, pp in parents.items() if pp == current]
        found.extend(kids)
        todo.extend(kids)
    return found


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def stop_with_descendants(process: subprocess.Popen[Any], timeout: float) -> None:
    """Stop a server by pid (TERM; KILL after ``timeout`` s) and then whatever it had
    started (TERM; KILL after 5 s): nothing it forked outlives a test."""
    pid = process.pid
    stragglers = descendants(pid) if process.poll() is None else []
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for child in stragglers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(pid_alive(c) for c in stragglers) and time.monotonic() < deadline:
        time.sleep(0.02)
    for child in stragglers:
        if pid_alive(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


@dataclass
class BareRemote:
    """A bare repository served by an :class:`SshGitServer`."""

    server: SshGitServer
    path: Path

    @property
    def url(self) -> str:
        """``ssh://USER@127.0.0.1:PORT/abs/path/name.git`` (what git and libgit2 accept)."""
        return f"ssh://{self.server.user}@{HOST}:{self.server.port}{self.path}"

    def git_env(
        self, key: KeyPair | None = None, known_hosts: Path | None = None
    ) -> dict[str, str]:
        """See :meth:`SshGitServer.git_env`."""
        return self.server.git_env(key, known_hosts)

    def git(self, *args: str) -> str:
        """Run git on the bare repository directly (no SSH)."""
        return _run("git", f"--git-dir={self.path}", *args, env=_git_env())

    def head(self, branch: str = "main") -> str | None:
        """The commit ``branch`` points at on the server, or None if it does not exist."""
        proc = subprocess.run(
            [
                "git",
                f"--git-dir={self.path}",
                "rev-parse",
                "--verify",
                "-q",
                f"refs/heads/{branch}^{{commit}}",
            ],
            capture_output=True,
            text=True,
            env=_git_env(),
            check=False,
        )
        return proc.stdout.strip() or None

    def branches(self) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return out.split()

    def log(self, branch: str = "main") -> list[Commit]:
        """Commits reachable from ``branch``, newest first (empty if it does not exist)."""
        if self.head(branch) is None:
            return []
        out = self.git("log", "--format=%H%x00%P%x00%B%x1e", f"refs/heads/{branch}")
        commits = []
        for record in out.split("\x1e"):
            record = record.lstrip("\n")
            if not record:
                continue
            sha, parents, message = record.split("\x00", 2)
            commits.append(Commit(sha, tuple(parents.split()), message.rstrip("\n")))
        return commits

    def show(self, branch: str, path: str) -> str:
        """The content of ``path`` at the tip of ``branch``."""
        return self.git("show", f"refs/heads/{branch}:{path}")

    def commit(
        self, files: Mapping[str, str], message: str = "server-side change", branch: str = "main"
    ) -> str:
        """Commit ``files`` (path -> new content) on top of ``branch`` directly on the
        server, as if someone else had pushed.  Returns the new commit's sha."""
        parent = self.head(branch)
        with tempfile.TemporaryDirectory() as tmp:
            env = _git_env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})

            def git(*args: str, input: str | None = None) -> str:
                return _run("git", f"--git-dir={self.path}", *args, env=env, input=input).strip()

            if parent is not None:
                git("read-tree", parent)
            for name, content in files.items():
                blob = git("hash-object", "-w", "--stdin", input=content)
                git("update-index", "--add", "--cacheinfo", f"100644,{blob},{name}")
            tree = git("write-tree")
            sha = git("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
            git("update-ref", f"refs/heads/{branch}", sha, parent or "0" * 40)
        return sha

    @property
    def pre_receive(self) -> Path:
        return self.path / "hooks" / "pre-receive"

    def reject_pushes(self, message: str) -> None:
        """Install a ``pre-receive`` hook that declines every push, printing ``message``
        on stderr (the pusher sees it as ``remote: <message>``)."""
        self.pre_receive.parent.mkdir(exist_ok=True)
        self.pre_receive.write_text(
            f"#!/bin/sh\ncat >/dev/null\nprintf '%s\\n' {shlex.quote(message)} >&2\nexit 1\n"
        )
        self.pre_receive.chmod(0o755)

    def accept_pushes(self) -> None:
        """Remove the hook installed by :meth:`reject_pushes`."""
        self.pre_receive.unlink(missing_ok=True)

    def drop_connection_after_update(self) -> None:
        """Install a ``reference-transaction`` hook that kills ``git receive-pack`` right
        after the branch was updated, before it reports back: the pusher sees the
        connection drop although its push landed."""
        hook = self.path / "hooks" / "reference-transaction"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(
            '#!/bin/sh\ncat >/dev/null\n[ "$1" = committed ] && kill -9 "$PPID"\nexit 0\n'
        )
        hook.chmod(0o755)


@dataclass
class SshGitServer:
    """A running sshd on 127.0.0.1 serving git over ``git-shell`` for the current user.

    Attributes for clients: ``port``, ``user``, ``deploy_key`` (ed25519, no
    passphrase), ``passphrase_key`` (ed25519, passphrase ``passphrase_key.passphrase``),
    ``stranger_key`` (not authorized), ``known_hosts`` (file with the right line),
    ``wrong_known_hosts`` (file with another host key for the same host:port),
    ``known_hosts_line`` / ``wrong_known_hosts_line`` (the lines themselves) and
    ``client_home`` (a directory with ``.ssh/known_hosts`` = the right line, for
    programs that read ``$HOME/.ssh/known_hosts``, such as libgit2).
    """

    root: Path
    port: int
    user: str
    process: subprocess.Popen[bytes]
    host_key: KeyPair
    deploy_key: KeyPair
    passphrase_key: KeyPair
    stranger_key: KeyPair
    known_hosts: Path
    wrong_known_hosts: Path
    client_home: Path
    _owns_root: bool = False
    _remotes: int = field(default=0)

    # ----------------------------------------------------------------- life cycle
    @classmethod
    def start(cls, root: Path | None = None) -> SshGitServer:
        """Generate keys and config under ``root`` (a new temp dir if None) and start sshd."""
        if not SSHD.exists():
            raise SshGitError(f"{SSHD} not found (Debian package openssh-server)")
        owns_root = root is None
        root = Path(tempfile.mkdtemp(prefix="sshgit-")) if root is None else root
        root = root.resolve()  # sshd wants absolute paths everywhere
        root.mkdir(parents=True, exist_ok=True)
        user = getpass.getuser()
        keys = root / "keys"
        keys.mkdir()
        (root / "repos").mkdir()
        host_key = generate_key(keys / "ssh_host_ed25519_key", comment="host")
        other_host = generate_key(keys / "other_host_ed25519_key", comment="other-host")
        deploy = generate_key(keys / "deploy_ed25519", comment="deploy")
        with_pass = generate_key(
            keys / "deploy_pass_ed25519",
            passphrase="correct horse",
            comment="deploy-with-passphrase",
        )
        stranger = generate_key(keys / "stranger_ed25519", comment="stranger")
        restricted = 'restrict,command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\""'
        (root / "authorized_keys").write_text(
            "".join(f"{restricted} {k.public}\n" for k in (deploy, with_pass))
        )
        if os.geteuid() == 0:
            # privilege separation directory, compiled into Debian's sshd
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

        last_error = ""
        for _attempt in range(5):
            port = free_port()
            config = root / "sshd_config"
            config.write_text(cls._config(root, port, host_key, user))
            log = root / "sshd.log"
            (root / "sshd.pid").unlink(missing_ok=True)
            with log.open("ab") as log_file:
                process = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                    start_new_session=True,
                )
            known_hosts = keys / "known_hosts"
            wrong = keys / "known_hosts.wrong"
            client_home = root / "home"
            server = cls(
                root,
                port,
                user,
                process,
                host_key,
                deploy,
                with_pass,
                stranger,
                known_hosts,
                wrong,
                client_home,
                owns_root,
            )
            if server._wait_ready():
                known_hosts.write_text(server.known_hosts_line + "\n")
                wrong.write_text(f"[{HOST}]:{port} {other_host.key_blob}\n")
                (client_home / ".ssh").mkdir(parents=True, exist_ok=True)
                shutil.copy(known_hosts, client_home / ".ssh" / "known_hosts")
                return server
            last_error = server.log_text()
            server.stop()
            if "Address already in use" not in last_error:
                break
        raise SshGitError(f"sshd did not start; its log:\n{last_error}")

    @staticmethod
    def _config(root: Path, port: int, host_key: KeyPair, user: str) -> str:
        return "\n".join(
            [
                f"ListenAddress {HOST}:{port}",
                f"HostKey {host_key.private}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "AuthorizedPrincipalsFile none",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin forced-commands-only",
                f"AllowUsers {user}",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "PermitTTY no",
                "PrintMotd no",
                "PrintLastLog no",
                "LogLevel VERBOSE",
                "MaxStartups 100",
                "",
            ]
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        marker = f"Server listening on {HOST} port {self.port}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if marker in self.log_text():
                return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        """Stop sshd (by pid) and any per-connection processes it forked; remove the
        temp dir if this server created it."""
        stop_with_descendants(self.process, timeout=5)
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SshGitServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -------------------------------------------------------------------- clients
    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.root / "sshd.log"

    def log_text(self) -> str:
        """The sshd log so far (put it in assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def known_hosts_line(self) -> str:
        """``[127.0.0.1]:PORT ssh-ed25519 AAAA...`` (OpenSSH/libssh2 form for port != 22)."""
        return f"[{HOST}]:{self.port} {self.host_key.key_blob}"

    @property
    def wrong_known_hosts_line(self) -> str:
        return self.wrong_known_hosts.read_text().strip()

    def ssh_command(self, key: KeyPair | None = None, known_hosts: Path | None = None) -> str:
        """An ``ssh`` command line (for ``GIT_SSH_COMMAND``) that uses only ``key`` and
        trusts only ``known_hosts``; ignores ~/.ssh/config, never prompts."""
        key = key or self.deploy_key
        known_hosts = known_hosts or self.known_hosts
        return shlex.join(
            [
                "ssh",
                "-F",
                "/dev/null",
                "-i",
                str(key.private),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                f"UserKnownHostsFile={known_hosts}",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-p",
                str(self.port),
            ]
        )

    def git_env(
        self, key: KeyPair | None = None, known_hosts: Path | None = None
    ) -> dict[str, str]:
        """Environment additions for running the git CLI against this server (merge into
        ``os.environ``): ``GIT_SSH_COMMAND`` (see :meth:`ssh_command`) and no prompts."""
        return {"GIT_SSH_COMMAND": self.ssh_command(key, known_hosts), "GIT_TERMINAL_PROMPT": "0"}

    def ssh(
        self, *command: str, key: KeyPair | None = None, known_hosts: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ssh USER@127.0.0.1 COMMAND...`` with the given key (never raises)."""
        return subprocess.run(
            [*shlex.split(self.ssh_command(key, known_hosts)), f"{self.user}@{HOST}", *command],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=30,
        )

    def new_remote(
        self,
        name: str = "deploy",
        seed: Path | Sequence[Path] | Mapping[str, str] | None = None,
        message: str = "initial",
    ) -> BareRemote:
        """A new bare repository ``repos/<name>.git`` (branch ``main``).  ``seed``: a
        directory whose contents, a list of files/directories, or a mapping of path ->
        text, committed as one commit on ``main``; None leaves the repository empty."""
        self._remotes += 1
        path = self.root / "repos" / f"{name}.git"
        if path.exists():
            path = self.root / "repos" / f"{name}-{self._remotes}.git"
        _run("git", "init", "-q", "--bare", "--initial-branch=main", path, env=_git_env())
        remote = BareRemote(self, path)
        if seed is None:
            return remote
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            if isinstance(seed, Mapping):
                for rel, content in seed.items():
                    (work / rel).parent.mkdir(parents=True, exist_ok=True)
                    (work / rel).write_text(content)
            else:
                sources = sorted(Path(seed).iterdir()) if isinstance(seed, (str, Path)) else seed
                for src in sources:
                    src = Path(src)
                    if src.name == ".git":
                        continue
                    if src.is_dir():
                        shutil.copytree(
                            src,
                            work / src.name,
                            ignore=shutil.ignore_patterns(".git", "__pycache__"),
                        )
                    else:
                        shutil.copy2(src, work / src.name)
            env = _git_env()
            _run("git", "init", "-q", "--initial-branch=main", work, env=env)
            _run("git", "-C", work, "add", "-A", env=env)
            _run("git", "-C", work, "commit", "-q", "--no-verify", "-m", message, env=env)
            _run("git", "-C", work, "push", "-q", str(path), "main:refs/heads/main", env=env)
        return remote

    def new_example_remote(self, name: str = "deploy") -> BareRemote:
        """A bare repository seeded with the project's example deployment files."""
        return self.new_remote(name, seed=[ROOT / f for f in EXAMPLE_FILES])


def ssh_env(server: SshGitServer, **extra: str) -> dict[str, str]:
    """What glue needs to reach ``server`` with its deploy key (``GLUE_*``), plus ``extra``."""
    return {
        "GLUE_SSH_KEY_FILE": str(server.deploy_key.private),
        "GLUE_SSH_KNOWN_HOSTS": server.known_hosts_line,
        **extra,
    }


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never says anything
    (a hung SSH server); closed, with every accepted connection, on exit."""
    import threading

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


@contextlib.contextmanager
def libgit2_homedir(home: Path) -> Iterator[Path]:
    """Make libgit2 read ``home/.ssh/known_hosts`` (e.g. ``server.client_home``) for the
    duration.  Setting $HOME after ``import pygit2`` does not work: libgit2 reads it once,
    at initialisation; ``GIT_OPT_SET_HOMEDIR`` (process-wide) does."""
    import pygit2
    from pygit2.enums import Option

    before = pygit2.option(Option.GET_HOMEDIR)
    pygit2.option(Option.SET_HOMEDIR, str(home))
    try:
        yield home
    finally:
        pygit2.option(Option.SET_HOMEDIR, before or "")


# ------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def ssh_git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshGitServer]:
    """One sshd for the whole test session, stopped (by pid) at the end."""
    server = SshGitServer.start(tmp_path_factory.mktemp("sshgit"))
    try:
        yield server
    finally:
        server.stop()
        leftovers = [p for p in (server.pid, *descendants(server.pid)) if pid_alive(p)]
        assert not leftovers, f"sshd processes left running: {leftovers}"


@pytest.fixture
def ssh_remote(ssh_git_server: SshGitServer) -> BareRemote:
    """A fresh bare repository on the session's sshd, seeded with the example
    deployment repository (one commit ``initial`` on ``main``)."""
    return ssh_git_server.new_example_remote()
