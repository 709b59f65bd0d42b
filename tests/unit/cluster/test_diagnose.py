"""Why a pod is not Ready, read from the Pod as the API serves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gitops_glue.cluster.diagnose import PodProblem, is_ready, problems_of


def pod(
    phase: str, conditions: Sequence[Any] = (), containers: Sequence[Any] = ()
) -> dict[str, Any]:
    return {
        "metadata": {"name": "a-1"},
        "status": {
            "phase": phase,
            "conditions": list(conditions),
            "containerStatuses": list(containers),
        },
    }


def test_an_unschedulable_pod_names_the_scheduler_reason() -> None:
    p = pod(
        "Pending",
        [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }
        ],
    )
    assert not is_ready(p)
    assert problems_of(p) == [
        (None, "Unschedulable", "0/1 nodes are available: 1 Insufficient cpu.")
    ]


def test_container_states_waiting_crashed_and_unready() -> None:
    p = pod(
        "Running",
        [{"type": "Ready", "status": "False"}],
        [
            {"name": "pull", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
            {"name": "new", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}},
            {"name": "crash", "ready": False, "state": {"terminated": {"exitCode": 3}}},
            {"name": "probe", "ready": False, "state": {"running": {"startedAt": "x"}}},
            {"name": "fine", "ready": True, "state": {"running": {"startedAt": "x"}}},
        ],
    )
    assert problems_of(p) == [
        ("pull", "ImagePullBackOff", ""),
        ("crash", "Error", "exit code 3"),
        ("probe", "NotReady", "running but failing its readiness probe"),
    ]


def test_ready_and_finished_pods_are_fine() -> None:
    assert is_ready(pod("Running", [{"type": "Ready", "status": "True"}]))
    assert is_ready(pod("Succeeded"))
    assert problems_of(pod("Failed")) == [(None, "Failed", "")]


def test_a_problem_describes_itself_with_its_logs() -> None:
    problem = PodProblem("ns", "a-1", "app", "CrashLoopBackOff", "back-off", ["boom", "bye"])
    assert problem.describe() == "ns/a-1 [app]: CrashLoopBackOff: back-off\n    | boom\n    | bye"
    assert problem.to_json()["logs"] == ["boom", "bye"]
