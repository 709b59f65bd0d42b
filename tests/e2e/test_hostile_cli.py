"""The command line against hostile surroundings: a closed or full stdout, absurd
durations and -C paths, bad announce tags, errors as JSON, and git hooks glue must not run.

Each test runs glue as a user would (in a process of its own where the process is the
point: a closed stdout, a signal, a global git config) and asserts on what the user sees:
the exit code, one ``glue: error:`` line, stdout, and the repository left as it was.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import Run, git, glue, snapshot
from tests.support.slackserver import SlackServer
from tests.support.sshgit import BareRemote, SshGitServer

HUGE = "9" * 400
#: Generous: a bound on a hang, not a timing assertion.
TIMEOUT = 60


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def one_error(run: Run, code: int) -> str:
    """``run`` exited ``code`` with one ``glue: error:`` and no traceback; its stderr."""
    assert run.code == code, (run.code, run.err)
    assert run.err.count("glue: error: ") == 1, run.err
    assert "Traceback" not in run.err + run.out
    return run.err


def glue_with_stdout(how: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``glue ARGS`` started by a shell with ``how`` applied to its stdout (``>&-``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLUE_")}
    return subprocess.run(
        ["sh", "-c", f'exec "$0" -m gitops_glue "$@" {how}', sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


# --------------------------------------------------------------------------- stdout


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "-o", "json"],
        ["get", "environments/dev.yaml", "a.image.tag"],
        ["bump-tag", "a", "4e5f6a7", "--env", "dev"],
        ["--version"],
    ],
)
def test_a_closed_stdout_fails_the_command_before_it_changes_anything(
    repo: Path, args: list[str]
) -> None:
    before, old = snapshot(repo), head(repo)
    proc = glue_with_stdout(">&-", *args, cwd=repo)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "glue: error: standard output is closed: glue writes its results there"
    )
    assert proc.stderr.count("glue: error:") == 1 and "Traceback" not in proc.stderr
    # Nothing was done that the missing output would have reported.
    assert head(repo) == old and snapshot(repo) == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("output", ["text", "json"])
def test_a_failed_write_to_stdout_is_an_operation_failure(repo: Path, output: str) -> None:
    proc = glue_with_stdout("> /dev/full", "status", "-o", output, cwd=repo)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "glue: error: cannot write to standard output: No space left on device"
    )
    assert proc.stderr.count("glue: error:") == 1 and "Traceback" not in proc.stderr
    assert "Exception ignored" not in proc.stderr


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "args",
    [
        ["wait-image", "--image", "r.example.com/a", "--tag", "v1", "--timeout", HUGE],
        ["wait-image", "--image", "r.example.com/a", "--tag", "v1", "--interval", HUGE + "s"],
        ["wait-image", "--image", "r.example.com/a", "--tag", "v1", "--timeout", "8761h"],
        ["promote", "a", "--from", "dev", "--to", "staging", "--min-age", HUGE + "m"],
        ["promote", "a", "--from", "dev", "--to", "staging", "--min-age", "1" + HUGE + "h"],
    ],
)
def test_a_duration_no_clock_can_wait_for_is_a_usage_error(repo: Path, args: list[str]) -> None:
    before, old = snapshot(repo), head(repo)
    err = one_error(glue(*args, cwd=repo), 2)
    assert "is longer than the limit of a year (8760h)" in err
    assert len(err) < 400  # the 400 digits are shortened, not echoed back whole
    assert head(repo) == old and snapshot(repo) == before


def test_a_huge_min_age_in_glue_yaml_is_a_config_error(repo: Path) -> None:
    config = repo / "glue.yaml"
    text = config.read_text()
    assert "  - name: staging\n" in text
    config.write_text(
        text.replace("  - name: staging\n", f"  - name: staging\n    min_age: {HUGE}m\n")
    )
    git(repo, "commit", "-qam", "min_age")
    err = one_error(glue("status", cwd=repo), 2)
    assert "glue.yaml" in err and "longer than the limit of a year" in err


# --------------------------------------------------------------------------- -C


def _symlink_loop(tmp_path: Path) -> str:
    (tmp_path / "loop-a").symlink_to("loop-b")
    (tmp_path / "loop-b").symlink_to("loop-a")
    return str(tmp_path / "loop-a")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: "a" * 5000, "File name too long"),
        (lambda tmp: str(tmp / ("b" * 300)), "File name too long"),
        (lambda tmp: "/".join(["c" * 200] * 30), "File name too long"),
        (lambda tmp: str(tmp / ("d" * 5000) / "deploy"), "File name too long"),
        (_symlink_loop, ""),
        (lambda tmp: _symlink_loop(tmp) + "/deploy", ""),
    ],
    ids=["5000-chars", "long-name", "6000-chars-nested", "long-parent", "loop", "inside-loop"],
)
def test_a_directory_glue_cannot_open_is_one_usage_error(
    repo: Path, tmp_path: Path, make: object, reason: str
) -> None:
    assert callable(make)
    directory = make(tmp_path)
    for args in (["status"], ["bump-tag", "a", "4e5f6a7", "--env", "dev"]):
        run = glue("-C", directory, *args, "-o", "json", cwd=repo)
        err = one_error(run, 2)
        assert err.startswith("glue: error: -C ") and reason in err, err
        assert len(err) < 500  # the path is shortened
        assert json.loads(run.out)["exit"] == 2


@pytest.mark.parametrize("command", ["get", "set"])
def test_a_file_path_glue_cannot_open_is_one_usage_error(
    repo: Path, tmp_path: Path, command: str
) -> None:
    before = snapshot(repo)
    for path, reason in (
        ("v" * 5000 + ".yaml", "File name too long"),
        (_symlink_loop(tmp_path), "Too many levels of symbolic links"),
    ):
        args = [command, path, "a.image.tag"] + (["4e5f6a7"] if command == "set" else [])
        run = glue(*args, "-o", "json", cwd=repo)
        err = one_error(run, 2)
        assert reason in err and len(err) < 500, err
        assert json.loads(run.out)["exit"] == 2
    assert snapshot(repo) == before


def test_a_directory_that_does_not_exist_still_says_there_is_no_glue_yaml(tmp_path: Path) -> None:
    err = one_error(glue("-C", str(tmp_path / "nowhere"), "status", cwd=tmp_path), 2)
    assert "no glue.yaml in" in err


# --------------------------------------------------------------------------- announce --tag


@pytest.mark.parametrize(
    "tag", ["bad tag", "v1\nx", "v1\n", "", ".v1", "-v1", "v1/x", "t" * 129, "v1\u2028x"]
)
def test_announce_applies_the_tag_rules_of_bump(
    slack: SlackServer, tmp_path: Path, tag: str
) -> None:
    run = glue(
        "announce",
        "--image",
        "r.example.com/team/a",
        "--tag",
        tag,
        cwd=tmp_path,
        env={"SLACK_WEBHOOK_URL": slack.webhook_url},
    )
    err = one_error(run, 2)
    assert "is not a valid image tag" in err and "hint: tags are up to 128" in err
    assert slack.webhook_requests() == []  # refused before anything was sent


def test_announce_still_announces_a_good_tag(slack: SlackServer, tmp_path: Path) -> None:
    run = glue(
        "announce",
        "--image",
        "r.example.com/team/a",
        "--tag",
        "v1.2.3_rc-1",
        "--revision",
        "3f9c2e1",
        cwd=tmp_path,
        env={"SLACK_WEBHOOK_URL": slack.webhook_url},
    )
    assert run.code == 0, run.err
    assert len(slack.webhook_requests()) == 1


# --------------------------------------------------------------------------- errors as JSON


def json_error(run: Run, code: int) -> dict[str, object]:
    """stdout is exactly one JSON object describing the error; stderr says it too."""
    err = one_error(run, code)
    error = json.loads(run.out)  # one document: extra text would not parse
    assert isinstance(error, dict)
    assert set(error) == {"error", "hint", "exit"}, error
    assert error["exit"] == code
    assert isinstance(error["error"], str) and f"glue: error: {error['error']}" in err
    if error["hint"] is not None:
        assert f"  hint: {error['hint']}" in err
    return error


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["status", "--bogus", "-o", "json"], {}, "No such option: --bogus"),
        (["status", "--bogus"], {"GLUE_OUTPUT": "json"}, "No such option: --bogus"),
        (["no-such-command", "-o", "json"], {}, "No such command"),
        (["bump-tag", "--output=json"], {}, "Missing"),
        (["bump-tag", "a", "bad/tag", "--env", "dev", "-ojson"], {}, "not a valid image tag"),
        (["bump-tag", "zz", "4e5f6a7", "--env", "dev"], {"GLUE_OUTPUT": "json"}, "zz"),
        (["get", "environments/dev.yaml", "a.nope", "-o", "json"], {}, "nope"),
        (["set", "environments/dev.yaml", "a..b", "x", "-o", "json"], {}, "invalid key path"),
        (["wait-image", "--image", "r/a", "--tag", "v1", "--timeout", HUGE, "-o", "json"], {}, ""),
    ],
)
def test_usage_errors_are_one_json_object_on_stdout(
    repo: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    before, old = snapshot(repo), head(repo)
    error = json_error(glue(*args, cwd=repo, env=env), 2)
    assert says in str(error["error"])
    assert head(repo) == old and snapshot(repo) == before


def test_text_output_keeps_stdout_empty_on_errors(repo: Path) -> None:
    for args in (["status", "--bogus"], ["status", "-o", "text", "--bogus"]):
        run = glue(*args, cwd=repo)
        one_error(run, 2)
        assert run.out == ""
    run = glue("status", "--bogus", cwd=repo, env={"GLUE_OUTPUT": "text"})
    assert run.code == 2 and run.out == ""


def test_an_operation_failure_is_a_json_object_with_exit_1(repo: Path) -> None:
    (repo / ".git" / "index.lock").touch()
    before, old = snapshot(repo), head(repo)
    error = json_error(glue("bump-tag", "a", "4e5f6a7", "--env", "dev", "-o", "json", cwd=repo), 1)
    assert "index.lock" in str(error["error"]) and error["hint"]
    assert head(repo) == old and snapshot(repo) == before


def test_a_secret_stays_masked_in_the_json_error(tmp_path: Path) -> None:
    secret = "s3cr3t-Passw0rd"
    for url in (
        f"https://deploy:{secret}@127.0.0.1:1/team/deploy.git",
        f"https://{secret}@127.0.0.1:1/team/deploy.git",
    ):
        run = glue(
            "bump-tag", "a", "4e5f6a7", "--env", "dev", "--remote", url, "-o", "json", cwd=tmp_path
        )
        error = json_error(run, 1)
        assert "127.0.0.1" in str(error["error"])
        assert secret not in run.out + run.err


def test_an_interrupted_commit_is_a_json_object_with_exit_130(repo: Path) -> None:
    before, old = snapshot(repo), head(repo)
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "-o",
        "json",
        cwd=repo,
        env={"GLUE_TEST_KILL_AT": "file:INT"},
        subprocess=True,
    )
    assert run.code == 130, run.err
    assert run.err.startswith("glue: interrupted: ") and "Traceback" not in run.err
    error = json.loads(run.out)
    assert error["exit"] == 130 and "nothing was committed" in error["error"]
    assert head(repo) == old and snapshot(repo) == before


def test_a_closed_stdout_with_json_output_says_so_on_stderr_only(repo: Path) -> None:
    proc = glue_with_stdout(">&-", "status", "--bogus", "-o", "json", cwd=repo)
    assert proc.returncode == 1
    assert proc.stderr.count("glue: error:") == 1 and "standard output is closed" in proc.stderr


# --------------------------------------------------------------------------- git hooks

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
FAILING_HOOK = """#!/bin/sh
echo "$0 ran" >> {marker}
exit 1
"""


def failing_hooks(folder: Path, marker: Path) -> Path:
    """A hooks folder whose pre-commit and commit-msg hooks refuse every commit and
    leave ``marker`` behind when they run."""
    folder.mkdir(parents=True)
    for name in ("pre-commit", "commit-msg", "prepare-commit-msg", "post-commit"):
        hook = folder / name
        hook.write_text(FAILING_HOOK.format(marker=marker))
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def test_glue_runs_no_git_hook_in_a_checkout(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hooks = failing_hooks(tmp_path / "hooks", marker)
    git(repo, "config", "core.hooksPath", str(hooks))
    # The hooks are real: git itself runs them and refuses its commit.
    probe = subprocess.run(
        ["git", "-C", str(repo), "commit", "--allow-empty", "-qm", "probe"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **IDENTITY},
    )
    assert probe.returncode != 0 and marker.exists()
    marker.unlink()
    old = head(repo)

    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo)

    assert run.code == 0, run.err
    assert not marker.exists()  # no hook ran
    assert git(repo, "rev-parse", "HEAD~1").strip() == old
    assert 'tag: "4e5f6a7"' in git(repo, "show", "HEAD:environments/dev.yaml")
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.ssh
def test_glue_runs_no_git_hook_with_remote(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    hooks = failing_hooks(tmp_path / "hooks", marker)
    home = tmp_path / "home"
    home.mkdir()
    # The user's global git config names the hooks: every repository of theirs has them.
    (home / ".gitconfig").write_text(f"[core]\n\thooksPath = {hooks}\n")
    probe = tmp_path / "probe"
    subprocess.run(
        ["git", "init", "-q", str(probe)], check=True, env={**os.environ, "HOME": str(home)}
    )
    refused = subprocess.run(
        ["git", "-C", str(probe), "commit", "--allow-empty", "-qm", "probe"],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            **IDENTITY,
        },
    )
    assert refused.returncode != 0 and marker.exists()
    marker.unlink()
    old = ssh_remote.head()

    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env={
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GLUE_SSH_KEY_FILE": str(ssh_git_server.deploy_key.private),
            "GLUE_SSH_KNOWN_HOSTS": ssh_git_server.known_hosts_line,
        },
        subprocess=True,  # libgit2 reads HOME's git config once per process
        timeout=TIMEOUT,
    )

    assert run.code == 0, run.err
    assert not marker.exists()
    new = ssh_remote.head()
    assert new != old
    assert ssh_remote.git("rev-parse", f"{new}~1").strip() == old
    assert 'tag: "4e5f6a7"' in ssh_remote.git("show", f"{new}:environments/dev.yaml")
