"""What glue learns from the CI system, and from the local checkout outside CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue.integrations import ci
from tests.support.helpers import git

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "example/a",
    "GITHUB_RUN_ID": "99",
    "GITHUB_SHA": "3f9c2e1" + "0" * 33,
    "GITHUB_REF_NAME": "main",
    "GITHUB_ACTOR": "octocat",
}
GITLAB_ENV = {
    "GITLAB_CI": "true",
    "CI_PIPELINE_URL": "https://gitlab.example.com/g/b/-/pipelines/7",
    "CI_PROJECT_PATH": "g/b",
    "CI_PROJECT_URL": "https://gitlab.example.com/g/b",
    "CI_COMMIT_SHA": "abc",
    "CI_COMMIT_REF_NAME": "feature/x",
    "GITLAB_USER_LOGIN": "dev1",
    "CI_COMMIT_TITLE": "Add <thing> & fix",
    "CI_COMMIT_AUTHOR": "Dev One <dev1@example.com>",
}


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests say which CI system runs them; the machine running them may be in one."""
    for system in ci.SYSTEMS:
        monkeypatch.delenv(system.marker, raising=False)


def test_ci_detection() -> None:
    gh = ci.detect(GITHUB_ENV)
    assert gh.pipeline_url == "https://github.com/example/a/actions/runs/99"
    assert gh.commit_url() == f"https://github.com/example/a/commit/{GITHUB_ENV['GITHUB_SHA']}"
    gl = ci.detect(GITLAB_ENV)
    assert (gl.system, gl.ref, gl.commit_author) == ("gitlab", "feature/x", "Dev One")
    assert gl.commit_url() == "https://gitlab.example.com/g/b/-/commit/abc"
    assert not ci.detect({}).in_ci


def test_outside_ci_the_local_checkout_gives_commit_branch_title_and_author(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "feature/x")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "Add a\n\nThe body.")
    head = git(repo, "rev-parse", "HEAD").strip()
    ctx = ci.context(repo)
    assert (ctx.system, ctx.commit, ctx.ref) == ("", head, "feature/x")
    assert (ctx.commit_title, ctx.commit_author) == ("Add a", "Test User")
    git(repo, "checkout", "-q", "--detach")
    assert ci.context(repo).ref == ""
    # Asked not to look at git (the revision or branch was given): nothing from it.
    assert ci.context(repo, fallback_to_git=False) == ci.CiContext()


def test_outside_a_checkout_the_context_stays_empty(tmp_path: Path) -> None:
    assert ci.local_git_context(ci.CiContext(), tmp_path) == ci.CiContext()
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert ci.local_git_context(ci.CiContext(), empty) == ci.CiContext()  # no commits


def test_in_ci_the_local_checkout_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "local")
    for key, value in GITLAB_ENV.items():
        monkeypatch.setenv(key, value)
    assert ci.context(tmp_path) == ci.detect(GITLAB_ENV)


def test_outputs_for_github_and_a_dotenv(tmp_path: Path) -> None:
    gh = tmp_path / "github_output"
    dotenv = tmp_path / "build.env"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(gh)}
    written = ci.write_outputs({"tag": "3f9c2e1", "notes": "one\ntwo"}, dotenv=str(dotenv), env=env)
    assert written == [str(gh), str(dotenv)]
    lines = gh.read_text().splitlines()
    assert lines[0] == "tag=3f9c2e1"
    assert lines[1].startswith("notes<<glue_") and lines[2:4] == ["one", "two"]
    assert lines[4] == lines[1].split("<<", 1)[1]
    assert dotenv.read_text() == "GLUE_TAG=3f9c2e1\nGLUE_NOTES=one two\n"
    # Outside GitHub Actions GITHUB_OUTPUT is not touched.
    assert ci.write_outputs({"tag": "x"}, env={"GITHUB_OUTPUT": str(gh)}) == []
