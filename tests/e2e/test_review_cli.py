"""`glue review` and apply's plan check as a user runs them: on the example repository
with real helmfile and helm (the testbed's tools; no cluster), posting to the GitHub
stand-in that refuses requests GitHub's API description does not allow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.forges import GITHUB_TOKEN, GitHubStandIn, github_fixture  # noqa: F401
from tests.support.helpers import TESTBED_BIN, example_repo, git, glue

TOOLS = {
    "GLUE_HELMFILE": str(TESTBED_BIN / "helmfile"),
    "GLUE_HELM": str(TESTBED_BIN / "helm3"),
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if not (TESTBED_BIN / "helmfile").exists():
        pytest.fail(f"helmfile is not built in {TESTBED_BIN}: run scripts/testbed install")
    return example_repo(tmp_path / "deploy")


def settings(repo: Path, forge: GitHubStandIn, *, auto_merge: bool = False) -> None:
    config = repo / "glue.yaml"
    text = config.read_text().replace(
        "  - name: prod\n", "  - name: prod\n    via: merge-request\n"
    )
    text += (
        f"\nmerge_requests:\n  forge: github\n  api_url: {forge.base_url}\n"
        f"  project: acme/deploy\n  auto_merge: {str(auto_merge).lower()}\n"
    )
    config.write_text(text)
    git(repo, "commit", "-qam", "prod through review")


def set_tag(repo: Path, env: str, service: str, old: str, new: str, message: str) -> str:
    path = repo / f"environments/{env}.yaml"
    text = path.read_text()
    assert f'"{old}"  # service {service}' in text
    path.write_text(text.replace(f'"{old}"  # service {service}', f'"{new}"  # service {service}'))
    git(repo, "commit", "-qam", message)
    return git(repo, "rev-parse", "HEAD").strip()


def review(repo: Path, *args: str) -> tuple[int, str, str]:
    run = glue("-C", str(repo), "review", *args, env={**TOOLS, "GITHUB_TOKEN": GITHUB_TOKEN})
    return run.code, run.out, run.err


def test_review_posts_one_comment_and_updates_it_in_place(
    repo: Path, github: GitHubStandIn
) -> None:
    settings(repo, github)
    base = git(repo, "rev-parse", "HEAD").strip()
    set_tag(repo, "prod", "a", "2b4d6f8", "v1.2.3", "a v1.2.3 to prod")
    pull = github.add_pull("people/a-to-prod", "main", "a v1.2.3 to prod", "")
    code, out, err = review(repo, "--base", base, "--merge-request", str(pull.number))
    assert code == 3, err
    (comment,) = github.comments_on(pull.number)
    assert comment.body.startswith("<!-- glue:review -->")
    assert "### <code>prod</code>" in comment.body
    assert "-        image: registry.example.com/team/a:2b4d6f8" in comment.body
    assert "+        image: registry.example.com/team/a:v1.2.3" in comment.body
    assert "No change in: dev, staging." in comment.body
    assert out == comment.body + "\n"  # the job's log shows what the request shows
    assert "glue: comment created on" in err
    # A second run over the same head: the same one comment, untouched.
    code, out, err = review(repo, "--base", base, "--merge-request", str(pull.number))
    assert code == 3 and "glue: comment unchanged" in err
    # A new push: the one comment is edited in place.
    set_tag(repo, "prod", "a", "v1.2.3", "v1.2.4", "a v1.2.4 to prod")
    code, out, err = review(repo, "--base", base, "--merge-request", str(pull.number))
    assert code == 3 and "glue: comment updated" in err
    (comment,) = github.comments_on(pull.number)
    assert "+        image: registry.example.com/team/a:v1.2.4" in comment.body


def test_a_change_that_renders_the_same_exits_0(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.txt").write_text("notes\n")
    git(repo, "add", "README.txt")
    git(repo, "commit", "-qm", "notes")
    code, out, err = review(repo, "--base", base, "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["changed"] is False
    assert [e["environment"] for e in data["environments"]] == ["dev", "staging", "prod"]


def test_review_asks_for_auto_merge_of_glues_request_with_the_plan_trailers(
    repo: Path, github: GitHubStandIn
) -> None:
    settings(repo, github, auto_merge=True)
    base = git(repo, "rev-parse", "HEAD").strip()
    set_tag(
        repo, "prod", "a", "2b4d6f8", "v1.2.3",
        "feat(prod): update a to v1.2.3\n\nGlue-Environment: prod\nGlue-Service: a\n"
        "Glue-Tag: v1.2.3\nGlue-Previous-Tag: 2b4d6f8",
    )  # fmt: skip
    pull = github.add_pull("glue/prod/a", "main", "feat(prod): update a to v1.2.3", "")
    code, out, err = review(repo, "--base", base, "--merge-request", str(pull.number), "-o", "json")
    assert code == 3, err
    data = json.loads(out)
    assert data["auto_merge"] is True
    (trailer,) = [t for t in data["trailers"] if t.startswith("Glue-Reviewed-Plan: prod ")]
    asked = github.pull(pull.number).auto_merge
    assert asked is not None and asked["mergeMethod"] == "SQUASH"
    assert asked["commitHeadline"] == "feat(prod): update a to v1.2.3"
    # glue's trailers, then the plan's (one per environment), in one trailer paragraph.
    body = asked["commitBody"]
    assert body.startswith("Glue-Environment: prod\nGlue-Service: a\n")
    assert "Glue-Previous-Tag: 2b4d6f8\nGlue-Reviewed-Plan: dev sha256:" in body
    assert body.endswith(trailer)
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=f"{asked['commitHeadline']}\n\n{body}",
        capture_output=True,
        text=True,
    ).stdout
    assert parsed.count("Glue-") == 7
    # A person's request is theirs to merge.
    other = github.add_pull("people/b", "main", "b", "")
    code, out, _ = review(repo, "--base", base, "--merge-request", str(other.number), "-o", "json")
    assert json.loads(out)["auto_merge"] is False
    assert github.pull(other.number).auto_merge is None


def reviewed_merge(repo: Path, base: str, head: str, extra: str | None = None) -> None:
    """A commit on ``head`` whose message carries the review's trailers of ``head``, as a
    squash merge's does; ``extra``: it also changes b's prod tag to that (another merge
    that landed after the review)."""
    run = glue(
        "-C", str(repo), "review", "--base", base, "--head", head, "-e", "prod", "-o", "json",
        env=TOOLS,
    )  # fmt: skip
    trailers = "\n".join(json.loads(run.out)["trailers"])
    if extra:
        path = repo / "environments/prod.yaml"
        path.write_text(
            path.read_text().replace('"1d2e3f4"  # service b', f'"{extra}"  # service b')
        )
    git(
        repo,
        "commit",
        "-qam",
        f"feat(prod): update a to v1.2.3 (#7)\n\n{trailers}",
        "--allow-empty",
    )


def test_apply_refuses_what_differs_from_the_review_before_touching_a_cluster(
    repo: Path, github: GitHubStandIn
) -> None:
    settings(repo, github)
    base = git(repo, "rev-parse", "HEAD").strip()
    head = set_tag(repo, "prod", "a", "2b4d6f8", "v1.2.3", "a v1.2.3")
    reviewed_merge(repo, base, head, extra="9e9e9e9")
    env = {**TOOLS, "KUBECONFIG": str(repo / "no-such-kubeconfig")}
    run = glue("-C", str(repo), "apply", "-e", "prod", env=env)
    assert run.code == 2, run.err
    assert "would deploy something other than what was reviewed" in run.err
    assert "the review recorded no detail" in run.err  # trailers hold digests only
    assert "--accept-unreviewed" in run.err


def test_apply_names_what_differs_from_the_review_on_the_merge_request(
    repo: Path, github: GitHubStandIn
) -> None:
    settings(repo, github)
    base = git(repo, "rev-parse", "HEAD").strip()
    set_tag(repo, "prod", "a", "2b4d6f8", "v1.2.3", "a v1.2.3")
    pull = github.add_pull("people/a", "main", "a v1.2.3", "")
    assert review(repo, "--base", base, "--merge-request", str(pull.number))[0] == 3
    # The merge landed after another change to b: what deploys is not what was reviewed.
    path = repo / "environments/prod.yaml"
    path.write_text(path.read_text().replace('"1d2e3f4"  # service b', '"9e9e9e9"  # service b'))
    git(repo, "commit", "-qam", "Merge a v1.2.3 (#1)")
    github.merge(pull.number, git(repo, "rev-parse", "HEAD").strip())
    env = {**TOOLS, "GITHUB_TOKEN": GITHUB_TOKEN, "KUBECONFIG": str(repo / "none")}
    run = glue("-C", str(repo), "apply", "-e", "prod", env=env)
    assert run.code == 2, run.err
    assert "changed since the review: release b: Deployment example-prod/b" in run.err
    assert "release a:" not in run.err
    assert f"the review on {github.url}/acme/deploy/pull/{pull.number}" in run.out + run.err


def test_apply_refuses_a_commit_no_review_rendered(repo: Path, github: GitHubStandIn) -> None:
    settings(repo, github)
    set_tag(repo, "prod", "a", "2b4d6f8", "v1.2.3", "pushed straight to main")
    env = {**TOOLS, "GITHUB_TOKEN": GITHUB_TOKEN, "KUBECONFIG": str(repo / "none")}
    run = glue("-C", str(repo), "apply", "-e", "prod", env=env)
    assert run.code == 2, run.err
    assert "was not reviewed for 'prod'" in run.err
    # glue asked the forge which merge request the commit came from.
    assert github.calls("repos/list-pull-requests-associated-with-commit")


def test_apply_trusts_only_the_review_authors_comments(repo: Path, github: GitHubStandIn) -> None:
    settings(repo, github)
    config = repo / "glue.yaml"
    config.write_text(config.read_text() + "  review_author: glue-bot\n")
    git(repo, "commit", "-qam", "only glue-bot reviews")
    base = git(repo, "rev-parse", "HEAD").strip()
    set_tag(repo, "prod", "a", "2b4d6f8", "v1.2.3", "a v1.2.3")
    pull = github.add_pull("people/a", "main", "a v1.2.3", "")
    assert review(repo, "--base", base, "--merge-request", str(pull.number))[0] == 3
    # b changed after the review, and someone posts a review of that as if glue had.
    path = repo / "environments/prod.yaml"
    path.write_text(path.read_text().replace('"1d2e3f4"  # service b', '"9e9e9e9"  # service b'))
    git(repo, "commit", "-qam", "Merge a v1.2.3 (#1)")
    github.merge(pull.number, git(repo, "rev-parse", "HEAD").strip())
    code, forged, _ = review(repo, "--base", base, "--no-post")
    assert code == 3
    github.add_comment(pull.number, forged.rstrip("\n"), author="mallory")
    env = {**TOOLS, "GITHUB_TOKEN": GITHUB_TOKEN, "KUBECONFIG": str(repo / "none")}
    run = glue("-C", str(repo), "apply", "-e", "prod", env=env)
    assert run.code == 2, run.err
    assert "changed since the review: release b: Deployment example-prod/b" in run.err
    # Without review_author the forged comment would pass: the setting is what stops it.
    config.write_text(config.read_text().replace("  review_author: glue-bot\n", ""))
    git(repo, "commit", "-qam", "anyone reviews")
    github.merge(pull.number, git(repo, "rev-parse", "HEAD").strip())
    run = glue("-C", str(repo), "apply", "-e", "prod", env=env)
    assert "renders as reviewed" in run.out + run.err
