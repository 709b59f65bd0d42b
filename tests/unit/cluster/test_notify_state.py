"""The notify state a start message keeps for the finish message (no cluster)."""

from __future__ import annotations

from gitops_glue.cluster.notify_state import SavedStart, state_name
from gitops_glue.service_version import ServiceVersion as V


def test_saved_start_round_trip_and_matching() -> None:
    s = SavedStart("pre-upgrade", {"a": V("1", "r1")}, {"a": V("2", "r2")}, "1.2", "C1")
    back = SavedStart.from_data(s.to_data())
    assert back == s
    assert back.same_deployment({"a": V("2", "r2")})
    assert not back.same_deployment({"a": V("3", "r2")})
    first = SavedStart("pre-install", None, {"a": V("2")})
    assert SavedStart.from_data(first.to_data()) == first
    assert SavedStart.from_data({}) is None
    assert SavedStart.from_data({"state.json": "{broken"}) is None


def test_state_names() -> None:
    assert state_name("dev") == "glue-notify-dev"
    assert state_name("dev", "a") == "glue-notify-dev.a"
