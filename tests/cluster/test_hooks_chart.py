"""charts/glue-hooks as a dependency of a chart made by ``helm create`` (Helm's own scaffold,
unchanged apart from the dependency and its values), on the real test cluster. The hook Jobs
run in Helm's order, held until the test has run them (tests/cluster/hookplay.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.hookplay import Runner, held_helm, host_runner
from tests.support.helpers import ROOT, Run
from tests.support.slackserver import BOT_TOKEN, SlackServer
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

HOOKS_CHART = ROOT / "charts" / "glue-hooks"
HELMS = [pytest.param(3, id="helm3"), pytest.param(4, id="helm4")]
OLD, NEW = "1.0.0", "1.1.0"


def scaffold(bed: Testbed, helm: int, tmp_path: Path, name: str = "web") -> Path:
    """``helm create`` plus the glue-hooks dependency (file://) and its values."""
    chart = tmp_path / name
    bed.helm(helm, "create", str(chart))
    with (chart / "Chart.yaml").open("a") as f:
        f.write(
            "dependencies:\n"
            "  - name: glue-hooks\n"
            "    version: 0.1.0\n"
            f"    repository: file://{HOOKS_CHART}\n"
        )
    with (chart / "values.yaml").open("a") as f:
        f.write(
            "\nglue-hooks:\n"
            "  enabled: true\n"
            "  environment: dev\n"
            "  slackSecret:\n"
            "    name: slack\n"
            '  channel: "#deploys"\n'
            "  actor: dev1\n"
        )
    bed.helm(helm, "dependency", "build", str(chart))
    return chart


def tag_args(tag: str) -> list[str]:
    return ["--set-string", f"image.tag={tag}", "--set-string", f"glue-hooks.tag={tag}"]


def deploy(
    bed: Testbed, helm: int, ns: str, chart: Path, tag: str, runner: Runner, *, release: str
) -> list[Run]:
    """``helm upgrade --install`` with hooks on, each hook Job run by ``runner``."""
    held = held_helm(
        bed,
        helm,
        ns,
        "upgrade",
        "--install",
        release,
        str(chart),
        "-n",
        ns,
        *tag_args(tag),
        "--wait",
        "--timeout",
        "150s",
    )
    try:
        runs = [held.play(f"{release}-glue-notify-{s}", runner) for s in ("start", "finish")]
        held.finish()
    finally:
        if held.proc.poll() is None:
            held.proc.kill()
            held.proc.communicate()
    return runs


def glue_objects(bed: Testbed, ns: str) -> list[str]:
    out = bed.kubectl(
        "get",
        "serviceaccounts,roles,rolebindings,configmaps,jobs,pods",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/component=glue-notify",
        "-o",
        "name",
    ).out
    return sorted(out.split())


def setup_namespace(bed: Testbed, prefix: str) -> str:
    ns = bed.unique(prefix)
    bed.kubectl("create", "namespace", ns)
    bed.kubectl(
        "create", "secret", "generic", "slack", "-n", ns, f"--from-literal=bot-token={BOT_TOKEN}"
    )
    return ns


def assert_threaded_pair(
    slack: SlackServer, start_text: str, start_blocks: list[Any], finish: dict[str, Any]
) -> None:
    """Exactly two posts: the start message, and the finish message in its thread."""
    calls = slack.api_calls("chat.postMessage")
    assert len(calls) == 2, [c.json for c in calls]
    post, reply = calls
    assert post.json == {"channel": "#deploys", "text": start_text, "blocks": start_blocks}
    ts = post.response_json()["ts"]
    assert reply.json == {**finish, "channel": "#deploys", "thread_ts": ts}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


BY_DEV1 = {"type": "context", "elements": [{"type": "mrkdwn", "text": "Triggered by dev1"}]}


def check_install_upgrade_uninstall(
    bed: Testbed, slack: SlackServer, helm: int, ns: str, chart: Path, runner: Runner
) -> None:
    """The scenario both this module and test_image.py play (host Python or the image)."""
    # First install: the state ConfigMap is a pre-install hook, so the start message is
    # threaded too.
    runs = deploy(bed, helm, ns, chart, OLD, runner, release="web")
    for name, run in zip(("start", "finish"), runs, strict=True):
        assert run.code == 0 and "warning" not in run.err, (name, run.err)
    assert_threaded_pair(
        slack,
        f"First deployment to dev: web {OLD} (new)",
        [
            header("🚀 First deployment to dev"),
            section(
                "First deployment to *dev*: nothing was recorded there before.\n"
                f"• *web* {OLD} (new)"
            ),
            BY_DEV1,
        ],
        {
            "text": f"Deployed to dev: web {OLD} (new)",
            "blocks": [section(f"✅ *Deployed to dev*: *web* {OLD} (new)")],
        },
    )
    assert runs[1].out.strip() == (
        "notified Slack channel #deploys (bot token) (in the start message's thread): "
        f"Deployed to dev: web {OLD} (new)"
    )
    slack.requests.clear()

    # Upgrade: the release's record says what ran before.
    runs = deploy(bed, helm, ns, chart, NEW, runner, release="web")
    for name, run in zip(("start", "finish"), runs, strict=True):
        assert run.code == 0 and "warning" not in run.err, (name, run.err)
    assert_threaded_pair(
        slack,
        f"Deploying to dev: web {OLD} → {NEW}",
        [header("🚀 Deploying to dev"), section(f"• *web* {OLD} → {NEW}"), BY_DEV1],
        {
            "text": f"Deployed to dev: web {OLD} → {NEW}",
            "blocks": [section(f"✅ *Deployed to dev*: *web* {OLD} → {NEW}")],
        },
    )
    status = json.loads(bed.helm(helm, "status", "web", "-n", ns, "-o", "json").out)
    assert status["info"]["status"] == "deployed" and status["version"] == 2
    # hook-succeeded: no Job is left; the release's record and the hooks' setup remain.
    assert glue_objects(bed, ns) == [
        "configmap/glue-deployed-dev.web",
        "configmap/glue-notify-dev.web",
        "role.rbac.authorization.k8s.io/web-glue-notify",
        "rolebinding.rbac.authorization.k8s.io/web-glue-notify",
        "serviceaccount/web-glue-notify",
    ]

    # Uninstall: nothing of glue's is left (the pre-delete twins remove the hook objects).
    bed.helm(helm, "uninstall", "web", "-n", ns, "--wait", "--timeout", "120s")
    assert glue_objects(bed, ns) == []


@pytest.mark.parametrize("helm", HELMS)
def test_helm_create_chart_threads_install_and_upgrade_and_uninstall_leaves_nothing(
    testbed: Testbed, slack: SlackServer, helm: int, tmp_path: Path
) -> None:
    ns = setup_namespace(testbed, f"hooks-h{helm}")
    chart = scaffold(testbed, helm, tmp_path)
    runner = host_runner(testbed, ns, slack, tmp_path)
    check_install_upgrade_uninstall(testbed, slack, helm, ns, chart, runner)


@pytest.mark.parametrize("helm", HELMS)
def test_lint_strict_fails_with_the_schema_message_for_a_misspelt_key(
    testbed: Testbed, helm: int, tmp_path: Path
) -> None:
    chart = scaffold(testbed, helm, tmp_path)
    testbed.helm(helm, "lint", "--strict", str(chart), *tag_args(OLD))
    res = testbed.helm(
        helm,
        "lint",
        "--strict",
        str(chart),
        *tag_args(OLD),
        "--set",
        "glue-hooks.slackSecrets.name=x",
        check=False,
    )
    assert res.code != 0
    schema_message = {
        3: "glue-hooks:\n- (root): Additional property slackSecrets is not allowed",
        4: "glue-hooks:\n- at '': additional properties 'slackSecrets' not allowed",
    }[helm]
    assert schema_message in res.output, res.output
    res = testbed.helm(
        helm, "template", "web", str(chart), "--set-string", "image.tag=1", check=False
    )
    assert res.code != 0
    assert "glue-hooks.tag is required when glue-hooks.enabled is true" in res.err
