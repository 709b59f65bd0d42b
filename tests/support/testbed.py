"""pytest support for cluster tests: a real local Kubernetes cluster from scripts/testbed.

The session fixture :func:`testbed` runs ``scripts/testbed up`` (which first builds
or fetches whatever tool is missing from the cache, printing progress), yields a
:class:`Testbed`, and runs ``scripts/testbed down`` at the end. The cluster's
state lives in pytest's temporary directory, so it never collides with a
cluster a developer started by hand in ``.testbed/``.

If the testbed cannot be built or started, the fixture fails with the script's
own message naming the missing piece; it never skips.

Tests that use it are marked ``@pytest.mark.cluster``.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "testbed"

T = TypeVar("T")


class TestbedError(AssertionError):
    """A command run against the testbed failed; the message carries its output."""

    __test__ = False  # not a test class, despite the name


@dataclass
class Result:
    args: list[str]
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


@dataclass
class Testbed:
    """A running testbed cluster and the tools to drive it.

    ``env`` is a full environment for subprocesses: the caller's environment plus
    KUBECONFIG, PATH (tool cache first: helm, helm3, helm4, helmfile, kubectl),
    HELM_PLUGINS (helm-diff) and private HELM_*_HOME dirs.
    """

    __test__ = False  # not a test class, despite the name

    name: str
    state_dir: Path
    kubeconfig: Path
    server: str
    env: dict[str, str]
    bin_dir: Path
    _session: requests.Session = field(default_factory=requests.Session, repr=False)
    _ca: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        pki = self.state_dir / "pki"
        self._session.cert = (str(pki / "admin.crt"), str(pki / "admin.key"))
        self._ca = str(pki / "ca.crt")

    # -- running tools ---------------------------------------------------------

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 300,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> Result:
        """Run a command with the testbed environment; raise TestbedError on failure
        if ``check`` (the error shows the command's output)."""
        full_env = dict(self.env)
        full_env.update(env or {})
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        res = Result(list(args), proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise TestbedError(
                f"{' '.join(args)} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return res

    def popen(
        self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start a command in the background with the testbed environment."""
        full_env = dict(self.env)
        full_env.update(env or {})
        return subprocess.Popen(
            list(args),
            cwd=cwd,
            env=full_env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def helm(self, version: int, *args: str, **kw: Any) -> Result:
        """Run Helm 3 or 4 (``helm3``/``helm4`` from the tool cache)."""
        return self.run(self.helm_path(version), *args, **kw)

    def helm_path(self, version: int) -> str:
        if version not in (3, 4):
            raise ValueError(f"helm version must be 3 or 4, not {version!r}")
        return str(self.bin_dir / f"helm{version}")

    def helmfile(self, *args: str, helm: int = 3, **kw: Any) -> Result:
        """Run helmfile; the ``helm`` it calls is Helm ``helm`` (3 or 4)."""
        env = dict(kw.pop("env", None) or {})
        env["GLUE_TESTBED_HELM"] = str(helm)
        return self.run(str(self.bin_dir / "helmfile"), *args, env=env, **kw)

    def kubectl(self, *args: str, **kw: Any) -> Result:
        return self.run(str(self.bin_dir / "kubectl"), *args, **kw)

    # -- the Kubernetes API ----------------------------------------------------

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        """An authenticated (cluster-admin) request to the API server."""
        # verify per request: a session-level verify loses to REQUESTS_CA_BUNDLE.
        return self._session.request(method, self.server + path, timeout=30, verify=self._ca, **kw)

    def get(self, path: str, **params: str) -> dict[str, Any] | None:
        """GET an API path; the decoded object, or None on 404."""
        resp = self.api("GET", path, params=params or None)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def items(self, path: str, **params: str) -> list[dict[str, Any]]:
        """GET a list path (e.g. ``/api/v1/namespaces/ns/pods``); its items."""
        body = self.get(path, **params)
        return [] if body is None else list(body.get("items") or [])

    def pods(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        return self.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)

    def release_secrets(self, namespace: str, release: str) -> list[dict[str, Any]]:
        """Helm's release Secrets (one per revision), oldest revision first."""
        items = self.items(
            f"/api/v1/namespaces/{namespace}/secrets", labelSelector=f"owner=helm,name={release}"
        )
        return sorted(items, key=lambda s: int(s["metadata"]["labels"]["version"]))

    @staticmethod
    def decode_release(secret: Mapping[str, Any]) -> dict[str, Any]:
        """The release record inside a Helm release Secret (base64 + gzip JSON)."""
        raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        record: dict[str, Any] = json.loads(raw)
        return record

    # -- container logs (kwok serves them from files) --------------------------

    def serve_logs(self, namespace: str, current: Path, previous: Path) -> None:
        """Make ``kubectl logs`` of every container of every pod in ``namespace``
        return ``current``'s lines, and ``kubectl logs --previous`` ``previous``'s.

        Creates a kwok ClusterLogs object (cluster-scoped, named after the
        namespace; it stays until the cluster goes). Write the files with
        :meth:`container_log`; kwok reads them on each request.
        """
        body = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": namespace},
            "spec": {
                "selector": {"matchNamespaces": [namespace]},
                "logs": [{"logsFile": str(current), "previousLogsFile": str(previous)}],
            },
        }
        resp = self.api("POST", "/apis/kwok.x-k8s.io/v1alpha1/clusterlogs", json=body)
        if resp.status_code != 201:
            raise TestbedError(f"creating ClusterLogs {namespace}: {resp.status_code} {resp.text}")

    @staticmethod
    def container_log(*lines: str, stream: str = "stdout") -> str:
        """``lines`` as a container log file in the CRI format kwok reads."""
        stamp = "2026-01-01T00:00:00.000000000Z"
        return "".join(f"{stamp} {stream} F {line}\n" for line in lines)

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def unique(prefix: str) -> str:
        """A short unique DNS-label name (for namespaces and releases)."""
        return f"{prefix}-{uuid.uuid4().hex[:6]}"

    @staticmethod
    def wait_until(
        probe: Callable[[], T | None],
        timeout: float = 60,
        interval: float = 0.1,
        what: str = "condition",
    ) -> T:
        """Poll ``probe`` until it returns something truthy; return that."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TestbedError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)


def _show(line: str, config: pytest.Config) -> None:
    """Print a progress line even while pytest captures output."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            sys.stderr.write(line)
            sys.stderr.flush()
    else:
        sys.stderr.write(line)


def _script(
    args: list[str], env: Mapping[str, str], config: pytest.Config, timeout: float
) -> tuple[int, str]:
    """Run scripts/testbed, streaming its progress lines; (exit code, output)."""
    proc = subprocess.Popen(
        [str(SCRIPT), *args],
        env=dict(env),
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, proc.kill)  # a silent build step can hang too
    watchdog.start()
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            _show(line, config)
        code = proc.wait()
    finally:
        watchdog.cancel()
    if code == -signal.SIGKILL:
        lines.append(f"scripts/testbed {' '.join(args)}: killed after {timeout:.0f}s\n")
    return code, "".join(lines)


def _parse_env(text: str) -> dict[str, str]:
    """Evaluate `scripts/testbed env` output in bash and read the result back."""
    dump = subprocess.run(["bash", "-c", f"{text}\nenv -0"], capture_output=True, check=True)
    env: dict[str, str] = {}
    for item in dump.stdout.split(b"\0"):
        if b"=" in item:
            key, _, value = item.decode().partition("=")
            env[key] = value
    return env


def start_testbed(name: str, state_root: Path, config: pytest.Config) -> Testbed:
    """Bring up cluster ``name`` under ``state_root``; fail the test run if it can't."""
    # The caller's Helm/kubectl settings (a kube context, a namespace) must not
    # leak into the tests; GLUE_TESTBED_* would point at another cluster.
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "KUBE", "GLUE_TESTBED_"))
    }
    if "GLUE_TESTBED_CACHE" in os.environ:
        base_env["GLUE_TESTBED_CACHE"] = os.environ["GLUE_TESTBED_CACHE"]
    base_env["GLUE_TESTBED_STATE"] = str(state_root)
    # The first run builds the control plane from source (~10-20 min on 2 cores).
    code, out = _script(
        ["up", name],
        base_env,
        config,
        timeout=float(os.environ.get("GLUE_TESTBED_UP_TIMEOUT", "2700")),
    )
    if code != 0:
        tail = "".join(out.splitlines(keepends=True)[-40:])
        # Stop whatever did start; the logs are in the failure message's tail.
        _script(["down", name], base_env, config, timeout=120)
        pytest.fail(
            f"scripts/testbed up {name} failed (exit {code}); the testbed is "
            f"required for cluster tests:\n{tail}",
            pytrace=False,
        )
    env_text = subprocess.run(
        [str(SCRIPT), "env", name], env=base_env, check=True, capture_output=True, text=True
    ).stdout
    env = _parse_env(env_text)
    state_dir = state_root / name
    server = ""
    for line in (state_dir / "cluster.env").read_text().splitlines():
        if line.startswith("SERVER="):
            server = line.partition("=")[2]
    bin_dir = Path(env["GLUE_TESTBED_CACHE"]) / "bin"
    for tool in ("helm3", "helm4", "helmfile", "kubectl"):
        if not (bin_dir / tool).exists():
            pytest.fail(f"testbed tool {tool} is missing from {bin_dir}", pytrace=False)
    return Testbed(
        name=name,
        state_dir=state_dir,
        kubeconfig=Path(env["KUBECONFIG"]),
        server=server,
        env=env,
        bin_dir=bin_dir,
    )


def stop_testbed(bed: Testbed, config: pytest.Config) -> None:
    code, out = _script(["down", bed.name], {**bed.env}, config, timeout=120)
    if code != 0:
        raise TestbedError(f"scripts/testbed down {bed.name} failed:\n{out}")


@pytest.fixture(scope="session")
def testbed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Testbed]:
    """A real Kubernetes cluster (etcd, kube-apiserver, controller-manager, scheduler,
    kwok fake nodes) with helm 3/4, helmfile and helm-diff; torn down after the
    session."""
    state_root = tmp_path_factory.mktemp("testbed")
    bed = start_testbed(f"pytest-{os.getpid()}", state_root, request.config)
    try:
        yield bed
    finally:
        stop_testbed(bed, request.config)
