"""`glue apply --verify`: after helmfile, watch the changed releases' pods; fail at the
first crash with its log lines, and say so in the deploy record.

kwok plays the kubelet: a pod annotated ``glue-test/crash-after`` turns Ready, then
restarts into CrashLoopBackOff that long after (scripts/TESTBED.md), and kwok serves
the log files the test writes as the containers' logs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.helpers import example_repo, git, glue
from tests.support.slackserver import BOT_TOKEN, SlackServer
from tests.support.sshgit import SshGitServer, ssh_env
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster

#: Secrets the crashing container prints: one in a URL, one that CI also holds in a
#: variable named like a secret. Neither may leave glue unmasked.
DSN_PASSWORD = "dsn-pw-7f3k2m9q"
DB_PASSWORD = "db-pw-4h8j1n6r"

POD_ANNOTATIONS = """      annotations:
        gitops-glue.dev/revision: {{ .Values.revision | quote }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with get (.Values.crashTags | default dict) .Values.image.tag }}
        glue-test/crash-after: {{ . | quote }}
        {{- end }}
"""


def verify_repo(tmp_path: Path, testbed: Testbed) -> tuple[Path, str]:
    """The example repo, staging in a namespace of its own, its chart taking pod
    annotations from values (``a.podAnnotations``; ``a.crashTags``: the tags whose pods
    crash, and after how long), logs served for the namespace.

    See :func:`staging_settings` for the rollback tests' crash."""
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("vfy")
    for name in ("environments/staging.yaml", "glue.yaml"):
        path = repo / name
        path.write_text(path.read_text().replace("namespace: example-staging", f"namespace: {ns}"))
    template = repo / "charts/app/templates/deployment.yaml"
    text = template.read_text()
    old = "      annotations:\n        gitops-glue.dev/revision: {{ .Values.revision | quote }}\n"
    assert text.count(old) == 1
    template.write_text(text.replace(old, POD_ANNOTATIONS))
    helmfile = repo / "helmfile.yaml.gotmpl"
    helmfile.write_text(helmfile.read_text().replace("timeout: 300", "timeout: 60"))
    git(repo, "commit", "-qam", "test namespace; pod annotations from values")
    current, previous = tmp_path / "current.log", tmp_path / "previous.log"
    current.write_text(testbed.container_log("starting app"))
    previous.write_text(
        testbed.container_log("starting app")
        + testbed.container_log(f"dsn postgres://app:{DSN_PASSWORD}@db:5432/app")
        + testbed.container_log(f"using DB_PASSWORD={DB_PASSWORD}")
        + testbed.container_log("FATAL: cannot reach postgres at db:5432", stream="stderr")
    )
    testbed.serve_logs(ns, current, previous)
    return repo, ns


def crash_a_after(repo: Path, delay: str) -> None:
    """Give service a's pods the testbed's crash annotation, and a new tag (committed)."""
    staging = repo / "environments/staging.yaml"
    text = staging.read_text()
    text = text.replace('tag: "3f9c2e1"  # service a', 'tag: "4e5f6a7"  # service a')
    text = text.replace(
        "a:\n  image:", f'a:\n  podAnnotations:\n    glue-test/crash-after: "{delay}"\n  image:'
    )
    staging.write_text(text)
    git(repo, "commit", "-qam", "a 4e5f6a7, which crashes")


def staging_settings(repo: Path, settings: str, *, crash: bool = False) -> None:
    """Add ``settings`` (glue.yaml lines, like ``verify: 60s``) to staging; with ``crash``,
    also make a's tag 4e5f6a7 crash 6 s after Ready (a.crashTags). Committed.

    6 s lets the rollout replace the old pod first: sooner, a loaded testbed can keep the
    old pod beside the crashing one, and a rollback then reuses it as kwok left it (not
    Ready), where a kubelet would have kept probing it."""
    line = "environments/staging.yaml]\n"
    edits = [("glue.yaml", line, line + "".join(f"    {s}\n" for s in settings.split(", ")))]
    if crash:
        edits.append(
            (
                "environments/staging.yaml",
                "a:\n  image:",
                'a:\n  crashTags:\n    "4e5f6a7": "6s"\n  image:',
            )
        )
    for name, old, new in edits:
        path = repo / name
        assert path.read_text().count(old) == 1
        path.write_text(path.read_text().replace(old, new))
    git(repo, "commit", "-qam", f"staging: {settings}" + ("; a 4e5f6a7 crashes" if crash else ""))


