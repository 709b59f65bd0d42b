"""Freeze windows as a user meets them: bump-tag, promote, release, auto-release and apply
refused in a window (exit 2, the window and its end named, nothing written), let through
by --override-freeze with the override in the commit; rollback always goes ahead; glue
status shows the freeze. The clock is set with GLUE_NOW."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

from gitops_glue.repo.commit import glue_trailers, parse_trailers
from tests.support.helpers import GITLAB_CI, git, glue, snapshot
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env

PROD = "    namespace: example-prod  # where glue keeps its deploy record and lock\n"
FREEZE = (
    "    freeze:\n"
    "      - every: friday 18:00 - monday 06:00\n"
    "        timezone: Europe/Berlin\n"
    "        reason: no deploys over the weekend\n"
    "      - {from: 2026-12-23, to: 2027-01-02T08:00, timezone: Europe/Berlin, reason: holidays}\n"
)
AUTO = "auto_release:\n  - {branch: main, to: prod}\n"
#: Saturday before the spring change (Sunday 2026-03-29): the weekend ends Monday 06:00 CEST.
SATURDAY = {"GLUE_NOW": "2026-03-28T10:00:00+01:00"}
UNTIL = "until Mon 2026-03-30 06:00 CEST (04:00 UTC)"
WEEKEND = (
    "prod is frozen: 'no deploys over the weekend' (friday 18:00 - monday 06:00 Europe/Berlin)"
)
#: A CI job of user dev1 (GitLab).
CI_DEV1 = {**GITLAB_CI, **SATURDAY}
OVERRIDE = {"GLUE_OVERRIDE_FREEZE": "1", "GLUE_FREEZE_REASON": "hotfix for INC-42"}


def frozen_text(text: str) -> str:
    assert PROD in text
    return text.replace(PROD, PROD + FREEZE)


@pytest.fixture
def frozen(repo: Path) -> Path:
    """The example repository with freeze windows on prod and auto-release to prod."""
    config = repo / "glue.yaml"
    config.write_text(frozen_text(config.read_text()) + AUTO)
    git(repo, "commit", "-qam", "freeze windows on prod")
    return repo


def head(repo: Path) -> pygit2.Commit:
    return pygit2.Repository(str(repo)).head.peel(pygit2.Commit)


def prod_tag(repo: Path, service: str = "a") -> str:
    data = json.loads(glue("status", "-o", "json", cwd=repo).out)
    return str(data["services"][service]["prod"]["tag"])


CHANGES = {
    "bump-tag": ("bump-tag", "a", "v1.2.4", "--env", "prod"),
    "auto-release": ("bump-tag", "a", "v1.2.4", "--env", "prod", "--if-auto-release", "main"),
    "promote": ("promote", "a", "--to", "prod"),
    "release": ("release", "a", "--to", "prod", "--tag", "v1.2.5"),
}


@pytest.mark.parametrize("command", sorted(CHANGES))
def test_a_change_to_prod_in_a_window_is_refused_and_goes_through_with_the_override(
    frozen: Path, command: str
) -> None:
    args = CHANGES[command]
    before, tip = snapshot(frozen), head(frozen).id
    run = glue(*args, cwd=frozen, env=CI_DEV1)
    assert run.code == 2, run.err
    assert f"{WEEKEND} {UNTIL}: not changing a 2b4d6f8 -> " in run.err
    assert "nothing was changed" in run.err and "--override-freeze --reason" in run.err
    assert "the clock is set by GLUE_NOW: now is 2026-03-28T09:00:00Z" in run.err
    assert snapshot(frozen) == before and head(frozen).id == tip

    # The override needs a reason.
    bare = glue(*args, "--override-freeze", cwd=frozen, env=CI_DEV1)
    assert bare.code == 2 and "--override-freeze needs --reason" in bare.err
    assert head(frozen).id == tip

    done = glue(*args, cwd=frozen, env={**CI_DEV1, **OVERRIDE})
    assert done.code == 0, done.err
    assert f"overriding the freeze: {WEEKEND} {UNTIL}" in done.err
    commit = head(frozen)
    assert commit.parents[0].id == tip
    trailers = glue_trailers(commit.message) or []
    assert ("Glue-Freeze-Override", "hotfix for INC-42") in trailers
    assert ("Glue-Freeze-Override-By", "dev1") in trailers
    assert f"Overrides the freeze: {WEEKEND} {UNTIL}\n" in commit.message
    assert "Freeze override by dev1: hotfix for INC-42\n" in commit.message
    assert "the clock is set by GLUE_NOW: now is 2026-03-28T09:00:00Z\n" in commit.message
    assert prod_tag(frozen) != "2b4d6f8"


def test_outside_a_window_and_in_other_environments_nothing_is_refused(frozen: Path) -> None:
    # Friday 17:59 in Berlin: the window opens at 18:00.
    friday = {"GLUE_NOW": "2026-03-27T17:59:00+01:00"}
    run = glue("bump-tag", "a", "v1.2.4", "--env", "prod", cwd=frozen, env=friday)
    assert run.code == 0, run.err
    assert "Glue-Freeze-Override" not in head(frozen).message
    # In the window, dev is not frozen.
    run = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=frozen, env=SATURDAY)
    assert run.code == 0, run.err
    # Monday 06:00 CEST, after the change to summer time: the window is over.
    monday = {"GLUE_NOW": "2026-03-30T06:00:00+02:00"}
    run = glue("bump-tag", "a", "v1.2.5", "--env", "prod", cwd=frozen, env=monday)
    assert run.code == 0, run.err
    # And 05:59 CEST (03:59 UTC) was still in it.
    early = {"GLUE_NOW": "2026-03-30T03:59:00Z"}
    run = glue("bump-tag", "a", "v1.2.6", "--env", "prod", cwd=frozen, env=early)
    assert run.code == 2 and UNTIL in run.err


def test_the_holidays_range_names_its_end_in_berlin_and_utc(frozen: Path) -> None:
    holidays = "prod is frozen: 'holidays' (2026-12-23 00:00 - 2027-01-02 08:00 Europe/Berlin)"
    # Tuesday 2026-12-29: the holidays end on Saturday 2027-01-02 08:00, in the weekend
    # window that began on Friday 18:00: the freeze lasts until Monday 06:00.
    tuesday = {"GLUE_NOW": "2026-12-29T10:00:00+01:00"}
    run = glue("promote", "a", "--to", "prod", cwd=frozen, env=tuesday)
    assert run.code == 2
    assert (
        f"{holidays} until Mon 2027-01-04 06:00 CET (05:00 UTC) "
        "(then 'no deploys over the weekend'): not changing a 2b4d6f8 -> 3f9c2e1 in prod"
    ) in run.err


def test_rollback_goes_ahead_in_a_window_and_says_so(frozen: Path) -> None:
    friday = {"GLUE_NOW": "2026-03-27T12:00:00+01:00"}
    assert glue("bump-tag", "a", "v1.2.4", "--env", "prod", cwd=frozen, env=friday).code == 0
    bumped = head(frozen).id
    run = glue("rollback", "--env", "prod", cwd=frozen, env=SATURDAY)
    assert run.code == 0, run.err
    assert f"glue: note: {WEEKEND} {UNTIL}; rollback goes ahead" in run.err
    commit = head(frozen)
    assert commit.parents[0].id == bumped
    assert commit.message.startswith("revert(prod): roll back feat(prod): update a to v1.2.4\n")
    assert f"Rolls back while {WEEKEND} {UNTIL}\n" in commit.message
    # Still a glue commit: its trailers are the message's last paragraph, as glue writes
    # them (what a later rollback, status history and apply read).
    assert ("Glue-Action", "rollback") in (glue_trailers(commit.message) or [])
    assert prod_tag(frozen) == "2b4d6f8"


def test_apply_in_a_window_is_refused_before_it_touches_a_cluster(frozen: Path) -> None:
    # No cluster, no helmfile: the refusal comes first.
    run = glue("apply", "--env", "prod", cwd=frozen, env=SATURDAY)
    assert run.code == 2, run.err
    assert f"{WEEKEND} {UNTIL}: not deploying; nothing was deployed" in run.err
    assert "a checkout whose HEAD is glue rollback's commit of prod deploys" in run.err
    bare = glue("apply", "--env", "prod", "--override-freeze", cwd=frozen, env=SATURDAY)
    assert bare.code == 2 and "--override-freeze needs --reason" in bare.err


def test_status_shows_the_freeze_and_the_next_window(frozen: Path) -> None:
    run = glue("status", cwd=frozen, env=SATURDAY)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert f"{WEEKEND} {UNTIL}" in lines
    assert (
        "prod: next freeze 'no deploys over the weekend' (friday 18:00 - monday 06:00 "
        "Europe/Berlin) from Fri 2026-04-03 18:00 CEST (16:00 UTC) to Mon 2026-04-06 06:00 "
        "CEST (04:00 UTC)"
    ) in lines
    assert not any(line.startswith(("dev", "staging")) for line in lines)
    data = json.loads(glue("status", "-o", "json", cwd=frozen, env=SATURDAY).out)
    assert list(data["freeze"]) == ["prod"]
    prod = data["freeze"]["prod"]
    assert prod["frozen"] is True and prod["until"] == "2026-03-30T04:00:00Z"
    assert [w["reason"] for w in prod["windows"]] == ["no deploys over the weekend"]
    assert prod["next"]["start"] == "2026-04-03T16:00:00Z"
    # Before the holidays: not frozen, the holidays next.
    data = json.loads(
        glue("status", "-o", "json", cwd=frozen, env={"GLUE_NOW": "2026-12-22T12:00:00Z"}).out
    )
    prod = data["freeze"]["prod"]
    assert prod["frozen"] is False and prod["until"] is None and prod["windows"] == []
    assert prod["next"]["reason"] == "holidays" and prod["next"]["start"] == "2026-12-22T23:00:00Z"


def test_a_bad_glue_now_is_refused(frozen: Path) -> None:
    run = glue("bump-tag", "a", "v1.2.4", "--env", "prod", cwd=frozen, env={"GLUE_NOW": "x"})
    assert run.code == 2 and "GLUE_NOW='x' is not an ISO 8601 time" in run.err


@pytest.mark.ssh
def test_remote_bumps_read_the_freeze_of_the_fetched_glue_yaml(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    config = ssh_remote.show("main", "glue.yaml")
    tip = ssh_remote.commit({"glue.yaml": frozen_text(config)}, "freeze windows on prod")
    env = ssh_env(ssh_git_server, **CI_DEV1)
    args = ("bump-tag", "a", "v1.2.4", "--env", "prod", "--remote", ssh_remote.url)
    run = glue(*args, cwd=tmp_path, env=env)
    assert run.code == 2, run.err
    assert f"{WEEKEND} {UNTIL}" in run.err
    assert ssh_remote.head() == tip
    done = glue(*args, cwd=tmp_path, env={**env, **OVERRIDE})
    assert done.code == 0, done.err
    log = ssh_remote.log()
    assert log[1].sha == tip
    assert ("Glue-Freeze-Override-By", "dev1") in parse_trailers(log[0].message)
