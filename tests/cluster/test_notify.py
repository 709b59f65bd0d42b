"""``glue notify`` against the real testbed cluster and the Slack stand-in.

The hook flow: the example chart is deployed twice through Helm with its notify
hook Jobs on (kwok completes the Jobs without running them), and ``glue notify``
runs the way the hook Job runs it: the command line and environment read from
the Job in ``helm template`` output, the Slack secret resolved from the real
Secret, and the API identity the Job's ServiceAccount token.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from gitops_glue.cluster import record
from gitops_glue.cluster.kube import Kube
from gitops_glue.cluster.record import DeployRecord, ServiceVersion
from tests.cluster.hookplay import held_helm, host_runner, sa_kubeconfig
from tests.support.helpers import ROOT, Run, copy_example, glue
from tests.support.slackserver import BOT_TOKEN, SlackServer
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

CHART = ROOT / "charts" / "app"
HELMS = [pytest.param(3, id="helm3"), pytest.param(4, id="helm4")]
GH = "https://github.com/example/a"
PIPELINE = "https://gitlab.example.com/example/deploy/-/pipelines/77"
OLD_TAG, OLD_REV = "3f9c2e1", "3f9c2e1d" + "1" * 32
NEW_TAG, NEW_REV = "4e5f6a7", "4e5f6a7b" + "2" * 32


def chart_values(tag: str, revision: str) -> list[str]:
    values = {
        "image.tag": tag,
        "revision": revision,
        "notify.enabled": "true",
        "notify.environment": "dev",
        "notify.tag": tag,
        "notify.revision": revision,
        "notify.slackSecret.name": "slack",
        "notify.channel": "#deploys",
        "notify.sourceRepo": GH,
        "notify.pipelineUrl": PIPELINE,
        "notify.actor": "dev1",
    }
    return [arg for k, v in values.items() for arg in ("--set-string", f"{k}={v}")]


def render(bed: Testbed, helm: int, ns: str, tag: str, revision: str, *extra: str) -> str:
    return bed.helm(
        helm, "template", "a", str(CHART), "-n", ns, *chart_values(tag, revision), *extra
    ).out


def docs(manifest: str) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe", pure=True).load_all(io.StringIO(manifest)) if d]


def hook_job(manifest: str, suffix: str) -> dict[str, Any]:
    [job] = [
        d
        for d in docs(manifest)
        if d["kind"] == "Job" and d["metadata"]["name"] == f"a-glue-notify-{suffix}"
    ]
    return job


def run_like_job(
    bed: Testbed, job: dict[str, Any], ns: str, kubeconfig: Path, slack: SlackServer, cwd: Path
) -> Run:
    """Run the Job's container command with the Job's environment, outside the cluster."""
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    command = [*container.get("command", []), *container.get("args", [])]
    assert command[0] == "glue"
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        secret = bed.get(f"/api/v1/namespaces/{ns}/secrets/{ref['name']}")
        value = (secret or {}).get("data", {}).get(ref["key"])
        if value is None:
            assert ref.get("optional"), item
            continue
        env[item["name"]] = base64.b64decode(value).decode()
    # What a Pod has but a test process has not: the API server (here as a kubeconfig
    # with the ServiceAccount's token) and Slack (the stand-in instead of slack.com).
    env["KUBECONFIG"] = str(kubeconfig)
    env["GLUE_SLACK_API_URL"] = slack.api_url
    return glue(*command[1:], env=env, cwd=cwd)


def configmap(bed: Testbed, ns: str, name: str) -> dict[str, str] | None:
    cm = bed.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")
    return None if cm is None else dict(cm.get("data") or {})


@pytest.mark.parametrize("helm", HELMS)
def test_hook_jobs_notify_what_changed_in_one_thread(
    testbed: Testbed, slack: SlackServer, helm: int, tmp_path: Path
) -> None:
    ns = testbed.unique(f"notify-h{helm}")
    testbed.kubectl("create", "namespace", ns)
    testbed.kubectl(
        "create", "secret", "generic", "slack", "-n", ns, f"--from-literal=bot-token={BOT_TOKEN}"
    )

    # First deploy through Helm, hooks on: the release's record names what it deployed.
    testbed.helm(
        helm,
        "upgrade",
        "--install",
        "a",
        str(CHART),
        "-n",
        ns,
        *chart_values(OLD_TAG, OLD_REV),
        "--wait",
        "--timeout",
        "120s",
    )
    rec = configmap(testbed, ns, "glue-deployed-dev.a")
    assert rec is not None
    assert json.loads(rec["services.json"]) == {
        "a": {"tag": OLD_TAG, "revision": OLD_REV, "release": "a"}
    }
    status = json.loads(testbed.helm(helm, "status", "a", "-n", ns, "-o", "json").out)
    assert status["info"]["status"] == "deployed"
    hooks = {
        h["name"]: h["last_run"]["phase"] for h in status.get("hooks") or [] if h["kind"] == "Job"
    }
    assert hooks == {
        "a-glue-notify-start": "Succeeded",
        "a-glue-notify-finish": "Succeeded",
        "a-glue-notify-rollback": "",
    }  # runs after a rollback only
    # hook-succeeded: no Job is left behind.
    assert testbed.items(f"/apis/batch/v1/namespaces/{ns}/jobs") == []

    # The second deploy's hooks, exactly as Helm renders them for the upgrade.
    manifest = render(testbed, helm, ns, NEW_TAG, NEW_REV, "--is-upgrade")
    start, finish = hook_job(manifest, "start"), hook_job(manifest, "finish")
    assert start["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "notify",
        "--phase",
        "pre-upgrade",
        "--best-effort",
    ]
    assert finish["spec"]["template"]["spec"]["containers"][0]["args"][2] == "post-upgrade"

    # The real upgrade, hooks on: each hook Job is held until the test has run its command
    # with the Job's environment and ServiceAccount (tests/cluster/hookplay.py), in Helm's
    # order: the state ConfigMap is a pre-upgrade hook, created before the start Job.
    held = held_helm(
        testbed,
        helm,
        ns,
        "upgrade",
        "a",
        str(CHART),
        "-n",
        ns,
        *chart_values(NEW_TAG, NEW_REV),
        "--wait",
        "--timeout",
        "120s",
        key="notify",
    )
    runner = host_runner(testbed, ns, slack, tmp_path)
    try:
        run = held.play("a-glue-notify-start", runner)
        finish_run = held.play("a-glue-notify-finish", runner)
        held.finish()
    finally:
        if held.proc.poll() is None:
            held.proc.kill()
            held.proc.communicate()

    # pre-upgrade runs before Helm applies anything: the record still holds the old tag.
    assert run.code == 0, run.err
    assert "warning" not in run.err and "note" not in run.err, run.err
    post = slack.api_calls("chat.postMessage")[0]  # then the finish message (below)
    commit = f"{GH}/commit"
    assert post.json == {
        "channel": "#deploys",
        "text": f"Deploying to dev: a {OLD_TAG} → {NEW_TAG}",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "🚀 Deploying to dev", "emoji": True},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"• *a* <{commit}/{OLD_REV}|{OLD_TAG}> → <{commit}/{NEW_REV}|{NEW_TAG}> "
                        f"(<{GH}/compare/{OLD_REV}...{NEW_REV}|compare>)"
                    ),
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "Triggered by dev1"},
                    {"type": "mrkdwn", "text": f"<{PIPELINE}|pipeline>"},
                ],
            },
        ],
    }
    start_ts = post.response_json()["ts"]

    rec = configmap(testbed, ns, "glue-deployed-dev.a")
    assert rec is not None
    assert json.loads(rec["services.json"]) == {
        "a": {"tag": NEW_TAG, "revision": NEW_REV, "release": "a"}
    }
    state = configmap(testbed, ns, "glue-notify-dev.a")
    assert state is not None
    assert json.loads(state["state.json"])["ts"] == start_ts

    # post-upgrade: the record has moved on, the message still says what changed.
    run = finish_run
    assert run.code == 0, run.err
    assert run.out.strip() == (
        "notified Slack channel #deploys (bot token) (in the start message's thread): "
        f"Deployed to dev: a {OLD_TAG} → {NEW_TAG}"
    )
    [_, reply] = slack.api_calls("chat.postMessage")
    assert reply.json == {
        "channel": "#deploys",
        "thread_ts": start_ts,
        "text": f"Deployed to dev: a {OLD_TAG} → {NEW_TAG}",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"✅ *Deployed to dev*: *a* <{commit}/{OLD_REV}|{OLD_TAG}> → "
                        f"<{commit}/{NEW_REV}|{NEW_TAG}> · <{PIPELINE}|pipeline>"
                    ),
                },
            }
        ],
    }
    assert len(slack.requests) == 2


def test_hook_service_account_reads_only_its_configmaps(testbed: Testbed, tmp_path: Path) -> None:
    ns = testbed.unique("notify-rbac")
    testbed.helm(
        3,
        "upgrade",
        "--install",
        "a",
        str(CHART),
        "-n",
        ns,
        "--create-namespace",
        *chart_values(OLD_TAG, OLD_REV),
        "--wait",
        "--timeout",
        "120s",
    )
    testbed.kubectl("create", "configmap", "other", "-n", ns, "--from-literal=x=y")
    kc = str(sa_kubeconfig(testbed, ns, "a-glue-notify", tmp_path / "sa.kubeconfig"))

    def can(*args: str) -> bool:
        out = testbed.kubectl(
            "--kubeconfig", kc, "auth", "can-i", *args, "-n", ns, check=False
        ).out.strip()
        return out == "yes"

    assert can("get", "configmap/glue-deployed-dev.a")
    assert can("get", "configmap/glue-deployed-dev")
    assert can("get", "configmap/glue-notify-dev.a")
    assert can("update", "configmap/glue-notify-dev.a")
    assert not can("update", "configmap/glue-deployed-dev.a")
    assert not can("get", "configmap/other")
    assert not can("list", "configmaps")
    assert not can("create", "configmaps")
    assert not can("get", "secret/slack")
    # And really: reading another ConfigMap is refused by the API server.
    res = testbed.kubectl("--kubeconfig", kc, "get", "configmap", "other", "-n", ns, check=False)
    assert res.code != 0 and "Forbidden" in res.err


@pytest.mark.parametrize("helm", HELMS)
def test_rendered_manifests_pass_lint_and_server_validation(testbed: Testbed, helm: int) -> None:
    ns = testbed.unique(f"notify-lint-h{helm}")
    testbed.kubectl("create", "namespace", ns)
    values = chart_values(NEW_TAG, NEW_REV)
    testbed.helm(helm, "lint", "--strict", str(CHART), *values)
    testbed.helm(helm, "lint", "--strict", str(CHART))  # notify off: the default
    for extra in ((), ("--is-upgrade",)):
        manifest = render(testbed, helm, ns, NEW_TAG, NEW_REV, *extra)
        kinds = sorted(d["kind"] for d in docs(manifest))
        # The RBAC and the state ConfigMap twice: as pre-install/pre-upgrade hooks and as
        # the pre-delete hooks that make `helm uninstall` remove them (charts/glue-hooks).
        assert kinds == [
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Job",
            "Job",
            "Job",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceAccount",
        ]
        # The API server validates every object against its schema (strict field
        # validation: unknown or misspelt fields fail), persisting nothing.
        res = testbed.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-", input=manifest
        )
        assert res.out.count("(server dry run)") == 14, res.out
    # Off by default: no notify objects at all.
    plain = testbed.helm(helm, "template", "a", str(CHART), "-n", ns).out
    assert sorted(d["kind"] for d in docs(plain)) == ["Deployment", "Service"]
    # On without a Slack secret: a clear message.
    res = testbed.helm(
        helm,
        "template",
        "a",
        str(CHART),
        "--set",
        "notify.enabled=true",
        "--set",
        "notify.environment=dev",
        check=False,
    )
    assert res.code != 0
    assert "notify.slackSecret.name is required when notify.enabled is true" in res.err


def test_ci_checkout_names_exactly_the_services_that_changed(
    testbed: Testbed, slack: SlackServer, tmp_path: Path
) -> None:
    """From CI: new versions from the deployment repo, old ones from glue apply's record."""
    ns = testbed.unique("notify-ci")
    testbed.kubectl("create", "namespace", ns)
    repo = copy_example(tmp_path / "deploy")
    kube = Kube(str(testbed.kubeconfig))
    # What ran before: a at an older tag; b as in environments/dev.yaml.
    record.write(
        kube,
        ns,
        DeployRecord(
            "dev",
            {
                "a": ServiceVersion("1a2b3c4", "1a2b3c4", "a"),
                "b": ServiceVersion("9a8b7c6", "9a8b7c6", "b"),
            },
        ),
    )
    env = {
        "KUBECONFIG": str(testbed.kubeconfig),
        "SLACK_WEBHOOK_URL": slack.webhook_url,
        "GLUE_RECORD_NAMESPACE": ns,
        "GITLAB_CI": "true",
        "CI_PIPELINE_URL": PIPELINE,
        "GITLAB_USER_LOGIN": "dev1",
    }

    preview = glue(
        "notify",
        "--phase",
        "pre-upgrade",
        "--env",
        "dev",
        "--dry-run",
        "-o",
        "slack",
        cwd=repo,
        env=env,
    )
    assert preview.code == 0, preview.err
    assert slack.requests == []

    run = glue("notify", "--phase", "pre-upgrade", "--env", "dev", cwd=repo, env=env)
    assert run.code == 0, run.err
    [start] = slack.webhook_requests()
    assert start.json == json.loads(preview.out)
    assert start.json == {
        "text": "Deploying to dev: a 1a2b3c4 → 3f9c2e1",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "🚀 Deploying to dev", "emoji": True},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"• *a* <{GH}/commit/1a2b3c4|1a2b3c4> → <{GH}/commit/3f9c2e1|3f9c2e1> "
                        f"(<{GH}/compare/1a2b3c4...3f9c2e1|compare>)\n"
                        "Unchanged: b `9a8b7c6`"
                    ),
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "Triggered by dev1"},
                    {"type": "mrkdwn", "text": f"<{PIPELINE}|pipeline>"},
                ],
            },
        ],
    }

    # glue apply records the deploy; the confirmation still reports the change.
    record.write(
        kube,
        ns,
        DeployRecord(
            "dev",
            {
                "a": ServiceVersion("3f9c2e1", "3f9c2e1", "a"),
                "b": ServiceVersion("9a8b7c6", "9a8b7c6", "b"),
            },
        ),
    )
    run = glue("notify", "--phase", "post-upgrade", "--env", "dev", "-o", "json", cwd=repo, env=env)
    assert run.code == 0, run.err
    result = json.loads(run.out)
    assert (result["changed"], result["unchanged"], result["sent"]) == (["a"], ["b"], True)
    [_, finish] = slack.webhook_requests()
    assert finish.json["text"] == "Deployed to dev: a 1a2b3c4 → 3f9c2e1"

    # A repeat deploy of the same versions: one line, or nothing when quiet.
    run = glue("notify", "--phase", "pre-upgrade", "--env", "dev", cwd=repo, env=env)
    assert run.code == 0, run.err
    assert slack.webhook_requests()[-1].json == {
        "text": "Deploying to dev: nothing changes",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ("🚀 *Deploying to dev*: nothing changes (a `3f9c2e1`, b `9a8b7c6`)."),
                },
            }
        ],
    }
    run = glue(
        "notify",
        "--phase",
        "pre-upgrade",
        "--env",
        "dev",
        "--quiet-when-unchanged",
        cwd=repo,
        env=env,
    )
    assert run.code == 0, run.err
    assert len(slack.webhook_requests()) == 3