def run(testbed: Testbed, repo: Path, *args: str, helm: int = 3) -> tuple[int, str, str]:
    """glue on the testbed, with Helm 3 and helmfile 0.166 or Helm 4 and helmfile 1.x,
    in a CI job that holds DB_PASSWORD."""
    tools = {"DB_PASSWORD": DB_PASSWORD}
    if helm == 4:
        tools["GLUE_HELM"] = testbed.helm_path(4)
        tools["GLUE_HELMFILE"] = str(testbed.bin_dir / "helmfile1")
    r = glue(*args, cwd=repo, env={**testbed.env, **tools}, timeout=300)
    for secret in (DSN_PASSWORD, DB_PASSWORD):
        assert secret not in r.out + r.err
    return r.code, r.out, r.err


def record(testbed: Testbed, ns: str) -> dict[str, str]:
    cm = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-staging")
    assert cm is not None
    return dict(cm["data"])


def test_a_healthy_deploy_passes_verify_after_the_window(testbed: Testbed, tmp_path: Path) -> None:
    repo, ns = verify_repo(tmp_path, testbed)
    began = time.monotonic()
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--verify", "4s", "-o", "json")
    took = time.monotonic() - began
    assert code == 0, err + out
    result = json.loads(out)
    verification = result["verification"]
    assert verification["ok"] is True and verification["failures"] == []
    assert sorted(verification["releases"]) == [f"{ns}/a", f"{ns}/b"]
    assert verification["pods"] == 2
    assert took >= 4  # it watched the whole window
    verified = json.loads(record(testbed, ns)["verified.json"])
    assert {k: v["tag"] for k, v in verified.items()} == {"a": "3f9c2e1", "b": "1d2e3f4"}
    # Nothing changed on a second apply: nothing to watch, and the verification stays.
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--verify", "30s")
    assert code == 0, err + out
    assert "no release changed; nothing to watch" in err + out
    assert json.loads(record(testbed, ns)["verified.json"]) == verified


@pytest.mark.parametrize("helm", [3, 4])
def test_a_crash_after_ready_fails_verify_early_with_its_log(
    testbed: Testbed, tmp_path: Path, helm: int
) -> None:
    repo, ns = verify_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "apply", "--env", "staging", helm=helm)
    assert code == 0, err + out
    crash_a_after(repo, "3s")
    began = time.monotonic()
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--verify", "60s", helm=helm)
    took = time.monotonic() - began
    assert code == 1, err + out
    assert took < 40  # the verdict came at the crash, not at the end of the window
    assert "deployed, then failed verification" in err
    assert "CrashLoopBackOff" in err
    assert "FATAL: cannot reach postgres at db:5432" in err  # the previous run's log
    assert "dsn postgres://app:***@db:5432/app" in err  # masked, the rest readable
    rec = record(testbed, ns)
    failed = json.loads(rec["failed.json"])
    assert failed["a"]["tag"] == "4e5f6a7"
    assert "CrashLoopBackOff" in failed["a"]["reason"]
    assert "FATAL: cannot reach postgres at db:5432" in failed["a"]["logs"]
    assert DSN_PASSWORD not in rec["failed.json"] and DB_PASSWORD not in rec["failed.json"]
    # What runs successfully is still the last good version; b was not touched.
    services = json.loads(rec["services.json"])
    assert services["a"]["tag"] == "3f9c2e1" and "b" not in failed
    # promote --require-deployed refuses the version that failed verification.
    code, out, err = run(
        testbed, repo, "promote", "a", "--to", "prod", "--require-deployed", "--dry-run"
    )
    assert code == 2 and "failed" in err, err + out


