"""Errors read the same everywhere: one ``glue: error:`` line (and a hint), the exit
code ``glue --help`` documents, patterns printed as glue.yaml writes them.

In process (see conftest); fake helm/helmfile binaries are small shell scripts.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support.helpers import git
from tests.unit.cli.conftest import Glue


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "message", "command"),
    [
        (["status", "--bogus"], "No such option: --bogus", "glue status"),
        (["bump-tag"], "Missing", "glue bump-tag"),  # argument or --env, whichever click sees
        (["get", "a.yaml", "a", "extra", "more"], "unexpected extra argument", "glue get"),
        (["status", "-o", "xml"], "'xml' is not one of 'text', 'json'", "glue status"),
        (["no-such-command"], "No such command 'no-such-command'", "glue"),
        (
            ["should-release", "--source-branch", "main"],
            "Missing option '--env'",
            "glue should-release",
        ),
    ],
)
def test_click_usage_errors_are_one_glue_error_line_with_a_hint(
    glue_in_process: Glue, repo: Path, args: list[str], message: str, command: str
) -> None:
    run = glue_in_process(*args, cwd=repo)
    assert run.code == 2, run.err
    first, *rest = _error_lines(run.err)
    assert first.startswith("glue: error: ") and message in first, run.err
    assert len(rest) == 1 and rest[0].startswith("  hint: see " + command), run.err
    assert rest[0].endswith(" --help")
    assert "Usage:" not in run.err and "Error:" not in run.err and run.out == ""


def test_glue_alone_still_shows_the_help(glue_in_process: Glue) -> None:
    run = glue_in_process()
    assert run.code == 2
    assert "Usage: glue [OPTIONS] COMMAND" in run.out + run.err
    assert "glue: error:" not in run.err


def test_help_documents_the_exit_codes_the_tool_errors_use(glue_in_process: Glue) -> None:
    assert "1 operation failed, 2 bad input or usage" in glue_in_process("--help").out


def _script(path: Path, text: str) -> Path:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _assert_names_supported_versions(err: str) -> None:
    assert "Helm 3.x" in err and "Helm 4.x with helmfile >= 1.0" in err, err


def test_a_missing_helm_is_an_operation_failure_naming_the_supported_versions(
    glue_in_process: Glue, repo: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "helm"
    run = glue_in_process("diff", "--env", "dev", cwd=repo, env={"GLUE_HELM": str(missing)})
    assert run.code == 1, run.err
    assert _error_lines(run.err)[0] == f"glue: error: {missing} not found"
    _assert_names_supported_versions(run.err)


def test_a_missing_helmfile_is_an_operation_failure(
    glue_in_process: Glue, repo: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "helmfile"
    helm = _script(tmp_path / "helm", 'echo "v3.16.1"\n')
    run = glue_in_process(
        "changed",
        "--env",
        "dev",
        "--since",
        "HEAD",
        cwd=repo,
        env={"GLUE_HELMFILE": str(missing), "GLUE_HELM": str(helm)},
    )
    assert run.code == 1, run.err
    assert _error_lines(run.err)[0] == f"glue: error: {missing} not found"
    _assert_names_supported_versions(run.err)


@pytest.mark.parametrize(
    ("helm_version", "helmfile_version", "message"),
    [
        ("v2.17.0", "0.169.2", "is Helm 2"),
        ("v4.0.0", "0.169.2", "helmfile 0.169.2 cannot drive Helm 4"),
        ("garbage", "1.1.0", "cannot tell the version of"),
    ],
)
def test_unsupported_tool_versions_are_operation_failures(
    glue_in_process: Glue,
    repo: Path,
    tmp_path: Path,
    helm_version: str,
    helmfile_version: str,
    message: str,
) -> None:
    helm = _script(tmp_path / "helm", f'echo "{helm_version}"\n')
    helmfile = _script(tmp_path / "helmfile", f'echo "helmfile version v{helmfile_version}"\n')
    run = glue_in_process(
        "diff",
        "--env",
        "dev",
        cwd=repo,
        env={"GLUE_HELM": str(helm), "GLUE_HELMFILE": str(helmfile)},
    )
    assert run.code == 1, run.err
    assert run.err.startswith("glue: error: ") and message in run.err, run.err
    _assert_names_supported_versions(run.err)


def test_a_refused_tag_prints_the_policy_as_written_in_glue_yaml(
    glue_in_process: Glue, repo: Path
) -> None:
    written = r"^v?[0-9]+\.[0-9]+\.[0-9]+$|^[0-9a-f]{7,40}$"
    assert f"allow: '{written}'" in (repo / "glue.yaml").read_text()
    run = glue_in_process("bump-tag", "a", "v1.2", "--env", "prod", cwd=repo)
    assert run.code == 2, run.err
    assert f"does not match the policy '{written}'" in run.err
    assert "\\\\" not in run.err  # no doubled backslashes
    assert git(repo, "status", "--porcelain") == ""


def test_changed_without_a_cluster_points_at_since(
    glue_in_process: Glue, repo: Path, tmp_path: Path
) -> None:
    run = glue_in_process(
        "changed",
        "--env",
        "dev",
        cwd=repo,
        env={"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": ""},
    )
    assert run.code == 2, run.err
    first, *rest = _error_lines(run.err)
    assert first.startswith("glue: error: no usable Kubernetes configuration")
    assert len(rest) == 1 and "--since REV" in rest[0], run.err
