"""`glue init` and `glue check` on deployment repos laid out three ways, and broken ones.

helmfile (`build`, `list`, `write-values`) reads no cluster, but it must be installed:
these tests take helm and helmfile from the testbed's tools cache and skip, saying
so, when it has not been built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from tests.support.helpers import ROOT, commit_all, copy_example, git, glue, refuses_bump
from tests.support.helpers import TESTBED_BIN as BIN


@pytest.fixture
def tools() -> dict[str, str]:
    """PATH with the testbed's helm and helmfile first (skips when they are not built)."""
    if not (BIN / "helmfile").exists() or not (BIN / "helm").exists():
        pytest.skip(f"helmfile/helm not built in {BIN} (scripts/testbed install)")
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        # the binary itself: glue runs helmfile with nothing but helm on PATH, where the
        # testbed's `helm` wrapper script would not find helm3
        "GLUE_HELM": str(BIN / "helm3"),
        "HELMFILE_UPGRADE_NOTICE_DISABLED": "1",
    }


def example_layout(dest: Path) -> Path:
    copy_example(dest)
    (dest / "glue.yaml").unlink()
    return dest


def bases_layout(dest: Path) -> Path:
    """environments.yaml base, a nested helmfile, a flat imageTags map, `production`."""
    (dest / "values").mkdir(parents=True)
    (dest / "apps").mkdir()
    shutil.copytree(ROOT / "charts", dest / "charts")
    (dest / "environments.yaml").write_text(
        "environments:\n"
        "  test:\n    values:\n      - values/common.yaml\n      - values/test.yaml\n"
        "  production:\n    values:\n      - values/common.yaml\n      - values/production.yaml\n"
    )
    (dest / "helmfile.yaml.gotmpl").write_text(
        "bases:\n  - environments.yaml\n---\nhelmfiles:\n  - path: apps/helmfile.yaml.gotmpl\n"
        "    values:\n      - {{ toYaml .Values | nindent 8 }}\n"
    )
    (dest / "apps" / "helmfile.yaml.gotmpl").write_text(
        "releases:\n"
        '{{- range $svc := list "api" "worker" }}\n'
        "  - name: {{ $svc }}\n    namespace: shop\n    chart: ../charts/app\n"
        "    values:\n      - image:\n          repository: registry.example.com/{{ $svc }}\n"
        "          tag: {{ index $.Values.imageTags $svc | quote }}\n"
        "{{- end }}\n"
    )
    (dest / "values" / "common.yaml").write_text('imageTags:\n  api: "1.0.0"\n  worker: "1.0.0"\n')
    (dest / "values" / "test.yaml").write_text('imageTags:\n  api: "1.1.0"\n')
    (dest / "values" / "production.yaml").write_text("# production overrides\n{}\n")
    return dest


def context_layout(dest: Path) -> Path:
    """A plain helmfile.yaml whose environments name their kubeContext."""
    (dest / "env").mkdir(parents=True)
    shutil.copytree(ROOT / "charts", dest / "charts")
    (dest / "helmfile.yaml").write_text(
        "environments:\n"
        "  staging:\n    kubeContext: cluster-staging\n    values: [env/staging.yaml]\n"
        "  prod:\n    kubeContext: cluster-prod\n    values: [env/prod.yaml]\n"
        "---\nreleases:\n  - name: web\n    namespace: web\n    chart: ./charts/app\n"
        "    values:\n      - image:\n          tag: {{ .Values.web.image.tag | quote }}\n"
    )
    (dest / "env" / "staging.yaml").write_text('web:\n  image:\n    tag: "2.0.0"\n')
    (dest / "env" / "prod.yaml").write_text('web:\n  image:\n    tag: "1.9.0"\n')
    return dest


