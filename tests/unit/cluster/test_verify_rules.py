"""What counts as a failed verification, read off pod statuses as the API serves them."""

from __future__ import annotations

from typing import Any

from gitops_glue.cluster.verify import failures_now, not_ready


def pod(*containers: dict[str, Any], ready: bool = True, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": "web-1", "namespace": "shop"},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": list(containers),
        },
    }


def running(name: str = "app", restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": "2026-12-04T10:00:00Z"}},
        **extra,
    }


def test_a_healthy_pod_has_no_failure() -> None:
    assert failures_now(pod(running()), {"app": 0}) == []
    assert not_ready(pod(running())) == []


def test_a_restart_after_the_watch_began_fails_with_the_previous_run_named() -> None:
    crashed = running(restarts=1, lastState={"terminated": {"reason": "Error", "exitCode": 1}})
    [failure] = failures_now(pod(crashed), {"app": 0})
    assert (failure.container, failure.reason, failure.previous) == ("app", "Error", True)
    assert "exit code 1" in failure.message
    # The same count as when the watch began is not a new restart.
    assert failures_now(pod(crashed), {"app": 1}) == []
    # A container the watch had not seen counts from zero (a pod of this deploy).
    assert failures_now(pod(crashed), {})[0].reason == "Error"


def test_an_oom_kill_is_named_as_such() -> None:
    killed = running(restarts=2, lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
    assert failures_now(pod(killed), {"app": 1})[0].reason == "OOMKilled"


def test_states_that_do_not_heal_fail_at_once() -> None:
    for reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"):
        waiting = {
            "name": "app",
            "ready": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": "back-off"}},
        }
        [failure] = failures_now(pod(waiting, ready=False), {"app": 0})
        assert failure.reason == reason


def test_crash_loop_names_the_last_exit_and_reads_the_previous_log() -> None:
    looping = {
        "name": "app",
        "ready": False,
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "Error", "exitCode": 2}},
    }
    [failure] = failures_now(pod(looping, ready=False), {"app": 3})
    assert failure.reason == "CrashLoopBackOff" and failure.previous
    assert failure.message == "last exit: Error (exit code 2)"


def test_starting_up_is_not_a_failure_until_the_window_ends() -> None:
    creating = {
        "name": "app",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    starting = pod(creating, ready=False, phase="Pending")
    assert failures_now(starting, {}) == []
    [late] = not_ready(starting)
    assert (late.container, late.reason) == (None, "Pending")


def test_a_running_container_failing_its_probe_is_not_ready_at_the_end() -> None:
    probing = running()
    probing["ready"] = False
    [late] = not_ready(pod(probing, ready=False))
    assert (late.container, late.reason) == ("app", "NotReady")
