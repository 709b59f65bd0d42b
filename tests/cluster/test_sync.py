"""`glue sync`: the cluster pulls the deployment repository from the test sshd and
applies what changed, on the real testbed cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

from tests.cluster import test_image
from tests.cluster.test_deploy import add_presync_hook, deploy_repo, lease, record, statuses
from tests.cluster.test_image import Images, container_pid, run_in_image, started_in_image
from tests.support.helpers import example_repo, git, glue
from tests.support.slackserver import SlackServer
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env
from tests.support.testbed import Testbed

pytestmark = pytest.mark.cluster


def remote_of(server: SshGitServer, repo: Path) -> BareRemote:
    """An empty repository on the sshd that ``repo``'s main is pushed to."""
    remote = server.new_remote("sync")
    push(repo, remote)
    return remote


def push(repo: Path, remote: BareRemote) -> str:
    git(repo, "push", "-q", str(remote.path), "HEAD:refs/heads/main")
    head = remote.head()
    assert head is not None
    return head


def sync_args(remote: BareRemote, work: Path, *more: str, env: str = "staging") -> list[str]:
    return ["sync", "--env", env, "--remote", remote.url, "--work-dir", str(work), *more]


def sync_once(
    testbed: Testbed, server: SshGitServer, remote: BareRemote, work: Path, **env: str
) -> tuple[int, dict[str, object], str]:
    """``glue sync --once -o json`` from a folder with no checkout: the exit code, the
    result and stderr."""
    r = glue(
        *sync_args(remote, work, "--once", "-o", "json"),
        cwd=work.parent,
        env={**testbed.env, **ssh_env(server), **env},
        timeout=300,
    )
    return r.code, json.loads(r.out), r.err


def sync_state(testbed: Testbed, ns: str) -> dict[str, str]:
    cm = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-sync-staging")
    assert cm is not None
    return dict(cm["data"])


def status_of(testbed: Testbed, repo: Path) -> dict[str, object]:
    """``glue status --cluster``'s sync part for staging."""
    r = glue("status", "--cluster", "-o", "json", cwd=repo, env=testbed.env, timeout=120)
    assert r.code == 0, r.err
    sync: dict[str, object] = json.loads(r.out)["environments"]["staging"]["sync"]
    return sync


