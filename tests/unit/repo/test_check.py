"""The bump guard and the file checks of `glue check`, on file texts in memory."""

from __future__ import annotations

import pytest

from gitops_glue.config import Environment, parse_config
from gitops_glue.errors import UsageError
from gitops_glue.repo import check, envfiles

HELMFILE = "environments:\n  prod:\n    values:\n      - base.yaml\n      - prod.yaml\n"


def reader(files: dict[str, str]) -> envfiles.Reader:
    return files.get


def test_creating_a_key_that_a_later_file_sets_is_refused() -> None:
    files = {"helmfile.yaml": HELMFILE, "base.yaml": "x: 1\n", "prod.yaml": "a:\n  tag: '1'\n"}
    env = Environment(name="prod", values=["prod.yaml", "base.yaml"])
    with pytest.raises(
        UsageError, match=r"merges prod.yaml after it, which sets it \(prod.yaml:2\)"
    ):
        check.refuse_overridden_key(reader(files), env, "a.tag", "base.yaml")


def test_existing_key_or_last_file_is_allowed() -> None:
    files = {"helmfile.yaml": HELMFILE, "base.yaml": "a:\n  tag: '1'\n", "prod.yaml": "{}\n"}
    env = Environment(name="prod", values=["base.yaml", "prod.yaml"])
    check.refuse_overridden_key(reader(files), env, "a.tag", "prod.yaml")  # last: fine
    check.refuse_overridden_key(reader(files), env, "a.tag", "base.yaml")  # already set


def test_file_problems_name_file_and_line() -> None:
    text = (
        "environments:\n  - name: dev\n    values: [dev.yaml, gone.yaml]\n"
        "services:\n  a:\n    tag_key: a.image.tag\n"
    )
    config = parse_config(text)
    found = check.file_problems(config, reader({"dev.yaml": "b: 1\n"}), "glue.yaml", text)
    assert [p.text() for p in found] == [
        "glue.yaml:2: environment 'dev': values file gone.yaml does not exist",
        "glue.yaml:5: service 'a': tag key a.image.tag is set in none of environment 'dev'"
        "'s values files (dev.yaml)",
    ]


def test_a_parent_of_the_tag_key_that_is_a_single_value_is_a_problem_not_a_crash() -> None:
    from gitops_glue.config import parse_config
    from gitops_glue.repo.check import file_problems

    config = parse_config(
        "version: 1\nenvironments:\n  - name: dev\n    values: [dev.yaml]\n"
        "services:\n  a:\n    tag_key: a.image.tag\n"
    )
    files = {"dev.yaml": "a:\n  image: null\n"}
    problems = file_problems(config, files.get, "glue.yaml")
    assert len(problems) == 1
    assert problems[0].text().startswith("glue.yaml: environment 'dev': ")
    assert "a.image" in problems[0].message and "tag" in problems[0].message
