"""`glue apply` of an environment that takes changes through review deploys exactly what
the review rendered, on the testbed cluster: the reviewed commit deploys and the deploy
record says so; a commit no review rendered is refused before the cluster is touched,
and deploys with --accept-unreviewed, which the record keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import example_repo, git, glue
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def reviewed_prod(tmp_path: Path, testbed: Testbed) -> tuple[Path, str]:
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("rev")
    for name in ("environments/prod.yaml", "glue.yaml"):
        path = repo / name
        path.write_text(path.read_text().replace("namespace: example-prod", f"namespace: {ns}"))
    config = repo / "glue.yaml"
    text = config.read_text().replace(
        "  - name: prod\n", "  - name: prod\n    via: merge-request\n"
    )
    config.write_text(text + "\nmerge_requests:\n  forge: gitea\n  api_url: http://127.0.0.1:9\n")
    git(repo, "commit", "-qam", "prod through review, in a namespace of its own")
    return repo, ns


def record(testbed: Testbed, ns: str) -> dict[str, str]:
    cm = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-prod")
    assert cm is not None
    return dict(cm["data"])


def test_the_reviewed_commit_deploys_and_an_unreviewed_one_only_when_accepted(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = reviewed_prod(tmp_path, testbed)
    base = git(repo, "rev-parse", "HEAD").strip()
    prod = repo / "environments/prod.yaml"
    prod.write_text(prod.read_text().replace('"2b4d6f8"  # service a', '"v1.2.3"  # service a'))
    git(repo, "commit", "-qam", "a v1.2.3")
    run = glue("review", "--base", base, "-e", "prod", "-o", "json", cwd=repo, env=testbed.env)
    assert run.code == 3, run.err
    trailers = "\n".join(json.loads(run.out)["trailers"])
    # The squash merge: the reviewed tree, with the review's trailers.
    git(
        repo,
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        f"feat(prod): update a to v1.2.3 (#4)\n\n{trailers}",
    )

    run = glue("apply", "-e", "prod", "-o", "json", cwd=repo, env=testbed.env, timeout=300)
    assert run.code == 0, run.err + run.out
    result = json.loads(run.out)
    assert result["review"]["reviewed"] is True
    assert "renders as reviewed" in run.err
    review = json.loads(record(testbed, ns)["review.json"])
    assert review["reviewed"] is True and review["accepted_unreviewed"] is False
    assert review["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert review["reviewed_digest"] == review["deployed_digest"]
    deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/a")
    assert deployment is not None
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":v1.2.3")

    # Pushed straight to main, past review: refused before the cluster is asked.
    prod.write_text(prod.read_text().replace('"1d2e3f4"  # service b', '"9e9e9e9"  # service b'))
    git(repo, "commit", "-qam", "b 9e9e9e9, no review")
    run = glue("apply", "-e", "prod", cwd=repo, env=testbed.env, timeout=300)
    assert run.code == 2, run.err
    assert "deploys only what a review rendered" in run.err
    assert json.loads(record(testbed, ns)["review.json"])["reviewed"] is True  # untouched
    b = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/b")
    assert b is not None and b["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        ":1d2e3f4"
    )

    run = glue(
        "apply", "-e", "prod", "--accept-unreviewed", "-o", "json",
        cwd=repo, env=testbed.env, timeout=300,
    )  # fmt: skip
    assert run.code == 0, run.err + run.out
    assert "deploying unreviewed (--accept-unreviewed)" in run.err
    review = json.loads(record(testbed, ns)["review.json"])
    assert review["accepted_unreviewed"] is True and review["reviewed"] is False
