"""`glue apply` in a freeze window, on the testbed cluster: refused before the cluster is
touched; deployed with --override-freeze, which the deploy record keeps (freeze.json:
the window, the reason and who); and a rollback at HEAD deploys without an override,
the record naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import GITLAB_CI, example_repo, git, glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

PROD = "    namespace: example-prod  # where glue keeps its deploy record and lock\n"
WEEKEND = "      - {every: friday 18:00 - monday 06:00, timezone: Europe/Berlin, reason: weekend}\n"
#: Saturday 2026-03-28, 10:00 in Berlin; the weekend ends Monday 06:00 CEST (04:00 UTC).
SATURDAY = {"GLUE_NOW": "2026-03-28T10:00:00+01:00"}


def record(testbed: Testbed, ns: str) -> dict[str, str] | None:
    cm = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-prod")
    return None if cm is None else dict(cm["data"])


def image_of(testbed: Testbed, ns: str, name: str) -> str:
    deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    assert deployment is not None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_apply_in_a_window_needs_the_override_or_a_rollback_and_the_record_says_which(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("frz")
    for name in ("environments/prod.yaml", "glue.yaml"):
        path = repo / name
        path.write_text(path.read_text().replace("namespace: example-prod", f"namespace: {ns}"))
    config = repo / "glue.yaml"
    anchor = PROD.replace("example-prod", ns)
    config.write_text(config.read_text().replace(anchor, anchor + "    freeze:\n" + WEEKEND))
    git(repo, "commit", "-qam", "prod frozen over the weekend, in a namespace of its own")
    env = {**testbed.env, **SATURDAY}

    refused = glue("apply", "-e", "prod", cwd=repo, env=env, timeout=300)
    assert refused.code == 2, refused.err
    assert "prod is frozen: 'weekend'" in refused.err
    assert "until Mon 2026-03-30 06:00 CEST (04:00 UTC)" in refused.err
    assert record(testbed, ns) is None  # nothing deployed, nothing recorded

    over = {**env, **GITLAB_CI, "GLUE_OVERRIDE_FREEZE": "1", "GLUE_FREEZE_REASON": "INC-42"}
    run = glue("apply", "-e", "prod", "-o", "json", cwd=repo, env=over, timeout=300)
    assert run.code == 0, run.err + run.out
    assert json.loads(run.out)["freeze"]["override"] == {"reason": "INC-42", "by": "dev1"}
    data = record(testbed, ns)
    assert data is not None
    entry = json.loads(data["freeze.json"])
    assert entry["override"] == {"reason": "INC-42", "by": "dev1"}
    assert entry["until"] == "2026-03-30T04:00:00Z" and entry["clock"] == "GLUE_NOW"
    assert [w["reason"] for w in entry["windows"]] == ["weekend"]
    assert image_of(testbed, ns, "a").endswith(":2b4d6f8")

    # A bump let through in the window, then rolled back: the rollback deploys as it is.
    assert glue("bump-tag", "a", "v1.2.3", "-e", "prod", cwd=repo, env=over).code == 0
    assert glue("rollback", "-e", "prod", cwd=repo, env=env).code == 0
    rollback = git(repo, "rev-parse", "HEAD").strip()
    run = glue("apply", "-e", "prod", cwd=repo, env=env, timeout=300)
    assert run.code == 0, run.err + run.out
    assert f"HEAD {rollback[:10]} is a rollback: it goes ahead" in run.out + run.err
    data = record(testbed, ns)
    assert data is not None and data["git-revision"] == rollback
    entry = json.loads(data["freeze.json"])
    assert entry["rollback"] == rollback and "override" not in entry
