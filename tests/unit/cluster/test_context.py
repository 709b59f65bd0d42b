"""Which cluster an environment lives on: glue.yaml, then helmfile's kubeContext."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gitops_glue.cluster import context
from gitops_glue.config import load_config
from gitops_glue.errors import UsageError
from gitops_glue.tools import Tools
from tests.support.helpers import TESTBED_BIN

#: The testbed's helmfile 0.166 and 1.8 and the real helm (scripts/testbed install).
HELMFILES = {"0.166": "helmfile", "1.8": "helmfile1"}

# A helmfile that names each environment's kube context, and a prepare hook that
# leaves a marker (MARKER) if anything runs it.
HELMFILE = """\
environments:
  staging:
    kubeContext: ctx-a
    values: [env/staging.yaml]
  prod:
    kubeContext: ctx-b
    values: [env/prod.yaml]
---
hooks:
  - events: [prepare]
    command: sh
    args: [-c, 'touch MARKER']
releases:
  - name: a
    namespace: ns1
    chart: ./chart
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


@pytest.fixture(params=list(HELMFILES), ids=[f"helmfile{v}" for v in HELMFILES])
def tools(request: pytest.FixtureRequest) -> Tools:
    """The testbed's real helm with each helmfile version in turn (skips when not built)."""
    helmfile, helm = TESTBED_BIN / HELMFILES[request.param], TESTBED_BIN / "helm3"
    if not helmfile.exists() or not helm.exists():
        pytest.skip(f"{helmfile.name} or helm3 not built in {TESTBED_BIN}")
    return Tools(helmfile=str(helmfile), helm=str(helm))


def _with_helmfile(repo: Path, text: str) -> Path:
    (repo / "env").mkdir()
    for name in ("staging", "prod"):
        (repo / "env" / f"{name}.yaml").write_text("a: {image: {tag: v1}}\n")
    (repo / "helmfile.yaml").write_text(text)
    return repo


def test_glue_yaml_wins_over_helmfile_and_the_option_wins_over_both(
    tmp_path: Path, tools: Tools
) -> None:
    marker = tmp_path / "prepare-hook-ran"
    repo = _with_helmfile(_repo(tmp_path, None), HELMFILE.replace("MARKER", str(marker)))
    loaded = load_config(repo)

    staging = context.for_environment(loaded, "staging", kubeconfig="/k/all.yaml", tools=tools)
    assert (staging.context, staging.source, staging.kubeconfig) == (
        "ctx-a",
        "helmfile kubeContext",
        "/k/all.yaml",
    )
    assert staging.args == ("--kube-context", "ctx-a")
    assert staging.tool_env({})["KUBECONFIG"] == "/k/all.yaml"

    prod = context.for_environment(loaded, "prod", kubeconfig="/k/all.yaml", tools=tools)
    assert (prod.context, prod.source) == ("prod-admin", "glue.yaml")
    assert prod.kubeconfig == str(repo / "kube" / "prod.yaml")  # relative to the repo

    forced = context.for_environment(loaded, "prod", context="break-glass", tools=tools)
    assert (forced.context, forced.source) == ("break-glass", "--kube-context")
    # helmfile was asked without running the repository's hooks.
    assert not marker.exists(), "finding the cluster ran the helmfile's prepare hook"


def test_helm_defaults_kube_context_is_the_fallback(tmp_path: Path, tools: Tools) -> None:
    text = "helmDefaults:\n  kubeContext: shared\n" + HELMFILE.replace(
        "    kubeContext: ctx-a\n", ""
    ).replace("MARKER", os.devnull)
    repo = _with_helmfile(_repo(tmp_path, None), text)
    ref = context.for_environment(load_config(repo), "staging", tools=tools)
    assert (ref.context, ref.source) == ("shared", "helmfile kubeContext")


def test_without_helmfile_there_is_no_default_context(tmp_path: Path) -> None:
    repo = _repo(tmp_path, None)
    tools = Tools(helmfile=str(repo / "bin" / "no-such-helmfile"), helm="helm")
    ref = context.for_environment(load_config(repo), "staging", tools=tools)
    assert (ref.context, ref.kubeconfig, ref.args) == (None, None, ())
    assert "KUBECONFIG" not in ref.tool_env({})


def test_a_helmfile_that_cannot_be_read_is_an_error_not_a_guess(
    tmp_path: Path, tools: Tools
) -> None:
    # Guessing the current context could lock and record in another cluster than the
    # one helmfile deploys to; glue.yaml's kube_context is the way out.
    broken = 'environments:\n  staging:\n    kubeContext: {{ requiredEnv "NOPE" }}\n'
    repo = _with_helmfile(_repo(tmp_path, None), broken)
    with pytest.raises(UsageError) as refused:
        context.for_environment(load_config(repo), "staging", tools=tools)
    assert refused.value.message.startswith("cannot tell which cluster 'staging' is on")
    assert "set kube_context for staging in glue.yaml" in (refused.value.hint or "")
    # An environment with its kube_context in glue.yaml does not need helmfile's view.
    prod = context.for_environment(load_config(repo), "prod", tools=tools)
    assert prod.context == "prod-admin"


def test_an_unreadable_helmfile_that_names_no_context_means_the_current_one(
    tmp_path: Path, tools: Tools
) -> None:
    # helmfile itself would deploy to the current context: so does glue.
    repo = _with_helmfile(_repo(tmp_path, None), "environments: [\n")
    ref = context.for_environment(load_config(repo), "staging", tools=tools)
    assert (ref.context, ref.args) == (None, ())


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