def test_sync_applies_a_pushed_bump_once_and_records_its_revision(
    testbed: Testbed, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    remote = remote_of(ssh_git_server, repo)
    work = tmp_path / "work"
    code, out, err = sync_once(testbed, ssh_git_server, remote, work)
    assert code == 0, err
    assert (out["action"], out["previous"], out["revision"]) == ("applied", None, remote.head())
    assert statuses(testbed, ns, "a") == statuses(testbed, ns, "b") == ["deployed"]
    rec = record(testbed, ns)
    assert rec is not None and rec["git-revision"] == remote.head()
    assert str(rec["deployed-by"]).startswith("glue sync ")

    # A bump pushed by CI: only b is deployed, and its revision recorded.
    assert glue("bump-tag", "b", "0c0c0c0", "--env", "staging", cwd=repo).code == 0
    bumped = push(repo, remote)
    # --dry-run: the diff of what would be applied; nothing deployed or recorded.
    r = glue(
        *sync_args(remote, work, "--dry-run", "-o", "json"),
        cwd=tmp_path,
        env={**testbed.env, **ssh_env(ssh_git_server)},
        timeout=300,
    )
    assert r.code == 0, r.err
    preview = json.loads(r.out)
    assert (preview["action"], preview["revision"]) == ("would-apply", bumped)
    assert list(preview["apply"]["changes"]) == ["b"]
    assert statuses(testbed, ns, "b") == ["deployed"]
    rec = record(testbed, ns)
    assert rec is not None and rec["git-revision"] != bumped
    code, out, err = sync_once(testbed, ssh_git_server, remote, work)
    assert code == 0, err
    assert out["action"] == "applied" and out["revision"] == bumped
    assert out["apply"]["releases"] == ["b"]  # type: ignore[index]
    assert statuses(testbed, ns, "a") == ["deployed"]
    assert statuses(testbed, ns, "b") == ["superseded", "deployed"]
    rec = record(testbed, ns)
    assert rec is not None and rec["git-revision"] == bumped
    assert json.loads(str(rec["services.json"]))["b"]["tag"] == "0c0c0c0"

    # No new commit: nothing happens, no new Helm revision.
    code, out, err = sync_once(testbed, ssh_git_server, remote, work)
    assert code == 0, err
    assert out["action"] == "up-to-date" and out["apply"] is None
    assert statuses(testbed, ns, "b") == ["superseded", "deployed"]

    # A commit that changes no release's inputs: recorded, no helmfile apply.
    (repo / "NOTES.md").write_text("notes\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-qm", "notes")
    notes = push(repo, remote)
    code, out, err = sync_once(testbed, ssh_git_server, remote, work)
    assert code == 0, err
    assert out["action"] == "recorded"
    assert statuses(testbed, ns, "a") == ["deployed"]
    assert statuses(testbed, ns, "b") == ["superseded", "deployed"]
    rec = record(testbed, ns)
    assert rec is not None and rec["git-revision"] == notes
    state = sync_state(testbed, ns)
    assert (state["seen-revision"], state["applied-revision"]) == (notes, notes)
    assert state["failures"] == "0" and state["failing-revision"] == ""

    # A wrong host key: nothing fetched, nothing deployed, exit 2 (bad input).
    r = glue(
        *sync_args(remote, work, "--once"),
        cwd=tmp_path,
        env={
            **testbed.env,
            **ssh_env(ssh_git_server),
            "GLUE_SSH_KNOWN_HOSTS": (ssh_git_server.wrong_known_hosts_line),
        },
        timeout=120,
    )
    assert r.code == 2, r.err
    assert "host key" in (r.out + r.err).lower()


def test_two_syncs_and_a_ci_apply_racing_apply_each_revision_once(
    testbed: Testbed, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    # Every release sleeps 8s before syncing: the CI apply holds the lock a while.
    add_presync_hook(repo, "sleep", "8")
    remote = remote_of(ssh_git_server, repo)
    ci = testbed.popen(sys.executable, "-m", "gitops_glue", "apply", "--env", "staging", cwd=repo)
    testbed.wait_until(lambda: lease(testbed, ns), timeout=60)
    syncs = [
        testbed.popen(
            sys.executable,
            "-m",
            "gitops_glue",
            *sync_args(remote, tmp_path / f"work{i}", "--once", "-o", "json"),
            cwd=tmp_path,
            env=ssh_env(ssh_git_server),
        )
        for i in (1, 2)
    ]
    ci_out, ci_err = ci.communicate(timeout=240)
    assert ci.returncode == 0, ci_out + ci_err
    for proc in syncs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
        assert json.loads(out)["action"] == "up-to-date"
    # One Helm revision per release: the revision was applied once, by CI.
    assert statuses(testbed, ns, "a") == statuses(testbed, ns, "b") == ["deployed"]
    rec = record(testbed, ns)
    assert rec is not None and rec["git-revision"] == remote.head()
    assert lease(testbed, ns) is None


def test_a_failing_revision_alerts_once_and_keeps_the_previous_revision(
    testbed: Testbed, ssh_git_server: SshGitServer, slack: SlackServer, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    remote = remote_of(ssh_git_server, repo)
    work = tmp_path / "work"
    env = {"SLACK_WEBHOOK_URL": slack.webhook_url}
    code, out, err = sync_once(testbed, ssh_git_server, remote, work, **env)
    assert code == 0, err
    good = remote.head()
    assert slack.webhook_requests() == []

    (repo / "charts/app/templates/broken.yaml").write_text("{{ .Values.nope.nope }}\n")
    git(repo, "add", "charts/app/templates/broken.yaml")
    git(repo, "commit", "-qm", "a broken chart")
    broken = push(repo, remote)
    for round_ in (1, 2):  # two rounds (two CronJob runs): one alert
        code, out, err = sync_once(testbed, ssh_git_server, remote, work, **env)
        assert code == 1, err
        assert out["action"] == "failed" and out["revision"] == broken
        assert "helmfile apply failed" in str(out["error"])
        assert out["alerted"] is (round_ == 1)
    [alert] = slack.webhook_requests()
    assert alert.json["text"].startswith("Deployment to staging failed")
    assert "broken.yaml" in json.dumps(alert.json)  # why: helmfile's error
    rec = record(testbed, ns)
    assert rec is not None and rec["git-revision"] == good
    state = sync_state(testbed, ns)
    assert (state["failing-revision"], state["alerted-revision"]) == (broken, broken)
    assert state["failures"] == "2" and state["applied-revision"] == good
    # glue status --cluster: the branch is ahead of what runs, and the sync fails.
    shown = status_of(testbed, repo)
    assert (shown["pending"], shown["failing"], shown["failures"]) == (True, True, 2)
    assert (shown["applied_revision"], shown["branch_tip"]) == (good, broken)
    text = glue("status", "--cluster", cwd=repo, env=testbed.env, timeout=120).out
    assert f"sync: staging: applied {str(good)[:10]}" in text
    assert f"PENDING: main is at {broken[:10]}" in text and "FAILING" in text

    # Fixed: the releases' inputs are those deployed again: recorded, the failure cleared,
    # no alert.
    git(repo, "rm", "-q", "charts/app/templates/broken.yaml")
    git(repo, "commit", "-qm", "fix the chart")
    fixed = push(repo, remote)
    code, out, err = sync_once(testbed, ssh_git_server, remote, work, **env)
    assert code == 0, err
    assert out["action"] == "recorded" and len(slack.webhook_requests()) == 1
    state = sync_state(testbed, ns)
    assert (state["failing-revision"], state["failures"], state["applied-revision"]) == (
        "",
        "0",
        fixed,
    )
    shown = status_of(testbed, repo)
    assert (shown["pending"], shown["failing"], shown["applied_revision"]) == (False, False, fixed)


def test_a_fetch_failing_from_the_first_run_alerts_once_across_cronjob_runs(
    testbed: Testbed, ssh_git_server: SshGitServer, slack: SlackServer, tmp_path: Path
) -> None:
    """No glue.yaml was ever fetched: the sync state goes to --record-namespace."""
    ns = testbed.unique("sync-fetch")
    testbed.kubectl("create", "namespace", ns)
    server = ssh_git_server
    url = f"ssh://{server.user}@127.0.0.1:{server.port}{server.root}/repos/missing.git"
    for run_ in (1, 2):  # two CronJob runs (processes): one alert
        r = glue(
            "sync",
            "--env",
            "prod",
            "--remote",
            url,
            "--record-namespace",
            ns,
            "--once",
            "-o",
            "json",
            cwd=tmp_path,
            env={**testbed.env, **ssh_env(server), "SLACK_WEBHOOK_URL": slack.webhook_url},
            subprocess=True,
        )
        assert r.code == 1, r.err
        out = json.loads(r.out)
        assert out["action"] == "failed" and "fetching from" in out["error"]
        assert out["alerted"] is (run_ == 1)
    assert len(slack.webhook_requests()) == 1
    cm = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-sync-prod")
    assert cm is not None
    state = cm["data"]
    assert (state["failing-revision"], state["alerted-revision"], state["failures"]) == (
        "(fetch)",
        "(fetch)",
        "2",
    )


def test_every_stops_cleanly_on_sigterm_mid_apply(
    testbed: Testbed, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    repo, ns = deploy_repo(tmp_path, testbed)
    remote = remote_of(ssh_git_server, repo)
    work = tmp_path / "work"
    health = tmp_path / "health" / "ok"
    code, _out, err = sync_once(testbed, ssh_git_server, remote, work)
    assert code == 0, err
    good = remote.head()
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
    push(repo, remote)
    proc = testbed.popen(
        sys.executable,
        "-m",
        "gitops_glue",
        *sync_args(remote, work, "--every", "2s", "--health-file", str(health)),
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    testbed.wait_until(lambda: "pending-upgrade" in statuses(testbed, ns, "a") or None, timeout=90)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    assert not any(s.startswith("pending") for s in statuses(testbed, ns, "a")[-1:])
    assert lease(testbed, ns) is None
    rec = record(testbed, ns)
    assert rec is not None and rec["git-revision"] == good


#: The images built once for the module (tests/cluster/test_image.py).
images = test_image.images

SYNC_CHART = Path(__file__).resolve().parents[2] / "charts" / "glue-sync"


def rendered(testbed: Testbed, *values: str) -> list[dict[str, Any]]:
    """``helm template`` of charts/glue-sync with ``--set`` ``values``: its objects."""
    sets = [arg for v in values for arg in ("--set", v)]
    res = testbed.helm(3, "template", "s", str(SYNC_CHART), "-n", "glue", *sets)
    return [d for d in YAML(typ="safe", pure=True).load_all(res.out) if d]


SSH_VALUES = (
    "environment=prod",
    "remote=ssh://git@git.example.com/deploy.git",
    "knownHosts=git.example.com ssh-ed25519 AAAA",
    "deployKey.secretName=deploy-key",
    "rbac.namespaces={prod-apps,prod-db}",
)


def test_the_sync_chart_runs_non_root_read_only_with_rbac_in_its_namespaces_only(
    testbed: Testbed, tmp_path: Path
) -> None:
    testbed.helm(
        3, "lint", "--strict", str(SYNC_CHART), *[a for v in SSH_VALUES for a in ("--set", v)]
    )
    objects = rendered(testbed, *SSH_VALUES)
    kinds = sorted(f"{o['kind']}/{o['metadata'].get('namespace')}" for o in objects)
    # Nothing cluster-wide: a RoleBinding per namespace it deploys, the state Role in
    # the environment's namespace (the first), the puller.
    assert kinds == [
        "Deployment/glue",
        "Role/prod-apps",
        "RoleBinding/prod-apps",
        "RoleBinding/prod-apps",
        "RoleBinding/prod-db",
        "ServiceAccount/glue",
    ]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    args = container["args"]
    assert args[:1] == ["sync"] and args[args.index("--every") + 1] == "1m"
    health = args[args.index("--health-file") + 1]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == ["test", "-f", health]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GLUE_SSH_KNOWN_HOSTS"] == "git.example.com ssh-ed25519 AAAA"
    [key] = [v for v in pod["volumes"] if v["name"] == "deploy-key"]
    assert key["secret"]["secretName"] == "deploy-key"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env["GLUE_SSH_KEY_FILE"].startswith("/etc/glue/deploy-key/")
    assert "/tmp" in mounts and health.startswith("/tmp/")

    # The CronJob form: one round per run, no probes.
    [cron] = [o for o in rendered(testbed, *SSH_VALUES, "mode=cronjob") if o["kind"] == "CronJob"]
    [container] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert "--once" in container["args"] and "livenessProbe" not in container

    # An SSH remote without the host key is refused before anything is installed.
    res = testbed.helm(
        3,
        "template",
        "s",
        str(SYNC_CHART),
        *[a for v in SSH_VALUES if not v.startswith("knownHosts") for a in ("--set", v)],
        check=False,
    )
    assert res.code != 0 and "knownHosts is required with an SSH remote" in res.err

    # The API server takes it (kwok runs no container).
    ns = testbed.unique("sync")
    values = [*SSH_VALUES[:-1], f"rbac.namespaces={{{ns}}}"]
    testbed.helm(
        3,
        "install",
        "s",
        str(SYNC_CHART),
        "-n",
        ns,
        "--create-namespace",
        *[a for v in values for a in ("--set", v)],
    )
    assert testbed.get(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/s-glue-sync"
    )


def test_full_image_runs_glue_sync_read_only_as_10001(
    testbed: Testbed, ssh_git_server: SshGitServer, images: Images, tmp_path: Path
) -> None:
    """As the chart runs it: the full image, user 10001, a read-only root, a writable
    /tmp, the deploy key from a mounted file, the host key from the environment."""
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("dev-sync-image")
    for name in ("environments/dev.yaml", "glue.yaml"):
        f = repo / name
        f.write_text(f.read_text().replace("namespace: example-dev", f"namespace: {ns}"))
    git(repo, "commit", "-qam", "test namespace")
    remote = remote_of(ssh_git_server, repo)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    shutil.copy(ssh_git_server.deploy_key.private, secrets / "key")
    (secrets / "kubeconfig").write_text(
        testbed.kubectl("config", "view", "--raw", "--flatten", "--minify").out
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    subprocess.run(["chown", "-R", "10001:10001", str(secrets), str(scratch)], check=True)
    (secrets / "key").chmod(0o400)
    res = run_in_image(
        images.full,
        [
            "glue",
            *sync_args(remote, Path("/tmp/glue/work"), "--once", "-o", "json", env="dev"),
            "--health-file",
            "/tmp/glue/health/ok",
        ],
        user="10001:10001",
        env={
            "KUBECONFIG": "/etc/glue/kubeconfig",
            "HOME": "/tmp",
            "GLUE_SSH_KEY_FILE": "/etc/glue/key",
            "GLUE_SSH_KNOWN_HOSTS": ssh_git_server.known_hosts_line,
        },
        binds=[(secrets, "/etc/glue", True), (scratch, "/tmp", False)],
        read_only=True,
        timeout=600,
    )
    assert res.code == 0, res.out + res.err
    out = json.loads(res.out)
    assert (out["action"], out["revision"]) == ("applied", remote.head())
    assert out["apply"]["releases"] == ["a", "b"]
    rec = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-dev")
    assert rec is not None and rec["data"]["git-revision"] == remote.head()
    assert (scratch / "glue" / "health" / "ok").is_file()
    # The chart's probe command, in the image: ready while the file is there.
    for present, code in ((True, 0), (False, 1)):
        if not present:
            (scratch / "glue" / "health" / "ok").unlink()
        probe = run_in_image(
            images.full,
            ["test", "-f", "/tmp/glue/health/ok"],
            user="10001:10001",
            env={},
            binds=[(scratch, "/tmp", False)],
        )
        assert probe.code == code, probe.err


@dataclass
class ChartPod:
    """The glue-sync chart installed in namespace ``ns`` (which glue deploys into), and its
    pod as a kubelet would start it: the container's command, arguments and environment from
    the installed chart, its ServiceAccount's token (no kubeconfig), the deploy key Secret's
    file, the full image read-only as the chart's user."""

    ns: str
    repo: Path
    remote: BareRemote
    sa: str
    container: dict[str, Any]
    user: str
    env: dict[str, str]
    binds: list[tuple[Path, str, bool]]
    scratch: Path  # the pod's /tmp

    @property
    def command(self) -> list[str]:
        return [*self.container["command"], *self.container["args"]]

    @property
    def read_only(self) -> bool:
        return bool(self.container["securityContext"]["readOnlyRootFilesystem"])


def install_chart_pod(
    testbed: Testbed, ssh_git_server: SshGitServer, tmp_path: Path, *values: str
) -> ChartPod:
    """Install the chart for dev (the example repo in a namespace of its own) with
    ``values`` (``--set`` pairs); its pod's command is found in the Deployment or CronJob."""
    repo = example_repo(tmp_path / "deploy")
    ns = testbed.unique("dev-pull")
    for name in ("environments/dev.yaml", "glue.yaml"):
        f = repo / name
        f.write_text(f.read_text().replace("namespace: example-dev", f"namespace: {ns}"))
    helmfile = repo / "helmfile.yaml.gotmpl"  # the ServiceAccount may not create namespaces
    helmfile.write_text(
        helmfile.read_text().replace("createNamespace: true", "createNamespace: false")
    )
    git(repo, "commit", "-qam", "test namespace, which exists")
    remote = remote_of(ssh_git_server, repo)
    testbed.kubectl("create", "namespace", ns)
    settings = (
        "environment=dev",
        f"remote={remote.url}",
        f"knownHosts={ssh_git_server.known_hosts_line}",
        "deployKey.secretName=deploy-key",
        f"rbac.namespaces={{{ns}}}",
        *values,
    )
    testbed.helm(
        3,
        "install",
        "pull",
        str(SYNC_CHART),
        "-n",
        ns,
        *[a for v in settings for a in ("--set", v)],
    )
    sa = "pull-glue-sync"
    deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{sa}")
    if deployment is not None:
        spec = deployment["spec"]["template"]["spec"]
    else:
        cron = testbed.get(f"/apis/batch/v1/namespaces/{ns}/cronjobs/{sa}")
        assert cron is not None
        spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    key_dir = tmp_path / "deploy-key"
    key_dir.mkdir()
    shutil.copy(ssh_git_server.deploy_key.private, key_dir / "key")
    account = tmp_path / "serviceaccount"
    account.mkdir()
    token = testbed.kubectl("create", "token", sa, "-n", ns, "--duration", "10m").out.strip()
    (account / "token").write_text(token)
    shutil.copy(testbed.state_dir / "pki" / "ca.crt", account / "ca.crt")
    (account / "namespace").write_text(ns)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    subprocess.run(["chown", "-R", "10001:10001", str(key_dir), str(scratch)], check=True)
    (key_dir / "key").chmod(0o400)
    for f in account.iterdir():
        f.chmod(0o644)
    server = urlsplit(testbed.server)
    return ChartPod(
        ns=ns,
        repo=repo,
        remote=remote,
        sa=sa,
        container=container,
        user=f"{spec['securityContext']['runAsUser']}:{spec['securityContext']['runAsGroup']}",
        env={
            **{e["name"]: e["value"] for e in container["env"] if "value" in e},
            "KUBERNETES_SERVICE_HOST": str(server.hostname),
            "KUBERNETES_SERVICE_PORT": str(server.port),
        },
        binds=[
            (account, "/var/run/secrets/kubernetes.io/serviceaccount", True),
            (key_dir, "/etc/glue/deploy-key", True),
            (scratch, "/tmp", False),
        ],
        scratch=scratch,
    )


def test_the_chart_s_pod_syncs_inside_the_image_with_only_its_rbac(
    testbed: Testbed, ssh_git_server: SshGitServer, images: Images, tmp_path: Path
) -> None:
    """The CronJob's pod (:class:`ChartPod`) syncs once, with only its RBAC."""
    pod = install_chart_pod(testbed, ssh_git_server, tmp_path, "mode=cronjob")
    ns = pod.ns
    who = f"system:serviceaccount:{ns}:{pod.sa}"
    # Least privilege: its namespace only, nothing cluster-wide.
    can = testbed.kubectl(
        "auth", "can-i", "create", "deployments", "-n", ns, "--as", who, check=False
    )
    assert can.out.strip() == "yes"
    for elsewhere in (["-n", "default"], ["-n", "kube-system"], ["--all-namespaces"]):
        can = testbed.kubectl(
            "auth", "can-i", "create", "deployments", *elsewhere, "--as", who, check=False
        )
        assert can.out.strip() == "no", elsewhere
    assert "--once" in pod.command
    res = run_in_image(
        images.full,
        [*pod.command, "-o", "json"],
        user=pod.user,
        env=pod.env,
        binds=pod.binds,
        read_only=pod.read_only,
        timeout=600,
    )
    assert res.code == 0, res.out + res.err
    out = json.loads(res.out)
    assert (out["action"], out["revision"]) == ("applied", pod.remote.head())
    rec = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-dev")
    assert rec is not None and rec["data"]["git-revision"] == pod.remote.head()
    assert testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-sync-dev") is not None


def test_the_deployment_s_pod_loops_in_the_image_and_stops_on_sigterm(
    testbed: Testbed, ssh_git_server: SshGitServer, images: Images, tmp_path: Path
) -> None:
    """The Deployment's pod (:class:`ChartPod`): ``glue sync --every`` as the container's
    PID 1 applies the first revision, then a bump pushed while it runs; its probe command
    passes while its rounds go well; SIGTERM, as a kubelet sends it, stops it at once
    (exit 130), holding no lock."""
    pod = install_chart_pod(testbed, ssh_git_server, tmp_path, "mode=deployment", "every=2s")
    assert "--every" in pod.command
    ns = pod.ns

    def recorded() -> str | None:
        rec = testbed.get(f"/api/v1/namespaces/{ns}/configmaps/glue-deployed-dev")
        return rec["data"].get("git-revision") if rec else None

    with started_in_image(
        images.full,
        pod.command,
        user=pod.user,
        env=pod.env,
        binds=pod.binds,
        read_only=pod.read_only,
    ) as proc:
        first = pod.remote.head()
        testbed.wait_until(lambda: recorded() == first, timeout=180, what="the first sync")
        assert glue("bump-tag", "a", "4e5f6a7", "--env", "dev", cwd=pod.repo).code == 0
        bumped = push(pod.repo, pod.remote)
        testbed.wait_until(lambda: recorded() == bumped, timeout=180, what="the bump's sync")
        deployment = testbed.get(f"/apis/apps/v1/namespaces/{ns}/deployments/a")
        assert deployment is not None
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":4e5f6a7")
        probe = pod.container["readinessProbe"]["exec"]["command"]
        ready = run_in_image(
            images.full, probe, user=pod.user, env={}, binds=pod.binds, read_only=True
        )
        assert ready.code == 0, ready.err
        assert proc.poll() is None  # still looping
        os.kill(container_pid(proc), signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err  # interrupted, as everywhere in glue
    assert "stopped by signal 15: nothing was being deployed" in err
    assert lease(testbed, ns) is None
    assert recorded() == bumped
