"""Real OCI registries on 127.0.0.1 for the tests, and a helper that pushes an image to them.

Each fixture runs Debian's ``docker-registry`` (distribution v2, ``docker-registry serve
CONFIG.yml``) with filesystem storage in a temp dir, on a free port of 127.0.0.1, no TLS.
The process is started by the fixture and stopped by PID at teardown; teardown fails if the
process or its port outlives it.

- ``registry``: anonymous access.
- ``registry_basic``: htpasswd (bcrypt) auth; ``401`` + ``WWW-Authenticate: Basic realm=...``.
- ``registry_token``: distribution's ``auth: token:`` with a token server on 127.0.0.1
  (:class:`TokenServer`) that checks basic credentials and issues RS256 JWTs whose key's
  certificate is the registry's ``rootcertbundle``; ``401`` + ``WWW-Authenticate: Bearer
  realm=...,service=...,scope=...``.

:func:`push_image` pushes a small valid OCI image (config blob, one gzip'd tar layer,
``application/vnd.oci.image.manifest.v1+json`` manifest) with plain HTTP and returns the
manifest digest the registry reports. Its :class:`RegistryClient` answers Basic and Bearer
challenges itself, so it works against all three fixtures.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REGISTRY_BINARY = "docker-registry"
HTPASSWD_BINARY = "htpasswd"

#: Credentials known to the tests (basic-auth registry and token server alike).
USERNAME = "glue-ci"
PASSWORD = "registry-Pa55word"
#: A second account that the token server grants ``pull`` only (never ``push``).
READER_USERNAME = "glue-reader"
READER_PASSWORD = "reader-Pa55word"

TOKEN_SERVICE = "glue-test-registry"
TOKEN_ISSUER = "glue-test-token-issuer"
TOKEN_LIFETIME = 300

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"])

AuthMode = Literal["none", "basic", "token"]
Credentials = tuple[str, str]


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key ID distribution 2.x expects in a JWT ``kid`` header (libtrust's fingerprint).

    SHA-256 of the DER SubjectPublicKeyInfo, truncated to 240 bits, base32, in groups of four
    joined by ``:``. Distribution computes the same for each key in ``rootcertbundle``.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def _yaml_str(value: str) -> str:
    # A JSON string is a valid YAML scalar: no quoting surprises for paths or URLs.
    return json.dumps(value)


# --------------------------------------------------------------------------- token server


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered."""

    account: str | None
    service: str | None
    scopes: tuple[str, ...]
    status: int
    granted: tuple[Mapping[str, Any], ...]
    time: float


