"""Reading helmfile's diff output, and what glue diff reports from it."""

from __future__ import annotations

from pathlib import Path

from gitops_glue.deploy.diff import parse_diff, result_of
from gitops_glue.errors import ExitCode
from gitops_glue.integrations.ci import write_step_summary

OUTPUT = """\
Comparing release=a, chart=charts/app, namespace=stg
\x1b[33mstg, a, Deployment (apps) has changed:\x1b[0m
  # Source: app/templates/deployment.yaml
-         image: "registry.example.com/a:3f9c2e1"
+         image: "registry.example.com/a:4e5f6a7"
Comparing release=b, chart=charts/app, namespace=stg
Comparing release=c, chart=charts/app, namespace=stg
stg, c, Service (v1) has been added:
stg, c-old, ConfigMap (v1) has been removed:
"""


def test_changes_are_grouped_by_the_release_being_compared() -> None:
    changes, unchanged = parse_diff(OUTPUT, ["a", "b", "c"])
    assert changes == {
        "a": ["Deployment (apps) stg/a has changed"],
        "c": ["Service (v1) stg/c has been added", "ConfigMap (v1) stg/c-old has been removed"],
    }
    assert unchanged == ["b"]


def test_without_comparing_lines_the_resource_name_is_the_release() -> None:
    changes, unchanged = parse_diff("ns, web, Secret has changed:\n", ["web", "db"])
    assert changes == {"web": ["Secret ns/web has changed"]}
    assert unchanged == ["db"]


def test_exit_codes_and_changes_helmfile_did_not_list() -> None:
    assert result_of("stg", 0, "", ["a"]).exit_code is ExitCode.OK
    result = result_of("stg", 2, "something changed\n", ["a"])
    assert result.exit_code is ExitCode.CHANGES
    assert result.changes == {"(unknown)": ["helmfile reported changes it did not list"]}


def test_text_json_and_markdown_summary() -> None:
    result = result_of("stg", 2, OUTPUT, ["a", "b", "c"])
    assert "\x1b" not in result.output
    assert result.text().endswith(
        "a: would change (1 resource(s))\nc: would change (2 resource(s))\nb: no changes"
    )
    assert result.to_json() == {
        "environment": "stg",
        "changed": True,
        "changes": result.changes,
        "unchanged": ["b"],
    }
    summary = result.summary_markdown()
    assert summary.startswith("### glue diff: stg\n\n- **a** would change:\n")
    assert "- unchanged: b" in summary and "```diff\n" in summary
    assert result_of("stg", 0, "", ["a"]).summary_markdown() == (
        "### glue diff: stg\n\nNo changes.\n- unchanged: a\n"
    )


def test_the_summary_goes_to_the_github_step_summary_and_the_summary_file(
    tmp_path: Path,
) -> None:
    step, extra = tmp_path / "step.md", tmp_path / "summary.md"
    step.write_text("earlier step\n")
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)}
    assert write_step_summary("# s\n", also=str(extra), env=github) == [str(step), str(extra)]
    assert step.read_text() == "earlier step\n# s\n"  # appended
    assert extra.read_text() == "# s\n"
    # Outside GitHub Actions the variable is ignored.
    outside = {"GITHUB_STEP_SUMMARY": str(step)}
    assert write_step_summary("# t\n", env=outside) == []
    assert step.read_text() == "earlier step\n# s\n"
