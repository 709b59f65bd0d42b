"""`glue status --cluster --html`: the board with what the cluster runs, from a real deploy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.test_deploy import deploy_repo, run
from tests.support.helpers import glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def test_the_cluster_board_shows_what_runs_and_what_is_pending(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, _ns = deploy_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    site = tmp_path / "site"
    code, out, err = run(testbed, repo, "status", "--cluster", "--html", str(site))
    assert code == 0, err + out
    page = (site / "index.html").read_text()
    assert "Shows the clusters' view" in page
    assert "<strong>deployed</strong>" in page
    assert "git has 4e5f6a7, runs 3f9c2e1" in page
    assert "staging: deployed " in page and "dev: no deploy record" in page
    # The page is made from the JSON status --cluster prints: its history too.
    code, out, err = run(testbed, repo, "status", "--cluster", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["history"]["a"][0]["tag"] == "4e5f6a7"
    assert "feat(staging): update a to 4e5f6a7" in page


def test_the_cluster_board_keeps_gits_rejections_and_freeze_windows(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, _ns = deploy_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    reject = glue("reject", "a", "3f9c2e1", "--reason", "CVE-2026-0001", cwd=repo)
    assert reject.code == 0, reject.err
    config = repo / "glue.yaml"
    text = config.read_text()
    marker = "environments/staging.yaml]\n"
    assert text.count(marker) == 1
    window = (
        "    freeze:\n      - from: 2026-12-23\n        to: 2027-01-02T08:00\n"
        "        reason: holidays\n"
    )
    config.write_text(text.replace(marker, marker + window))
    site = tmp_path / "site"
    env = {"GLUE_NOW": "2026-12-24T10:00:00Z"}
    code, out, err = run(testbed, repo, "status", "--cluster", "--html", str(site), **env)
    assert code == 0, err + out
    page = (site / "index.html").read_text()
    assert "Shows the clusters' view" in page
    assert "CVE-2026-0001" in page  # the rejected tag still runs in staging: said so
    assert "holidays" in page and "frozen" in page