class TokenServer:
    """A tiny docker-registry token server (``GET /token``) on 127.0.0.1.

    Checks HTTP Basic credentials against :attr:`users` (name -> (password, allowed
    actions)), grants the requested actions the user is allowed, and answers
    ``{"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": ...}``.
    The JWT is RS256-signed; its header carries ``kid`` in libtrust form
    (``header_mode="kid"``, default) or the certificate as ``x5c`` (``header_mode="x5c"``).
    The certificate is written to :attr:`rootcertbundle` for the registry's config.
    Anonymous or wrong credentials get ``401``.
    """

    def __init__(
        self, workdir: Path, *, service: str = TOKEN_SERVICE, issuer: str = TOKEN_ISSUER
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.users: dict[str, tuple[str, frozenset[str]]] = {
            USERNAME: (PASSWORD, frozenset({"pull", "push", "delete", "*"})),
            READER_USERNAME: (READER_PASSWORD, frozenset({"pull"})),
        }
        self.header_mode: Literal["kid", "x5c"] = "kid"
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glue test token issuer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.kid = libtrust_key_id(self.key.public_key())
        self.rootcertbundle = workdir / "token-rootcertbundle.pem"
        self.rootcertbundle.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_token_handler(self))
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.realm = f"{self.url}/token"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="token-server", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def issue(
        self, subject: str, access: list[dict[str, Any]], *, lifetime: int = TOKEN_LIFETIME
    ) -> str:
        """A signed JWT for ``access`` (``[{"type", "name", "actions"}]``)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + lifetime,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        headers: dict[str, Any]
        if self.header_mode == "x5c":
            der = self.certificate.public_bytes(serialization.Encoding.DER)
            headers = {"x5c": [base64.b64encode(der).decode()]}
        else:
            headers = {"kid": self.kid}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)

    def grant(self, user: str, scopes: list[str]) -> list[dict[str, Any]]:
        allowed = self.users[user][1]
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            rtype, rname, wanted = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            actions = [a for a in wanted if a in allowed]
            if actions:
                access.append({"type": rtype, "name": rname, "actions": actions})
        return access

    def check(self, authorization: str | None) -> str | None:
        """The user named by valid Basic credentials in ``authorization``, else None."""
        if not authorization or not authorization.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return None
        known = self.users.get(user)
        if known is None or not secrets.compare_digest(known[0], password):
            return None
        return user

    def record(self, entry: TokenRequest) -> None:
        with self._lock:
            self.requests.append(entry)


def _make_token_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            now = time.monotonic()
            if url.path != "/token":
                self._send(404, {"errors": [{"code": "NOT_FOUND"}]})
                return
            query = urllib.parse.parse_qs(url.query)
            service = query.get("service", [None])[0]
            scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
            user = server.check(self.headers.get("Authorization"))
            if user is None:
                server.record(TokenRequest(None, service, tuple(scopes), 401, (), now))
                self._send(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                    {"WWW-Authenticate": 'Basic realm="glue test token server"'},
                )
                return
            if service != server.service:
                server.record(TokenRequest(user, service, tuple(scopes), 400, (), now))
                self._send(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
                return
            access = server.grant(user, scopes)
            token = server.issue(user, access)
            server.record(TokenRequest(user, service, tuple(scopes), 200, tuple(access), now))
            issued = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._send(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_LIFETIME,
                    "issued_at": issued,
                },
            )

    return Handler


# --------------------------------------------------------------------------- registry process


@dataclass
class RegistryServer:
    """A running ``docker-registry`` process and what tests need to talk to it."""

    url: str
    """Base URL, ``http://127.0.0.1:PORT`` (API at ``{url}/v2/``)."""
    host: str
    """``127.0.0.1:PORT``, the registry part of an image reference."""
    port: int
    auth_mode: AuthMode
    workdir: Path
    config_path: Path
    storage: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def credentials(self) -> Credentials | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    def push(self, name: str, tag: str, *, content: bytes | None = None) -> str:
        """Push a small image as this registry's user; returns the manifest digest."""
        return push_image(self.url, name, tag, auth=self.credentials, content=content)

    def client(self, auth: Credentials | Literal["default"] | None = "default") -> RegistryClient:
        return RegistryClient(self.url, self.credentials if auth == "default" else auth)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _registry_config(storage: Path, port: int, auth_yaml: str) -> str:
    return f"""\
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {_yaml_str(str(storage))}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {_yaml_str(f"127.0.0.1:{port}")}
  secret: {_yaml_str(secrets.token_hex(16))}
{auth_yaml}"""


