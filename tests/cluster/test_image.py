"""The glue images, built from the Dockerfile here without a Docker engine, and run.

``scripts/build-image`` builds the small and the full image with buildah (a Debian root
filesystem made by mmdebstrap stands in for the upstream python image; helm, helmfile and
helm-diff come from the testbed's pinned builds) and pushes both to a test registry. Images
are cached by a content hash, so a second run builds nothing.

kwok does not start containers, so the tests do what a kubelet would: they run the hook Job's
command inside the small image's root filesystem (read-only), as the Job's user, with the Job's
environment and the ServiceAccount token, CA and namespace mounted where Kubernetes mounts
them, against the testbed API server and the Slack stand-in; and ``glue apply --env dev`` inside
the full image.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

import pytest
import requests
from typing_extensions import Required, Unpack

from tests.cluster.hookplay import Runner
from tests.cluster.test_hooks_chart import (
    check_install_upgrade_uninstall,
    scaffold,
    setup_namespace,
)
from tests.support.helpers import ROOT, Run, example_repo, git
from tests.support.registry import RegistryServer, running_registry
from tests.support.slackserver import SlackServer
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass
class Images:
    small: str
    full: str
    sizes: dict[str, int]
    pushed: list[str]
    registry: RegistryServer


def show(config: pytest.Config, line: str) -> None:
    """Print a line even while pytest captures output."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            sys.stderr.write(line + "\n")
    else:
        sys.stderr.write(line + "\n")


@pytest.fixture(scope="module")
def images(
    testbed: Testbed, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Images]:
    for tool in ("buildah", "mmdebstrap", "unshare"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/bootstrap")
    with running_registry(tmp_path_factory.mktemp("image-registry")) as reg:
        env = {**os.environ, "GLUE_TESTBED_HOME": str(testbed.bin_dir.parent)}
        proc = subprocess.run(
            [str(ROOT / "scripts" / "build-image"), "--push", reg.host],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        refs: dict[str, str] = {}
        sizes: dict[str, int] = {}
        pushed: list[str] = []
        for line in proc.stdout.splitlines():
            word, *rest = line.split()
            if word in ("small", "full"):
                refs[word], sizes[word] = rest[0], int(rest[1])
            elif word == "pushed":
                pushed.append(rest[0])
        for target in ("small", "full"):
            show(
                request.config,
                f"image {target}: {refs[target]} {sizes[target] / 1e6:.0f} MB "
                f"({sizes[target]} bytes)",
            )
        yield Images(refs["small"], refs["full"], sizes, pushed, reg)


def image_config(image: str) -> dict[str, Any]:
    out = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], capture_output=True, text=True, check=True
    ).stdout
    config: dict[str, Any] = json.loads(out)["OCIv1"]["config"]
    return config


def inside(root: Path, path: str) -> str:
    """``path`` as seen in the root filesystem ``root``, its symlinks resolved there (Debian's
    /var/run is a link to /run: a host-side mkdir must not follow it out of ``root``)."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        here = root.joinpath(*resolved, part)
        if here.is_symlink():
            hops += 1
            assert hops < 40, path
            target = os.readlink(here)
            parts = [p for p in target.split("/") if p] + parts
            if target.startswith("/"):
                resolved = []
            continue
        if part == "..":
            resolved = resolved[:-1]
        elif part != ".":
            resolved.append(part)
    return "/" + "/".join(resolved)


@contextmanager
def started_in_image(
    image: str,
    command: list[str],
    *,
    user: str,
    env: dict[str, str],
    binds: Sequence[tuple[Path, str, bool]] = (),
    read_only: bool = True,
    workdir: str | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """``command`` started in a fresh container of ``image``, the way a container runtime
    starts it: its own mount and PID namespaces, /proc and /dev, the image's environment
    overlaid with ``env``, ``binds`` (host path, container path, read-only) mounted, the root
    filesystem read-only if ``read_only``, as ``user`` (uid:gid). The network is the host's
    (127.0.0.1). ``command`` is the container's PID 1; :func:`container_pid` finds it. The
    container goes when the block ends (the process is killed if it still runs)."""
    config = image_config(image)
    ctr = subprocess.run(
        ["buildah", "from", "--pull=false", "--quiet", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    proc: subprocess.Popen[str] | None = None
    try:
        root = subprocess.run(
            ["buildah", "mount", ctr], capture_output=True, text=True, check=True
        ).stdout.strip()
        lines = [
            "set -e",
            "mount --make-rprivate /",
            f"r={shlex.quote(root)}",
            'mount --bind "$r" "$r"',
        ]
        for src, dst, ro in binds:
            q = shlex.quote(inside(Path(root), dst))
            lines.append(f'mkdir -p "$r"{q}')
            lines.append(f'mount --bind {shlex.quote(str(src))} "$r"{q}')
            if ro:
                lines.append(f'mount -o remount,bind,ro "$r"{q}')
        lines += [
            'mkdir -p "$r/dev" "$r/proc"',
            'mount --rbind /dev "$r/dev"',
            'mount -t proc proc "$r/proc"',
        ]
        if read_only:
            lines.append('mount -o remount,bind,ro "$r"')
        full_env = dict(e.split("=", 1) for e in config.get("Env") or [])
        full_env.update(env)
        cwd = workdir or config.get("WorkingDir") or "/"
        lines.append(
            f'exec chroot --userspec={shlex.quote(user)} "$r" '
            f"/usr/bin/env -i -C {shlex.quote(cwd)} "
            + " ".join(shlex.quote(f"{k}={v}") for k, v in full_env.items())
            + " "
            + " ".join(shlex.quote(c) for c in command)
        )
        proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", "\n".join(lines)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        yield proc
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        subprocess.run(["buildah", "rm", ctr], capture_output=True, check=False)


def container_pid(proc: subprocess.Popen[str]) -> int:
    """The host's PID of the container's PID 1 (the command, after the chroot and env
    exec it): the one child of ``unshare``."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


