"""Playing the kubelet for Helm hook Jobs on the testbed (kwok completes Jobs without running them).

The hook Jobs get a node selector no node has (``<key>.nodeSelector`` of charts/glue-hooks), so
their pods stay pending while Helm waits for them; for each one the test runs the Job's
container command with the Job's environment and ServiceAccount (on the host, or inside the
built image: tests/cluster/test_image.py), then binds the pod to a node, so that kwok completes
it and Helm moves on. The commands therefore run exactly when, and with exactly the objects,
Helm's hook order gives them.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.helpers import Run, glue
from tests.support.slackserver import SlackServer
from tests.support.testbed import Testbed, TestbedError

HOLD_LABEL = "glue-test-hold"

#: Runs a hook Job's container command: (the Job, its resolved environment) -> the result.
Runner = Callable[[dict[str, Any], dict[str, str]], Run]


def sa_kubeconfig(bed: Testbed, ns: str, sa: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``sa``, as a Pod of it would."""
    token = bed.kubectl("create", "token", sa, "-n", ns, "--duration", "10m").out.strip()
    ca = base64.b64encode((bed.state_dir / "pki" / "ca.crt").read_bytes()).decode()
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": bed.server, "certificate-authority-data": ca},
                    }
                ],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [
                    {"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": ns}}
                ],
            }
        )
    )
    return path


def job_env(bed: Testbed, ns: str, job: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it (Secret refs resolved)."""
    [container] = job["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "valueFrom" not in item:  # the API server drops empty values
            env[item["name"]] = item.get("value", "")
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        secret = bed.get(f"/api/v1/namespaces/{ns}/secrets/{ref['name']}")
        value = (secret or {}).get("data", {}).get(ref["key"])
        if value is None:
            assert ref.get("optional"), item
            continue
        env[item["name"]] = base64.b64decode(value).decode()
    return env


def host_runner(bed: Testbed, ns: str, slack: SlackServer, tmp_path: Path) -> Runner:
    """The Job's command run by the test's Python, as the Job's ServiceAccount."""

    def run(job: dict[str, Any], env: dict[str, str]) -> Run:
        spec = job["spec"]["template"]["spec"]
        [container] = spec["containers"]
        command = [*container["command"], *container["args"]]
        assert command[0] == "glue"
        kubeconfig = sa_kubeconfig(bed, ns, spec["serviceAccountName"], tmp_path / "sa.kubecfg")
        full = {**env, "KUBECONFIG": str(kubeconfig), "GLUE_SLACK_API_URL": slack.api_url}
        return glue(*command[1:], env=full, cwd=tmp_path)

    return run


@dataclass
class HeldHelm:
    """A Helm command whose hook Jobs wait until the test has run them (see the module doc)."""

    bed: Testbed
    ns: str
    proc: subprocess.Popen[str]
    runs: list[tuple[str, Run]]

    def play(self, job_name: str, runner: Runner) -> Run:
        bed, ns = self.bed, self.ns

        def pending_pod() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise TestbedError(f"helm exited {self.proc.returncode}: {self.proc.communicate()}")
            pods = bed.pods(ns, f"job-name={job_name}")
            return pods[0] if pods and not pods[0]["spec"].get("nodeName") else None

        pod = bed.wait_until(pending_pod, timeout=90, what=f"the pod of hook Job {job_name}")
        job = bed.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{job_name}")
        assert job is not None
        result = runner(job, job_env(bed, ns, job))
        self.runs.append((job_name, result))
        # The kubelet's part is done: let kwok have the pod (it completes Jobs' pods).
        node = bed.items("/api/v1/nodes")[0]["metadata"]["name"]
        bound = bed.api(
            "POST",
            f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/binding",
            json={
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": pod["metadata"]["name"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            },
        )
        assert bound.status_code == 201, bound.text
        return result

    def finish(self) -> None:
        out, err = self.proc.communicate(timeout=180)
        assert self.proc.returncode == 0, out + err


def held_helm(bed: Testbed, helm: int, ns: str, *args: str, key: str = "glue-hooks") -> HeldHelm:
    """Start ``helm *args`` with the hook Jobs of the glue-hooks dependency at ``key`` held."""
    hold = ["--set-string", f"{key}.nodeSelector.{HOLD_LABEL}=yes"]
    proc = bed.popen(bed.helm_path(helm), *args, *hold)
    return HeldHelm(bed, ns, proc, [])
