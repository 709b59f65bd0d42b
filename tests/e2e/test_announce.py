"""`glue announce` / `glue wait-image` against a real OCI registry and a Slack stand-in."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.helpers import GITLAB_CI as GITLAB
from tests.support.helpers import glue
from tests.support.registry import PASSWORD, USERNAME, RegistryServer
from tests.support.slackserver import BOT_TOKEN, SlackServer


def announce(
    registry: RegistryServer, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    run = glue("announce", "--image", f"{registry.host}/team/a", *args, env=env, cwd=cwd)
    return run.code, run.out, run.err


def test_verified_announcement_posts_the_exact_payload(
    registry: RegistryServer, slack: SlackServer, tmp_path: Path
) -> None:
    digest = registry.push("team/a", "3f9c2e1")
    gh_out = tmp_path / "out"
    code, out, err = announce(
        registry,
        "--tag",
        "3f9c2e1",
        "--verify",
        "--dotenv",
        str(tmp_path / "a.env"),
        cwd=tmp_path,
        env={**GITLAB, "SLACK_WEBHOOK_URL": slack.webhook_url, "GITHUB_OUTPUT": str(gh_out)},
    )
    assert code == 0, err
    assert out.strip() == f"announced a 3f9c2e1 to Slack incoming webhook (digest {digest})"
    [request] = slack.webhook_requests()
    commit = GITLAB["CI_COMMIT_SHA"]
    assert request.json == {
        "text": f"New image: a 3f9c2e1 ({registry.host}/team/a:3f9c2e1)",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "New image: a 3f9c2e1", "emoji": True},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"*a* has a new image: `{registry.host}/team/a:3f9c2e1`\n"
                        f"Digest: `{digest}`\n"
                        f"Commit: <https://gitlab.example.com/team/a/-/commit/{commit}|3f9c2e1> "
                        "Speed up checkout\n"
                        "Branch: `main` by Dev One"
                    ),
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "<https://gitlab.example.com/team/a/-/pipelines/42|pipeline>",
                    },
                    {"type": "mrkdwn", "text": "<https://gitlab.example.com/team/a|team/a>"},
                ],
            },
        ],
    }
    dotenv = (tmp_path / "a.env").read_text().splitlines()
    assert f"GLUE_DIGEST={digest}" in dotenv
    assert "GLUE_SERVICE=a" in dotenv and f"GLUE_REVISION={commit}" in dotenv
    assert not gh_out.exists()  # GITHUB_OUTPUT is GitHub's: ignored unless GITHUB_ACTIONS


def test_missing_tag_is_an_error_not_an_announcement(
    registry: RegistryServer, slack: SlackServer
) -> None:
    registry.push("team/a", "3f9c2e1")
    code, _out, err = announce(
        registry, "--tag", "0000000", "--verify", env={"SLACK_WEBHOOK_URL": slack.webhook_url}
    )
    assert code == 2
    assert f"{registry.host}/team/a:0000000 does not exist in the registry" in err
    assert slack.requests == []


def test_basic_auth_registry(registry_basic: RegistryServer, slack: SlackServer) -> None:
    digest = registry_basic.push("team/a", "v1.2.3")
    creds = {"GLUE_REGISTRY_USER": USERNAME, "GLUE_REGISTRY_PASSWORD": PASSWORD}
    code, out, err = announce(
        registry_basic, "--tag", "v1.2.3", "--verify", "-o", "json", env=creds
    )
    assert code == 0, err
    assert json.loads(out)["digest"] == digest
    code, out, err = announce(
        registry_basic,
        "--tag",
        "v1.2.3",
        "--verify",
        env={"GLUE_REGISTRY_USER": USERNAME, "GLUE_REGISTRY_PASSWORD": "wrong-password"},
    )
    assert code == 2 and "refused access" in err
    assert "wrong-password" not in out + err


def test_token_auth_registry_with_docker_config(
    registry_token: RegistryServer, tmp_path: Path
) -> None:
    digest = registry_token.push("team/a", "abc1234")
    auth = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {registry_token.host: {"auth": auth}}})
    )
    code, out, err = announce(
        registry_token,
        "--tag",
        "abc1234",
        "--verify",
        "-o",
        "json",
        env={"DOCKER_CONFIG": str(tmp_path)},
    )
    assert code == 0, err
    assert json.loads(out)["digest"] == digest
    assert registry_token.token_server is not None
    pulls = [
        r
        for r in registry_token.token_server.requests
        if any("team/a:pull" in s for s in r.scopes) and r.account == USERNAME
    ]
    assert pulls, "glue did not go through the token service"
    assert PASSWORD not in out + err


def test_slack_429_is_retried_after_retry_after(
    registry: RegistryServer, slack: SlackServer
) -> None:
    slack.fail_next(429, "rate_limited", {"Retry-After": "1"})
    slack.fail_next(500, "rollup_error")
    code, _out, err = announce(
        registry, "--tag", "3f9c2e1", env={"SLACK_WEBHOOK_URL": slack.webhook_url}
    )
    assert code == 0, err
    times = [r.time for r in slack.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 1.0  # waited as Retry-After asked
    assert "Slack answered 429; retrying in 1s" in err
    assert slack.requests[0].json == slack.requests[2].json


@pytest.mark.slow
def test_slack_client_errors_fail_at_once_and_mask_the_webhook(
    registry: RegistryServer, slack: SlackServer
) -> None:
    slack.fail_next(400, "invalid_payload")
    code, out, err = announce(
        registry, "--tag", "3f9c2e1", env={"SLACK_WEBHOOK_URL": slack.webhook_url}
    )
    assert code == 1
    assert "Slack refused the message: 400 invalid_payload" in err
    assert len(slack.requests) == 1
    slack.fail_next(404, "channel_not_found")
    code, out, err = announce(
        registry, "--tag", "3f9c2e1", env={"SLACK_WEBHOOK_URL": slack.webhook_url}
    )
    assert code == 1 and "channel_not_found" in err and "hint:" in err
    # Slack unreachable: the error names no part of the webhook URL.
    closed = slack.webhook_url.replace(f":{slack.url.rsplit(':', 1)[1]}", ":9")
    code, out, err = announce(registry, "--tag", "3f9c2e1", env={"SLACK_WEBHOOK_URL": closed})
    assert code == 1
    assert slack.webhook_secret not in out + err
    assert "Slack did not answer" in err


def test_bot_token_returns_the_message_ts(registry: RegistryServer, slack: SlackServer) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "GLUE_SLACK_API_URL": slack.api_url}
    code, out, err = announce(
        registry, "--tag", "3f9c2e1", "--channel", "#deploys", "-o", "json", env=env
    )
    assert code == 0, err
    data = json.loads(out)
    [call] = slack.api_calls("chat.postMessage")
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.json["channel"] == "#deploys"
    assert (data["slack_channel"], data["slack_ts"]) == ("C123", call.response_json()["ts"])
    assert BOT_TOKEN not in out + err
    code, out, err = announce(registry, "--tag", "3f9c2e1", "--channel", "#nowhere", env=env)
    assert code == 1 and "channel_not_found" in err


def test_very_long_commit_messages_are_cut_not_rejected(
    registry: RegistryServer, slack: SlackServer
) -> None:
    code, _out, err = announce(
        registry,
        "--tag",
        "3f9c2e1",
        "--service",
        "s" * 400,
        "--commit-title",
        "very long words " * 1000,
        env={"SLACK_WEBHOOK_URL": slack.webhook_url},
    )
    assert code == 0, err  # the stand-in rejects anything over Slack's limits
    [request] = slack.webhook_requests()
    assert request.status == 200
    assert request.json["blocks"][0]["text"]["text"].endswith("…")


def test_without_slack_the_message_is_printed(registry: RegistryServer) -> None:
    code, out, err = announce(registry, "--tag", "3f9c2e1", "--revision", "abcdef1")
    assert code == 0
    assert out.startswith("New image: a 3f9c2e1")
    assert "Slack is not configured" in err


@pytest.mark.slow  # waits for the tag
def test_wait_image_counts_down_until_the_tag_appears(registry: RegistryServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLUE_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitops_glue",
            "wait-image",
            "--image",
            f"{registry.host}/team/b",
            "--tag",
            "v2",
            "--timeout",
            "60s",
            "--interval",
            "1s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(2.5)
    digest = registry.push("team/b", "v2")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == digest
    assert "waiting for" in err and "left" in err
    run = glue(
        "wait-image",
        "--image",
        f"{registry.host}/team/b",
        "--tag",
        "never",
        "--timeout",
        "2s",
        "--interval",
        "1s",
    )
    assert run.code == 1 and "did not appear within 2s" in run.err
