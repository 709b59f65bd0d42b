"""The deploy record's ConfigMap data: what apply writes is what notify and status read."""

from __future__ import annotations

import json

from gitops_glue.cluster.record import (
    DeployRecord,
    ServiceVersion,
    record_name,
    release_record_name,
)


def test_a_record_survives_the_round_trip_through_configmap_data() -> None:
    rec = DeployRecord(
        environment="staging",
        services={
            "b": ServiceVersion("1d2e3f4", "1d2e3f4", "b"),
            "a": ServiceVersion("3f9c2e1", None, "a"),
        },
        git_revision="0" * 40,
        deployed_at="2026-01-01T12:00:00+00:00",
        deployed_by="https://ci.example.com/p/1 (pid 7)",
        recoveries=[{"release": "a", "action": "rollback", "to_revision": 1}],
    )
    data = rec.to_data()
    assert all(isinstance(v, str) for v in data.values())  # ConfigMap data is strings only
    assert list(json.loads(data["services.json"])) == ["a", "b"]  # stable order
    assert DeployRecord.from_data(data) == rec


def test_a_sparse_configmap_reads_as_an_empty_record() -> None:
    assert DeployRecord.from_data({}) == DeployRecord(environment="", services={})


def test_record_names() -> None:
    assert record_name("prod") == "glue-deployed-prod"
    assert release_record_name("dev", "a") == "glue-deployed-dev.a"
