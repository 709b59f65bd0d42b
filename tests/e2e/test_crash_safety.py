"""Issue 15: a local bump killed (SIGKILL) at any step never leaves a staged revert.

glue sends itself SIGKILL at a named step when ``GLUE_TEST_KILL_AT`` names it (a
test-only hook, :func:`gitops_glue.checkpoints.checkpoint`), so every step is hit
deterministically. After each kill the checkout is either "no commit, tree clean",
"commit, tree clean", or (killed between writing the files and moving the branch)
the bump uncommitted in the work tree, never the old tag staged against a new
commit; the next glue run puts that back. Running the bump again then leaves
"commit, tree clean" in every case.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import git

STEPS = ["write-temp", "commit-object", "journal", "file", "index", "branch", "done"]
#: Steps after which the commit is whole (the branch has moved).
COMMITTED = {"branch", "done"}
#: Steps between the first file write and the branch move: the bump is in the work tree.
IN_FLIGHT = {"file", "index"}
BUMP = ["bump-tag", "a", "4e5f6a7", "--env", "dev"]


def run_glue(repo: Path, kill_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLUE_")}
    if kill_at:
        env["GLUE_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "gitops_glue", *BUMP],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def tag_in(text: str) -> str:
    return "new" if 'tag: "4e5f6a7"' in text else "old"


@pytest.mark.parametrize("step", STEPS)
def test_a_bump_killed_at_any_step_leaves_no_staged_revert(repo: Path, step: str) -> None:
    old = git(repo, "rev-parse", "HEAD").strip()
    run = run_glue(repo, step)
    assert run.returncode == -signal.SIGKILL, (run.returncode, run.stderr)

    head = git(repo, "rev-parse", "HEAD").strip()
    status = git(repo, "status", "--porcelain")
    worktree = tag_in((repo / "environments/dev.yaml").read_text())
    staged = tag_in(git(repo, "show", ":environments/dev.yaml"))
    if step in COMMITTED:
        assert head != old and (worktree, staged, status) == ("new", "new", "")
    elif step in IN_FLIGHT:
        # The bump is uncommitted, never a revert of a commit.
        assert head == old and worktree == "new"
        assert status.strip() in ("M environments/dev.yaml", "M  environments/dev.yaml")
    else:
        assert head == old and (worktree, staged, status) == ("old", "old", "")

    again = run_glue(repo, None)
    assert again.returncode == 0, again.stderr
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-list", "--count", f"{old}..HEAD").strip() == "1"
    assert tag_in(git(repo, "show", "HEAD:environments/dev.yaml")) == "new"
    assert tag_in((repo / "environments/dev.yaml").read_text()) == "new"
    leftovers = [p.name for p in (repo / ".git").iterdir() if p.name.endswith(".glue-tmp")]
    assert leftovers == [] and not (repo / ".git/glue-commit-in-progress.json").exists()
