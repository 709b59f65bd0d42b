"""Ask an OCI registry (distribution API v2) whether a tag exists, and its digest.

Authentication follows what docker does: an anonymous request first; on
``401`` the ``WWW-Authenticate`` challenge says Basic (send the credentials)
or Bearer (get a token from the realm, with the credentials if there are
any, for ``repository:NAME:pull``). Credentials come from
``GLUE_REGISTRY_USER``/``GLUE_REGISTRY_PASSWORD`` or docker's config.json.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_glue import network, redact
from gitops_glue.durations import span
from gitops_glue.errors import OperationError, UsageError

if TYPE_CHECKING:
    import requests

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_LOOPBACK = re.compile(r"^(localhost|127(\.\d+){3}|\[::1\])(:\d+)?$")


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port]
    name: str  # repository path, like team/a
    scheme: str  # https, or http for loopback registries / GLUE_REGISTRY_PLAIN_HTTP

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.registry}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}"


def parse_image(image: str) -> ImageRef:
    """``REGISTRY/NAME`` (an explicit ``http://`` or ``https://`` is allowed)."""
    scheme = None
    text = image
    for prefix in ("http://", "https://"):
        if text.startswith(prefix):
            scheme, text = prefix[:-3], text[len(prefix) :]
    if ":" in text.rsplit("/", 1)[-1] or "@" in text:
        raise UsageError(
            f"--image {image!r} includes a tag or digest",
            hint="give the repository only (REGISTRY/NAME) and the tag with --tag",
        )
    first, _, rest = text.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        first, rest = "docker.io", text if "/" in text else f"library/{text}"
    if not re.match(r"^[a-z0-9]+([._/-][a-z0-9]+)*$", rest):
        raise UsageError(f"--image {image!r}: {rest!r} is not a valid repository name")
    if scheme is None:
        plain = os.environ.get("GLUE_REGISTRY_PLAIN_HTTP", "") in ("1", "true")
        scheme = "http" if plain or _LOOPBACK.match(first) else "https"
    registry = "registry-1.docker.io" if first == "docker.io" else first
    return ImageRef(registry, rest, scheme)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __post_init__(self) -> None:
        redact.register(self.password)


def credentials_for(registry: str, env: dict[str, str] | None = None) -> Credentials | None:
    """From GLUE_REGISTRY_USER/PASSWORD, else docker's config.json ``auths``."""
    env = dict(os.environ) if env is None else env
    user, password = env.get("GLUE_REGISTRY_USER"), env.get("GLUE_REGISTRY_PASSWORD")
    if user and password:
        return Credentials(user, password)
    config_dir = env.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    path = Path(config_dir) / "config.json"
    try:
        auths = json.loads(path.read_text(encoding="utf-8")).get("auths", {})
    except (OSError, ValueError):
        return None
    for key, entry in auths.items():
        host = re.sub(r"^https?://", "", key).split("/", 1)[0]
        if host == registry and isinstance(entry, dict) and entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"]).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise UsageError(
                    f"{path}: the auth entry for {key} is not base64 user:password"
                ) from None
            name, _, secret = decoded.partition(":")
            return Credentials(name, secret)
    return None


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