def test_glue_yaml_verify_is_the_default_and_a_report_carries_the_logs(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, _ = verify_repo(tmp_path, testbed)
    staging_settings(repo, "verify: 60s")
    assert run(testbed, repo, "apply", "--env", "staging", "--verify", "0")[0] == 0
    crash_a_after(repo, "2s")
    report = tmp_path / "report.json"
    code, out, err = run(
        testbed, repo, "apply", "--env", "staging", "--report", str(report), "-o", "json"
    )
    assert code == 1, err + out
    written = json.loads(report.read_text())
    [pod] = written["failing_pods"]
    assert pod["release"] == "a" and pod["reason"] == "CrashLoopBackOff"
    assert "FATAL: cannot reach postgres at db:5432" in pod["logs"]
    assert written["verification"]["ok"] is False
    assert DSN_PASSWORD not in report.read_text() and DB_PASSWORD not in report.read_text()


@pytest.mark.parametrize("helm", [3, 4])
def test_on_failure_rollback_reverts_holds_and_deploys_the_previous_version(
    testbed: Testbed, tmp_path: Path, helm: int
) -> None:
    repo, ns = verify_repo(tmp_path, testbed)
    staging_settings(repo, "verify: 25s, on_failure: rollback", crash=True)
    staging = repo / "environments/staging.yaml"
    code, out, err = run(testbed, repo, "apply", "--env", "staging", helm=helm)
    assert code == 0, err + out  # 3f9c2e1 stays healthy: verified
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    bump = git(repo, "rev-parse", "HEAD").strip()

    code, out, err = run(testbed, repo, "apply", "--env", "staging", "-o", "json", helm=helm)
    assert code == 1, err + out
    assert "CrashLoopBackOff" in err and "FATAL: cannot reach postgres" in err
    assert "rolled back a in staging" in err and "glue unhold a --env staging" in err
    # The branch: one revert commit on top of the bump, holding a with the reason.
    head = git(repo, "log", "-1", "--format=%B").strip()
    assert f"Glue-Reverts: {bump}" in head and "Glue-Hold: staging a" in head
    assert git(repo, "rev-parse", "HEAD~1").strip() == bump
    holds = (repo / "glue-holds.yaml").read_text()
    assert "CrashLoopBackOff" in holds and "glue apply rolled it back" in holds
    assert 'tag: "3f9c2e1"' in staging.read_text()
    # The cluster runs the previous version again, verified.
    deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/a")
    assert deployment is not None
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":3f9c2e1")
    rec = record(testbed, ns)
    assert json.loads(rec["services.json"])["a"]["tag"] == "3f9c2e1"
    assert "the rolled-back version: verified" in err, err + json.dumps(
        testbed.pods(ns, "app.kubernetes.io/instance=a"), indent=1
    )
    assert json.loads(rec["verified.json"])["a"]["tag"] == "3f9c2e1"
    # The hold keeps the next pipeline from deploying the bad tag again.
    again = glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo)
    assert again.code == 2 and "held" in again.err, again.err


def test_notify_says_in_the_deploys_thread_that_verification_failed_with_the_log(
    testbed: Testbed, slack: SlackServer, tmp_path: Path
) -> None:
    repo, _ = verify_repo(tmp_path, testbed)
    assert run(testbed, repo, "apply", "--env", "staging")[0] == 0
    crash_a_after(repo, "2s")
    bot = {
        **testbed.env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_CHANNEL": "#deploys",
        "GLUE_SLACK_API_URL": slack.api_url,
    }
    start = glue("notify", "--phase", "pre-upgrade", "--env", "staging", cwd=repo, env=bot)
    assert start.code == 0, start.err
    report = tmp_path / "report.json"
    code, out, err = run(
        testbed, repo, "apply", "--env", "staging", "--verify", "60s", "--report", str(report)
    )
    assert code == 1, err + out
    failed = glue(
        "notify",
        "--phase",
        "failed",
        "--env",
        "staging",
        "--apply-report",
        str(report),
        cwd=repo,
        env=bot,
    )
    assert failed.code == 0, failed.err
    [first, reply] = slack.api_calls("chat.postMessage")
    assert reply.json["thread_ts"] == first.response_json()["ts"]
    text = json.dumps(reply.json)
    assert "CrashLoopBackOff" in text
    assert "FATAL: cannot reach postgres at db:5432" in text
    for request in slack.requests:
        assert DSN_PASSWORD not in request.body.decode()
        assert DB_PASSWORD not in request.body.decode()