def deployed_tags(repo: Path, env: str, tools: dict[str, str]) -> dict[str, str]:
    """What helmfile says each release gets: `helmfile -e ENV write-values`."""
    out = repo.parent / f"written-{env}"
    subprocess.run(
        [
            "helmfile", "-e", env, "write-values",
            "--output-file-template", f"{out}/{{{{ .Release.Name }}}}.yaml",
        ],
        cwd=repo, env={**os.environ, **tools}, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return {p.stem: str(yaml.safe_load(p.read_text())["image"]["tag"]) for p in out.iterdir()}


@pytest.mark.parametrize(
    ("layout", "envs", "services"),
    [
        (example_layout, ["dev", "staging", "prod"], {"a": "a.image.tag", "b": "b.image.tag"}),
        (
            bases_layout,
            ["test", "production"],
            {"api": "imageTags.api", "worker": "imageTags.worker"},
        ),
        (context_layout, ["staging", "prod"], {"web": "web.image.tag"}),
    ],
)
def test_init_then_check_and_status_match_helmfile(
    tmp_path: Path,
    tools: dict[str, str],
    layout: Callable[[Path], Path],
    envs: list[str],
    services: dict[str, str],
) -> None:
    repo = commit_all(layout(tmp_path / "repo"))
    run = glue("-C", str(repo), "init", env=tools)
    assert run.code == 0, run.err
    config = yaml.safe_load((repo / "glue.yaml").read_text())
    assert [e["name"] for e in config["environments"]] == envs
    assert {s: v["tag_key"] for s, v in config["services"].items()} == services

    check = glue("-C", str(repo), "check", env=tools)
    assert check.code == 0, check.err
    assert check.out.startswith("ok: glue.yaml fits the repository")

    status = json.loads(glue("-C", str(repo), "status", "-o", "json", env=tools).out)
    for env in envs:
        got = {s: status["services"][s][env]["tag"] for s in services}
        assert got == deployed_tags(repo, env, tools)


def test_init_writes_helmfile_kube_context_and_releases(
    tmp_path: Path, tools: dict[str, str]
) -> None:
    repo = context_layout(tmp_path / "repo")
    glue("-C", str(repo), "init", env=tools)
    config = yaml.safe_load((repo / "glue.yaml").read_text())
    assert [e.get("kube_context") for e in config["environments"]] == [
        "cluster-staging",
        "cluster-prod",
    ]
    assert "# releases: web (web)" in (repo / "glue.yaml").read_text()


def test_init_dry_run_prints_and_never_overwrites(tmp_path: Path, tools: dict[str, str]) -> None:
    repo = example_layout(tmp_path / "repo")
    dry = glue("-C", str(repo), "init", "--dry-run", env=tools)
    assert dry.code == 0
    assert "tag_key: a.image.tag" in dry.out
    assert not (repo / "glue.yaml").exists()

    (repo / "glue.yaml").write_text("# mine\n")
    again = glue("-C", str(repo), "init", "--yes", env=tools)
    assert again.code == 2
    assert again.err.startswith("glue: error: ") and "glue.yaml already exists" in again.err
    assert (repo / "glue.yaml").read_text() == "# mine\n"


def test_init_says_what_it_could_not_infer(tmp_path: Path, tools: dict[str, str]) -> None:
    repo = context_layout(tmp_path / "repo")
    (repo / "env" / "prod.yaml").write_text("replicas: 2\n")
    (repo / "env" / "staging.yaml").write_text("replicas: 1\n")
    run = glue("-C", str(repo), "init", env=tools)
    assert run.code == 0
    assert "no image tag keys found" in run.err
    assert "# - no image tag keys found" in (repo / "glue.yaml").read_text()


# --------------------------------------------------------------------------- broken repos


def adopted_example(tmp_path: Path, tools: dict[str, str]) -> Path:
    repo = example_layout(tmp_path / "repo")
    assert glue("-C", str(repo), "init", env=tools).code == 0
    return commit_all(repo)


def test_missing_values_file(tmp_path: Path, tools: dict[str, str]) -> None:
    repo = adopted_example(tmp_path, tools)
    git(repo, "rm", "-q", "environments/staging.yaml")
    git(repo, "commit", "-q", "-m", "lose a file")
    check = glue("-C", str(repo), "check", env=tools)
    assert check.code == 2
    assert "values file environments/staging.yaml does not exist" in check.err
    assert "glue.yaml:" in check.err  # file and line
    assert "environments/staging.yaml" in refuses_bump(
        repo, tools, "a", "1.2.3", "--env", "staging"
    )


def test_tag_key_set_nowhere(tmp_path: Path, tools: dict[str, str]) -> None:
    repo = adopted_example(tmp_path, tools)
    text = (
        (repo / "glue.yaml").read_text().replace("tag_key: b.image.tag", "tag_key: b.image.version")
    )
    (repo / "glue.yaml").write_text(text)
    git(repo, "commit", "-qam", "typo")
    check = glue("-C", str(repo), "check", "--no-helmfile", env=tools)
    assert check.code == 2
    assert "tag key b.image.version is set in none of its values files in environment 'dev'" in (
        check.err
    )
    status = glue("-C", str(repo), "status", env=tools)
    assert "- (no b.image.version)" in status.out
    refuses_bump(repo, tools, "b", "1.2.3", "--env", "dev")


def test_values_order_differs_from_helmfile(tmp_path: Path, tools: dict[str, str]) -> None:
    repo = adopted_example(tmp_path, tools)
    text = (
        (repo / "glue.yaml")
        .read_text()
        .replace(
            "values: [environments/base.yaml, environments/prod.yaml]",
            "values: [environments/prod.yaml, environments/base.yaml]",
        )
    )
    (repo / "glue.yaml").write_text(text)
    git(repo, "commit", "-qam", "wrong order")
    check = glue("-C", str(repo), "check", env=tools)
    assert check.code == 2
    assert "but helmfile merges [environments/base.yaml, environments/prod.yaml]" in check.err
    # base.yaml is shared with the other environments: whatever the order, the bump goes
    # to prod's own file, which is where helmfile takes a.image.tag from.
    bump = glue("-C", str(repo), "bump-tag", "a", "1.2.3", "--env", "prod", env=tools)
    assert bump.code == 0, bump.err
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "environments/prod.yaml"
    ]
    assert deployed_tags(repo, "prod", tools)["a"] == "1.2.3"


def test_release_not_in_helmfile(tmp_path: Path, tools: dict[str, str]) -> None:
    repo = adopted_example(tmp_path, tools)
    text = (
        (repo / "glue.yaml")
        .read_text()
        .replace("    tag_key: b.image.tag\n", "    tag_key: b.image.tag\n    release: b-old\n")
    )
    (repo / "glue.yaml").write_text(text)
    check = glue("-C", str(repo), "check", env=tools)
    assert check.code == 2
    assert "release 'b-old' is not deployed by the helmfile in environment 'dev'" in check.err
    payload = json.loads(glue("-C", str(repo), "check", "-o", "json", env=tools).out)
    assert payload["ok"] is False and payload["helmfile_checked"] is True
