"""`glue status --cluster`: git beside what runs, drift after a manual helm upgrade."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cluster.test_deploy import deploy_repo, run
from tests.support.helpers import git, glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def test_status_cluster_shows_pending_deploys_and_drift(testbed: Testbed, tmp_path: Path) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    code, out, err = run(testbed, repo, "status", "--cluster", "-o", "json")
    assert code == 0, err
    staging = json.loads(out)["environments"]["staging"]
    assert staging["services"]["b"]["deployed"] == "1d2e3f4"
    assert staging["services"]["b"]["images"] == ["registry.example.com/team/b:1d2e3f4"]
    assert staging["services"]["b"]["helm_revision"] == 1
    assert not json.loads(out)["drift"]
    assert json.loads(out)["environments"]["dev"]["record"] is None  # never deployed here

    # git moves on (not deployed yet): pending, not drift.
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    # Someone upgrades b by hand, a little later (the record's time has whole seconds;
    # glue allows 2 s of slack before calling a Helm revision "after" its deploy).
    time.sleep(3)
    testbed.helm(
        3,
        "upgrade",
        "b",
        str(repo / "charts/app"),
        "-n",
        ns,
        "--reuse-values",
        "--set",
        "image.tag=deadbee",
    )
    code, out, err = run(testbed, repo, "status", "--cluster", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    a, b = (data["environments"]["staging"]["services"][s] for s in ("a", "b"))
    assert (a["git"], a["deployed"], a["pending_deploy"], a["drift"]) == (
        "4e5f6a7",
        "3f9c2e1",
        True,
        [],
    )
    assert b["helm_revision"] == 2 and data["drift"] is True
    assert any(
        "runs registry.example.com/team/b:deadbee, but glue deployed 1d2e3f4" in d
        for d in b["drift"]
    )
    assert any("changed outside glue" in d for d in b["drift"])
    code, out, err = run(testbed, repo, "status", "--cluster")
    assert "4e5f6a7 (runs 3f9c2e1)" in out and "1d2e3f4 DRIFT" in out
    assert f"drift: staging/b: release {ns}/b revision 2 runs" in out


def test_status_cluster_runs_no_hook_of_the_repository(testbed: Testbed, tmp_path: Path) -> None:
    """status only reads: helmfile's `list` and `build` would run a global prepare hook;
    glue reads the kube context and the namespaces without running it."""
    repo, _ns = deploy_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    marker = tmp_path / "prepare-hook-ran"
    helmfile = repo / "helmfile.yaml.gotmpl"
    helmfile.write_text(
        helmfile.read_text().replace(
            "---\nhelmDefaults:",
            "---\nhooks:\n  - events: [prepare]\n    command: sh\n"
            f"    args: [-c, 'touch {marker}']\nhelmDefaults:",
        )
    )
    git(repo, "commit", "-qam", "a prepare hook")
    code, out, err = run(testbed, repo, "status", "--cluster", "-o", "json")
    assert code == 0, err
    staging = json.loads(out)["environments"]["staging"]
    assert staging["services"]["b"]["deployed"] == "1d2e3f4"
    assert not marker.exists(), "status --cluster ran the repository's prepare hook"