def test_first_deployment_and_best_effort(
    testbed: Testbed, slack: SlackServer, tmp_path: Path
) -> None:
    ns = testbed.unique("notify-first")
    manifest = render(testbed, 3, ns, NEW_TAG, NEW_REV)
    start = hook_job(manifest, "start")
    assert start["spec"]["template"]["spec"]["containers"][0]["args"][2] == "pre-install"
    testbed.kubectl("create", "namespace", ns)
    testbed.kubectl(
        "create",
        "secret",
        "generic",
        "slack",
        "-n",
        ns,
        f"--from-literal=webhook-url={slack.webhook_url}",
    )
    run = run_like_job(testbed, start, ns, testbed.kubeconfig, slack, tmp_path)
    assert run.code == 0, run.err
    [req] = slack.webhook_requests()
    assert req.json["text"] == f"First deployment to dev: a {NEW_TAG} (new)"

    # Slack refuses: the hook Job still succeeds (a deploy is never blocked), and says why.
    slack.fail_next(404, "no_service")
    env = {
        "KUBECONFIG": str(testbed.kubeconfig),
        "SLACK_WEBHOOK_URL": slack.webhook_url,
        "GLUE_RECORD_NAMESPACE": ns,
        "GLUE_NOTIFY_SERVICE": "a",
        "GLUE_NOTIFY_TAG": NEW_TAG,
    }
    run = glue(
        "notify", "--phase", "failed", "--env", "dev", "--best-effort", env=env, cwd=tmp_path
    )
    assert run.code == 0
    assert run.err.startswith(
        "glue: warning: no notification sent (--best-effort): Slack refused the message: 404"
    )
    assert slack.webhook_secret not in run.err
    slack.fail_next(404, "no_service")
    run = glue("notify", "--phase", "failed", "--env", "dev", env=env, cwd=tmp_path)
    assert run.code == 1  # without --best-effort it is an error
    assert run.err.startswith("glue: error: Slack refused the message: 404 no_service")
