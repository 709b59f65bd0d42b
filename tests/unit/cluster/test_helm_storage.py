"""Recovery planning for releases stuck pending: which revision to go back to, and when."""

from __future__ import annotations

import datetime as dt

from gitops_glue.cluster.helm_storage import ReleaseState, Revision, plan_recovery

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def release(*statuses: str, age: float = 5.0) -> ReleaseState:
    created = NOW - dt.timedelta(seconds=age)
    return ReleaseState("a", "ns", [Revision(i, s, created) for i, s in enumerate(statuses, 1)])


def test_a_deployed_release_needs_nothing() -> None:
    assert plan_recovery(release("superseded", "deployed"), lock_held=True, timeout=300) is None
    assert plan_recovery(release(), lock_held=True, timeout=300) is None


def test_under_the_lock_a_pending_upgrade_rolls_back_to_the_newest_good_revision() -> None:
    stuck = release("superseded", "deployed", "failed", "pending-upgrade")
    plan = plan_recovery(stuck, lock_held=True, timeout=300, now=NOW)
    assert plan is not None
    # Not Helm's default N-1 (the failed revision 3): the newest deployed one.
    assert (plan.action, plan.to_revision, plan.stuck_revision) == ("rollback", 2, 4)
    assert plan.describe() == (
        "recovered ns/a: revision 4 was pending-upgrade (glue holds the environment's deploy "
        "lock, so no deploy is running); rollback to revision 2"
    )
    assert plan.to_json()["stuck_status"] == "pending-upgrade"


def test_a_release_that_never_deployed_is_uninstalled() -> None:
    plan = plan_recovery(release("pending-install"), lock_held=True, timeout=300, now=NOW)
    assert plan is not None
    assert (plan.action, plan.to_revision) == ("uninstall", None)
    assert plan.reason.endswith("; it never deployed")
    assert "uninstall" in plan.describe() and "to revision" not in plan.describe()


def test_without_the_lock_only_a_pending_older_than_the_timeout_is_stale() -> None:
    young = release("deployed", "pending-rollback", age=60)
    assert plan_recovery(young, lock_held=False, timeout=300, now=NOW) is None
    old = release("deployed", "pending-rollback", age=600)
    plan = plan_recovery(old, lock_held=False, timeout=300, now=NOW)
    assert plan is not None
    assert plan.reason == "pending for 600s, longer than the deploy timeout of 300s"
    assert (plan.action, plan.to_revision) == ("rollback", 1)
