"""`glue status --cluster` shows each service's verification: verified after a healthy
`glue apply --verify`, unverified after an apply without it, failed (why, when) after a
crash, with the hold left on it beside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.test_verify import crash_a_after, run, staging_settings, verify_repo
from tests.support.helpers import glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def staging(testbed: Testbed, repo: Path) -> dict[str, Any]:
    code, out, err = run(testbed, repo, "status", "--cluster", "-o", "json")
    assert code == 0, err + out
    services: dict[str, Any] = json.loads(out)["environments"]["staging"]["services"]
    return services


def table(testbed: Testbed, repo: Path) -> list[str]:
    code, out, err = run(testbed, repo, "status", "--cluster")
    assert code == 0, err + out
    return out.splitlines()


def row(lines: list[str], service: str) -> list[str]:
    """The table row of ``service``, as words (dev's column, then staging's, prod's)."""
    return next(line.split() for line in lines if line.split()[:1] == [service])


def test_status_shows_verified_unverified_and_failed_with_its_hold(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, _ns = verify_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--verify", "3s")
    assert code == 0, err + out
    services = staging(testbed, repo)
    for name, tag in (("a", "3f9c2e1"), ("b", "1d2e3f4")):
        verdict = services[name]["verification"]
        assert (verdict["state"], verdict["tag"], verdict["reason"]) == ("verified", tag, None)
        assert services[name]["hold"] is None
    assert "1d2e3f4 verified" in " ".join(row(table(testbed, repo), "b"))

    # A new tag of b deployed without --verify: unverified; a keeps its verification.
    assert glue("bump-tag", "b", "9a8b7c6", "--env", "staging", cwd=repo).code == 0
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    services = staging(testbed, repo)
    assert services["b"]["deployed"] == "9a8b7c6"
    assert services["b"]["verification"]["state"] == "unverified"
    assert services["a"]["verification"]["state"] == "verified"
    assert "9a8b7c6 unverified" in " ".join(row(table(testbed, repo), "b"))

    # a's next tag crashes under --verify: failed, why and when; 3f9c2e1 still runs.
    crash_a_after(repo, "2s")
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--verify", "60s")
    assert code == 1, err + out
    services = staging(testbed, repo)
    a = services["a"]
    assert (a["git"], a["deployed"], a["drift"]) == ("4e5f6a7", "3f9c2e1", [])
    verdict = a["verification"]
    assert (verdict["state"], verdict["tag"]) == ("failed", "4e5f6a7")
    assert verdict["reason"].startswith("verification: ")
    assert "CrashLoopBackOff" in verdict["reason"] and verdict["at"]
    assert services["b"]["verification"]["state"] == "unverified"  # not deployed again

    # Whoever answers the failure holds a there: status shows the hold beside it.
    reason = "4e5f6a7 crashes in staging: FATAL cannot reach postgres"
    held = glue("hold", "a", "--env", "staging", "--reason", reason, "--actor", "lead", cwd=repo)
    assert held.code == 0, held.err
    services = staging(testbed, repo)
    assert services["a"]["verification"]["state"] == "failed"
    assert services["a"]["hold"]["by"] == "lead"
    assert services["a"]["hold"]["reason"] == reason
    assert services["b"]["hold"] is None
    lines = table(testbed, repo)
    assert "4e5f6a7 (runs 3f9c2e1) FAILED (held)" in " ".join(row(lines, "a"))
    failed = [line for line in lines if line.startswith("failed: staging/a 4e5f6a7 (runs 3f9c2e1)")]
    assert len(failed) == 1 and "CrashLoopBackOff" in failed[0]
    assert f"at {verdict['at']}" in failed[0]
    assert any(
        line.startswith("held: staging/a by lead at ") and line.endswith(f"{reason!r}")
        for line in lines
    )


def test_status_shows_the_hold_a_rollback_on_failure_left(testbed: Testbed, tmp_path: Path) -> None:
    """on_failure: rollback deploys the previous version again (verified) and holds the
    service with a reason naming the failure: status shows that hold beside it."""
    repo, _ns = verify_repo(tmp_path, testbed)
    staging_settings(repo, "verify: 12s, on_failure: rollback", crash=True)
    assert run(testbed, repo, "apply", "--env", "staging")[0] == 0
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 1 and "rolled back a in staging" in err, err + out

    a = staging(testbed, repo)["a"]
    assert (a["git"], a["deployed"], a["drift"]) == ("3f9c2e1", "3f9c2e1", [])
    assert (a["verification"]["state"], a["verification"]["tag"]) == ("verified", "3f9c2e1")
    assert a["hold"]["reason"].startswith("glue apply rolled it back: verification: ")
    assert "CrashLoopBackOff" in a["hold"]["reason"]
    lines = table(testbed, repo)
    assert "3f9c2e1 verified (held)" in " ".join(row(lines, "a"))
    [held] = [line for line in lines if line.startswith("held: staging/a by ")]
    assert "glue apply rolled it back: verification: " in held and "CrashLoopBackOff" in held
