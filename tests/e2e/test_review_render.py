"""glue's review on real helmfile and helm: a small deployment repository written by each
test, rendered on the base and the head of a change, and the plan check after the merge.

`helmfile template` needs no cluster, but helm and helmfile must be installed: these
tests take them from the testbed's tools cache and skip, saying so, when it has not been
built. Charts are local (a chart and a `file://` dependency), so nothing is fetched.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gitops_glue.deploy.review import (
    TRAILER,
    ResourceKey,
    check_plan,
    render,
    review,
    reviewed_plan,
    trailer_plan,
)
from gitops_glue.errors import OperationError, UsageError
from gitops_glue.tools import Tools
from tests.support.helpers import TESTBED_BIN as BIN

HEAD = "4a5b6c7d" + "1" * 32
BASE = "0f1e2d3c" + "2" * 32
#: helmfile 0.x drives Helm 3; helmfile 1.x drives Helm 4 as well.
PAIRS = {"helmfile0-helm3": ("helmfile", "helm3"), "helmfile1-helm4": ("helmfile1", "helm4")}


def tools_from_testbed(helmfile: str, helm: str) -> Tools:
    if not (BIN / helmfile).exists() or not (BIN / helm).exists():
        pytest.skip(f"{helmfile}/{helm} not built in {BIN} (scripts/testbed install)")
    return Tools(str(BIN / helmfile), str(BIN / helm))


@pytest.fixture(params=list(PAIRS))
def each_tools(request: pytest.FixtureRequest) -> Tools:
    return tools_from_testbed(*PAIRS[request.param])


@pytest.fixture
def tools() -> Tools:
    return tools_from_testbed(*PAIRS["helmfile0-helm3"])


RELEASES = """\
---
releases:
{{- range $svc := list "web" "api" }}
  - name: {{ $svc }}
    namespace: {{ $.Values.namespace }}
    chart: ./charts/web
HOOKS
    values:
      - {{ index $.Values $svc | toYaml | nindent 8 }}
{{- end }}
"""

HOOK = """\
    hooks:
      - events: [prepare]
        command: sh
        args: [-c, 'env > "$GLUE_TEST_HOOK_OUT"; ls "$HOME" > "$GLUE_TEST_HOOK_OUT.home"']
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: REPLICAS
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: app
          image: "registry.example.com/{{ .Release.Name }}:{{ .Values.image.tag }}"
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-credentials
type: Opaque
data:
  password: {{ .Values.password | b64enc }}
