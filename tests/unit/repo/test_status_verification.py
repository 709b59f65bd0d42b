"""`glue status --cluster`: the verification state of a service, from its deploy record."""

from __future__ import annotations

import json

import pytest

from gitops_glue.cluster.record import DeployRecord, FailedDeploy, Verified
from gitops_glue.repo.holds import Mark
from gitops_glue.repo.status import (
    ClusterCell,
    ClusterReport,
    Verification,
    verification_state,
)
from gitops_glue.service_version import ServiceVersion

T0 = "2026-12-04T10:00:00+00:00"
T1 = "2026-12-04T11:00:00+00:00"
T2 = "2026-12-04T12:00:00+00:00"
CRASH = "verification: a-5d9 [app]: CrashLoopBackOff: back-off 10s restarting"


def runs(tag: str, since: str | None = T1) -> ServiceVersion:
    return ServiceVersion(tag, release="a", since=since)


def test_the_running_tag_verified_is_verified() -> None:
    v = verification_state(runs("3f9c2e1"), None, Verified("3f9c2e1", T1))
    assert v == Verification("verified", "3f9c2e1", T1)


def test_a_verification_of_another_tag_leaves_the_running_one_unverified() -> None:
    assert verification_state(runs("4e5f6a7"), None, Verified("3f9c2e1", T0)).state == (
        "unverified"
    )
    assert verification_state(runs("4e5f6a7"), None, None) == Verification("unverified")
    assert verification_state(None, None, None) == Verification("unverified")


def test_a_failure_after_the_running_version_came_is_failed_with_its_tag_and_reason() -> None:
    v = verification_state(runs("3f9c2e1"), FailedDeploy("4e5f6a7", T2, CRASH), None)
    assert v == Verification("failed", "4e5f6a7", T2, CRASH)
    # It wins over the running tag's own earlier verification (helmfile failed since).
    v = verification_state(runs("3f9c2e1"), FailedDeploy("3f9c2e1", T2), Verified("3f9c2e1", T1))
    assert v == Verification("failed", "3f9c2e1", T2, "helmfile apply failed")


def test_a_failure_older_than_the_running_version_is_not_its_verdict() -> None:
    old = FailedDeploy("4e5f6a7", T0, CRASH)
    assert verification_state(runs("5a6b7c8", since=T1), old, None).state == "unverified"
    v = verification_state(runs("5a6b7c8", since=T1), old, Verified("5a6b7c8", T1))
    assert v.state == "verified"


@pytest.mark.parametrize("since", [None, "not a time"])
def test_a_failure_of_a_version_that_never_ran_or_of_unknown_age_is_failed(
    since: str | None,
) -> None:
    failure = FailedDeploy("4e5f6a7", T2, CRASH)
    assert verification_state(None, failure, None).state == "failed"
    assert verification_state(runs("3f9c2e1", since=since), failure, None).state == "failed"


def test_the_rule_reads_a_record_as_glue_apply_writes_it() -> None:
    record = DeployRecord.from_data(
        {
            "services.json": json.dumps({"a": {"tag": "3f9c2e1", "since": T1}}),
            "failed.json": json.dumps({"a": {"tag": "4e5f6a7", "at": T2, "reason": CRASH}}),
            "verified.json": json.dumps({"a": {"tag": "3f9c2e1", "at": T1}}),
        }
    )
    v = verification_state(record.services["a"], record.failed["a"], record.verified["a"])
    assert (v.state, v.tag, v.reason) == ("failed", "4e5f6a7", CRASH)


def cell(
    service: str, deployed: str | None, verdict: Verification, hold: Mark | None = None
) -> ClusterCell:
    return ClusterCell(
        env="staging",
        service=service,
        git_tag="4e5f6a7" if service == "a" else "1d2e3f4",
        deployed_tag=deployed,
        release=service,
        namespace="ns",
        helm_revision=1 if deployed else None,
        images=(),
        problems=(),
        pending=deployed != ("4e5f6a7" if service == "a" else "1d2e3f4"),
        verification=verdict,
        hold=hold,
    )


def test_the_table_and_json_show_the_verdict_and_the_hold_beside_it() -> None:
    hold = Mark("lead", T2, "a 4e5f6a7 crashed in staging")
    report = ClusterReport(
        ["staging"],
        ["a", "b", "c"],
        [
            cell("a", "3f9c2e1", Verification("failed", "4e5f6a7", T2, CRASH), hold),
            cell("b", "1d2e3f4", Verification("verified", "1d2e3f4", T1)),
            cell("c", None, Verification("unverified")),
        ],
        {},
    )
    text = report.table().splitlines()
    assert text[1].split() == ["a", "4e5f6a7", "(runs", "3f9c2e1)", "FAILED", "(held)"]
    assert text[2].split() == ["b", "1d2e3f4", "verified"]
    assert text[3].split() == ["c", "1d2e3f4", "(runs", "nothing)"]  # nothing runs: no verdict
    assert f"failed: staging/a 4e5f6a7 (runs 3f9c2e1): {CRASH}, at {T2}" in text
    assert f"held: staging/a by lead at {T2}: 'a 4e5f6a7 crashed in staging'" in text
    services = json.loads(json.dumps(report.to_json()))["environments"]["staging"]["services"]
    assert services["a"]["verification"] == {
        "state": "failed",
        "tag": "4e5f6a7",
        "at": T2,
        "reason": CRASH,
    }
    assert services["a"]["hold"] == {"by": "lead", "at": T2, "reason": hold.reason}
    assert services["b"]["verification"]["state"] == "verified"
    assert services["b"]["hold"] is None
    assert services["c"]["verification"] == {
        "state": "unverified",
        "tag": None,
        "at": None,
        "reason": None,
    }
