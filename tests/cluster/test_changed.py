"""`glue changed` and `glue apply --changed-only` against the real testbed cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.test_deploy import deploy_repo, run, statuses
from tests.support.helpers import git, glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def test_only_the_changed_release_is_named_and_deployed(testbed: Testbed, tmp_path: Path) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    # Nothing deployed yet: everything counts as changed.
    code, out, err = run(testbed, repo, "changed", "--env", "staging", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["changed"] == ["a", "b"] and json.loads(out)["since"] is None
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    assert statuses(testbed, ns, "a") == statuses(testbed, ns, "b") == ["deployed"]
    code, out, err = run(testbed, repo, "changed", "--env", "staging", "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["changed"], data["since_source"]) == ([], "record")
    assert data["since"] == git(repo, "rev-parse", "HEAD").strip()

    # Change only b (its tag lives in the same file as a's) plus an unrelated file.
    assert glue("bump-tag", "b", "0c0c0c0", "--env", "staging", cwd=repo).code == 0
    (repo / "NOTES.md").write_text("notes\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-qm", "notes")
    code, out, err = run(testbed, repo, "changed", "--env", "staging")
    assert code == 0, err
    assert "changed:   b" in out and "unchanged: a" in out and "selector: -l name=b" in out
    code, out, err = run(
        testbed, repo, "changed", "--env", "staging", "--since", "HEAD~2", "-o", "json"
    )
    assert json.loads(out)["selectors"] == ["name=b"]
    code, out, err = run(
        testbed, repo, "changed", "--env", "staging", "--since", "HEAD", "-o", "json"
    )
    assert json.loads(out)["changed"] == []

    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--changed-only", "-o", "json")
    assert code == 0, err + out
    assert json.loads(out)["releases"] == ["b"]
    # Helm's revision numbers: b upgraded once, a never touched.
    assert statuses(testbed, ns, "a") == ["deployed"]
    assert statuses(testbed, ns, "b") == ["superseded", "deployed"]
    record = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-staging")
    assert record is not None
    assert record["data"]["git-revision"] == git(repo, "rev-parse", "HEAD").strip()
    assert json.loads(record["data"]["services.json"])["b"]["tag"] == "0c0c0c0"

    # A chart change touches every release that uses the chart.
    (repo / "charts/app/templates/extra.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\n"
    )
    git(repo, "add", "charts/app/templates/extra.yaml")
    git(repo, "commit", "-qm", "chart: extra ConfigMap")
    code, out, err = run(testbed, repo, "changed", "--env", "staging", "-o", "json")
    assert json.loads(out)["changed"] == ["a", "b"]
    # Nothing changed: --changed-only deploys nothing.
    assert run(testbed, repo, "apply", "--env", "staging", "--changed-only")[0] == 0
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--changed-only")
    assert code == 0, err
    assert "nothing changed since" in out
    assert statuses(testbed, ns, "b") == ["superseded", "superseded", "deployed"]
