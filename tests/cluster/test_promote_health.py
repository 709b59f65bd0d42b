"""`glue promote --min-age`: a soak means healthy, not just old. The source's pods of
the version, read from its cluster at promote time, must be Ready and must not have
restarted since the version was deployed; the refusal names the pod and why.

kwok plays the kubelet: a pod annotated ``glue-test/crash-after`` turns Ready, then
restarts into CrashLoopBackOff that long after (scripts/TESTBED.md).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from tests.cluster.test_require_deployed import edit_record, prod_tag
from tests.cluster.test_verify import crash_a_after, record, verify_repo
from tests.support.helpers import glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

HELMS = [pytest.param(3, id="helm3"), pytest.param(4, id="helm4")]


def helm_env(testbed: Testbed, helm: int) -> dict[str, str]:
    """glue's helm and helmfile: the testbed's Helm 3 (default) or Helm 4 + helmfile v1."""
    if helm == 3:
        return dict(testbed.env)
    return {
        **testbed.env,
        "GLUE_HELM": testbed.helm_path(4),
        "GLUE_HELMFILE": str(testbed.bin_dir / "helmfile1"),
    }


def deployed_an_hour_ago(testbed: Testbed, ns: str, tag: str) -> None:
    """Time passes without sleeping: the record says ``tag`` of a has run for an hour."""
    services = json.loads(record(testbed, ns)["services.json"])
    assert services["a"]["tag"] == tag
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    services["a"]["since"] = (now - dt.timedelta(hours=1)).isoformat()
    edit_record(testbed, ns, {"services.json": json.dumps(services)})


@pytest.mark.parametrize("helm", HELMS)
def test_promote_min_age_refuses_a_version_whose_pod_restarted_after_an_old_deploy(
    testbed: Testbed, tmp_path: Path, helm: int
) -> None:
    repo, ns = verify_repo(tmp_path, testbed)
    env = helm_env(testbed, helm)

    def run(*args: str) -> tuple[int, str, str]:
        r = glue(*args, cwd=repo, env=env, timeout=300)
        return r.code, r.out, r.err

    promote = ("promote", "a", "--to", "prod", "--min-age", "30m")
    # A healthy version that has run an hour in staging is promoted.
    code, out, err = run("apply", "--env", "staging")
    assert code == 0, err + out
    deployed_an_hour_ago(testbed, ns, "3f9c2e1")
    code, out, err = run(*promote, "--dry-run", "-o", "json")
    assert code == 0, err + out
    [promoted] = json.loads(out)["promoted"]
    assert promoted["new_tag"] == "3f9c2e1" and promoted["proof"]["healthy_pods"] == 1, out

    # The next version deploys fine (helm saw its pod Ready), then crashes.
    crash_a_after(repo, "10s")
    code, out, err = run("apply", "--env", "staging")
    assert code == 0, err + out

    def restarted() -> bool:
        pods = testbed.pods(ns, "app.kubernetes.io/instance=a")
        return any(
            cs.get("restartCount")
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            for cs in p["status"].get("containerStatuses") or []
        )

    testbed.wait_until(restarted, timeout=60, what="a's pod to crash")
    # Its record is old enough and clean; its pod is not healthy.
    deployed_an_hour_ago(testbed, ns, "4e5f6a7")
    assert "a" not in json.loads(record(testbed, ns).get("failed.json") or "{}")
    code, out, err = run(*promote)
    assert code == 2, err + out
    assert re.search(
        rf"a 4e5f6a7: staging runs a 4e5f6a7 for 1h00m, but pod {ns}/a-[\w-]+ restarted "
        r"1 time since it was deployed \(last: Error, exit code 1, [\d-]+ [\d:]+ UTC\) "
        r"and is not Ready \(CrashLoopBackOff\)",
        err,
    ), err
    assert prod_tag(repo) == "2b4d6f8"
    # --all promotes the rest and lists a as not proven.
    code, out, err = run(
        "promote", "--all", "--to", "prod", "--min-age", "30m", "--dry-run", "-o", "json"
    )
    assert code == 0, err + out
    [unproven] = [x for x in json.loads(out)["unproven"] if x.startswith("a ")]
    assert unproven.startswith("a 4e5f6a7: staging runs a 4e5f6a7") and "restarted" in unproven
