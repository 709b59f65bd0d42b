"""`glue promote --require-deployed`: only what the source environment's deploy record,
in its cluster, shows deployed successfully (and long enough) reaches the target."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.cluster.test_deploy import deploy_repo, run
from tests.support.helpers import git, glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def prod_tag(repo: Path) -> str:
    return str(
        json.loads(glue("status", "-o", "json", cwd=repo).out)["services"]["a"]["prod"]["tag"]
    )


def edit_record(testbed: Testbed, ns: str, edit: dict[str, str]) -> None:
    """Change the staging record's data as an earlier deploy would have left it."""
    path = f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-staging"
    cm = testbed.get(path)
    assert cm is not None
    cm["data"].update(edit)
    testbed.api("PUT", path, json=cm).raise_for_status()


def test_promote_requires_what_staging_runs_and_its_soak_time(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    # staging's a is 3f9c2e1 in git, prod's 2b4d6f8; nothing deployed to staging yet.
    promote = ("promote", "a", "--to", "prod", "--require-deployed")
    code, _out, err = run(testbed, repo, *promote)
    assert code == 2 and "staging has no deploy record" in err, err
    assert prod_tag(repo) == "2b4d6f8"

    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    # git moves on in staging, but staging still runs 3f9c2e1.
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    code, _out, err = run(testbed, repo, *promote)
    assert code == 2, err
    assert "4e5f6a7 is not what staging runs: staging runs a 3f9c2e1" in err
    assert prod_tag(repo) == "2b4d6f8"

    # Deployed, but the last attempt failed: not proven either.
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    edit_record(
        testbed,
        ns,
        {"failed.json": json.dumps({"a": {"tag": "5a6b7c8", "at": now.isoformat()}})},
    )
    code, _out, err = run(testbed, repo, *promote)
    assert code == 2 and "the last deploy of a to staging (5a6b7c8" in err and "failed" in err
    assert prod_tag(repo) == "2b4d6f8"

    # A successful deploy clears the failure: proven now.
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    code, out, err = run(testbed, repo, *promote, "--min-age", "30m")
    assert code == 2 and "less than the 30m required" in err, err
    # Time passes without sleeping: the record says 4e5f6a7 has run there for an hour.
    record = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-staging")
    assert record is not None
    services = json.loads(record["data"]["services.json"])
    assert services["a"]["tag"] == "4e5f6a7"
    services["a"]["since"] = (now - dt.timedelta(hours=1)).isoformat()
    edit_record(testbed, ns, {"services.json": json.dumps(services)})
    code, out, err = run(testbed, repo, *promote, "--min-age", "30m")
    assert code == 0, err + out
    assert prod_tag(repo) == "4e5f6a7"
    message = git(repo, "log", "-1", "--format=%B")
    assert "Glue-Proven: a 4e5f6a7 deployed in staging since" in message and "(min 30m)" in message
    # The deploy's start message says which soak the promoted version passed.
    code, out, err = run(
        testbed, repo, "notify", "--phase", "pre-upgrade", "--env", "prod", "--dry-run"
    )
    assert code == 0, err
    assert "a 4e5f6a7 (new) (proven: 1h00m in staging), b 1d2e3f4 (new)" in out, out
    [line] = [x for x in out.splitlines() if x.startswith("• *a*")]
    assert line.endswith("|4e5f6a7> (new) (proven: 1h00m in staging)"), out
