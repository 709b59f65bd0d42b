"""The deploy lock's decisions: who holds a Lease, for how long, and whether it may be taken."""

from __future__ import annotations

import datetime as dt

from gitops_glue.cluster.kube import LeaseSpec
from gitops_glue.cluster.lock import Holder, blocked_by, holder_of, lease_name, taken_spec

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def test_the_lease_is_named_after_the_environment() -> None:
    assert lease_name("prod") == "glue-deploy-prod"


def test_a_lease_without_holder_is_free() -> None:
    assert holder_of(LeaseSpec(None, 60, ago(5), ago(5)), NOW) is None
    assert holder_of(LeaseSpec("", 60), NOW) is None


def test_time_left_counts_from_the_last_renewal() -> None:
    assert holder_of(LeaseSpec("ci", 60, ago(100), ago(20)), NOW) == Holder("ci", 40.0)
    # Never renewed: from the acquire time.
    assert holder_of(LeaseSpec("ci", 60, ago(70), None), NOW) == Holder("ci", -10.0)
    # Neither time: expired.
    assert holder_of(LeaseSpec("ci", 60), NOW) == Holder("ci", -1.0)


def test_only_a_live_lease_of_someone_else_blocks() -> None:
    assert blocked_by(None, "me") is None
    assert blocked_by(Holder("me", 50), "me") is None  # ours already (a retry)
    assert blocked_by(Holder("dead-job", -3), "me") is None  # expired: taken over
    assert blocked_by(Holder("dead-job", 0), "me") is None
    assert blocked_by(Holder("ci", 12), "me") == Holder("ci", 12)


def test_a_taken_lease_names_the_new_holder_and_counts_the_transition() -> None:
    spec = taken_spec("me (pid 1)", 60, 3, NOW)
    assert spec == LeaseSpec("me (pid 1)", 60, NOW, NOW, 3)
    assert holder_of(spec, NOW + dt.timedelta(seconds=15)) == Holder("me (pid 1)", 45.0)
