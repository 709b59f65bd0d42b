"""`glue bump-tag` and `glue status` on a local checkout, run as a user runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pygit2
import pytest

from tests.support.helpers import git, glue, snapshot


def head(repo: Path) -> pygit2.Commit:
    r = pygit2.Repository(str(repo))
    return r.head.peel(pygit2.Commit)


def test_bump_commits_one_line_change_with_trailers(repo: Path) -> None:
    before = (repo / "environments/dev.yaml").read_text()
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "--revision",
        "4e5f6a7b8c9d",
        "--upstream-repo",
        "example/a",
        cwd=repo,
    )
    assert run.code == 0, run.err
    assert "feat(dev): update a to 4e5f6a7" in run.out

    commit = head(repo)
    assert commit.message.splitlines()[0] == "feat(dev): update a to 4e5f6a7"
    trailers = dict(
        line.split(": ", 1)
        for line in commit.message.splitlines()
        if ": " in line and line.split(": ", 1)[0].replace("-", "").isalpha()
    )
    assert trailers["Glue-Environment"] == "dev"
    assert trailers["Glue-Service"] == "a"
    assert trailers["Glue-Tag"] == "4e5f6a7"
    assert trailers["Glue-Previous-Tag"] == "3f9c2e1"
    assert trailers["Upstream-Repository"] == "example/a"
    assert trailers["Upstream-Revision"] == "4e5f6a7b8c9d"
    assert commit.author.name == "glue-bot"
    assert commit.author.email == "glue-bot@users.noreply.example.com"
    assert [str(p) for p in commit.parent_ids] == [git(repo, "rev-parse", "HEAD~1").strip()]

    # Exactly the tag and revision lines changed; the work tree and index are clean.
    diff = git(repo, "diff", "HEAD~1", "HEAD", "--unified=0").splitlines()
    assert [
        ln for ln in diff if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))
    ] == [
        '-    tag: "3f9c2e1"  # service a',
        '-  revision: "3f9c2e1"',
        '+    tag: "4e5f6a7"  # service a',
        '+  revision: "4e5f6a7b8c9d"',
    ]
    assert git(repo, "status", "--porcelain") == ""
    after = (repo / "environments/dev.yaml").read_text()
    assert after == before.replace('tag: "3f9c2e1"', 'tag: "4e5f6a7"').replace(
        'revision: "3f9c2e1"', 'revision: "4e5f6a7b8c9d"'
    )


def test_bump_to_the_same_tag_is_unchanged_and_makes_no_commit(repo: Path) -> None:
    old_head = head(repo).id
    run = glue("bump-tag", "a", "3f9c2e1", "--env", "dev", cwd=repo)
    assert run.code == 0, run.err
    assert run.out.startswith("unchanged:")
    assert head(repo).id == old_head


def test_refused_tag_changes_nothing(repo: Path) -> None:
    before = snapshot(repo)
    old_head = head(repo).id
    for tag, why in [
        ("latest", "mutable tag"),
        ("feature-x", "does not match the policy"),
        ("bad tag!", "not a valid image tag"),
    ]:
        run = glue("bump-tag", "a", tag, "--env", "prod", cwd=repo)
        assert run.code == 2
        assert why in run.err
        assert "Traceback" not in run.err
    assert snapshot(repo) == before
    assert head(repo).id == old_head


def test_dry_run_prints_the_diff_and_writes_nothing(repo: Path) -> None:
    before = snapshot(repo)
    run = glue("bump-tag", "b", "v2.0.0", "--env", "prod", "--dry-run", cwd=repo)
    assert run.code == 0, run.err
    assert '-    tag: "1d2e3f4"  # service b' in run.out
    assert '+    tag: "v2.0.0"  # service b' in run.out
    assert "(dry run) would commit: feat(prod): update b to v2.0.0" in run.out
    assert snapshot(repo) == before
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"


def test_bump_json_output_and_env_vars(repo: Path) -> None:
    run = glue(
        "bump-tag", "b", "0a1b2c3", cwd=repo, env={"GLUE_ENV": "staging", "GLUE_OUTPUT": "json"}
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert data["status"] == "changed"
    assert data["file"] == "environments/staging.yaml"
    assert (data["old_tag"], data["new_tag"]) == ("1d2e3f4", "0a1b2c3")
    assert data["commit"] == str(head(repo).id)


def test_bump_in_ci_links_the_pipeline(repo: Path) -> None:
    run = glue(
        "bump-tag",
        "a",
        "5a5a5a5",
        "--env",
        "dev",
        cwd=repo,
        env={
            "GITLAB_CI": "true",
            "CI_PIPELINE_URL": "https://gitlab.example.com/g/a/-/pipelines/42",
            "CI_PROJECT_PATH": "g/a",
            "GITLAB_USER_LOGIN": "dev1",
        },
    )
    assert run.code == 0, run.err
    message = head(repo).message
    assert "Pipeline: https://gitlab.example.com/g/a/-/pipelines/42" in message
    assert "Upstream-Repository: g/a" in message
    assert "Triggered-By: dev1" in message


def test_uncommitted_changes_to_the_file_are_protected(repo: Path) -> None:
    path = repo / "environments/dev.yaml"
    path.write_text(path.read_text() + "# my local note\n")
    before = snapshot(repo)
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 2
    assert "environments/dev.yaml has uncommitted changes" in run.err
    assert snapshot(repo) == before


def test_staged_work_of_the_user_is_not_committed(repo: Path) -> None:
    (repo / "NOTES.md").write_text("wip\n")
    git(repo, "add", "NOTES.md")
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 0, run.err
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "environments/dev.yaml"
    ]
    assert git(repo, "status", "--porcelain").strip() == "A  NOTES.md"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write read-only files")
def test_unwritable_values_file_changes_nothing(repo: Path) -> None:
    path = repo / "environments/dev.yaml"
    path.chmod(0o444)
    before = snapshot(repo)
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 2
    assert "not writable" in run.err
    assert snapshot(repo) == before


def test_unknown_names_and_bad_config(repo: Path) -> None:
    run = glue("bump-tag", "zzz", "4e5f6a7", "--env", "dev", cwd=repo)
    assert (run.code, run.err.splitlines()[0]) == (2, "glue: error: unknown service 'zzz'")
    assert "services in glue.yaml: a, b" in run.err
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "qa", cwd=repo)
    assert run.code == 2 and "environments in glue.yaml: dev, staging, prod" in run.err
    config = repo / "glue.yaml"
    config.write_text(config.read_text().replace("    tag_key: b.image.tag", "    tagkey: b"))
    line = config.read_text().splitlines().index("    tagkey: b") + 1
    run = glue("status", cwd=repo)
    assert run.code == 2
    assert f"glue.yaml:{line}: services.b.tagkey: unknown key" in run.err
    assert "services.b.tag_key: required key is missing" in run.err


def test_broken_values_file_is_reported_with_its_line(repo: Path) -> None:
    path = repo / "environments/staging.yaml"
    path.write_text("a:\n  image: [tag\n")
    git(repo, "commit", "-qam", "break it")
    before = snapshot(repo)
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo)
    assert run.code == 2
    assert run.err.startswith("glue: error: environments/staging.yaml:3:1: not valid YAML")
    assert snapshot(repo) == before


def test_status_table_and_json(repo: Path) -> None:
    run = glue("status", cwd=repo / "charts")  # found from a subfolder
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        "SERVICE  dev      staging  prod",
        "a        3f9c2e1  3f9c2e1  2b4d6f8",
        "b        9a8b7c6  1d2e3f4  1d2e3f4",
    ]
    glue("bump-tag", "a", "v1.0.0", "--env", "prod", "--revision", "abcdef0123", cwd=repo)
    data = json.loads(glue("-C", str(repo), "status", "--output", "json").out)
    assert data["environments"] == ["dev", "staging", "prod"]
    assert data["services"]["a"]["prod"] == {
        "tag": "v1.0.0",
        "revision": "abcdef0123",
        "file": "environments/prod.yaml",
    }


def test_no_config_found(tmp_path: Path) -> None:
    run = glue("status", cwd=tmp_path)
    assert run.code == 2
    assert "no glue.yaml in" in run.err and "-C DIR" in run.err


def test_bump_warns_about_a_broken_setup_elsewhere_and_still_commits(repo: Path) -> None:
    """glue check's file checks run before every write: a problem in another environment is
    a warning, not a refusal of this bump."""
    staging = repo / "environments/staging.yaml"
    staging.write_text(staging.read_text().replace('    tag: "1d2e3f4"', '    tags: "1d2e3f4"'))
    git(repo, "commit", "-qam", "a typo in staging: b.image.tags")
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", "--output", "json", cwd=repo)
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if line.startswith("glue: warning: ")]
    assert len(warnings) == 1 and "staging" in warnings[0] and "b.image.tag" in warnings[0]
    data = json.loads(run.out)
    assert data["status"] == "changed" and data["warnings"] == [
        warnings[0][len("glue: warning: ") :]
    ]
    assert git(repo, "status", "--porcelain") == ""
