"""Which cluster an environment lives on: glue.yaml, then helmfile's kubeContext."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gitops_glue.cluster import context
from gitops_glue.config import load_config
from gitops_glue.tools import Tools

# `helmfile -e prod build` of a helmfile with per-environment kubeContext, as
# helmfile 0.166.0 prints it (helmfile v1.8.0 prints the same keys, indented).
BUILD_OUTPUT = """---
#  Source: /tmp/hfk/helmfile.yaml

filepath: helmfile.yaml
helmBinary: helm
kustomizeBinary: kustomize
environments:
  prod:
    values:
    - env/prod.yaml
    kubeContext: ctx-b
  staging:
    values:
    - env/staging.yaml
    kubeContext: ctx-a
releases:
- chart: ./chart
  chartPath: chart
  name: a
  namespace: ns1
templates: {}
renderedvalues:
  x: 2
"""

GLUE_YAML = """\
environments:
  - name: staging
    values: [env/staging.yaml]
  - name: prod
    values: [env/prod.yaml]
    kube_context: prod-admin
    kubeconfig: kube/prod.yaml
services:
  a:
    tag_key: a.image.tag
"""


def _repo(tmp_path: Path, helmfile_script: str | None) -> Path:
    (tmp_path / "glue.yaml").write_text(GLUE_YAML)
    if helmfile_script is not None:
        fake = tmp_path / "bin" / "helmfile"
        fake.parent.mkdir()
        fake.write_text(helmfile_script)
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def test_without_helmfile_there_is_no_default_context(tmp_path: Path) -> None:
    repo = _repo(tmp_path, None)
    tools = Tools(helmfile=str(repo / "bin" / "no-such-helmfile"), helm="helm")
    ref = context.for_environment(load_config(repo), "staging", tools=tools)
    assert (ref.context, ref.kubeconfig, ref.args) == (None, None, ())
    assert "KUBECONFIG" not in ref.tool_env({})


def test_a_helmfile_that_cannot_render_gives_no_default(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "#!/bin/sh\necho 'in ./helmfile.yaml: boom' >&2\nexit 1\n")
    tools = Tools(helmfile=str(repo / "bin" / "helmfile"), helm="helm")
    assert context.for_environment(load_config(repo), "staging", tools=tools).context is None


def test_kubeconfig_in_glue_yaml_expands_home_and_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _repo(tmp_path, None)
    text = (repo / "glue.yaml").read_text().replace("kube/prod.yaml", "$PROD_KUBE/config")
    (repo / "glue.yaml").write_text(text)
    monkeypatch.setenv("PROD_KUBE", "/secrets/prod")
    ref = context.for_environment(load_config(repo), "prod")
    assert ref.kubeconfig == "/secrets/prod/config"


def test_each_environment_gets_a_client_for_its_own_context(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        """\
apiVersion: v1
kind: Config
clusters:
  - {name: a, cluster: {server: "https://127.0.0.1:6441"}}
  - {name: b, cluster: {server: "https://127.0.0.1:6442"}}
users:
  - {name: u, user: {token: not-a-secret}}
contexts:
  - {name: ctx-a, context: {cluster: a, user: u}}
  - {name: ctx-b, context: {cluster: b, user: u}}
current-context: ctx-a
"""
    )
    (tmp_path / "repo").mkdir()
    repo = _repo(tmp_path / "repo", None)
    text = (repo / "glue.yaml").read_text()
    text = text.replace("kube_context: prod-admin", "kube_context: ctx-b")
    text = text.replace("kube/prod.yaml", str(kubeconfig))
    (repo / "glue.yaml").write_text(text)
    loaded = load_config(repo)
    tools = Tools(helmfile=str(repo / "no-helmfile"), helm="helm")
    kube_for = context.per_environment(loaded, kubeconfig=str(kubeconfig), tools=tools)
    hosts = {env: kube_for(env).host for env in ("staging", "prod")}
    assert hosts == {"staging": "https://127.0.0.1:6441", "prod": "https://127.0.0.1:6442"}
    assert kube_for("prod") is kube_for("prod")  # one client per cluster
