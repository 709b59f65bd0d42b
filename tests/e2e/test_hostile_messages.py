"""Hostile Slack messages: templates that reach outside the repository or try to
break glue, secrets on their way to Slack, and webhook URLs that are not https.

``glue announce`` and ``glue notify`` run as a user runs them, against the Slack
stand-in (a real HTTP server); what is asserted is what a user sees: the exit code,
the one ``glue: error:`` line, and the requests the stand-in received.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.helpers import Run, glue
from tests.support.slackserver import WEBHOOK_SECRET, SlackServer

REGISTRY_PASSWORD = "Regi$try-Passw0rd-Hostile25"
GIT_TOKEN = "glpat-HostileGitToken25"
GITLAB = {
    "GITLAB_CI": "true",
    "CI_PIPELINE_URL": "https://gitlab.example.com/team/a/-/pipelines/42",
    "CI_PROJECT_PATH": "team/a",
    "CI_PROJECT_URL": "https://gitlab.example.com/team/a",
    "CI_COMMIT_SHA": "3f9c2e1d" + "0" * 32,
    "CI_COMMIT_REF_NAME": "main",
    "GITLAB_USER_LOGIN": "dev1",
    "CI_COMMIT_TITLE": "Speed up checkout",
    "CI_COMMIT_AUTHOR": "Dev One <dev1@example.com>",
}


def _env(slack: SlackServer, **extra: str) -> dict[str, str]:
    return {
        "SLACK_WEBHOOK_URL": slack.webhook_url,
        "GLUE_REGISTRY_USER": "ci",
        "GLUE_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
        "GLUE_GIT_TOKEN": GIT_TOKEN,
        **extra,
    }


def _use_template(repo: Path, path: str, name: str = "announce") -> None:
    glue_yaml = repo / "glue.yaml"
    glue_yaml.write_text(glue_yaml.read_text() + f"templates:\n  {name}: {json.dumps(path)}\n")


def _announce(repo: Path, env: dict[str, str], *args: str) -> Run:
    return glue(
        "-C", str(repo), "announce", "--image", "registry.example.com/team/a", "--tag", "v1.2.3",
        *args, env=env, timeout=120,
    )  # fmt: skip


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in (REGISTRY_PASSWORD, GIT_TOKEN, WEBHOOK_SECRET):
            for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
                assert form not in text, (form, text[:500])


def _refused(run: Run, *expected: str) -> str:
    """One ``glue: error:`` line (and its hint), exit 2, no traceback."""
    assert run.code == 2, (run.code, run.out, run.err)
    assert run.err.count("glue: error: ") == 1, run.err
    assert "Traceback" not in run.err + run.out
    for text in expected:
        assert text in run.err, run.err
    _no_secret_in(run.out, run.err)
    return run.err


# --------------------------------------------------------------------------- secrets


def test_secrets_in_the_data_never_reach_slack_or_the_output(
    repo: Path, slack: SlackServer
) -> None:
    (repo / "messages").mkdir()
    (repo / "messages" / "announce.md.j2").write_text(
        "{{ commit_title }}\n{{ commit_title | code }}\n{{ 'see' | link(commit_title) }}\n"
    )
    _use_template(repo, "messages/announce.md.j2")
    title = (
        f"rotate {REGISTRY_PASSWORD} and {GIT_TOKEN}, hook {slack.webhook_url} "
        f"(was https://deploy:{REGISTRY_PASSWORD}@git.example.com/x.git)"
    )
    env = _env(slack, **{**GITLAB, "CI_COMMIT_TITLE": title})
    run = _announce(repo, env)
    assert run.code == 0, run.err
    as_json = _announce(repo, env, "--dry-run", "--output", "json")
    assert as_json.code == 0, as_json.err
    [request] = slack.webhook_requests()
    sent = request.body.decode()
    printed = json.dumps(json.loads(as_json.out)["message"])
    _no_secret_in(sent, run.out, run.err, printed, as_json.err)
    assert "rotate *** and ***" in request.json["blocks"][1]["text"]["text"]
    # The service's own data still reads as it was.
    assert request.json["text"].startswith("New image: a v1.2.3")


# --------------------------------------------------------------------------- webhook URLs


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:{port}/services/T000/B000/{secret}",
        "http://hooks.example.com/services/T000/B000/{secret}",
        "file:///services/T000/B000/{secret}",
        "hooks.slack.com/services/T000/B000/{secret}",
    ],
)
def test_a_webhook_url_that_is_not_https_is_refused_at_once(
    url: str, slack: SlackServer, tmp_path: Path
) -> None:
    port = slack.url.rsplit(":", 1)[1]
    hook = url.format(port=port, secret=WEBHOOK_SECRET)
    run = _announce(tmp_path, {"SLACK_WEBHOOK_URL": hook})
    err = _refused(run, "SLACK_WEBHOOK_URL", "https")
    assert "retrying" not in err
    assert slack.requests == []


def test_a_slack_api_url_that_is_not_https_is_refused_at_once(
    slack: SlackServer, tmp_path: Path
) -> None:
    env = {
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_CHANNEL": "#deploys",
        "GLUE_SLACK_API_URL": slack.api_url.replace("http://", "ftp://"),
    }
    run = _announce(tmp_path, env)
    _refused(run, "GLUE_SLACK_API_URL", "https")
    assert slack.token not in run.err
    assert slack.requests == []


def test_http_to_localhost_still_reaches_a_local_stand_in(
    slack: SlackServer, tmp_path: Path
) -> None:
    run = _announce(tmp_path, {"SLACK_WEBHOOK_URL": slack.webhook_url})
    assert run.code == 0, run.err
    assert len(slack.webhook_requests()) == 1