def _htpasswd_line(user: str, password: str) -> str:
    binary = shutil.which(HTPASSWD_BINARY)
    if binary is None:
        pytest.fail("htpasswd is missing: run scripts/bootstrap (Debian package apache2-utils)")
    # -B: bcrypt, the only hash distribution's htpasswd backend accepts.
    out = subprocess.run(
        [binary, "-nbB", user, password], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def stop_process(process: subprocess.Popen[bytes], port: int | None = None) -> None:
    """Stop one process by PID (TERM, then KILL), reap it, and check nothing is left."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, 0)
        raise RuntimeError(f"process {process.pid} is still alive after stop")
    if port is not None:
        deadline = time.monotonic() + 5
        while port_is_open(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {port} still accepts connections after stop")
            time.sleep(0.05)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 20
) -> bool:
    """True once ``GET /v2/`` answers; False if the process died (e.g. port taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(requests.ConnectionError):
            r = requests.get(f"{url}/v2/", timeout=2)
            if r.status_code in (200, 401):
                return True
        time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"registry at {url} not ready after {timeout}s:\n{log_path.read_text()}")


@contextlib.contextmanager
def running_registry(workdir: Path, auth_mode: AuthMode = "none") -> Iterator[RegistryServer]:
    """Start ``docker-registry serve`` in ``workdir``; stop it (by PID) on exit."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        pytest.fail("docker-registry is missing: run scripts/bootstrap (Debian docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)

    token_server: TokenServer | None = None
    username = password = None
    auth_yaml = ""
    if auth_mode == "basic":
        username, password = USERNAME, PASSWORD
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(
            _htpasswd_line(USERNAME, PASSWORD)
            + "\n"
            + _htpasswd_line(READER_USERNAME, READER_PASSWORD)
            + "\n"
        )
        auth_yaml = (
            "auth:\n  htpasswd:\n"
            f"    realm: {_yaml_str('glue-test-registry')}\n"
            f"    path: {_yaml_str(str(htpasswd))}\n"
        )
    elif auth_mode == "token":
        username, password = USERNAME, PASSWORD
        token_server = TokenServer(workdir)
        token_server.start()
        auth_yaml = (
            "auth:\n  token:\n"
            f"    realm: {_yaml_str(token_server.realm)}\n"
            f"    service: {_yaml_str(token_server.service)}\n"
            f"    issuer: {_yaml_str(token_server.issuer)}\n"
            f"    rootcertbundle: {_yaml_str(str(token_server.rootcertbundle))}\n"
        )

    server: RegistryServer | None = None
    try:
        for _attempt in range(5):
            port = free_port()
            config_path = workdir / "config.yml"
            config_path.write_text(_registry_config(storage, port, auth_yaml))
            log_path = workdir / "registry.log"
            url = f"http://127.0.0.1:{port}"
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [binary, "serve", str(config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    start_new_session=True,
                )
            if _wait_ready(process, url, log_path):
                server = RegistryServer(
                    url=url,
                    host=f"127.0.0.1:{port}",
                    port=port,
                    auth_mode=auth_mode,
                    workdir=workdir,
                    config_path=config_path,
                    storage=storage,
                    log_path=log_path,
                    process=process,
                    username=username,
                    password=password,
                    token_server=token_server,
                )
                break
            stop_process(process)  # died at start (a lost race for the port): try again
        if server is None:
            raise RuntimeError(f"docker-registry would not start:\n{log_path.read_text()}")
        yield server
    finally:
        if server is not None:
            stop_process(server.process, server.port)
        if token_server is not None:
            token_server.stop()


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous registry on 127.0.0.1."""
    with running_registry(tmp_path_factory.mktemp("registry"), "none") as server:
        yield server


@pytest.fixture
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with htpasswd auth: ``USERNAME``/``PASSWORD`` (and the reader account)."""
    with running_registry(tmp_path_factory.mktemp("registry-basic"), "basic") as server:
        yield server


@pytest.fixture
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with bearer-token auth from a :class:`TokenServer` (``.token_server``)."""
    with running_registry(tmp_path_factory.mktemp("registry-token"), "token") as server:
        yield server


# --------------------------------------------------------------------------- client + push


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="r",service="s",scope="a:b:c"`` -> ``("bearer", {...})``."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip().lower()
        j = eq + 1
        if j < len(rest) and rest[j] == '"':
            end = rest.find('"', j + 1)
            end = len(rest) if end < 0 else end
            params[key] = rest[j + 1 : end]
            i = end + 1
        else:
            end = rest.find(",", j)
            end = len(rest) if end < 0 else end
            params[key] = rest[j:end].strip()
            i = end
        while i < len(rest) and rest[i] in ", ":
            i += 1
    return scheme.lower(), params


class RegistryClient:
    """Plain-HTTP registry v2 client that answers Basic and Bearer challenges itself."""

    def __init__(self, base_url: str, auth: Credentials | None = None, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.session = requests.Session()
        self._authorization: str | None = None

    def _url(self, path_or_url: str) -> str:
        return urllib.parse.urljoin(self.base_url + "/", path_or_url)

    def _answer(self, challenge: str) -> str | None:
        scheme, params = parse_challenge(challenge)
        if self.auth is None:
            return None
        if scheme == "basic":
            raw = f"{self.auth[0]}:{self.auth[1]}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if scheme == "bearer":
            query = {k: v for k, v in params.items() if k in ("service", "scope")}
            r = self.session.get(
                params["realm"], params=query, auth=self.auth, timeout=self.timeout
            )
            r.raise_for_status()
            body = r.json()
            token: str = body.get("token") or body["access_token"]
            return "Bearer " + token
        return None

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """Send; on ``401`` answer the challenge once and resend."""
        url = self._url(path_or_url)
        headers = dict(kwargs.pop("headers", None) or {})
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        if self._authorization:
            headers["Authorization"] = self._authorization
        r = self.session.request(method, url, headers=headers, **kwargs)
        challenge = r.headers.get("WWW-Authenticate")
        if r.status_code == 401 and challenge:
            answer = self._answer(challenge)
            if answer is not None:
                self._authorization = answer
                headers["Authorization"] = answer
                r = self.session.request(method, url, headers=headers, **kwargs)
        return r

    def upload_blob(self, name: str, data: bytes) -> str:
        digest = sha256_digest(data)
        r = self.request("POST", f"/v2/{name}/blobs/uploads/")
        _expect(r, 202)
        location = self._url(r.headers["Location"])
        sep = "&" if "?" in location else "?"
        r = self.request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        _expect(r, 201)
        return digest

    def put_manifest(
        self, name: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        r = self.request(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            data=manifest,
            headers={"Content-Type": media_type},
        )
        _expect(r, 201)
        return r.headers["Docker-Content-Digest"]

    def get_manifest(self, name: str, reference: str, method: str = "GET") -> requests.Response:
        return self.request(
            method, f"/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )


def _expect(r: requests.Response, status: int) -> None:
    if r.status_code != status:
        raise AssertionError(
            f"{r.request.method} {r.url}: expected {status}, got {r.status_code}: {r.text[:500]}"
        )


@dataclass(frozen=True)
class ImageBlobs:
    config: bytes
    layer: bytes
    manifest: bytes


def build_image(content: bytes) -> ImageBlobs:
    """A minimal valid OCI image: one layer with ``/hello.txt`` = ``content``. Deterministic."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = tar_buf.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar_bytes)]},
            "history": [{"created_by": "tests/registry.py"}],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": OCI_LAYER, "digest": sha256_digest(layer), "size": len(layer)}
            ],
        },
        sort_keys=True,
    ).encode()
    return ImageBlobs(config=config, layer=layer, manifest=manifest)


def push_image(
    base_url: str,
    name: str,
    tag: str,
    auth: Credentials | None = None,
    *,
    content: bytes | None = None,
) -> str:
    """Push a small OCI image as ``name:tag``; return the registry's ``Docker-Content-Digest``.

    ``content`` is the one file in the layer (default ``b"NAME:TAG\\n"``, so different tags
    get different digests; pass the same bytes to get the same digest). ``auth`` is
    ``(user, password)``, used for Basic challenges or to fetch push-scoped bearer tokens.
    """
    image = build_image(content if content is not None else f"{name}:{tag}\n".encode())
    client = RegistryClient(base_url, auth)
    client.upload_blob(name, image.config)
    client.upload_blob(name, image.layer)
    digest = client.put_manifest(name, tag, image.manifest)
    if digest != sha256_digest(image.manifest):
        raise AssertionError(f"registry digest {digest} != {sha256_digest(image.manifest)}")
    return digest


def manifest_digest(
    base_url: str, name: str, tag: str, auth: Credentials | None = None
) -> str | None:
    """``Docker-Content-Digest`` of ``GET /v2/NAME/manifests/TAG``; None on 404."""
    r = RegistryClient(base_url, auth).get_manifest(name, tag)
    if r.status_code == 404:
        return None
    _expect(r, 200)
    return r.headers["Docker-Content-Digest"]
