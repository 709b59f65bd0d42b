"""A real Gitea for tests of glue's merge-request mode, started and stopped by the tests.

The binary is the one ``scripts/gitea install`` builds into its cache (``GLUE_GITEA_CACHE``,
default ``~/.cache/gitops-glue-gitea``). Each server lives in one temporary directory:
its ``app.ini``, SQLite database, repositories, logs, a test CA with a certificate for
127.0.0.1, and the host key of Gitea's built-in SSH server. It listens on 127.0.0.1 only,
HTTPS on one free port and SSH on another; no mailer, no registration, offline mode, no
update checker, no Actions.

Use it through the pytest fixtures (registered in tests/conftest.py):

``gitea``
    A running :class:`GiteaServer` (session-scoped: one Gitea per pytest-xdist worker).
    Fails with "run scripts/gitea install" if the binary is not built.
``gitea_repo``
    A fresh :class:`GiteaRepo` for each test, owned by the admin user and seeded with the
    project's example deployment repository (one commit ``initial`` on ``main``).

or directly, as a context manager::

    with GiteaServer.start(tmp_path) as server:
        repo = server.new_repo("deploy", seed_dir)
        requests.get(f"{server.api_url}/version", verify=str(server.ca_file))

Clients trust the test CA through :meth:`GiteaServer.env`: ``SSL_CERT_FILE`` (libgit2 /
pygit2 and Python's ssl, read when the process starts), ``REQUESTS_CA_BUNDLE`` (requests)
and ``GIT_SSL_CAINFO`` (the git CLI). In a process that has already imported pygit2,
``pygit2.settings.set_ssl_cert_locations(ca_file, None)`` does it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import ipaddress
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.sshgit import (
    EXAMPLE_FILES,
    GIT_IDENTITY,
    ROOT,
    KeyPair,
    descendants,
    free_port,
    generate_key,
    pid_alive,
    stop_with_descendants,
)

GITEA_VERSION = "v1.27.3"
HOST = "127.0.0.1"
#: The user name in SSH clone URLs (Gitea's built-in server accepts only this one).
SSH_USER = "git"
ADMIN_USER = "glue-admin"
ADMIN_EMAIL = "glue-admin@example.com"
STARTUP_TIMEOUT = 90.0
CommitState = Literal["pending", "success", "error", "failure", "warning"]


class GiteaError(RuntimeError):
    """Gitea could not be set up, or an API call failed (the message says which and why)."""


def gitea_home() -> Path:
    """The cached Gitea: the ``gitea`` binary and the templates/, options/ and public/
    it reads (scripts/gitea install)."""
    cache = os.environ.get("GLUE_GITEA_CACHE") or str(Path.home() / ".cache" / "gitops-glue-gitea")
    return Path(cache) / f"gitea-{GITEA_VERSION}"


def not_built_message() -> str | None:
    """Why Gitea cannot start, or None when ``scripts/gitea install`` has built it."""
    home = gitea_home()
    if (home / "gitea").is_file() and (home / "templates").is_dir():
        return None
    return (
        f"Gitea {GITEA_VERSION} is not built in {home}: run scripts/gitea install "
        "(make test does it through scripts/bootstrap; the first build takes minutes)"
    )


# --------------------------------------------------------------------------- TLS
@dataclass(frozen=True)
class TestCA:
    """A CA made for one server, and the certificate it signed for 127.0.0.1/localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> TestCA:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glue test CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        made = cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
        made.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        made.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        made.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        made.key_file.chmod(0o600)
        return made


# ------------------------------------------------------------------------ server
def _app_ini(
    root: Path,
    home: Path,
    tls: TestCA,
    http_port: int,
    ssh_port: int,
    host_key: KeyPair,
    keys: tuple[str, str],
) -> str:
    root_line = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n" if os.geteuid() == 0 else ""
    return f"""\
{root_line}APP_NAME = glue test forge
RUN_USER = {getpass.getuser()}
RUN_MODE = prod
WORK_PATH = {root}

[server]
PROTOCOL = https
HTTP_ADDR = {HOST}
HTTP_PORT = {http_port}
DOMAIN = {HOST}
ROOT_URL = https://{HOST}:{http_port}/
CERT_FILE = {tls.cert_file}
KEY_FILE = {tls.key_file}
STATIC_ROOT_PATH = {home}
APP_DATA_PATH = {root}/data
OFFLINE_MODE = true
LFS_START_SERVER = false
START_SSH_SERVER = true
BUILTIN_SSH_SERVER_USER = {SSH_USER}
SSH_DOMAIN = {HOST}
SSH_LISTEN_HOST = {HOST}
SSH_PORT = {ssh_port}
SSH_LISTEN_PORT = {ssh_port}
SSH_SERVER_HOST_KEYS = {host_key.private}
SSH_ROOT_PATH = {root}/home/.ssh
SSH_CREATE_AUTHORIZED_KEYS_FILE = false

[database]
DB_TYPE = sqlite3
PATH = {root}/data/gitea.db

[repository]
ROOT = {root}/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = {keys[0]}
INTERNAL_TOKEN = {keys[1]}
; webhooks may call stand-ins on 127.0.0.1
ALLOWED_HOST_LIST = loopback

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true

[mailer]
ENABLED = false

[actions]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db

[cron.update_checker]
ENABLED = false

[log]
MODE = file
LEVEL = Info
ROOT_PATH = {root}/log
"""


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without git's and Gitea's own variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITEA_"))}
    env.update(extra or {})
    return env


