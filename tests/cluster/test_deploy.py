"""`glue diff` / `glue apply` / `glue unlock` against the real testbed cluster."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import example_repo, git, glue
from tests.support.slackserver import SlackServer
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def deploy_repo(tmp_path: Path, testbed: Testbed) -> tuple[Path, str]:
    """The example repo whose staging lives in a namespace of its own; helm waits 60s."""
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("stg")
    staging = repo / "environments/staging.yaml"
    staging.write_text(
        staging.read_text().replace("namespace: example-staging", f"namespace: {ns}")
    )
    config = repo / "glue.yaml"
    config.write_text(config.read_text().replace("namespace: example-staging", f"namespace: {ns}"))
    helmfile = repo / "helmfile.yaml.gotmpl"
    helmfile.write_text(helmfile.read_text().replace("timeout: 300", "timeout: 60"))
    git(repo, "commit", "-qam", "test namespace")
    return repo, ns


def add_presync_hook(repo: Path, command: str, *args: str) -> None:
    """Give every release a helmfile presync hook running ``command args`` (committed)."""
    helmfile = repo / "helmfile.yaml.gotmpl"
    helmfile.write_text(
        helmfile.read_text().replace(
            "    chart: ./charts/app\n",
            "    chart: ./charts/app\n    hooks:\n      - events: [presync]\n"
            f"        command: {command}\n        args: {json.dumps(list(args))}\n",
        )
    )
    git(repo, "commit", "-qam", f"presync hook: {command}")


def run(testbed: Testbed, repo: Path, *args: str, **env: str) -> tuple[int, str, str]:
    r = glue(*args, cwd=repo, env={**testbed.env, **env}, timeout=300)
    return r.code, r.out, r.err


def statuses(testbed: Testbed, ns: str, release: str) -> list[str]:
    secrets = sorted(
        testbed.release_secrets(ns, release), key=lambda s: int(s["metadata"]["labels"]["version"])
    )
    return [s["metadata"]["labels"]["status"] for s in secrets]


def record(testbed: Testbed, ns: str) -> dict[str, object] | None:
    cm = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-staging")
    return None if cm is None else dict(cm["data"])


def lease(testbed: Testbed, ns: str) -> dict[str, object] | None:
    return testbed.get(f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/glue-deploy-staging")


def kill_when_pending(
    testbed: Testbed, proc: subprocess.Popen[str], ns: str, release: str, status: str
) -> None:
    testbed.wait_until(lambda: status in statuses(testbed, ns, release) or None, timeout=60)
    proc.kill()
    proc.wait()


def test_diff_exit_codes_and_apply_writes_the_record(testbed: Testbed, tmp_path: Path) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "diff", "--env", "staging", "-o", "json")
    assert code == 3, err
    changes = json.loads(out)["changes"]
    assert changes == {
        r: [f"Deployment (apps) {ns}/{r} has been added", f"Service (v1) {ns}/{r} has been added"]
        for r in ("a", "b")
    }
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "-o", "json")
    assert code == 0, err + out
    assert json.loads(out)["releases"] == ["a", "b"]
    assert statuses(testbed, ns, "a") == ["deployed"]
    rec = record(testbed, ns)
    assert rec is not None
    # since: when this tag was first deployed successfully (here: this deploy).
    since = rec["deployed-at"]
    assert json.loads(str(rec["services.json"])) == {
        "a": {"release": "a", "revision": "3f9c2e1", "tag": "3f9c2e1", "since": since},
        "b": {"release": "b", "revision": "1d2e3f4", "tag": "1d2e3f4", "since": since},
    }
    assert rec["git-revision"] == git(repo, "rev-parse", "HEAD").strip()
    assert lease(testbed, ns) is None  # released
    code, out, err = run(testbed, repo, "diff", "--env", "staging", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == {
        "environment": "staging",
        "changed": False,
        "changes": {},
        "unchanged": ["a", "b"],
    }
    # Only b changes: only b is reported.
    assert glue("bump-tag", "b", "0c0c0c0", "--env", "staging", cwd=repo).code == 0
    summary = tmp_path / "summary.md"
    code, out, err = run(testbed, repo, "diff", "--env", "staging", "--summary-file", str(summary))
    assert code == 3
    assert "b: would change (2 resource(s))" in out and "a: no changes" in out
    assert "- **b** would change:" in summary.read_text()
    # A broken chart is an error, not "changes".
    (repo / "charts/app/templates/broken.yaml").write_text("{{ .Values.nope.nope }}\n")
    code, out, err = run(testbed, repo, "diff", "--env", "staging")
    assert code == 1 and "helmfile diff failed" in err


def test_pending_upgrade_left_by_a_killed_helm_is_recovered(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    assert run(testbed, repo, "apply", "--env", "staging")[0] == 0
    stuck = testbed.popen(
        "helm",
        "upgrade",
        "a",
        str(repo / "charts/app"),
        "-n",
        ns,
        "--reuse-values",
        "--set",
        "resources.requests.cpu=1000",
        "--wait",
        "--timeout",
        "120s",
    )
    kill_when_pending(testbed, stuck, ns, "a", "pending-upgrade")
    assert statuses(testbed, ns, "a") == ["deployed", "pending-upgrade"]
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--recover", "never")
    assert code == 1 and "stuck in pending-upgrade (revision 2) and --recover=never" in err
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    assert "recovered " + ns + "/a: revision 2 was pending-upgrade" in out
    assert "rollback to revision 1" in out
    # Explicit rollback to 1, then the new deploy: history tells the story.
    assert statuses(testbed, ns, "a") == ["superseded", "pending-upgrade", "superseded", "deployed"]
    rec = record(testbed, ns)
    assert rec is not None
    [recovery] = json.loads(str(rec["recoveries.json"]))
    assert (recovery["action"], recovery["to_revision"]) == ("rollback", 1)
    assert json.loads(str(rec["services.json"]))["a"]["tag"] == "4e5f6a7"


def test_helm4_with_helmfile1_recovers_and_deploys(testbed: Testbed, tmp_path: Path) -> None:
    """Helm 4 through helmfile >= 1.0: diff, apply, and recovery of a SIGKILLed upgrade."""
    repo, ns = deploy_repo(tmp_path, testbed)
    helm4 = {"GLUE_HELM": testbed.helm_path(4), "GLUE_HELMFILE": str(testbed.bin_dir / "helmfile1")}
    code, out, err = run(testbed, repo, "diff", "--env", "staging", **helm4)
    assert code == 3, err
    code, out, err = run(testbed, repo, "apply", "--env", "staging", **helm4)
    assert code == 0, err + out
    stuck = testbed.popen(
        testbed.helm_path(4),
        "upgrade",
        "a",
        str(repo / "charts/app"),
        "-n",
        ns,
        "--reuse-values",
        "--set",
        "resources.requests.cpu=1000",
        "--wait",
        "--timeout",
        "120s",
    )
    kill_when_pending(testbed, stuck, ns, "a", "pending-upgrade")
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    code, out, err = run(testbed, repo, "apply", "--env", "staging", **helm4)
    assert code == 0, err + out
    assert "revision 2 was pending-upgrade" in out and "rollback to revision 1" in out
    assert statuses(testbed, ns, "a") == ["superseded", "pending-upgrade", "superseded", "deployed"]
    history = testbed.helm(4, "history", "a", "-n", ns, "-o", "json").out
    assert json.loads(history)[-1]["status"] == "deployed"
    code, out, err = run(testbed, repo, "diff", "--env", "staging", **helm4)
    assert code == 0, err


def test_pending_install_is_uninstalled_and_installed(testbed: Testbed, tmp_path: Path) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    stuck = testbed.popen(
        "helm",
        "install",
        "a",
        str(repo / "charts/app"),
        "-n",
        ns,
        "--create-namespace",
        "--set",
        "resources.requests.cpu=1000",
        "--set",
        "image.tag=x",
        "--wait",
        "--timeout",
        "120s",
    )
    kill_when_pending(testbed, stuck, ns, "a", "pending-install")
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    assert "revision 1 was pending-install" in out and "uninstall" in out
    assert statuses(testbed, ns, "a") == ["deployed"]


def test_presync_hooks_run_under_the_lock_even_when_helmfile_skips_diffs(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    marker = tmp_path / "presync.log"
    # One write per hook: the two releases' hooks run at the same time.
    probe = (
        f'echo "$(kubectl get lease glue-deploy-staging -n {ns} '
        f'-o jsonpath={{.spec.holderIdentity}} || echo no-lock)" >> {marker}'
    )
    add_presync_hook(repo, "sh", "-c", probe)
    # Nothing is installed yet: with --skip-diff-on-install helmfile runs no diff at all
    # (no special case in glue: helmfile only starts once the lock is held).
    code, out, err = run(testbed, repo, "apply", "--env", "staging", "--", "--skip-diff-on-install")
    assert code == 0, err + out
    seen = [line for line in marker.read_text().splitlines() if line]
    assert len(seen) == 2, seen  # one presync hook per release, each saw glue's lock held
    assert all("(pid " in holder and "no-lock" not in holder for holder in seen), seen
    assert statuses(testbed, ns, "a") == ["deployed"]


def test_sigterm_during_rollout_leaves_nothing_pending_or_locked(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    assert run(testbed, repo, "apply", "--env", "staging")[0] == 0
    assert (
        glue(
            "set",
            str(repo / "environments/staging.yaml"),
            "a.resources.requests.cpu",
            "1000",
            "--create",
        ).code
        == 0
    )
    git(repo, "commit", "-qam", "unschedulable a")
    proc = testbed.popen(sys.executable, "-m", "gitops_glue", "apply", "--env", "staging", cwd=repo)
    testbed.wait_until(lambda: "pending-upgrade" in statuses(testbed, ns, "a") or None, timeout=60)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    assert not any(s.startswith("pending") for s in statuses(testbed, ns, "a")[-1:])
    assert lease(testbed, ns) is None


def test_two_deploys_take_turns_and_a_short_timeout_names_the_holder(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    # Every release sleeps 8s before syncing, so the first deploy holds the lock a while.
    add_presync_hook(repo, "sleep", "8")
    first = testbed.popen(
        sys.executable,
        "-m",
        "gitops_glue",
        "apply",
        "--env",
        "staging",
        cwd=repo,
        env={"GITLAB_CI": "true", "CI_PIPELINE_URL": "https://ci.example.com/p/1"},
    )
    testbed.wait_until(lambda: lease(testbed, ns), timeout=60)
    second = testbed.popen(
        sys.executable, "-m", "gitops_glue", "apply", "--env", "staging", cwd=repo
    )
    code, _out, err = run(testbed, repo, "apply", "--env", "staging", "--lock-timeout", "2s")
    assert code == 1
    assert "another deploy holds the lock for this environment: https://ci.example.com/p/1" in err
    # A waiting deploy that is cancelled stops waiting at once.
    cancelled = testbed.popen(
        sys.executable, "-m", "gitops_glue", "apply", "--env", "staging", cwd=repo
    )
    assert cancelled.stdout is not None
    waiting = cancelled.stdout.readline()  # helmfile starts after the lock: glue's line is first
    assert "waiting for the deploy lock held by https://ci.example.com/p/1" in waiting
    cancelled.send_signal(signal.SIGTERM)
    out3, err3 = cancelled.communicate(timeout=30)
    assert cancelled.returncode == 130, out3 + err3
    assert "while waiting for the deploy lock; nothing was deployed" in err3
    assert first.poll() is None  # the holder deploys on, undisturbed
    _out1, err1 = first.communicate(timeout=200)
    out2, err2 = second.communicate(timeout=200)
    assert (first.returncode, second.returncode) == (0, 0), err1 + err2
    assert "waiting for the deploy lock held by https://ci.example.com/p/1" in out2
    assert lease(testbed, ns) is None


def image(testbed: Testbed, ns: str, release: str) -> str:
    deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{release}")
    assert deployment is not None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_deploy_that_waited_for_the_lock_compares_with_the_releases_as_they_are_then(
    testbed: Testbed, tmp_path: Path
) -> None:
    """helmfile starts only once the lock is held: it never acts on a diff taken before."""
    repo, ns = deploy_repo(tmp_path, testbed)
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    assert image(testbed, ns, "a").endswith(":3f9c2e1")
    # A second checkout still at this commit: nothing to change for it right now...
    older = tmp_path / "older"
    shutil.copytree(repo, older)
    # ...until the first deploy, slow and holding the lock, moves a to a new tag.
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    add_presync_hook(repo, "sleep", "6")
    first = testbed.popen(
        sys.executable, "-m", "gitops_glue", "apply", "--env", "staging", cwd=repo
    )
    testbed.wait_until(lambda: lease(testbed, ns), timeout=60)
    code, out, err = run(testbed, older, "apply", "--env", "staging")
    _out1, err1 = first.communicate(timeout=200)
    assert first.returncode == 0, err1
    assert code == 0, err + out
    # The older checkout deployed last, against a as the first deploy left it.
    assert image(testbed, ns, "a").endswith(":3f9c2e1")
    assert statuses(testbed, ns, "a") == ["superseded", "superseded", "deployed"]
    assert lease(testbed, ns) is None


def test_an_expired_lease_is_taken_over_and_unlock_removes_one(
    testbed: Testbed, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)).strftime(
        "%Y-%m-%dT%H:%M:%S.000000Z"
    )
    testbed.kubectl("create", "namespace", ns)
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "glue-deploy-staging", "namespace": ns},
        "spec": {
            "holderIdentity": "dead-job",
            "leaseDurationSeconds": 60,
            "acquireTime": old,
            "renewTime": old,
        },
    }
    testbed.kubectl("apply", "-f", "-", input=json.dumps(body))
    code, out, err = run(testbed, repo, "apply", "--env", "staging")
    assert code == 0, err + out
    assert "took over the expired deploy lock of dead-job" in out
    body["spec"]["renewTime"] = dt.datetime.now(dt.timezone.utc).strftime(  # type: ignore[index]
        "%Y-%m-%dT%H:%M:%S.000000Z"
    )
    testbed.kubectl("apply", "-f", "-", input=json.dumps(body))
    code, out, err = run(testbed, repo, "unlock", "--env", "staging")
    assert code == 0 and out.strip() == "removed the deploy lock of staging (held by dead-job)"
    assert lease(testbed, ns) is None


def test_a_pod_that_never_becomes_ready_is_named_with_its_reason(
    testbed: Testbed, tmp_path: Path, slack: SlackServer
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    helmfile = repo / "helmfile.yaml.gotmpl"  # helm waits this long for b, which never runs
    helmfile.write_text(helmfile.read_text().replace("timeout: 60", "timeout: 20"))
    assert (
        glue(
            "set",
            str(repo / "environments/staging.yaml"),
            "b.resources.requests.cpu",
            "1000",
            "--create",
        ).code
        == 0
    )
    git(repo, "commit", "-qam", "unschedulable b")
    report = tmp_path / "apply.json"
    code, out, err = run(testbed, repo, "apply", "--env", "staging", GLUE_APPLY_REPORT=str(report))
    assert code == 1, out
    assert "helmfile apply failed for 'staging'" in err
    assert f"{ns}/b-" in err and "Unschedulable" in err
    assert "Insufficient cpu" in err
    assert lease(testbed, ns) is None
    [pod] = json.loads(report.read_text())["failing_pods"]
    assert (pod["namespace"], pod["reason"]) == (ns, "Unschedulable")
    # The failure notification says the same.
    code, out, err = run(
        testbed,
        repo,
        "notify",
        "--phase",
        "failed",
        "--env",
        "staging",
        GLUE_APPLY_REPORT=str(report),
        SLACK_WEBHOOK_URL=slack.webhook_url,
    )
    assert code == 0, err
    [message] = slack.payloads()
    text = json.dumps(message)
    assert "Deployment to staging failed" in text
    assert f"{pod['namespace']}/{pod['pod']}: Unschedulable" in text


def test_helm4_with_an_old_helmfile_is_refused_clearly(testbed: Testbed, tmp_path: Path) -> None:
    repo, _ns = deploy_repo(tmp_path, testbed)
    code, _out, err = run(
        testbed, repo, "apply", "--env", "staging", GLUE_HELM=testbed.helm_path(4)
    )
    assert code == 1  # the tools installed, not the input: an operation failure
    assert "cannot drive Helm 4" in err
