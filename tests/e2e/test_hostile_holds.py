"""Hostile holds: holds that must not be bypassed or lost, and a damaged glue-holds.yaml.

A hold is one person's: neither ``glue rollback --hold`` nor a second ``glue hold``
may bypass or replace someone else's hold without ``--override-hold``. A hold on an
environment glue.yaml does not list stays visible and removable. A glue-holds.yaml
that is not what glue writes (a misspelt section, ``holds: null``, entries of the
wrong shape, a symbolic link, past the limits of values files) stops every command
with one ``glue: error:`` (exit 2) naming the file, never "nothing held", in a
checkout and over ``--remote`` alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pygit2
import pytest

from gitops_glue.repo.commit import parse_trailers
from tests.support.helpers import ROOT, Run, git, glue, snapshot
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env

HOSTILE = ROOT / "tests" / "data" / "hostile"
ALICE = {"GLUE_ACTOR": "alice"}
BOB = {"GLUE_ACTOR": "bob"}
HOLDS = "glue-holds.yaml"


def head(repo: Path) -> str:
    return str(pygit2.Repository(str(repo)).head.target)


def refused(run: Run, *words: str) -> None:
    """Exit 2 with exactly one ``glue: error:`` line (no traceback) holding ``words``."""
    assert run.code == 2, (run.code, run.out, run.err)
    assert run.err.count("glue: error:") == 1, run.err
    assert "Traceback" not in run.err and "Traceback" not in run.out
    for word in words:
        assert word in run.err, (word, run.err)


def hold_a_in_prod_by_alice(repo: Path) -> None:
    run = glue("hold", "a", "--env", "prod", "--reason", "checkout 500s", cwd=repo, env=ALICE)
    assert run.code == 0, run.err


# --------------------------------------------------------------------------- one person's hold


def test_rollback_hold_over_another_persons_hold_needs_the_override_and_keeps_it(
    repo: Path,
) -> None:
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "prod", cwd=repo).code == 0
    hold_a_in_prod_by_alice(repo)
    held = (repo / HOLDS).read_text()
    before, tip = snapshot(repo), head(repo)

    run = glue("rollback", "--env", "prod", "--hold", "--reason", "mine now", cwd=repo, env=BOB)
    refused(run, "a is held in prod", "by alice", "checkout 500s", "--override-hold")
    assert snapshot(repo) == before and head(repo) == tip

    run = glue(
        "rollback",
        "--env",
        "prod",
        "--hold",
        "--reason",
        "mine now",
        "--override-hold",
        cwd=repo,
        env=BOB,
    )
    assert run.code == 0, run.err
    message = pygit2.Repository(str(repo)).head.peel(pygit2.Commit).message
    assert ("Glue-Override-Hold", "prod a") in parse_trailers(message)
    assert "Keeps the hold on a in prod (set by alice at " in message
    assert ("Glue-Hold", "prod a") not in parse_trailers(message)
    assert (repo / HOLDS).read_text() == held  # alice's hold, untouched
    cell = json.loads(glue("status", "-o", "json", cwd=repo).out)["services"]["a"]["prod"]
    assert cell["tag"] == "2b4d6f8" and cell["hold"]["by"] == "alice"


def test_the_holder_may_roll_back_with_hold_and_renew_their_hold(repo: Path) -> None:
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "prod", cwd=repo).code == 0
    hold_a_in_prod_by_alice(repo)
    run = glue("rollback", "--env", "prod", "--hold", "--reason", "still bad", cwd=repo, env=ALICE)
    assert run.code == 0, run.err
    cell = json.loads(glue("status", "-o", "json", cwd=repo).out)["services"]["a"]["prod"]
    assert cell["tag"] == "2b4d6f8" and cell["hold"]["reason"] == "still bad"


def test_a_second_hold_does_not_replace_another_persons_hold(repo: Path) -> None:
    hold_a_in_prod_by_alice(repo)
    before, tip = snapshot(repo), head(repo)
    for extra in ((), ("-o", "json")):
        run = glue("hold", "a", "--env", "prod", "--reason", "load test", *extra, cwd=repo, env=BOB)
        refused(run, "a is already held in prod", "by alice", "checkout 500s", "--override-hold")
        assert "another person's hold" in run.err
    assert snapshot(repo) == before and head(repo) == tip

    # The holder may change their own reason.
    run = glue("hold", "a", "--env", "prod", "--reason", "still 500s", cwd=repo, env=ALICE)
    assert run.code == 0, run.err
    run = glue(
        "hold",
        "a",
        "--env",
        "prod",
        "--reason",
        "load test",
        "--override-hold",
        cwd=repo,
        env=BOB,
    )
    assert run.code == 0, run.err
    message = pygit2.Repository(str(repo)).head.peel(pygit2.Commit).message
    assert "Replaces the hold on a in prod (set by alice at " in message
    assert "'still 500s'" in message
    assert ("Glue-Override-Hold", "prod a") in parse_trailers(message)
    hold = json.loads(glue("status", "-o", "json", cwd=repo).out)["services"]["a"]["prod"]["hold"]
    assert hold["by"] == "bob" and hold["reason"] == "load test"


def test_a_hold_on_an_unlisted_environment_is_shown_and_can_be_released(repo: Path) -> None:
    hold_a_in_prod_by_alice(repo)
    text = (
        (repo / HOLDS)
        .read_text()
        .replace(
            "rejected: {}\n",
            '  "qa":\n    "a": {by: "carol", at: "2026-01-02T03:04:05Z", reason: "qa freeze"}\n'
            "rejected: {}\n",
        )
    )
    text = text.replace('"prod":\n', '"prod":\n    "gone": {by: "dan", at: "x", reason: "old"}\n')
    (repo / HOLDS).write_text(text)
    git(repo, "commit", "-qam", "holds left behind")

    status = glue("status", cwd=repo)
    assert status.code == 0, status.err
    assert "held: a in qa by carol at 2026-01-02T03:04:05Z: 'qa freeze'" in status.out
    assert "qa is not in glue.yaml; glue unhold a --env qa removes the hold" in status.out
    assert "held: gone in prod by dan" in status.out and "gone is not in glue.yaml" in status.out
    data = json.loads(glue("status", "-o", "json", cwd=repo).out)
    assert data["unlisted_holds"]["qa"]["a"]["reason"] == "qa freeze"
    assert data["unlisted_holds"]["prod"]["gone"]["by"] == "dan"

    for service, env in (("a", "qa"), ("gone", "prod")):
        run = glue("unhold", service, "--env", env, cwd=repo)
        assert run.code == 0, run.err
        assert f"chore({env}): release the hold on {service}" in git(repo, "log", "-1")
    assert "unlisted_holds" not in json.loads(glue("status", "-o", "json", cwd=repo).out)
    assert "a is held in prod" in glue("bump-tag", "a", "5f6a7b8", "--env", "prod", cwd=repo).err
    # Holding on an unlisted environment is still refused.
    refused(glue("hold", "a", "--env", "qa", "--reason", "x", cwd=repo), "unknown environment")


# --------------------------------------------------------------------------- a damaged file

GOOD_MARK = '{by: "alice", at: "2026-01-02T03:04:05Z", reason: "freeze"}'
DAMAGED = {
    "misspelt-section": f'hold:\n  "prod":\n    "a": {GOOD_MARK}\nrejected: {{}}\n',
    "holds-null": "holds:\nrejected: {}\n",
    "holds-list": f'holds:\n  - {{"prod": {{"a": {GOOD_MARK}}}}}\nrejected: {{}}\n',
    "no-rejected": f'holds:\n  "prod":\n    "a": {GOOD_MARK}\n',
    "environment-a-list": 'holds:\n  "prod": ["a"]\nrejected: {}\n',
    "mark-a-string": 'holds:\n  "prod":\n    "a": "alice"\nrejected: {}\n',
    "mark-without-reason": 'holds:\n  "prod":\n    "a": {by: "alice", at: "t"}\nrejected: {}\n',
    "mark-unknown-key": (
        'holds:\n  "prod":\n    "a": {by: "x", at: "t", reason: "r", until: "z"}\nrejected: {}\n'
    ),
    "reason-null": (
        'holds:\n  "prod":\n    "a": {by: "alice", at: "t", reason: null}\nrejected: {}\n'
    ),
    "by-two-lines": (
        'holds:\n  "prod":\n    "a": {by: "alice\\nGlue-Hold: x", at: "t", reason: "r"}\n'
        "rejected: {}\n"
    ),
    "empty": "",
    "two-documents": f'holds: {{}}\nrejected: {{}}\n---\nholds:\n  "prod":\n    "a": {GOOD_MARK}\n',
    "duplicate-section": (
        f'holds:\n  "prod":\n    "a": {GOOD_MARK}\nrejected: {{}}\nholds: {{}}\n'
    ),
}


def rolled_back_ready(repo: Path) -> None:
    """dev has a glue change to roll back; staging can be promoted to; prod is held."""
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=repo).code == 0
    hold_a_in_prod_by_alice(repo)


COMMANDS = (
    ("bump-tag", "a", "5f6a7b8", "--env", "prod"),
    ("bump-tag", "b", "5f6a7b8", "--env", "dev"),
    ("promote", "a", "--to", "staging"),
    ("rollback", "--env", "dev"),
    ("status",),
    ("hold", "b", "--env", "dev", "--reason", "x"),
    ("unhold", "a", "--env", "prod"),
)


def every_command_refuses(repo: Path, *words: str) -> None:
    before, tip = snapshot(repo), head(repo)
    for args in COMMANDS:
        run = glue(*args, cwd=repo)
        refused(run, HOLDS, *words)
        assert snapshot(repo) == before and head(repo) == tip, args


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_holds_file_stops_every_command(repo: Path, name: str) -> None:
    rolled_back_ready(repo)
    (repo / HOLDS).write_text(DAMAGED[name])
    git(repo, "commit", "-qam", f"damage: {name}")
    every_command_refuses(repo)


@pytest.mark.parametrize("committed", [True, False])
def test_a_dangling_link_for_the_holds_file_stops_every_command(
    repo: Path, committed: bool
) -> None:
    rolled_back_ready(repo)
    (repo / HOLDS).unlink()
    (repo / HOLDS).symlink_to("holds-elsewhere.yaml")
    if committed:
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "link")
    every_command_refuses(repo, "symbolic link")


def test_a_committed_link_to_a_file_in_the_repository_stops_every_command(repo: Path) -> None:
    rolled_back_ready(repo)
    (repo / HOLDS).rename(repo / "real-holds.yaml")
    (repo / HOLDS).symlink_to("real-holds.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    every_command_refuses(repo, "symbolic link")


# --------------------------------------------------------------------------- the limits


def deep(levels: int) -> str:
    mark = "[" * levels + "]" * levels
    return f'holds:\n  "prod":\n    "a": {{by: {mark}, at: "t", reason: "r"}}\nrejected: {{}}\n'


def huge(megabytes: int) -> str:
    line = '    "s{}": {{by: "alice", at: "2026-01-02T03:04:05Z", reason: "' + "x" * 200 + '"}}\n'
    count = megabytes * 1024 * 1024 // len(line) + 1
    return 'holds:\n  "prod":\n' + "".join(line.format(i) for i in range(count)) + "rejected: {}\n"


def alias_bomb() -> str:
    return (HOSTILE / "holds-alias-bomb.yaml").read_text()


LIMITS: dict[str, tuple[Callable[[], str], str]] = {
    "alias-bomb": (alias_bomb, "alias bomb"),
    "deep": (partial(deep, 5000), "nested more than 100 levels"),
    "30-mb": (partial(huge, 30), "larger than glue's limit of 2 MiB"),
}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_holds_file_past_the_limits_of_values_files(repo: Path, name: str) -> None:
    rolled_back_ready(repo)
    make, words = LIMITS[name]
    (repo / HOLDS).write_text(make())
    before, tip = snapshot(repo), head(repo)
    for args in (COMMANDS[0], COMMANDS[4], COMMANDS[3]):
        run = glue(*args, cwd=repo)
        refused(run, HOLDS, words, "Limits in docs/config.md")
    assert snapshot(repo) == before and head(repo) == tip


# --------------------------------------------------------------------------- over --remote


def ssh_env_as_bob(server: SshGitServer) -> dict[str, str]:
    return ssh_env(server, GLUE_ACTOR="bob")


GOOD = f'holds:\n  "prod":\n    "a": {GOOD_MARK}\nrejected: {{}}\n'


def push_to(remote: BareRemote, work: Path, files: dict[str, str], links: dict[str, str]) -> None:
    """Commit ``files`` (path -> text) and ``links`` (path -> target) on the remote's
    main, as a person pushing from a clone would."""
    git(work.parent, "clone", "-q", str(remote.path), work.name)
    for path, text in files.items():
        (work / path).write_text(text)
    for path, target in links.items():
        (work / path).unlink(missing_ok=True)
        (work / path).symlink_to(target)
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "damage")
    git(work, "push", "-q", "origin", "main")


@pytest.mark.slow
@pytest.mark.ssh
@pytest.mark.parametrize(
    ("files", "links", "words"),
    # One case for each way the remote path differs: the file's structure, a link in
    # the tree, the limits. The other damaged shapes go through the same parser and are
    # covered on a checkout above; over sshd each case costs five commands.
    [
        ({HOLDS: DAMAGED["misspelt-section"]}, {}, "unknown top-level"),
        ({"real-holds.yaml": GOOD}, {HOLDS: "real-holds.yaml"}, "symbolic link"),
        ({HOLDS: alias_bomb()}, {}, "alias bomb"),
    ],
    ids=["misspelt", "link", "alias-bomb"],
)
def test_a_damaged_holds_file_stops_commands_over_remote(
    ssh_git_server: SshGitServer,
    ssh_remote: BareRemote,
    tmp_path: Path,
    files: dict[str, str],
    links: dict[str, str],
    words: str,
) -> None:
    env = ssh_env_as_bob(ssh_git_server)
    remote = ("--remote", ssh_remote.url)
    out = tmp_path / "out"
    out.mkdir()
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", *remote, cwd=out, env=env).code == 0
    held = glue("hold", "a", "--env", "prod", "--reason", "freeze", *remote, cwd=out, env=env)
    assert held.code == 0, held.err
    push_to(ssh_remote, tmp_path / "clone", files, links)
    tip = ssh_remote.head()
    for args in (
        ("bump-tag", "a", "5f6a7b8", "--env", "prod"),
        ("bump-tag", "b", "5f6a7b8", "--env", "dev"),
        ("promote", "a", "--to", "staging"),
        ("rollback", "--env", "dev"),
        ("hold", "b", "--env", "dev", "--reason", "x"),
    ):
        run = glue(*args, *remote, cwd=out, env=env)
        refused(run, HOLDS, words)
        assert ssh_remote.head() == tip, args
    assert list(out.iterdir()) == []
