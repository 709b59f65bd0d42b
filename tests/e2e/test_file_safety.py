"""Issue 15: files glue edits stay the repository's own, whatever shape the checkout has."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pygit2
import pytest

from tests.support.helpers import example_repo, git, glue, snapshot


def head_id(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def test_bump_refuses_a_values_file_that_links_outside_the_repository(
    repo: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "credentials"
    secret.write_text('a:\n  image:\n    tag: "3f9c2e1"\n# TOKEN=hunter2\n')
    dev = repo / "environments/dev.yaml"
    dev.unlink()
    dev.symlink_to(secret)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    before, old = snapshot(repo), head_id(repo)
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 2, run.err
    assert "environments/dev.yaml" in run.err and "symbolic link" in run.err
    assert "Traceback" not in run.err
    assert head_id(repo) == old and snapshot(repo) == before and dev.is_symlink()
    assert "hunter2" not in git(repo, "log", "-p")


def test_bump_refuses_a_values_file_that_is_a_link_inside_the_repository(repo: Path) -> None:
    dev = repo / "environments/dev.yaml"
    (repo / "environments/real-dev.yaml").write_text(dev.read_text())
    dev.unlink()
    dev.symlink_to("real-dev.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    old = head_id(repo)
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 2 and "symbolic link" in run.err, run.err
    assert head_id(repo) == old and dev.is_symlink()
    assert git(repo, "status", "--porcelain") == ""


def test_set_refuses_a_symlink_and_leaves_it(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("a: 1\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    run = glue("set", str(link), "a", "2", cwd=tmp_path)
    assert run.code == 2 and "symbolic link" in run.err, run.err
    assert link.is_symlink() and target.read_text() == "a: 1\n"


def test_remote_tree_link_is_refused(tmp_path: Path) -> None:
    from gitops_glue.errors import UsageError
    from gitops_glue.repo import gitrepo

    repo = pygit2.init_repository(str(tmp_path / "bare"), bare=True)
    builder = repo.TreeBuilder()
    builder.insert("dev.yaml", repo.create_blob(b"/etc/passwd"), pygit2.enums.FileMode.LINK)
    tree = repo[builder.write()].peel(pygit2.Tree)
    try:
        gitrepo.tree_reader(repo, tree)("dev.yaml")
    except UsageError as exc:
        assert "symbolic link" in str(exc)
    else:
        raise AssertionError("a link in the tree was read as a file")
    try:
        gitrepo.tree_with(repo, tree, {"dev.yaml": "a: 1\n"})
    except UsageError as exc:
        assert "dev.yaml" in str(exc)
    else:
        raise AssertionError("a link in the tree was replaced")


def test_leftover_index_lock_is_refused_and_nothing_changes(repo: Path) -> None:
    (repo / ".git/index.lock").write_text("")
    before, old = snapshot(repo), head_id(repo)
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 1, run.err
    assert run.err.startswith("glue: error: git's lock file") and "index.lock" in run.err
    assert "Traceback" not in run.err
    assert head_id(repo) == old and snapshot(repo) == before
    (repo / ".git/index.lock").unlink()
    assert git(repo, "status", "--porcelain") == ""


def test_glue_yaml_in_a_subfolder_commits_the_right_path(tmp_path: Path) -> None:
    top = tmp_path / "top"
    example_repo(top / "deploy")
    (top / "deploy/.git").rename(top / ".git")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "moved into deploy/")
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=top / "deploy")
    assert run.code == 0, run.err
    assert git(top, "show", "--name-only", "--format=", "HEAD").split() == [
        "deploy/environments/dev.yaml"
    ]
    assert git(top, "status", "--porcelain") == ""
    assert 'tag: "4e5f6a7"' in (top / "deploy/environments/dev.yaml").read_text()
    # Rollback reads history with the same paths: it reverts the bump in deploy/.
    back = glue("rollback", "--env", "dev", cwd=top / "deploy")
    assert back.code == 0, back.err
    assert git(top, "show", "--name-only", "--format=", "HEAD").split() == [
        "deploy/environments/dev.yaml"
    ]
    assert git(top, "status", "--porcelain") == ""
    assert 'tag: "3f9c2e1"' in (top / "deploy/environments/dev.yaml").read_text()


@pytest.mark.slow  # a race in one checkout
def test_two_bumps_at_once_in_one_checkout_both_land(repo: Path) -> None:
    """The first bump is frozen (SIGSTOP) after planning, just before it commits; the
    second runs meanwhile. Without serialisation the second commits on the old tip and
    the first then moves the branch over it: one commit lost, both saying "done"."""
    old = head_id(repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLUE_")}
    first = subprocess.Popen(
        [sys.executable, "-m", "gitops_glue", "bump-tag", "a", "4e5f6a7", "--env", "dev"],
        cwd=repo,
        env={**env, "GLUE_TEST_KILL_AT": "commit-object:STOP"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stat = Path(f"/proc/{first.pid}/stat")
        while first.poll() is None and stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
            threading.Event().wait(0.02)  # until the first bump has stopped itself
        assert first.poll() is None, first.communicate()
        second = subprocess.Popen(
            [sys.executable, "-m", "gitops_glue", "bump-tag", "b", "5f6a7b8", "--env", "dev"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            second.wait(timeout=5)  # finishes at once without a lock; waits for it with one
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err1 = first.communicate(timeout=60)
    _, err2 = second.communicate(timeout=60)
    assert (first.returncode, second.returncode) == (0, 0), (err1, err2)
    log = git(repo, "log", "--format=%s", f"{old}..HEAD").splitlines()
    assert sorted(log) == ["feat(dev): update a to 4e5f6a7", "feat(dev): update b to 5f6a7b8"]
    text = (repo / "environments/dev.yaml").read_text()
    assert 'tag: "4e5f6a7"' in text and 'tag: "5f6a7b8"' in text
    assert git(repo, "status", "--porcelain") == ""


def test_set_leaves_no_temp_files_and_removes_a_killed_runs_leftover(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("a: 1\n")
    run = glue(
        "set",
        str(path),
        "a",
        "2",
        cwd=tmp_path,
        env={"GLUE_TEST_KILL_AT": "write-temp"},
        subprocess=True,
    )
    assert run.code == -signal.SIGKILL
    assert path.read_text() == "a: 1\n"
    assert list(tmp_path.glob("*.glue-tmp")), "the kill should have left a temp file"
    run = glue("set", str(path), "a", "3", cwd=tmp_path)
    assert run.code == 0, run.err
    assert path.read_text() == "a: 3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["values.yaml"]


def test_set_as_root_keeps_the_files_owner_and_mode(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        return  # only root can give a file away; other users keep their own files
    path = tmp_path / "values.yaml"
    path.write_text("a: 1\n")
    os.chown(path, 1234, 2345)
    path.chmod(0o640)
    run = glue("set", str(path), "a", "2", cwd=tmp_path)
    assert run.code == 0, run.err
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o640)


def test_bump_as_root_keeps_the_files_owner_and_mode(repo: Path) -> None:
    if os.geteuid() != 0:
        return
    path = repo / "environments/dev.yaml"
    os.chown(path, 1234, 2345)
    path.chmod(0o640)
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 0, run.err
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o640)


def test_invalid_utf8_in_a_committed_file_names_it_and_the_byte(tmp_path: Path) -> None:
    from gitops_glue.errors import UsageError
    from gitops_glue.repo import gitrepo

    repo = pygit2.init_repository(str(tmp_path / "bare"), bare=True)
    builder = repo.TreeBuilder()
    builder.insert("dev.yaml", repo.create_blob(b"a: caf\xe9\n"), pygit2.enums.FileMode.BLOB)
    tree = repo[builder.write()].peel(pygit2.Tree)
    try:
        gitrepo.tree_reader(repo, tree)("dev.yaml")
    except UsageError as exc:
        assert str(exc) == "dev.yaml: not UTF-8 text (invalid continuation byte at byte 6)"
    else:
        raise AssertionError("invalid UTF-8 was read")


def test_invalid_utf8_in_a_values_file_is_one_line(repo: Path) -> None:
    path = repo / "environments/dev.yaml"
    path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
    git(repo, "commit", "-qam", "latin-1")
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)
    assert run.code == 2
    assert len(run.err.splitlines()) == 1, run.err
    assert "environments/dev.yaml: not UTF-8 text" in run.err and "at byte" in run.err


def test_a_values_path_that_is_a_directory_says_so(repo: Path) -> None:
    path = repo / "environments/staging.yaml"
    path.unlink()
    path.mkdir()
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo)
    assert run.code == 2
    assert "environments/staging.yaml: is a directory" in run.err, run.err
    assert "does not exist" not in run.err
    run = glue("status", cwd=repo)
    assert run.code == 2 and "is a directory" in run.err, run.err


def test_sigint_says_what_was_left_as_it_was(repo: Path) -> None:
    before, old = snapshot(repo), head_id(repo)
    proc = subprocess.run(
        [sys.executable, "-m", "gitops_glue", "bump-tag", "a", "4e5f6a7", "--env", "dev"],
        cwd=repo,
        env={**os.environ, "GLUE_TEST_KILL_AT": "file:INT"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 130
    assert proc.stderr.splitlines() == [
        "glue: interrupted: nothing was committed; the files and the index are as they were"
    ]
    assert head_id(repo) == old and snapshot(repo) == before
    assert git(repo, "status", "--porcelain") == ""
