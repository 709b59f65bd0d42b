"""Smoke tests of the testbed itself: real Helm 3/4 and helmfile against the real
local cluster, asserting on what a user of them observes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.testbed import ROOT, Testbed

pytestmark = pytest.mark.cluster

APP_CHART = ROOT / "charts" / "app"
HOOKED_CHART = Path(__file__).resolve().parent / "charts" / "hooked"
HELMS = [pytest.param(3, id="helm3"), pytest.param(4, id="helm4")]


def helm_status(bed: Testbed, helm: int, release: str, namespace: str) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(
        bed.helm(helm, "status", release, "-n", namespace, "-o", "json").out
    )
    return status


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return pod.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


@pytest.mark.parametrize("helm", HELMS)
def test_helm_upgrade_install_wait_reaches_deployed(testbed: Testbed, helm: int) -> None:
    ns, release = testbed.unique(f"smoke-h{helm}"), "app"
    testbed.helm(
        helm,
        "upgrade",
        "--install",
        release,
        str(APP_CHART),
        "-n",
        ns,
        "--create-namespace",
        "--set",
        "image.tag=3f9c2e1",
        "--wait",
        "--timeout",
        "120s",
    )

    status = helm_status(testbed, helm, release, ns)
    assert status["info"]["status"] == "deployed"
    assert status["version"] == 1

    deploy = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{release}")
    assert deploy is not None
    assert deploy["status"].get("readyReplicas") == deploy["spec"]["replicas"] == 1
    pods = testbed.pods(ns, f"app.kubernetes.io/instance={release}")
    assert len(pods) == 1
    assert is_ready(pods[0]), pods[0].get("status")
    assert pods[0]["spec"]["containers"][0]["image"].endswith(":3f9c2e1")
    assert pods[0]["spec"]["nodeName"].startswith("kwok-node-")

    [secret] = testbed.release_secrets(ns, release)
    assert secret["metadata"]["labels"]["status"] == "deployed"


@pytest.mark.parametrize("helm", HELMS)
def test_post_install_hook_job_completes(testbed: Testbed, helm: int) -> None:
    ns, release = testbed.unique(f"hook-h{helm}"), "hooked"
    testbed.helm(
        helm,
        "upgrade",
        "--install",
        release,
        str(HOOKED_CHART),
        "-n",
        ns,
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
    )

    status = helm_status(testbed, helm, release, ns)
    assert status["info"]["status"] == "deployed"
    hooks = {h["name"]: h for h in status.get("hooks") or []}
    hook = hooks[f"{release}-post-install"]
    assert hook["last_run"]["phase"] == "Succeeded", hook["last_run"]
    # hook-succeeded: Helm deleted the Job once it completed.
    assert testbed.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{release}-post-install") is None
    assert testbed.get(f"/api/v1/namespaces/{ns}/configmaps/{release}-settings") is not None


def test_helmfile_diff_and_apply_on_example_repo(testbed: Testbed, tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    repo.mkdir()
    shutil.copy(ROOT / "helmfile.yaml.gotmpl", repo)
    shutil.copytree(ROOT / "environments", repo / "environments")
    shutil.copytree(ROOT / "charts", repo / "charts")
    ns = "example-staging"

    diff = testbed.helmfile("-e", "staging", "diff", cwd=repo, timeout=300)
    assert "example-staging, a, Deployment (apps) has been added" in diff.output, diff.output

    testbed.helmfile("-e", "staging", "apply", cwd=repo, timeout=600)

    for svc, tag in (("a", "3f9c2e1"), ("b", "1d2e3f4")):
        [secret] = testbed.release_secrets(ns, svc)
        assert secret["metadata"]["labels"]["status"] == "deployed"
        pods = testbed.pods(ns, f"app.kubernetes.io/instance={svc}")
        assert [p["spec"]["containers"][0]["image"] for p in pods] == [
            f"registry.example.com/team/{svc}:{tag}"
        ]
        assert is_ready(pods[0])

    again = testbed.helmfile(
        "-e", "staging", "diff", "--detailed-exitcode", cwd=repo, timeout=300, check=False
    )
    assert again.code == 0, again.output


@pytest.mark.parametrize("helm", HELMS)
def test_helm_diff_plugin_reports_changes(testbed: Testbed, helm: int) -> None:
    ns, release = testbed.unique(f"diff-h{helm}"), "app"
    common = [str(APP_CHART), "-n", ns]
    testbed.helm(
        helm,
        "upgrade",
        "--install",
        release,
        *common,
        "--create-namespace",
        "--set",
        "image.tag=3f9c2e1",
        "--wait",
        "--timeout",
        "120s",
    )
    # helm-diff 3.9.14 (the newest on our Go module proxy) runs
    # `helm template --validate --dry-run=client`, which Helm 4 rejects; with
    # Helm 4 it needs --disable-validation (or HELM_DIFF_USE_UPGRADE_DRY_RUN=true).
    extra = ["--disable-validation"] if helm == 4 else []

    same = testbed.helm(
        helm,
        "diff",
        "upgrade",
        release,
        *common,
        "--set",
        "image.tag=3f9c2e1",
        "--detailed-exitcode",
        *extra,
        check=False,
    )
    assert same.code == 0, same.output
    bumped = testbed.helm(
        helm,
        "diff",
        "upgrade",
        release,
        *common,
        "--set",
        "image.tag=4a5b6c7",
        "--detailed-exitcode",
        *extra,
        check=False,
    )
    assert bumped.code == 2, bumped.output
    assert '+           image: "registry.example.com/team/app:4a5b6c7"' in bumped.out


@pytest.mark.parametrize("helm", HELMS)
def test_sigkilled_upgrade_leaves_release_pending(testbed: Testbed, helm: int) -> None:
    ns, release = testbed.unique(f"kill-h{helm}"), "app"
    common = [str(APP_CHART), "-n", ns, "--set", "image.tag=3f9c2e1"]
    testbed.helm(
        helm,
        "upgrade",
        "--install",
        release,
        *common,
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
    )

    # The new pod asks for more CPU than any node has: it never schedules, so
    # the rollout (and `helm upgrade --wait`) waits until we kill helm.
    proc = testbed.popen(
        testbed.helm_path(helm),
        "upgrade",
        release,
        *common,
        "--set",
        "image.tag=4a5b6c7",
        "--set",
        "resources.requests.cpu=1000",
        "--wait",
        "--timeout",
        "60s",
    )
    try:

        def pending() -> dict[str, Any] | None:
            secret = testbed.get(f"/api/v1/namespaces/{ns}/secrets/sh.helm.release.v1.{release}.v2")
            if secret and secret["metadata"]["labels"].get("status") == "pending-upgrade":
                return secret
            return None

        testbed.wait_until(pending, timeout=60, what="the pending-upgrade release Secret")
        # Mid-way: the new ReplicaSet's pod exists but cannot become ready.
        testbed.wait_until(
            lambda: [
                p
                for p in testbed.pods(ns, f"app.kubernetes.io/instance={release}")
                if p["spec"]["containers"][0]["image"].endswith(":4a5b6c7")
            ],
            timeout=30,
            what="the upgraded pod",
        )
        assert proc.poll() is None, f"helm exited early: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    secrets = testbed.release_secrets(ns, release)
    assert [s["metadata"]["name"] for s in secrets] == [
        f"sh.helm.release.v1.{release}.v1",
        f"sh.helm.release.v1.{release}.v2",
    ]
    assert secrets[1]["metadata"]["labels"]["status"] == "pending-upgrade"
    assert Testbed.decode_release(secrets[1])["info"]["status"] == "pending-upgrade"
    assert helm_status(testbed, helm, release, ns)["info"]["status"] == "pending-upgrade"

    # What a user hits next: Helm refuses to touch the release.
    again = testbed.helm(
        helm, "upgrade", release, *common, "--wait", "--timeout", "30s", check=False
    )
    assert again.code != 0
    assert "another operation (install/upgrade/rollback) is in progress" in again.output


def test_two_clusters_side_by_side(testbed: Testbed, tmp_path: Path) -> None:
    """A second cluster starts next to the session's, on its own ports, and stops."""
    script = str(ROOT / "scripts" / "testbed")
    env = {**testbed.env, "GLUE_TESTBED_STATE": str(tmp_path / "state")}
    up = subprocess.run(
        [script, "up", "second"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        kubeconfig = tmp_path / "state" / "second" / "kubeconfig"
        ours = testbed.kubectl("--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "name")
        assert "node/kwok-node-0" in ours.out
        assert (
            testbed.kubectl(
                "--kubeconfig",
                str(kubeconfig),
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ).out
            != testbed.server
        )
    finally:
        down = subprocess.run(
            [script, "down", "second"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (tmp_path / "state" / "second").exists()
