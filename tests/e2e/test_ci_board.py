"""The CI jobs that publish the status board: GitLab's `pages` component and GitHub's
status-board action with its Pages workflow, run as a pipeline runs them.

The linting every template gets (schema, shellcheck, actionlint) is in
test_ci_templates.py; this file runs the jobs and lints the example workflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_ci_templates import (
    GITHUB,
    GITLAB,
    NPM_BIN,
    TEMPLATES,
    check_jsonschema,
    component,
    load_all,
    offline_env,
    run_action,
    tool,
)
from tests.support.helpers import example_repo, git, glue

EXAMPLE = GITHUB / "examples" / "glue-board.yml"
PAGES_PIPELINE = """\
include:
  - local: ci/glue/pages.yml
"""


def gitlab_ci_local(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local in ``repo`` (shell executor: this machine's glue), without the
    caller's GLUE_/CI_ variables."""
    env = {
        k: v
        for k, v in offline_env().items()
        if not k.startswith(("GLUE_", "GITHUB_", "GITLAB_", "CI_", "SLACK_"))
    }
    gcl = shutil.which("gitlab-ci-local", path=str(NPM_BIN)) or tool("gitlab-ci-local")
    return subprocess.run(
        [gcl, "--force-shell-executor", "--no-color", "--home", str(repo.parent / "gcl-home"),
         *args],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def deployment_repo(path: Path) -> Path:
    """The example deployment repo with the pages component included, a hold and a bump."""
    repo = example_repo(path)
    shutil.copytree(GITLAB, repo / "ci" / "glue")
    (repo / ".gitlab-ci.yml").write_text(PAGES_PIPELINE)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "CI: publish the status board")
    for args in (
        ("hold", "b", "--env", "prod", "--reason", "payments fail", "--actor", "carol"),
        ("bump-tag", "a", "v1.2.3", "--env", "dev"),
    ):
        run = glue(*args, cwd=repo)
        assert run.code == 0, run.err
    return repo


@pytest.mark.slow  # a whole CI pipeline
def test_the_pages_component_publishes_the_board(tmp_path: Path) -> None:
    _, body = component("pages")
    job = body["pages"]
    assert job["stage"] == ".post" and job["artifacts"] == {"paths": ["public"]}
    assert job["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    _, with_cluster = component("pages", cluster=True)
    assert str(with_cluster["pages"]["variables"]["GLUE_BOARD_CLUSTER"]).lower() == "true"

    repo = deployment_repo(tmp_path / "deploy")
    listed = gitlab_ci_local(repo, "--list")
    assert listed.returncode == 0 and "pages" in listed.stdout, listed.stdout + listed.stderr
    # Not on another branch: only the deployment branch's state is published.
    other = gitlab_ci_local(repo, "--list", "--variable", "CI_COMMIT_BRANCH=feature")
    assert other.returncode == 0 and "pages" not in other.stdout, other.stdout

    run = gitlab_ci_local(repo, "pages")
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    found = sorted(repo.rglob("public/index.html"))
    assert found, log
    page = found[-1].read_text()
    assert "payments fail" in page and "v1.2.3" in page
    assert (found[-1].parent / "assets" / "board.js").is_file()


def test_the_status_board_action_builds_the_site(tmp_path: Path) -> None:
    repo = deployment_repo(tmp_path / "deploy")
    run = run_action(GITHUB / "actions" / "status-board", {}, repo)
    assert run.ok, run.log()
    site = Path(run.outputs["path"])
    assert site == repo / "glue-board"
    page = (site / "index.html").read_text()
    assert "payments fail" in page and "the repository alone" in page
    # A second run replaces the site, nothing of the first is left.
    (site / "stale.html").write_text("old")
    again = run_action(GITHUB / "actions" / "status-board", {"directory": "glue-board"}, repo)
    assert again.ok, again.log()
    assert not (site / "stale.html").exists()


def test_the_pages_workflow_passes_actionlint_and_the_schemas(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copytree(TEMPLATES, repo / "ci-templates")
    shutil.copy(EXAMPLE, repo / ".github" / "workflows" / "glue-board.yml")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {**offline_env(), "PATH": f"{Path(tool('shellcheck')).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [tool("actionlint"), "-color=false"],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # actionlint reads the action: an output it does not have is reported.
    workflow = repo / ".github" / "workflows" / "glue-board.yml"
    workflow.write_text(
        EXAMPLE.read_text().replace("steps.board.outputs.path", "steps.board.outputs.dir")
    )
    proc = subprocess.run(
        [tool("actionlint"), "-color=false"],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "dir" in proc.stdout, proc.stdout
    proc = check_jsonschema("vendor.github-workflows", EXAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = check_jsonschema(
        "vendor.github-actions", GITHUB / "actions" / "status-board" / "action.yml"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wf = load_all(EXAMPLE)[0]
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert on["push"] == {"branches": ["main"]}
    assert on["workflow_run"]["workflows"] == ["glue deploy"]
    deploy = wf["jobs"]["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert json.dumps(wf["jobs"]["build"]["steps"][0]["with"]) == '{"fetch-depth": 0}'
