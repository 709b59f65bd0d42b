"""`glue sync --every` without a cluster: rounds that fail at the fetch back off, alert
once, take the health file away, and the loop stops on SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.support.helpers import start_glue
from tests.support.slackserver import SlackServer
from tests.support.sshgit import SshGitServer, ssh_env


@pytest.mark.slow  # waits: back-off rounds, a forge merging on a status
def test_failing_rounds_alert_once_drop_the_health_file_and_sigterm_stops(
    ssh_git_server: SshGitServer, slack: SlackServer, tmp_path: Path
) -> None:
    server = ssh_git_server
    url = f"ssh://{server.user}@127.0.0.1:{server.port}{server.root}/repos/missing.git"
    health = tmp_path / "health"
    health.write_text("ok from an earlier good round\n")
    proc = start_glue(
        "sync",
        "--env",
        "prod",
        "--remote",
        url,
        "--every",
        "1s",
        "--health-file",
        str(health),
        "--unhealthy-after",
        "2",
        "--work-dir",
        str(tmp_path / "work"),
        cwd=tmp_path,
        env=ssh_env(server, SLACK_WEBHOOK_URL=slack.webhook_url),
    )
    try:
        assert proc.stdout is not None
        rounds = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert health.exists() is False  # two failed rounds in a row
        rounds.append(json.loads(proc.stdout.readline()))  # after the second wait
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert [r["action"] for r in rounds] == ["failed"] * 3
    assert "fetching from" in rounds[0]["error"]
    assert [r["alerted"] for r in rounds] == [True, False, False]  # one alert per failure
    [alert] = slack.webhook_requests()
    assert alert.json["text"].startswith(":x: glue sync of prod failed: fetching from")
    # Backing off: the interval doubled per failed round (10% jitter, rounded away).
    assert "glue: sync: 1 failed round(s) in a row; next in 2s" in err
    assert "glue: sync: 2 failed round(s) in a row; next in 4s" in err
    assert proc.returncode == 130, err
    assert "glue sync stopped by signal 15: nothing was being deployed" in err


def test_a_revision_without_glue_yaml_fails_named_and_is_fetched_again(
    ssh_git_server: SshGitServer, slack: SlackServer, tmp_path: Path
) -> None:
    remote = ssh_git_server.new_remote("no-config", seed={"README.md": "not a deployment repo\n"})
    proc = start_glue(
        "sync",
        "--env",
        "prod",
        "--remote",
        remote.url,
        "--every",
        "1s",
        "--work-dir",
        str(tmp_path / "work"),
        cwd=tmp_path,
        env=ssh_env(ssh_git_server, SLACK_WEBHOOK_URL=slack.webhook_url),
    )
    try:
        assert proc.stdout is not None
        rounds = [json.loads(proc.stdout.readline()) for _ in range(2)]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # Each round fetches it again and names the revision that fails; one alert.
    assert [(r["action"], r["revision"]) for r in rounds] == [("failed", remote.head())] * 2
    assert all("glue.yaml" in r["error"] for r in rounds)
    assert [r["alerted"] for r in rounds] == [True, False]
    [alert] = slack.webhook_requests()
    assert "glue.yaml" in alert.json["text"]