class Registry:
    """A small distribution-v2 client for one image repository."""

    def __init__(
        self, ref: ImageRef, creds: Credentials | None, timeout: float | None = None
    ) -> None:
        import requests

        self.ref = ref
        self.creds = creds
        # Each request, answer included, ends within this (GLUE_NETWORK_TIMEOUT).
        self.timeout = network.timeout_from_env(os.environ) if timeout is None else timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "gitops-glue"
        self._auth_header: str | None = None

    def _get_token(self, params: dict[str, str]) -> str:
        realm = params.get("realm")
        if not realm:
            raise OperationError(f"{self.ref.registry}: Bearer challenge without a realm")
        query = {
            "service": params.get("service", ""),
            "scope": params.get("scope") or f"repository:{self.ref.name}:pull",
        }
        auth = (self.creds.username, self.creds.password) if self.creds else None
        resp = network.run_with_deadline(
            lambda: self.session.get(realm, params=query, auth=auth, timeout=self.timeout),
            self.timeout,
            f"the token service of {self.ref.registry}",
        )
        if resp.status_code in (401, 403):
            raise UsageError(
                f"{self.ref.registry}: the token service refused "
                f"{'the credentials' if self.creds else 'anonymous access'}",
                hint="set GLUE_REGISTRY_USER and GLUE_REGISTRY_PASSWORD or log in with docker",
            )
        resp.raise_for_status()
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise OperationError(f"{self.ref.registry}: the token service answered no token")
        redact.register(token)
        return str(token)

    def _send(self, method: str, url: str, headers: dict[str, str]) -> requests.Response:
        hdrs = dict(headers)
        if self._auth_header:
            hdrs["Authorization"] = self._auth_header
        return network.run_with_deadline(
            lambda: self.session.request(method, url, headers=hdrs, timeout=self.timeout),
            self.timeout,
            f"registry {self.ref.registry}",
        )

    def _request(self, method: str, path: str, headers: dict[str, str]) -> requests.Response:
        """One request; on a 401 challenge, authenticate as it asks and send it again."""
        import requests

        url = f"{self.ref.base}/v2/{path}"
        try:
            resp = self._send(method, url, headers)
            if resp.status_code != 401:
                return resp
            scheme, params = _challenge(resp.headers.get("WWW-Authenticate", ""))
            if scheme == "basic" and self.creds:
                raw = f"{self.creds.username}:{self.creds.password}".encode()
                self._auth_header = "Basic " + base64.b64encode(raw).decode()
                redact.register(self._auth_header)
            elif scheme == "bearer":
                self._auth_header = f"Bearer {self._get_token(params)}"
            else:
                return resp
            return self._send(method, url, headers)
        except requests.RequestException as exc:
            raise OperationError(
                f"registry {self.ref.registry} did not answer: {redact.redact(str(exc))}"
            ) from None

    def digest(self, tag: str) -> str | None:
        """The manifest digest of ``tag``; None when the tag does not exist."""
        resp = self._request("HEAD", f"{self.ref.name}/manifests/{tag}", {"Accept": MANIFEST_TYPES})
        if resp.status_code == 404:
            return None
        if resp.status_code in (401, 403):
            raise UsageError(
                f"registry {self.ref.registry} refused access to {self.ref.name}",
                hint="set GLUE_REGISTRY_USER and GLUE_REGISTRY_PASSWORD, or log in with docker",
            )
        if resp.status_code >= 400:
            raise OperationError(
                f"registry {self.ref.registry} answered {resp.status_code} for "
                f"{self.ref.name}:{tag}"
            )
        digest = resp.headers.get("Docker-Content-Digest")
        if not digest:  # some registries only send it on GET
            got = self._request(
                "GET", f"{self.ref.name}/manifests/{tag}", {"Accept": MANIFEST_TYPES}
            )
            import hashlib

            digest = "sha256:" + hashlib.sha256(got.content).hexdigest()
        return digest

    def tags(self, page_size: int = 1000, max_pages: int = 100) -> list[str]:
        """Every tag of the repository (``GET /v2/NAME/tags/list``, following ``Link``)."""
        from urllib.parse import urljoin

        path: str | None = f"{self.ref.name}/tags/list?n={page_size}"
        found: list[str] = []
        for _ in range(max_pages):
            if path is None:
                break
            resp = self._request("GET", path, {"Accept": "application/json"})
            if resp.status_code == 404:
                return found  # no such repository yet: no tags
            if resp.status_code in (401, 403):
                raise UsageError(
                    f"registry {self.ref.registry} refused to list the tags of {self.ref.name}",
                    hint="set GLUE_REGISTRY_USER and GLUE_REGISTRY_PASSWORD, or log in with docker",
                )
            if resp.status_code >= 400:
                raise OperationError(
                    f"registry {self.ref.registry} answered {resp.status_code} listing the tags "
                    f"of {self.ref.name}"
                )
            try:
                found += list(resp.json().get("tags") or [])
            except ValueError:
                raise OperationError(
                    f"registry {self.ref.registry}: the tags list is not JSON"
                ) from None
            # RFC 5988 pagination: Link: </v2/NAME/tags/list?n=..&last=..>; rel="next"
            link = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', resp.headers.get("Link", ""))
            path = None
            if link:
                url = urljoin(f"{self.ref.base}/v2/", link.group(1))
                path = url.split("/v2/", 1)[1]
        return found


def list_tags(image: str) -> list[str]:
    ref = parse_image(image)
    return Registry(ref, credentials_for(ref.registry)).tags()


def resolve(image: str, tag: str) -> tuple[ImageRef, str | None]:
    ref = parse_image(image)
    return ref, Registry(ref, credentials_for(ref.registry)).digest(tag)


def wait_for(
    image: str,
    tag: str,
    timeout: float,
    interval: float = 5.0,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll until ``tag`` exists; its digest. Raises OperationError at the timeout."""
    ref = parse_image(image)
    registry = Registry(ref, credentials_for(ref.registry))
    deadline = clock() + timeout
    while True:
        digest = registry.digest(tag)
        if digest:
            return digest
        left = deadline - clock()
        if left <= 0:
            raise OperationError(f"{ref}:{tag} did not appear within {span(timeout)}")
        if progress:
            progress(f"waiting for {ref}:{tag}: not there yet, {span(left)} left")
        time.sleep(min(interval, max(left, 0.05)))