@dataclass
class GiteaServer:
    """A running Gitea on 127.0.0.1 (HTTPS + built-in SSH), with one admin user.

    ``api_url`` (``https://127.0.0.1:PORT/api/v1``), ``base_url``, ``ca_file`` (the test
    CA's PEM), ``admin_user`` / ``admin_password`` / ``admin_token`` (scope ``all``),
    ``ssh_port``, ``ssh_known_hosts`` (the known_hosts line of the SSH server's host key),
    ``known_hosts`` (a file holding it) and ``client_home`` (a HOME whose
    ``.ssh/known_hosts`` holds it, for libgit2: see ``sshgit.libgit2_homedir``).
    """

    root: Path
    http_port: int
    ssh_port: int
    tls: TestCA
    host_key: KeyPair
    admin_password: str
    admin_token: str = ""
    process: subprocess.Popen[bytes] | None = None
    admin_user: str = ADMIN_USER
    startup_seconds: float = 0.0
    _repos: int = field(default=0)

    # ----------------------------------------------------------------- life cycle
    @classmethod
    def start(cls, root: Path) -> GiteaServer:
        """Configure Gitea under ``root``, migrate its database, create the admin user and
        its token, and start ``gitea web``; returns when the API and SSH answer."""
        reason = not_built_message()
        if reason:
            raise GiteaError(reason)
        started = time.monotonic()
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("home", "log", "client-home/.ssh"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        tls = TestCA.create(root / "tls")
        host_key = generate_key(root / "ssh_host_ed25519_key", comment="gitea-host")
        keys = (secrets.token_hex(16), secrets.token_hex(32))
        server = cls(root, free_port(), free_port(), tls, host_key, secrets.token_urlsafe(12))
        server._write_config(keys)
        server.gitea("migrate")
        out = server.gitea(
            "admin",
            "user",
            "create",
            "--admin",
            f"--username={server.admin_user}",
            f"--email={ADMIN_EMAIL}",
            f"--password={server.admin_password}",
            "--must-change-password=false",
            "--access-token",
            "--access-token-name=glue-tests",
            "--access-token-scopes=all",
        )
        token = out.rsplit("Access token was successfully created... ", 1)[-1].split()
        if not token:
            raise GiteaError(f"no access token in the output of admin user create:\n{out}")
        server.admin_token = token[0]
        for attempt in range(5):
            if attempt:  # the last ports were taken meanwhile: new ones
                server.http_port, server.ssh_port = free_port(), free_port()
                server._write_config(keys)
            if server.http_port == server.ssh_port:
                continue
            with (root / "log" / "web.out").open("ab") as out_file:
                server.process = subprocess.Popen(
                    [str(gitea_home() / "gitea"), *server._global_args(), "web"],
                    stdin=subprocess.DEVNULL,
                    stdout=out_file,
                    stderr=out_file,
                    env=server._env(),
                    cwd=root,
                    start_new_session=True,
                )
            if server._wait_ready():
                server.startup_seconds = time.monotonic() - started
                server.known_hosts.write_text(server.ssh_known_hosts + "\n")
                shutil.copy(server.known_hosts, server.client_home / ".ssh" / "known_hosts")
                return server
            server.stop()
            if "address already in use" not in server.log_text().lower():
                break
        raise GiteaError(f"gitea web did not start; its log:\n{server.log_text()}")

    def _write_config(self, keys: tuple[str, str]) -> None:
        (self.root / "app.ini").write_text(
            _app_ini(
                self.root,
                gitea_home(),
                self.tls,
                self.http_port,
                self.ssh_port,
                self.host_key,
                keys,
            )
        )

    def _global_args(self) -> list[str]:
        return [f"--config={self.root / 'app.ini'}", f"--work-path={self.root}"]

    def _env(self) -> dict[str, str]:
        return _clean_env({"HOME": str(self.root / "home"), "GITEA_WORK_DIR": str(self.root)})

    def gitea(self, *args: str) -> str:
        """Run the ``gitea`` CLI on this server's config (e.g. ``admin user list``)."""
        proc = subprocess.run(
            [str(gitea_home() / "gitea"), *self._global_args(), *args],
            capture_output=True,
            text=True,
            env=self._env(),
            cwd=self.root,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise GiteaError(
                f"gitea {shlex.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        api_up = ssh_up = False
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if not api_up:
                with contextlib.suppress(requests.RequestException):
                    api_up = self.request("GET", "/version", timeout=2).status_code == 200
            if not ssh_up:
                ssh_up = _ssh_banner(self.ssh_port).startswith("SSH-2.0-")
            if api_up and ssh_up:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop ``gitea web`` (by pid) and whatever it started (git processes)."""
        if self.process is not None:
            stop_with_descendants(self.process, timeout=15)

    def __enter__(self) -> GiteaServer:
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
        assert self.process is not None, "gitea web was not started"
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"https://{HOST}:{self.http_port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    @property
    def ssh_known_hosts(self) -> str:
        """``[127.0.0.1]:PORT ssh-ed25519 AAAA...``: the SSH server's host key."""
        return f"[{HOST}]:{self.ssh_port} {self.host_key.key_blob}"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def client_home(self) -> Path:
        return self.root / "client-home"

    def env(self) -> dict[str, str]:
        """What a client process needs to trust the test CA: ``SSL_CERT_FILE`` (libgit2 in
        pygit2, Python's ssl), ``REQUESTS_CA_BUNDLE`` (requests), ``GIT_SSL_CAINFO`` (git)."""
        ca = str(self.ca_file)
        return {"SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca, "GIT_SSL_CAINFO": ca}

    def trust_in_this_process(self) -> None:
        """Make libgit2 (pygit2) in this process trust the test CA, e.g. for glue run
        in-process: libgit2 reads ``SSL_CERT_FILE`` once, when pygit2 is imported, so
        setting it later changes nothing. Process-wide; adds to what libgit2 trusts."""
        import pygit2

        pygit2.settings.set_ssl_cert_locations(str(self.ca_file), None)

    def log_text(self) -> str:
        """Gitea's logs so far (put them in assertion messages)."""
        parts = []
        for name in ("web.out", "gitea.log"):
            path = self.root / "log" / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def ssh_command(self, key: KeyPair) -> str:
        """An ``ssh`` command line (for ``GIT_SSH_COMMAND``) that uses only ``key`` and
        trusts only this server's host key; never prompts."""
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
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
            ]
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        timeout: float = 30,
        **kwargs: Any,
    ) -> requests.Response:
        """One API call (``path`` below ``/api/v1``) as the admin (or with ``token``);
        the response whatever its status."""
        return requests.request(
            method,
            self.api_url + path,
            headers={"Authorization": f"token {token or self.admin_token}"},
            verify=str(self.ca_file),
            timeout=timeout,
            **kwargs,
        )

    def api(self, method: str, path: str, *, json: object = None, **kwargs: Any) -> Any:
        """One API call that must succeed (2xx); its decoded JSON body (None if empty)."""
        response = self.request(method, path, json=json, **kwargs)
        if not response.ok:
            raise GiteaError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def swagger(self) -> dict[str, Any]:
        """The API description Gitea serves at ``/swagger.v1.json``."""
        response = requests.get(
            f"{self.base_url}/swagger.v1.json", verify=str(self.ca_file), timeout=30
        )
        response.raise_for_status()
        spec: dict[str, Any] = response.json()
        return spec

    def new_org(self, name: str) -> None:
        """Create organisation ``name`` (nothing if it exists)."""
        if self.request("GET", f"/orgs/{name}").status_code == 404:
            self.api("POST", "/orgs", json={"username": name, "visibility": "public"})

    def new_repo(
        self,
        name: str = "deploy",
        seed_dir: Path | Sequence[Path] | None = None,
        *,
        owner: str | None = None,
        message: str = "initial",
    ) -> GiteaRepo:
        """A new repository ``owner/name`` (owner: the admin user, or an organisation made on
        demand; ``name`` gets a suffix if taken). ``seed_dir``: a directory whose files, or a
        list of files/directories, are pushed as one commit ``message`` on ``main`` (over
        HTTPS with the admin token); None leaves the repository empty."""
        owner = owner or self.admin_user
        self._repos += 1
        options = {"name": name, "default_branch": "main", "private": False}
        if owner == self.admin_user:
            response = self.request("POST", "/user/repos", json=options)
        else:
            self.new_org(owner)
            response = self.request("POST", f"/orgs/{owner}/repos", json=options)
        if response.status_code == 409:
            return self.new_repo(f"{name}-{self._repos}", seed_dir, owner=owner, message=message)
        if not response.ok:
            raise GiteaError(f"creating {owner}/{name}: {response.status_code} {response.text}")
        repo = GiteaRepo(self, owner, name)
        if seed_dir is not None:
            repo.push_files(seed_dir, message)
        return repo

    def new_example_repo(self, name: str = "deploy", owner: str | None = None) -> GiteaRepo:
        """A repository seeded with the project's example deployment files."""
        return self.new_repo(name, [ROOT / f for f in EXAMPLE_FILES], owner=owner)


def _ssh_banner(port: int) -> str:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            return sock.recv(64).decode(errors="replace")
    except OSError:
        return ""


def _run_git(*args: str | Path, env: Mapping[str, str], cwd: Path | None = None) -> str:
    proc = subprocess.run(
        ["git", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        env=_clean_env({**GIT_IDENTITY, **env}),
        cwd=cwd,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        raise GiteaError(f"git {shlex.join(str(a) for a in args)} failed:\n{proc.stderr}")
    return proc.stdout


# -------------------------------------------------------------------------- repo
@dataclass
class GiteaRepo:
    """A repository on a :class:`GiteaServer`; the calls go through its API as the admin."""

    server: GiteaServer
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def ssh_url(self) -> str:
        """``ssh://git@127.0.0.1:PORT/OWNER/NAME.git``."""
        return f"ssh://{SSH_USER}@{HOST}:{self.server.ssh_port}/{self.full_name}.git"

    @property
    def https_url(self) -> str:
        """``https://127.0.0.1:PORT/OWNER/NAME.git`` (no credentials in it)."""
        return f"{self.server.base_url}/{self.full_name}.git"

    @property
    def web_url(self) -> str:
        return f"{self.server.base_url}/{self.full_name}"

    def _path(self, rest: str = "") -> str:
        return f"/repos/{self.full_name}{rest}"

    def api(self, method: str, rest: str = "", *, json: object = None) -> Any:
        """:meth:`GiteaServer.api` below ``/repos/OWNER/NAME``."""
        return self.server.api(method, self._path(rest), json=json)

    def push_files(self, seed: Path | Sequence[Path], message: str, branch: str = "main") -> str:
        """Commit ``seed`` (a directory's contents, or files/directories) as one commit on
        top of nothing and push it to ``branch`` over HTTPS; returns its sha."""
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            sources = sorted(seed.iterdir()) if isinstance(seed, Path) else list(seed)
            for src in sources:
                if src.name == ".git":
                    continue
                if src.is_dir():
                    shutil.copytree(
                        src, work / src.name, ignore=shutil.ignore_patterns(".git", "__pycache__")
                    )
                else:
                    shutil.copy2(src, work / src.name)
            env = {"GIT_SSL_CAINFO": str(self.server.ca_file), "HOME": tmp}
            _run_git("init", "-q", f"--initial-branch={branch}", work, env=env)
            _run_git("-C", work, "add", "-A", env=env)
            _run_git("-C", work, "commit", "-q", "--no-verify", "-m", message, env=env)
            user = quote(self.server.admin_user, safe="")
            url = self.https_url.replace("https://", f"https://{user}:{self.server.admin_token}@")
            _run_git("-C", work, "push", "-q", url, f"HEAD:refs/heads/{branch}", env=env)
            sha = _run_git("-C", work, "rev-parse", "HEAD", env=env).strip()
        # Gitea records the branch before the push returns, but clears the repository's
        # "empty" mark later, from a queue; until then its API fails on the repository's
        # git data (GET .../branches/main answers 500).
        deadline = time.monotonic() + 30
        while self.api("GET")["empty"]:
            if time.monotonic() > deadline:
                raise GiteaError(f"{self.full_name} still looks empty 30 s after a push")
            time.sleep(0.02)
        return sha

    def add_deploy_key(self, public_key: str, write: bool = True, title: str = "") -> int:
        """Add a deploy key (the one-line ``.pub`` text); read-write unless ``write`` is
        False. Returns its id."""
        key = self.api(
            "POST",
            "/keys",
            json={
                "title": title or f"deploy-{secrets.token_hex(3)}",
                "key": public_key,
                "read_only": not write,
            },
        )
        return int(key["id"])

    def protect_branch(
        self,
        branch: str = "main",
        *,
        push: bool = False,
        push_users: Sequence[str] = (),
        deploy_keys_may_push: bool = False,
        status_checks: Sequence[str] = (),
        approvals: int = 0,
        block_on_outdated_branch: bool = False,
    ) -> dict[str, Any]:
        """Protect ``branch``. By default nobody may push to it directly (a pull request is
        the only way in). ``push=True`` lets writers push; ``push_users`` /
        ``deploy_keys_may_push`` allow only those. ``status_checks``: commit status contexts
        that must be ``success`` before a merge; ``approvals``: approving reviews needed."""
        allowlist = bool(push_users) or deploy_keys_may_push
        rule: dict[str, Any] = self.api(
            "POST",
            "/branch_protections",
            json={
                "rule_name": branch,
                "enable_push": push or allowlist,
                "enable_push_whitelist": allowlist,
                "push_whitelist_usernames": list(push_users),
                "push_whitelist_deploy_keys": deploy_keys_may_push,
                "enable_status_check": bool(status_checks),
                "status_check_contexts": list(status_checks),
                "required_approvals": approvals,
                "block_on_outdated_branch": block_on_outdated_branch,
            },
        )
        return rule

    def pulls(self, state: Literal["open", "closed", "all"] = "all") -> list[dict[str, Any]]:
        """The repository's pull requests, newest first."""
        pulls: list[dict[str, Any]] = self.api("GET", f"/pulls?state={state}&limit=50")
        return pulls

    def pull(self, index: int) -> dict[str, Any]:
        pull: dict[str, Any] = self.api("GET", f"/pulls/{index}")
        return pull

    def comments(self, index: int) -> list[dict[str, Any]]:
        """The comments on issue or pull request ``index``, oldest first."""
        comments: list[dict[str, Any]] = self.api("GET", f"/issues/{index}/comments")
        return comments

    def branch_tip(self, name: str) -> str | None:
        """The commit branch ``name`` points at, or None if there is no such branch."""
        response = self.server.request("GET", self._path(f"/branches/{quote(name, safe='')}"))
        if response.status_code == 404:
            return None
        if not response.ok:
            raise GiteaError(f"branch {name}: {response.status_code} {response.text}")
        sha: str = response.json()["commit"]["id"]
        return sha

    def branches(self) -> list[str]:
        return [b["name"] for b in self.api("GET", "/branches")]

    def commit_message(self, sha: str) -> str:
        """The full message of commit ``sha``, as stored (git commit ends it with a newline)."""
        message: str = self.api("GET", f"/git/commits/{sha}?stat=false")["commit"]["message"]
        return message

    def file(self, path: str, ref: str = "main") -> str:
        """The text of ``path`` at ``ref``."""
        response = self.server.request("GET", self._path(f"/raw/{path}?ref={quote(ref)}"))
        if not response.ok:
            raise GiteaError(f"{path}@{ref}: {response.status_code} {response.text}")
        return response.text

    def set_commit_status(
        self,
        sha: str,
        state: CommitState,
        context: str = "ci/test",
        description: str = "",
        target_url: str = "",
    ) -> dict[str, Any]:
        """Post a commit status on ``sha`` (what a CI system does)."""
        status: dict[str, Any] = self.api(
            "POST",
            f"/statuses/{sha}",
            json={
                "state": state,
                "context": context,
                "description": description,
                "target_url": target_url,
            },
        )
        return status

    def labels(self) -> list[dict[str, Any]]:
        labels: list[dict[str, Any]] = self.api("GET", "/labels")
        return labels

    def add_label(self, name: str, color: str = "#0e8a16") -> int:
        """Create label ``name`` in the repository; returns its id."""
        return int(self.api("POST", "/labels", json={"name": name, "color": color})["id"])


# ------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def gitea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GiteaServer]:
    """One Gitea per test session (per pytest-xdist worker), stopped (by pid) at the end.
    Fails, never skips, when the binary is missing: run ``scripts/gitea install``."""
    reason = not_built_message()
    if reason:
        pytest.fail(reason, pytrace=False)
    server = GiteaServer.start(tmp_path_factory.mktemp("gitea"))
    try:
        yield server
    finally:
        server.stop()
        leftovers = [p for p in (server.pid, *descendants(server.pid)) if pid_alive(p)]
        assert not leftovers, f"gitea processes left running: {leftovers}"


@pytest.fixture
def gitea_repo(gitea: GiteaServer) -> GiteaRepo:
    """A fresh repository on the session's Gitea, owned by the admin and seeded with the
    example deployment repository (one commit ``initial`` on ``main``)."""
    return gitea.new_example_repo()
