"""The testbed's opt-in pod failures (kwok Stages selected by glue-test/* pod
annotations) and container logs served through the API server, as a user of
kubectl and the API sees them. Pods without the annotations stay Running+Ready."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

FAULTY_CHART = Path(__file__).resolve().parent / "charts" / "faulty"


def install(bed: Testbed, ns: str, release: str, annotations: dict[str, str]) -> None:
    """Install the faulty chart (no --wait: some of its pods never get Ready)."""
    sets = [f"--set-string=podAnnotations.{key}={value}" for key, value in annotations.items()]
    bed.helm(
        3, "upgrade", "--install", release, str(FAULTY_CHART), "-n", ns, "--create-namespace", *sets
    )


def the_pod(bed: Testbed, ns: str, release: str) -> dict[str, Any] | None:
    pods = bed.pods(ns, f"app.kubernetes.io/instance={release}")
    return pods[0] if len(pods) == 1 else None


def condition(pod: dict[str, Any], kind: str) -> str | None:
    for c in pod["status"].get("conditions") or []:
        if c["type"] == kind:
            status: str = c["status"]
            return status
    return None


def container(pod: dict[str, Any]) -> dict[str, Any]:
    [status] = pod["status"]["containerStatuses"]
    return dict(status)


def ready(bed: Testbed, ns: str, release: str) -> dict[str, Any] | None:
    pod = the_pod(bed, ns, release)
    return pod if pod and condition(pod, "Ready") == "True" else None


def started(bed: Testbed, ns: str, release: str) -> dict[str, Any] | None:
    """The release's pod once kwok has given it container statuses."""
    pod = the_pod(bed, ns, release)
    return pod if pod and pod["status"].get("containerStatuses") else None


def restarted(bed: Testbed, ns: str, release: str) -> dict[str, Any] | None:
    pod = started(bed, ns, release)
    return pod if pod and container(pod)["restartCount"] > 0 else None


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_crash_after_makes_a_ready_pod_restart_into_crashloop(testbed: Testbed) -> None:
    ns = testbed.unique("crash")
    install(testbed, ns, "crashy", {"glue-test/crash-after": "4s"})
    install(testbed, ns, "steady", {})

    first = testbed.wait_until(
        lambda: ready(testbed, ns, "crashy"), timeout=60, what="the crash-after pod to be Ready"
    )
    assert first["status"]["phase"] == "Running"
    assert container(first)["restartCount"] == 0
    assert "running" in container(first)["state"]

    pod = testbed.wait_until(
        lambda: restarted(testbed, ns, "crashy"), timeout=60, what="the crash-after pod to restart"
    )
    status = container(pod)
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready") == "False"
    assert status["ready"] is False
    assert status["restartCount"] == 1
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    terminated = status["lastState"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("Error", 1)
    # The container ran for the annotation's 4s (timestamps have whole seconds).
    ran = when(terminated["finishedAt"]) - when(terminated["startedAt"])
    assert ran >= timedelta(seconds=3), terminated

    kubectl_status = testbed.kubectl("get", "pod", "-n", ns, pod["metadata"]["name"]).out
    assert "CrashLoopBackOff" in kubectl_status, kubectl_status

    # The pod without the annotation had as long and is untouched.
    steady = the_pod(testbed, ns, "steady")
    assert steady is not None
    assert steady["status"]["phase"] == "Running"
    assert condition(steady, "Ready") == "True"
    assert container(steady)["restartCount"] == 0
    assert "running" in container(steady)["state"]
    deploy = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/steady")
    assert deploy is not None and deploy["status"].get("readyReplicas") == 1


def test_logs_of_a_crashed_pod_come_back_through_the_api_server(
    testbed: Testbed, tmp_path: Path
) -> None:
    ns = testbed.unique("logs")
    current, previous = tmp_path / "current.log", tmp_path / "previous.log"
    current.write_text(testbed.container_log("starting faulty 1.0.0"))
    previous.write_text(
        testbed.container_log("starting faulty 1.0.0")
        + testbed.container_log("panic: cannot reach the database", stream="stderr")
    )
    testbed.serve_logs(ns, current, previous)
    install(testbed, ns, "crashy", {"glue-test/crash-after": "1s"})

    pod = testbed.wait_until(
        lambda: restarted(testbed, ns, "crashy"), timeout=60, what="the crash-after pod to restart"
    )
    name = pod["metadata"]["name"]

    assert testbed.kubectl("logs", "-n", ns, name).out == "starting faulty 1.0.0\n"
    assert testbed.kubectl("logs", "-n", ns, name, "--previous").out == (
        "starting faulty 1.0.0\npanic: cannot reach the database\n"
    )
    resp = testbed.api(
        "GET", f"/api/v1/namespaces/{ns}/pods/{name}/log", params={"previous": "true"}
    )
    assert resp.status_code == 200
    assert resp.text.splitlines()[-1] == "panic: cannot reach the database"


def test_no_log_files_for_a_namespace_is_an_error_from_kubectl_logs(testbed: Testbed) -> None:
    ns = testbed.unique("nologs")
    install(testbed, ns, "steady", {})
    pod = testbed.wait_until(
        lambda: ready(testbed, ns, "steady"), timeout=60, what="the pod to be Ready"
    )
    res = testbed.kubectl("logs", "-n", ns, pod["metadata"]["name"], check=False)
    assert res.code != 0
    assert "no logs found for container" in res.err, res.output


def test_oom_never_ready_and_image_pull_failures(testbed: Testbed) -> None:
    ns = testbed.unique("faults")
    install(testbed, ns, "oom", {"glue-test/oom-after": "1s"})
    install(testbed, ns, "unready", {"glue-test/never-ready": "true"})
    install(testbed, ns, "nopull", {"glue-test/image-pull-fails": "true"})

    oom = container(
        testbed.wait_until(
            lambda: restarted(testbed, ns, "oom"), timeout=60, what="the oom-after pod to restart"
        )
    )
    assert oom["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert oom["lastState"]["terminated"]["exitCode"] == 137
    assert oom["state"]["waiting"]["reason"] == "CrashLoopBackOff"

    unready = testbed.wait_until(
        lambda: started(testbed, ns, "unready"), timeout=60, what="the never-ready pod"
    )
    assert unready["status"]["phase"] == "Running"
    assert condition(unready, "Ready") == "False"
    assert container(unready)["ready"] is False
    assert container(unready)["restartCount"] == 0
    assert "running" in container(unready)["state"]

    nopull = testbed.wait_until(
        lambda: started(testbed, ns, "nopull"), timeout=60, what="the image-pull-fails pod"
    )
    assert nopull["status"]["phase"] == "Pending"
    assert condition(nopull, "Ready") == "False"
    waiting = container(nopull)["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff"
    assert "registry.example.com/team/faulty:1.0.0" in waiting["message"]
