"""The file checks of `glue check`, on file texts in memory."""

from __future__ import annotations

from gitops_glue.config import parse_config
from gitops_glue.repo import check, versions


def reader(files: dict[str, str]) -> versions.Reader:
    return files.get


def test_file_problems_name_file_and_line() -> None:
    text = (
        "environments:\n  - name: dev\n    values: [dev.yaml, gone.yaml]\n"
        "services:\n  a:\n    tag_key: a.image.tag\n"
    )
    config = parse_config(text)
    found = check.file_problems(config, reader({"dev.yaml": "b: 1\n"}), "glue.yaml", text)
    assert [p.text() for p in found] == [
        "glue.yaml:2: environment 'dev': values file gone.yaml does not exist",
        "glue.yaml:5: service 'a': tag key a.image.tag is set in none of its values files in "
        "environment 'dev' (dev.yaml)",
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
