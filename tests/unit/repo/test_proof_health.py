"""A soak means healthy, not just old: the source's pods of the version must be Ready
now and not have restarted since it was deployed (pod dicts as the API serves them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gitops_glue.cluster.record import DeployRecord, ServiceVersion
from gitops_glue.config import parse_config
from gitops_glue.errors import PolicyError, UsageError
from gitops_glue.repo.promote import PromoteRequest, plan_promote
from gitops_glue.repo.proof import pod_health

SINCE = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)
LATER = "2026-12-04T14:02:30Z"
EARLIER = "2026-12-04T11:58:00Z"


def pod(
    name: str = "a-7d9f-x",
    *,
    ready: bool = True,
    restarts: int = 0,
    finished: str | None = None,
    waiting: str | None = None,
    deleting: bool = False,
    containers: int = 1,
) -> dict[str, Any]:
    last = {"terminated": {"reason": "Error", "exitCode": 1}} if restarts else {}
    if finished and last:
        last["terminated"]["finishedAt"] = finished
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": EARLIER}}
    statuses = [
        {
            "name": "app" if n == 0 else f"side{n}",
            "ready": ready,
            "restartCount": restarts if n == containers - 1 else 0,
            "state": state,
            "lastState": last if n == containers - 1 else {},
        }
        for n in range(containers)
    ]
    meta: dict[str, Any] = {"name": name, "namespace": "shop"}
    if deleting:
        meta["deletionTimestamp"] = LATER
    return {
        "metadata": meta,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": statuses,
        },
    }


def test_ready_pods_without_restarts_are_healthy() -> None:
    assert pod_health([pod("a-1"), pod("a-2")], SINCE) is None
    assert pod_health([], SINCE) is None


def test_a_restart_after_the_deploy_names_the_pod_and_the_last_exit() -> None:
    assert pod_health([pod("a-1"), pod(restarts=3, finished=LATER)], SINCE) == (
        "pod shop/a-7d9f-x restarted 3 times since it was deployed "
        "(last: Error, exit code 1, 2026-12-04 14:02 UTC)"
    )


def test_a_restart_before_the_deploy_does_not_count_but_one_of_unknown_time_does() -> None:
    assert pod_health([pod(restarts=2, finished=EARLIER)], SINCE) is None
    assert pod_health([pod(restarts=1)], SINCE) == (
        "pod shop/a-7d9f-x restarted 1 time since it was deployed (last: Error, exit code 1)"
    )


def test_a_pod_not_ready_is_unhealthy_saying_why() -> None:
    crashing = pod(ready=False, restarts=1, finished=LATER, waiting="CrashLoopBackOff")
    assert pod_health([crashing], SINCE) == (
        "pod shop/a-7d9f-x restarted 1 time since it was deployed (last: Error, exit code 1, "
        "2026-12-04 14:02 UTC) and is not Ready (CrashLoopBackOff)"
    )
    assert pod_health([pod("a-1", ready=False), pod("a-2", ready=False)], SINCE) == (
        "pod shop/a-1 is not Ready (NotReady) (and 1 more pod)"
    )


def test_pods_being_deleted_are_left_out() -> None:
    assert pod_health([pod(ready=False, deleting=True)], SINCE) is None


def test_with_several_containers_the_restarted_one_is_named() -> None:
    text = pod_health([pod(restarts=1, finished=LATER, containers=2)], SINCE)
    assert text is not None and text.startswith("pod shop/a-7d9f-x container side1 restarted")


GLUE_YAML = """\
version: 1
environments:
  - {name: staging, values: envs/staging.yaml}
  - {name: prod, values: envs/prod.yaml, require_deployed: true}
services:
  a: {tag_key: a.image.tag, release: shop-a}
"""
FILES = {"envs/staging.yaml": "a:\n  image:\n    tag: 1.3.0\n", "envs/prod.yaml": ""}


def promote(pods: list[dict[str, Any]] | None, min_age: float | None = 3600.0) -> list[str]:
    """Promote a to prod, 2h after its deploy to staging; the notes (or the refusal)."""
    record = DeployRecord(
        "staging", {"a": ServiceVersion("1.3.0", release="shop-a", since=SINCE.isoformat())}
    )
    asked: list[tuple[str, str]] = []

    def read_pods(_config: object, env: str, release: str) -> list[dict[str, Any]] | None:
        asked.append((env, release))
        return pods

    change = plan_promote(
        parse_config(GLUE_YAML),
        FILES.get,
        PromoteRequest(target="prod", services=("a",), min_age=min_age),
        lambda _config, _env: record,
        SINCE + dt.timedelta(hours=2),
        read_pods,
    )
    assert change.edits and asked == ([("staging", "shop-a")] if min_age else [])
    return list(change.notes)


def refusal(pods: list[dict[str, Any]] | None) -> str:
    with pytest.raises(PolicyError) as info:
        promote(pods)
    assert info.value.exit_code == 2
    return info.value.message


def test_promote_with_a_soak_refuses_a_version_whose_pod_restarted() -> None:
    message = refusal([pod(restarts=3, finished=LATER)])
    assert (
        "a 1.3.0: staging runs a 1.3.0 for 2h00m, but pod shop/a-7d9f-x restarted 3 times "
        "since it was deployed (last: Error, exit code 1, 2026-12-04 14:02 UTC)" in message
    )


def test_promote_with_a_soak_passes_healthy_pods_and_notes_a_release_without_pods() -> None:
    assert promote([pod()]) == []
    assert promote([]) == [
        "a: release shop-a has no pods in staging to check; proven by its deploy record alone"
    ]
    assert "helmfile gives no namespace for release shop-a in staging" in refusal(None)


def test_without_a_soak_the_pods_are_not_read() -> None:
    assert promote([pod(restarts=3, finished=LATER)], min_age=None) == []


def test_a_soak_without_a_pod_reader_is_a_usage_error() -> None:
    record = DeployRecord("staging", {"a": ServiceVersion("1.3.0", since=SINCE.isoformat())})
    with pytest.raises(UsageError, match="no deploy records"):
        plan_promote(
            parse_config(GLUE_YAML),
            FILES.get,
            PromoteRequest(target="prod", services=("a",), min_age=60.0),
            lambda _config, _env: record,
            SINCE + dt.timedelta(hours=2),
        )