def test_a_failed_verification_replies_in_the_thread_a_hook_job_started(
    testbed: Testbed, slack: SlackServer, tmp_path: Path
) -> None:
    """With the notify hooks chart, each release's thread is started by its pre-upgrade
    hook Job (``glue notify --tag``, per release); the CI job that verified replies in
    that thread the same way, naming the service and tag."""
    repo, ns = verify_repo(tmp_path, testbed)
    assert run(testbed, repo, "apply", "--env", "staging")[0] == 0
    crash_a_after(repo, "2s")
    bot = {
        **testbed.env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_CHANNEL": "#deploys",
        "GLUE_SLACK_API_URL": slack.api_url,
        "GLUE_RECORD_NAMESPACE": ns,  # as the chart gives its hook Jobs
    }
    # The chart creates each release's thread state; its hook Jobs may only update it.
    testbed.kubectl("create", "configmap", "glue-notify-staging.a", "-n", ns)
    hook = ("--env", "staging", "--service", "a", "--tag", "4e5f6a7")
    started = glue("notify", "--phase", "pre-upgrade", *hook, cwd=tmp_path, env=bot)
    assert started.code == 0, started.err
    report = tmp_path / "report.json"
    code, out, err = run(
        testbed, repo, "apply", "--env", "staging", "--verify", "60s", "--report", str(report)
    )
    assert code == 1, err + out
    failed = glue(
        "notify", "--phase", "failed", *hook, "--apply-report", str(report), cwd=repo, env=bot
    )
    assert failed.code == 0, failed.err
    [first, reply] = slack.api_calls("chat.postMessage")
    assert reply.json["thread_ts"] == first.response_json()["ts"]
    assert "FATAL: cannot reach postgres at db:5432" in json.dumps(reply.json)


def test_on_failure_rollback_pushes_the_revert_with_remote_and_deploys_it(
    testbed: Testbed, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    """In CI the checkout is a clone; with --remote (GLUE_REMOTE) the revert and its hold
    are pushed to the deployment repository, and the clone deploys the reverted files."""
    repo, ns = verify_repo(tmp_path, testbed)
    staging_settings(repo, "verify: 25s, on_failure: rollback", crash=True)
    remote = ssh_git_server.new_remote("verify", seed=repo)
    ssh = ssh_env(ssh_git_server)
    clone = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(remote.path), str(clone))
    assert run(testbed, clone, "apply", "--env", "staging")[0] == 0
    bumped = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "staging",
        "--remote",
        remote.url,
        cwd=tmp_path,
        env=ssh,
    )
    assert bumped.code == 0, bumped.err
    bump = remote.head()
    git(clone, "pull", "-q")  # the next pipeline's checkout

    r = glue(
        "apply",
        "--env",
        "staging",
        cwd=clone,
        env={**testbed.env, **ssh, "GLUE_REMOTE": remote.url},
        timeout=300,
    )
    assert r.code == 1, r.err + r.out
    [revert, *_] = remote.log()
    assert f"rolled back a in staging: commit {revert.sha[:10]} (pushed to" in r.err
    assert revert.parents == (bump,)
    assert f"Glue-Reverts: {bump}" in revert.message and "Glue-Hold: staging a" in revert.message
    assert 'tag: "3f9c2e1"' in remote.show("main", "environments/staging.yaml")
    assert "glue apply rolled it back" in remote.show("main", "glue-holds.yaml")
    deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/a")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":3f9c2e1")
    assert record(testbed, ns)["git-revision"] == revert.sha  # what now runs is that commit
    again = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "staging",
        "--remote",
        remote.url,
        cwd=tmp_path,
        env=ssh,
    )
    assert again.code == 2 and "held" in again.err, again.err
    assert remote.head() == revert.sha