class ContainerSettings(TypedDict, total=False):
    """:func:`started_in_image`'s keyword arguments, for :func:`run_in_image`."""

    user: Required[str]
    env: Required[dict[str, str]]
    binds: Sequence[tuple[Path, str, bool]]
    read_only: bool
    workdir: str | None


def run_in_image(
    image: str, command: list[str], *, timeout: float = 300, **settings: Unpack[ContainerSettings]
) -> Run:
    """``command`` run to its end in a fresh container of ``image`` (:func:`started_in_image`)."""
    with started_in_image(image, command, **settings) as proc:
        out, err = proc.communicate(timeout=timeout)
        return Run(proc.returncode, out, err)


def image_runner(bed: Testbed, ns: str, slack: SlackServer, image: str, tmp_path: Path) -> Runner:
    """A hook Job's container run inside ``image`` as a kubelet would run it."""
    server = urlsplit(bed.server)

    def run(job: dict[str, Any], env: dict[str, str]) -> Run:
        spec = job["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["image"].startswith("ghcr.io/example/gitops-glue:")  # the chart default
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        pod_sc = spec["securityContext"]
        user = f"{pod_sc['runAsUser']}:{pod_sc['runAsGroup']}"
        # The projected ServiceAccount volume: token, the cluster CA, the namespace.
        sa = tmp_path / f"sa-{job['metadata']['name']}"
        sa.mkdir(exist_ok=True)
        token = bed.kubectl(
            "create", "token", spec["serviceAccountName"], "-n", ns, "--duration", "10m"
        ).out.strip()
        (sa / "token").write_text(token)
        shutil.copy(bed.state_dir / "pki" / "ca.crt", sa / "ca.crt")
        (sa / "namespace").write_text(ns)
        for f in sa.iterdir():
            f.chmod(0o644)
        pod_env = {
            **env,
            # What the kubelet adds: the API server's service address (here, the testbed's).
            "KUBERNETES_SERVICE_HOST": str(server.hostname),
            "KUBERNETES_SERVICE_PORT": str(server.port),
            # The Slack stand-in instead of slack.com.
            "GLUE_SLACK_API_URL": slack.api_url,
        }
        return run_in_image(
            image,
            [*container["command"], *container["args"]],
            user=user,
            env=pod_env,
            binds=[(sa, SA_DIR, True)],
            read_only=True,
        )

    return run


def test_images_are_built_pushed_and_the_small_one_is_at_most_half(images: Images) -> None:
    sizes = images.sizes
    assert sizes["small"] * 2 <= sizes["full"], sizes
    tags = requests.get(f"{images.registry.url}/v2/gitops-glue/tags/list", timeout=30).json()
    key = images.small.rsplit(":", 1)[1].removesuffix("-small")
    assert sorted(tags["tags"]) == [f"{key}-full", f"{key}-small"]
    assert images.pushed == [
        f"{images.registry.host}/gitops-glue:{key}-small",
        f"{images.registry.host}/gitops-glue:{key}-full",
    ]
    for image in (images.small, images.full):
        assert image_config(image)["User"] == "10001:10001"
    # The small image has glue and nothing of the deploy tools; the full one has them all.
    small = run_in_image(
        images.small,
        [
            "sh",
            "-c",
            "glue --version; for t in helm helmfile git; do command -v $t || echo no $t; done",
        ],
        user="10001:10001",
        env={},
    )
    assert small.code == 0, small.err
    assert small.out.splitlines()[1:] == ["no helm", "no helmfile", "no git"], small.out
    full = run_in_image(
        images.full,
        [
            "sh",
            "-c",
            "helm version --short && helmfile --version && helm diff version && git --version",
        ],
        user="10001:10001",
        env={},
        read_only=False,
    )
    assert full.code == 0, full.err
    assert full.out.startswith("v3.18.0+"), full.out
    assert "helmfile version 0.166.0" in full.out and "3.9.14" in full.out, full.out


def test_small_image_starts_read_only_as_10001_and_finds_its_ca_certificates(
    images: Images,
) -> None:
    res = run_in_image(
        images.small,
        [
            "sh",
            "-c",
            "id -u; id -g; touch /probe 2>&1 || true; touch /tmp/probe 2>&1 || true; "
            "python3 -c 'import ssl; "
            "print(len(ssl.create_default_context().get_ca_certs()) > 100)'",
        ],
        user="10001:10001",
        env={},
    )
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[:2] == ["10001", "10001"]
    assert lines[2] == "touch: cannot touch '/probe': Read-only file system"
    assert lines[3] == "touch: cannot touch '/tmp/probe': Read-only file system"
    assert lines[4] == "True"


def test_hook_jobs_run_inside_the_small_image(
    testbed: Testbed, slack: SlackServer, images: Images, tmp_path: Path
) -> None:
    """The whole hooks scenario of test_hooks_chart.py, each hook Job run inside the image."""
    ns = setup_namespace(testbed, "hooks-image")
    chart = scaffold(testbed, 3, tmp_path)
    runner = image_runner(testbed, ns, slack, images.small, tmp_path)
    check_install_upgrade_uninstall(testbed, slack, 3, ns, chart, runner)


def test_full_image_runs_glue_apply_env_dev(
    testbed: Testbed, images: Images, tmp_path: Path
) -> None:
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("dev-image")
    for name in ("environments/dev.yaml", "glue.yaml"):
        f = repo / name
        f.write_text(f.read_text().replace("namespace: example-dev", f"namespace: {ns}"))
    git(repo, "commit", "-qam", "test namespace")
    kubeconfig = repo.parent / "kubeconfig"
    kubeconfig.write_text(testbed.kubectl("config", "view", "--raw", "--flatten", "--minify").out)
    subprocess.run(["chown", "-R", "10001:10001", str(repo.parent)], check=True)
    res = run_in_image(
        images.full,
        ["glue", "apply", "--env", "dev", "-o", "json"],
        user="10001:10001",
        env={"KUBECONFIG": "/work/kubeconfig", "HOME": "/tmp"},
        binds=[(repo.parent, "/work", False)],
        read_only=False,
        workdir="/work/deploy",
        timeout=600,
    )
    assert res.code == 0, res.out + res.err
    assert json.loads(res.out)["releases"] == ["a", "b"]
    rec = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-dev")
    assert rec is not None
    services = json.loads(rec["data"]["services.json"])
    assert {s: {k: v[k] for k in ("release", "revision", "tag")} for s, v in services.items()} == {
        "a": {"release": "a", "revision": "3f9c2e1", "tag": "3f9c2e1"},
        "b": {"release": "b", "revision": "9a8b7c6", "tag": "9a8b7c6"},
    }
    for svc, tag in (("a", "3f9c2e1"), ("b", "9a8b7c6")):
        [secret] = testbed.release_secrets(ns, svc)
        assert secret["metadata"]["labels"]["status"] == "deployed"
        pods = testbed.pods(ns, f"app.kubernetes.io/instance={svc}")
        assert [p["spec"]["containers"][0]["image"] for p in pods] == [
            f"registry.example.com/team/{svc}:{tag}"
        ]