"""


def password(env: str, svc: str) -> str:
    return f"{svc}-{env}-Pa55word"


def write_repo(
    dest: Path,
    *,
    envs: tuple[str, ...] = ("dev", "prod"),
    prod_web: str = "1.0.0",
    prod_password: str | None = None,
    replicas: int = 1,
    common: str = "1.0.0",
    level: str = "info",
    hook: bool = False,
) -> Path:
    """A deployment repository: releases web and api from charts/web, which depends on
    charts/common through a version range (no Chart.lock: the newest common wins)."""
    files = {
        "glue.yaml": "version: 1\nenvironments:\n"
        + "".join(f"  - name: {e}\n    values: [environments/{e}.yaml]\n" for e in envs)
        + "services:\n  web:\n    tag_key: web.image.tag\n  api:\n    tag_key: api.image.tag\n",
        "helmfile.yaml.gotmpl": "environments:\n"
        + "".join(f"  {e}:\n    values: [environments/{e}.yaml]\n" for e in envs)
        + RELEASES.replace("HOOKS\n", HOOK if hook else ""),
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n"
        "dependencies:\n  - name: common\n    version: '>=1.0.0'\n"
        "    repository: file://../common\n",
        "charts/web/templates/deployment.yaml": DEPLOYMENT.replace("REPLICAS", str(replicas)),
        "charts/web/templates/secret.yaml": SECRET,
        "charts/common/Chart.yaml": f"apiVersion: v2\nname: common\nversion: {common}\n",
        "charts/common/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: {{ .Release.Name }}-common\ndata:\n  level: " + level + "\n",
    }
    for env in envs:
        web = prod_web if env == "prod" else "1.0.0"
        secret = (prod_password if env == "prod" else None) or password(env, "web")
        files[f"environments/{env}.yaml"] = (
            f"namespace: shop-{env}\n"
            f"web:\n  image:\n    tag: '{web}'\n  password: {secret}\n"
            f"api:\n  image:\n    tag: '2.0.0'\n  password: {password(env, 'api')}\n"
        )
    for name, text in files.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dest


def changed_lines(diff: str) -> list[str]:
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("--- ", "+++ "))
    ]


def test_a_tag_bump_renders_as_one_image_line_in_one_release(
    tmp_path: Path, each_tools: Tools
) -> None:
    base = write_repo(tmp_path / "base")
    head = write_repo(tmp_path / "head", prod_web="1.1.0")
    said: list[str] = []
    result = review(
        base, head, None, each_tools, head_sha=HEAD, base_sha=BASE, progress=said.append
    )

    assert result.changed
    dev, prod = result.environments
    assert (dev.env, dev.changed, prod.env) == ("dev", False, "prod")
    assert [r.release for r in prod.releases] == ["web"]
    (change,) = prod.releases[0].changes
    assert change.key == ResourceKey("web", "Deployment", "shop-prod", "web")
    assert changed_lines(change.diff) == [
        "-        image: registry.example.com/web:1.0.0",
        "+        image: registry.example.com/web:1.1.0",
    ]
    body = result.body
    assert "### <code>prod</code>: 1 release changes (resources: 1 changed)" in body
    assert "No change in: dev." in body
    assert said == [
        f"rendering {env} at the {side} ({sha[:12]})"
        for env in ("dev", "prod")
        for side, sha in (("base", BASE), ("head", HEAD))
    ]
    # Every resource counted, on both helm versions alike: the charts' own, the
    # dependency's, and the Secrets (whose values the comment never shows).
    resources = result.plan.environments["prod"].resources
    assert resources is not None
    assert sorted(k.path for k in resources) == [
        "ConfigMap/shop-prod/api-common",
        "ConfigMap/shop-prod/web-common",
        "Deployment/shop-prod/api",
        "Deployment/shop-prod/web",
        "Secret/shop-prod/api-credentials",
        "Secret/shop-prod/web-credentials",
    ]
    for env in ("dev", "prod"):
        for svc in ("web", "api"):
            assert password(env, svc) not in body
            assert base64.b64encode(password(env, svc).encode()).decode() not in body
    assert reviewed_plan(body) == result.plan
    assert result.trailers == [
        (TRAILER, f"{env} {result.plan.environments[env].digest}") for env in ("dev", "prod")
    ]


def test_a_change_that_renders_the_same_is_no_change(tmp_path: Path, tools: Tools) -> None:
    base = write_repo(tmp_path / "base")
    head = write_repo(tmp_path / "head")
    (head / "environments" / "prod.yaml").write_text(
        "# a comment and another order change nothing rendered\n"
        + (head / "environments" / "prod.yaml").read_text()
    )
    result = review(base, head, ["prod"], tools, head_sha=HEAD, base_sha=BASE)
    assert not result.changed
    assert [d.env for d in result.environments] == ["prod"]
    assert "No environment would change." in result.body
    assert "No change in: prod." in result.body


def test_a_secret_value_changed_shows_only_its_key(tmp_path: Path, tools: Tools) -> None:
    base = write_repo(tmp_path / "base")
    head = write_repo(tmp_path / "head", prod_password="rotated-Pa55word-42")
    result = review(base, head, ["prod"], tools, head_sha=HEAD, base_sha=BASE)
    (prod,) = result.environments
    (change,) = prod.releases[0].changes
    assert change.key == ResourceKey("web", "Secret", "shop-prod", "web-credentials")
    assert change.secret_keys == ("data.password: changed",)
    assert changed_lines(change.diff) == [
        "-  password: (hidden)",
        "+  password: (hidden, changed)",
    ]
    for value in ("rotated-Pa55word-42", password("prod", "web")):
        assert value not in result.body
        assert base64.b64encode(value.encode()).decode() not in result.body


def test_environments_come_from_glue_yaml_on_both_sides(tmp_path: Path, tools: Tools) -> None:
    base = write_repo(tmp_path / "base", envs=("dev", "prod"))
    head = write_repo(tmp_path / "head", envs=("dev", "qa"))
    result = review(base, head, ["qa", "prod"], tools, head_sha=HEAD, base_sha=BASE)
    qa, prod = result.environments
    assert (qa.env, qa.base is None, prod.env, prod.head is None) == ("qa", True, "prod", True)
    assert {c.change for r in qa.releases for c in r.changes} == {"added"}
    assert {c.change for r in prod.releases for c in r.changes} == {"removed"}
    assert set(result.plan.environments) == {"qa"}  # nothing of prod is left to deploy
    with pytest.raises(UsageError, match="unknown environment 'stage'") as caught:
        review(base, head, ["stage"], tools, head_sha=HEAD, base_sha=BASE)
    assert caught.value.hint == "environments in glue.yaml: dev, qa, prod"


def test_the_plan_check_after_the_merge(tmp_path: Path, tools: Tools) -> None:
    base = write_repo(tmp_path / "base")
    head = write_repo(tmp_path / "head", prod_web="1.1.0")
    result = review(base, head, ["prod"], tools, head_sha=HEAD, base_sha=BASE)
    from_comment = reviewed_plan(result.body)
    message = "Bump web in prod\n\n" + "".join(f"{k}: {v}\n" for k, v in result.trailers)
    from_commit = trailer_plan(message)
    assert from_comment is not None and from_commit is not None

    # Deployed as reviewed (a fresh checkout of the merge): both say so.
    merged = render(write_repo(tmp_path / "merged", prod_web="1.1.0"), "prod", tools)
    assert check_plan(from_comment, merged).ok
    assert check_plan(from_commit, merged).ok

    # The local chart's template changed after the review (another merge landed).
    template = render(
        write_repo(tmp_path / "template", prod_web="1.1.0", replicas=3), "prod", tools
    )
    check = check_plan(from_comment, template)
    assert not check.ok
    assert check.changed == (
        ResourceKey("api", "Deployment", "shop-prod", "api"),
        ResourceKey("web", "Deployment", "shop-prod", "web"),
    )
    assert "changed since the review: release web: Deployment shop-prod/web" in check.message
    assert not check_plan(from_commit, template).ok

    # The chart's dependency floated to a newer version after the review.
    floated = render(
        write_repo(tmp_path / "floated", prod_web="1.1.0", common="1.1.0", level="debug"),
        "prod",
        tools,
    )
    check = check_plan(from_comment, floated)
    assert not check.ok
    assert check.changed == (
        ResourceKey("api", "ConfigMap", "shop-prod", "api-common"),
        ResourceKey("web", "ConfigMap", "shop-prod", "web-common"),
    )
    assert check.added == check.removed == ()


def test_helmfile_renders_with_hooks_but_no_cluster_and_no_home(
    tmp_path: Path, tools: Tools, monkeypatch: pytest.MonkeyPatch, private_tmpdir: Path
) -> None:
    repo = write_repo(tmp_path / "repo", hook=True)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    out = tmp_path / "hook-env"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("GLUE_TEST_HOOK_OUT", str(out))
    assert not list(private_tmpdir.iterdir())

    rendering = render(repo, "dev", tools)

    assert len(rendering.resources) == 6
    # The prepare hook ran, as in a deploy pipeline, in glue's private directory: an empty
    # kubeconfig, an empty home, helm's homes there too.
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    private = Path(seen["KUBECONFIG"]).parent
    assert private.parent == private_tmpdir and private.name.startswith("glue-render-")
    assert seen["HOME"] == str(private / "home")
    for name in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
        assert Path(seen[name]).parent == private
    assert (tmp_path / "hook-env.home").read_text() == ""
    # ... removed once helmfile is done.
    assert not list(private_tmpdir.iterdir())


def test_a_render_that_fails_names_the_environment_and_side(tmp_path: Path, tools: Tools) -> None:
    base = write_repo(tmp_path / "base")
    head = write_repo(tmp_path / "head")
    broken = head / "charts" / "web" / "templates" / "deployment.yaml"
    broken.write_text(broken.read_text().replace("{{ .Values.image.tag }}", "{{ .Values.image.tag"))
    with pytest.raises(OperationError) as caught:
        review(base, head, ["prod"], tools, head_sha=HEAD, base_sha=BASE)
    message = caught.value.message
    assert message.startswith("helmfile cannot render environment 'prod':\n")
    assert "Error: parse error at (web/templates/deployment.yaml:17)" in message
    assert message.endswith(f"(at the head, {HEAD[:12]})")
