"""The GitLab templates, end to end, with gitlab-ci-local (shell executor).

A service repository's pipeline includes ``announce`` and ``bump``: it announces its
image (verified in the local registry) to the Slack stand-in, then bumps the tag in the
deployment repository on the local sshd. The deployment repository's pipeline (a clone
of that remote, as a push would run it) includes ``lint`` and ``deploy``: it lints,
prepares (glue diff) and deploys staging (glue apply, manual) to the testbed cluster with
Slack messages before and after.

gitlab-ci-local runs the templates through ``include: local:`` with ``inputs:``, the
form a project that vendors the templates uses. ``include: component:`` is resolved by
gitlab-ci-local only for the project's own components (same project path and
``@$CI_COMMIT_SHA``) or by ``git archive`` from a GitLab server, so the component form
is checked by tests/e2e/test_ci_templates.py::test_component_include_resolves_with_inputs,
on a repository laid out as the component project (``templates/`` at its root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.e2e.test_ci_templates import GITHUB, run_action
from tests.support.helpers import example_repo, git
from tests.support.registry import RegistryServer
from tests.support.slackserver import SlackServer
from tests.support.sshgit import SshGitServer
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "ci-templates" / "gitlab" / "templates"
NPM_BIN = Path.home() / ".cache" / "gitops-glue-npm" / "node_modules" / ".bin"


def gitlab_ci_local() -> str:
    found = shutil.which("gitlab-ci-local") or shutil.which("gitlab-ci-local", path=str(NPM_BIN))
    assert found, "gitlab-ci-local is not installed: run scripts/bootstrap"
    return found


def pipeline(
    repo: Path,
    home: Path,
    variables: Mapping[str, str],
    *args: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run gitlab-ci-local in ``repo`` with project variables ``variables`` (a value that is
    an absolute path of an existing file becomes a File variable, as in GitLab)."""
    home.mkdir(parents=True, exist_ok=True)
    (repo / ".gitlab-ci-local-variables.yml").write_text(json.dumps(dict(variables)))
    clean = {
        k: v
        for k, v in (env or os.environ).items()
        if not k.startswith(("GLUE_", "GITHUB_", "GITLAB_", "CI_", "SLACK_"))
    }
    return subprocess.run(
        [
            gitlab_ci_local(),
            "--force-shell-executor",
            "--no-color",
            "--home",
            str(home),
            "--max-job-name-padding",
            "0",
            *args,
        ],
        cwd=repo,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def vendor_templates(repo: Path) -> None:
    shutil.copytree(TEMPLATES, repo / "ci" / "glue")


def init_repo(path: Path, files: Mapping[str, str], origin: str) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q", "--initial-branch=main")
    git(path, "remote", "add", "origin", origin)
    return path


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


SERVICE_PIPELINE = """\
stages: [build, deploy]
build:
  stage: build
  script: [echo "the image was pushed by the test"]
include:
  - local: ci/glue/announce.yml
    inputs:
      image_name: {image}
  - local: ci/glue/bump.yml
    inputs:
      environment: staging
      remote: {remote}
      when: on_success
"""

DEPLOY_PIPELINE = """\
stages: [lint, prepare, deploy]
include:
  - local: ci/glue/lint.yml
    inputs:
      environments: staging
  - local: ci/glue/deploy.yml
    inputs:
      environment: staging
"""


def test_service_pipeline_announces_and_bumps_then_deploy_pipeline_deploys(
    testbed: Testbed,
    ssh_git_server: SshGitServer,
    registry: RegistryServer,
    slack: SlackServer,
    tmp_path: Path,
) -> None:
    home = tmp_path / "gcl-home"
    ns = testbed.unique("gcl")
    # The namespace does not exist yet: glue notify's start message creates it to keep its
    # state there (helmfile would only create it during the deploy).
    # The deployment repository on the sshd, its staging in a namespace of this test.
    remote = ssh_git_server.new_example_remote("deploy")
    seed = tmp_path / "seed"
    subprocess.run(
        ["git", "clone", "-q", remote.url, str(seed)],
        check=True,
        env={**os.environ, **remote.git_env()},
    )
    for name in ("environments/staging.yaml", "glue.yaml"):
        f = seed / name
        f.write_text(f.read_text().replace("namespace: example-staging", f"namespace: {ns}"))
    helmfile = seed / "helmfile.yaml.gotmpl"
    helmfile.write_text(helmfile.read_text().replace("timeout: 300", "timeout: 60"))
    vendor_templates(seed)
    (seed / ".gitlab-ci.yml").write_text(DEPLOY_PIPELINE)
    commit_all(seed, "CI: glue templates; staging in the test namespace")
    subprocess.run(
        ["git", "-C", str(seed), "push", "-q", "origin", "main"],
        check=True,
        env={**os.environ, **remote.git_env()},
    )

    # --- the service's pipeline
    service = init_repo(
        tmp_path / "a",
        {
            ".gitlab-ci.yml": SERVICE_PIPELINE.format(
                image=f"{registry.host}/team/a", remote=remote.url
            ),
            "main.py": "print('a')\n",
        },
        origin="git@gitlab.example.com:team/a.git",
    )
    vendor_templates(service)
    commit_all(service, "Speed up checkout")
    sha = git(service, "rev-parse", "HEAD").strip()
    tag = sha[:8]  # $CI_COMMIT_SHORT_SHA
    digest = registry.push("team/a", tag)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(ssh_git_server.known_hosts_line + "\n")
    run = pipeline(
        service,
        home,
        {
            "SLACK_WEBHOOK_URL": slack.webhook_url,
            "GLUE_SSH_KEY": str(ssh_git_server.deploy_key.private),  # File variables
            "GLUE_SSH_KNOWN_HOSTS": str(known_hosts),
        },
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "glue-announce" in log and "glue-bump-staging" in log
    [announced] = slack.webhook_requests()
    assert announced.json["text"] == f"New image: a {tag} ({registry.host}/team/a:{tag})"
    assert digest in json.dumps(announced.json["blocks"])
    [bump, *_] = remote.log()
    assert bump.message.startswith(f"feat(staging): update a to {tag}")
    assert "Upstream-Repository: team/a" in bump.message
    assert f"Upstream-Revision: {sha}" in bump.message
    assert f'tag: "{tag}"' in remote.show("main", "environments/staging.yaml")
    assert ssh_git_server.deploy_key.private.read_text().splitlines()[1] not in log

    # --- the deployment repository's pipeline, on the pushed commit
    deploy = tmp_path / "deploy"
    subprocess.run(
        ["git", "clone", "-q", remote.url, str(deploy)],
        check=True,
        env={**os.environ, **remote.git_env()},
    )
    git(deploy, "remote", "add", "gcl-origin", "git@gitlab.example.com:team/deploy.git")
    git(deploy, "remote", "set-head", "origin", "main")
    variables = {"SLACK_WEBHOOK_URL": slack.webhook_url, "KUBECONFIG": str(testbed.kubeconfig)}
    run = pipeline(deploy, home, variables, env=testbed.env)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "helmfile lint: staging" in log
    assert "changes in staging: true" in log  # glue diff's exit 3 did not fail the job
    assert testbed.release_secrets(ns, "a") == [], "deploy is manual: nothing deployed yet"
    assert (deploy / "glue-diff-staging.md").read_text().count("would change") == 2

    run = pipeline(deploy, home, variables, "--manual", "glue-deploy-staging", env=testbed.env)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    [secret] = testbed.release_secrets(ns, "a")
    release = testbed.decode_release(secret)
    assert secret["metadata"]["labels"]["status"] == "deployed"
    assert release["config"]["image"]["tag"] == tag
    deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/a")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{tag}")
    start, finish = [r.json for r in slack.webhook_requests()[1:]]
    assert start["text"] == f"First deployment to staging: a {tag} (new), b 1d2e3f4 (new)"
    # The revision bump-tag carried from the service pipeline links the source commit.
    assert f"https://github.com/example/a/commit/{sha}|{tag}>" in json.dumps(start["blocks"])
    assert finish["text"] == f"Deployed to staging: a {tag} (new), b 1d2e3f4 (new)", log
    record = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-staging")
    assert record is not None
    assert json.loads(record["data"]["services.json"])["a"]["tag"] == tag


def test_github_deploy_action_steps_deploy_to_the_testbed(
    testbed: Testbed, slack: SlackServer, tmp_path: Path
) -> None:
    """The GitHub `deploy` composite action's steps, run as a runner would (see
    tests/e2e/test_ci_templates.py), in a checkout of the example deployment repository."""
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("gha")
    testbed.kubectl("create", "namespace", ns)
    for name in ("environments/staging.yaml", "glue.yaml"):
        f = repo / name
        f.write_text(f.read_text().replace("namespace: example-staging", f"namespace: {ns}"))
    git(repo, "commit", "-qam", "test namespace")
    kubeconfig = testbed.kubeconfig.read_text()
    env = {k: v for k, v in testbed.env.items() if k != "KUBECONFIG"}
    run = run_action(
        GITHUB / "actions" / "deploy",
        {
            "environment": "staging",
            "kubeconfig": kubeconfig,
            "slack-webhook-url": slack.webhook_url,
        },
        repo,
        env=env,
    )
    assert run.ok, run.log()
    assert run.outputs["changed"] == "true" and run.outputs["releases"] == "a b"
    assert "### Deployed staging: a b" in run.summary
    assert [s["metadata"]["labels"]["status"] for s in testbed.release_secrets(ns, "b")] == [
        "deployed"
    ]
    start, finish = [r.json["text"] for r in slack.webhook_requests()]
    assert start.startswith("First deployment to staging") and finish.startswith("Deployed")
    skipped = [name for name, code, _out in run.steps if code == -1]
    assert skipped == ["Tell Slack the deploy failed"]
    assert not list((repo / "runner-temp").glob("glue-kubeconfig-*")), "kubeconfig removed"
