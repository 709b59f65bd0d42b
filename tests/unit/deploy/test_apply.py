"""What glue apply reports, and the checks it makes before touching a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue.cluster.helm_storage import Recovery
from gitops_glue.deploy.apply import ApplyResult
from gitops_glue.deploy.changed import compare
from gitops_glue.deploy.choices import Recover
from gitops_glue.deploy.diff import result_of
from tests.support.helpers import example_repo, glue


def test_a_deploy_result_in_text_and_json() -> None:
    recovery = Recovery("a", "ns", 2, "pending-upgrade", "rollback", 1, "lock held")
    result = ApplyResult("staging", ["a", "b"], [recovery], True, "me (pid 1)")
    assert result.text() == (
        "deployed staging: a, b\n  recovered ns/a: revision 2 was pending-upgrade (lock held); "
        "rollback to revision 1"
    )
    data = result.to_json()
    assert (data["releases"], data["changed"], data["lock_holder"]) == (
        ["a", "b"],
        True,
        "me (pid 1)",
    )
    assert (
        ApplyResult("staging", ["a"], [], False, "me").text() == "deployed staging: a (no changes)"
    )


def test_changed_only_with_nothing_changed_deploys_nothing() -> None:
    same = {"stg/a": ("a", "1")}
    selection = compare("staging", same, same, "abc", "record")
    result = ApplyResult("staging", [], [], False, "me", selection=selection)
    assert result.nothing_changed
    assert result.text() == "deployed staging: nothing changed since abc (--changed-only)"
    assert result.to_json()["releases"] == [] and "changed_only" in result.to_json()


def test_a_dry_run_reports_the_diff() -> None:
    result = ApplyResult("staging", [], [], False, "me")
    result.diff = result_of("staging", 0, "", ["a"])
    assert result.text() == "a: no changes"
    assert result.to_json()["unchanged"] == ["a"]


def test_recover_is_a_choice(tmp_path: Path) -> None:
    assert [r.value for r in Recover] == ["auto", "never"]
    repo = example_repo(tmp_path / "deploy")
    r = glue("apply", "--env", "staging", "--recover", "sometimes", cwd=repo)
    assert r.code == 2 and "sometimes" in r.err


@pytest.mark.parametrize("command", [["apply", "--changed-only", "-l", "name=a"]])
def test_changed_only_refuses_a_selector(tmp_path: Path, command: list[str]) -> None:
    repo = example_repo(tmp_path / "deploy")
    r = glue(*command, "--env", "staging", cwd=repo)
    assert r.code == 2
    assert "glue: error: --changed-only picks the releases itself: drop --selector" in r.err
