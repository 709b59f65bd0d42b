"""The registry and Slack fixtures are real servers that behave like the real services."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.registry import (
    MANIFEST_ACCEPT,
    PASSWORD,
    READER_PASSWORD,
    READER_USERNAME,
    USERNAME,
    RegistryClient,
    RegistryServer,
    manifest_digest,
    parse_challenge,
    port_is_open,
    push_image,
    registry,
    registry_basic,
    registry_token,
    running_registry,
)
from tests.support.slackserver import BOT_TOKEN, SlackServer, slack

__all__ = ["registry", "registry_basic", "registry_token", "slack"]  # fixtures used below


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --------------------------------------------------------------------------- registry


def test_anonymous_registry_push_then_get(registry: RegistryServer) -> None:
    r = requests.get(f"{registry.url}/v2/", timeout=5)
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    digest = push_image(registry.url, "team/app", "1.2.3")
    assert digest.startswith("sha256:") and len(digest) == 71
    got = requests.get(
        f"{registry.url}/v2/team/app/manifests/1.2.3",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=5,
    )
    assert got.status_code == 200
    assert got.headers["Docker-Content-Digest"] == digest
    assert json.loads(got.content)["schemaVersion"] == 2
    tags = requests.get(f"{registry.url}/v2/team/app/tags/list", timeout=5).json()
    assert tags == {"name": "team/app", "tags": ["1.2.3"]}


def test_same_content_same_digest_other_tag_other_digest(registry: RegistryServer) -> None:
    a = registry.push("svc", "a", content=b"same")
    b = registry.push("svc", "b", content=b"same")
    c = registry.push("svc", "c")
    assert a == b != c
    assert manifest_digest(registry.url, "svc", "missing") is None


def test_basic_auth_challenge_and_push(registry_basic: RegistryServer) -> None:
    url = registry_basic.url
    r = requests.get(f"{url}/v2/", timeout=5)
    assert r.status_code == 401
    scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "basic" and params["realm"] == "glue-test-registry"
    assert (
        requests.get(f"{url}/v2/", headers=_basic(USERNAME, "wrong"), timeout=5).status_code == 401
    )
    assert (
        requests.get(f"{url}/v2/", headers=_basic(USERNAME, PASSWORD), timeout=5).status_code == 200
    )

    digest = push_image(url, "team/app", "v1", auth=(USERNAME, PASSWORD))
    assert requests.get(f"{url}/v2/team/app/manifests/v1", timeout=5).status_code == 401
    got = requests.get(
        f"{url}/v2/team/app/manifests/v1",
        timeout=5,
        headers={"Accept": MANIFEST_ACCEPT, **_basic(USERNAME, PASSWORD)},
    )
    assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
    assert manifest_digest(url, "team/app", "v1", registry_basic.credentials) == digest
    with pytest.raises(AssertionError, match="401"):
        push_image(url, "team/app", "v2")


def test_token_auth_challenge_flow(registry_token: RegistryServer) -> None:
    url = registry_token.url
    ts = registry_token.token_server
    assert ts is not None
    r = requests.get(f"{url}/v2/team/app/manifests/v1", timeout=5)
    assert r.status_code == 401
    scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "bearer"
    assert params == {
        "realm": ts.realm,
        "service": "glue-test-registry",
        "scope": "repository:team/app:pull",
    }
    # The token server wants credentials itself.
    assert (
        requests.get(
            ts.realm, params={"service": params["service"], "scope": params["scope"]}, timeout=5
        ).status_code
        == 401
    )

    digest = push_image(url, "team/app", "v1", auth=(USERNAME, PASSWORD))
    assert ts.requests[1].account == USERNAME
    [scope] = ts.requests[1].scopes  # the registry orders "pull,push" at random (a Go map)
    rtype, name, actions = scope.split(":")
    assert (rtype, name, sorted(actions.split(","))) == ("repository", "team/app", ["pull", "push"])
    assert ts.requests[1].granted[0]["name"] == "team/app"

    # The manual flow: token with pull scope, then GET with Bearer.
    tok = requests.get(
        ts.realm,
        params={"service": params["service"], "scope": params["scope"]},
        auth=(USERNAME, PASSWORD),
        timeout=5,
    ).json()["token"]
    got = requests.get(
        f"{url}/v2/team/app/manifests/v1",
        timeout=5,
        headers={"Accept": MANIFEST_ACCEPT, "Authorization": f"Bearer {tok}"},
    )
    assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
    assert manifest_digest(url, "team/app", "v1", registry_token.credentials) == digest


def test_token_registry_verifies_tokens(registry_token: RegistryServer) -> None:
    ts = registry_token.token_server
    assert ts is not None
    registry_token.push("team/app", "v1")
    path = f"{registry_token.url}/v2/team/app/manifests/v1"
    pull = [{"type": "repository", "name": "team/app", "actions": ["pull"]}]

    def get(token: str) -> int:
        return requests.get(
            path, timeout=5, headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_ACCEPT}
        ).status_code

    assert get(ts.issue("someone", pull)) == 200
    ts.header_mode = "x5c"  # the other way distribution finds the signing key
    assert get(ts.issue("someone", pull)) == 200
    ts.header_mode = "kid"
    assert get(ts.issue("someone", [])) == 401  # no access granted
    assert get(ts.issue("someone", pull, lifetime=-120)) == 401  # expired (past 60s leeway)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {
            "iss": ts.issuer,
            "aud": ts.service,
            "sub": "x",
            "exp": int(time.time()) + 60,
            "nbf": int(time.time()) - 1,
            "iat": int(time.time()),
            "jti": "j",
            "access": pull,
        },
        other_key,
        algorithm="RS256",
        headers={"kid": ts.kid},
    )
    assert get(forged) == 401  # signature checked against the rootcertbundle key


def test_token_reader_may_pull_but_not_push(registry_token: RegistryServer) -> None:
    digest = registry_token.push("team/app", "v1")
    reader = (READER_USERNAME, READER_PASSWORD)
    assert manifest_digest(registry_token.url, "team/app", "v1", reader) == digest
    with pytest.raises(AssertionError, match="401"):
        push_image(registry_token.url, "team/app", "v2", auth=reader)
    client = RegistryClient(registry_token.url, ("nobody", "nothing"))
    with pytest.raises(requests.HTTPError):
        client.get_manifest("team/app", "v1")


def test_registry_process_is_gone_after_stop(tmp_path: Any) -> None:
    with running_registry(tmp_path, "basic") as server:
        pid, port = server.pid, server.port
        assert port_is_open(port)
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_is_open(port)


# --------------------------------------------------------------------------- slack


def test_slack_webhook_records_payload(slack: SlackServer) -> None:
    assert slack.webhook_url.startswith("http://127.0.0.1:")
    assert slack.webhook_url.endswith("/" + slack.webhook_secret)
    payload = {
        "text": "deployed a 1.2.3",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Deploy"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*a* 1.2.3"}},
        ],
    }
    r = requests.post(slack.webhook_url, json=payload, timeout=5)
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (
        200,
        "ok",
        "text/plain; charset=utf-8",
    )
    [req] = slack.requests
    assert req.method == "POST" and req.is_webhook and req.json == payload
    assert req.headers["content-type"] == "application/json"
    assert [m["text"] for m in slack.messages.values()] == ["deployed a 1.2.3"]
    # form-encoded payload= works too, like Slack
    r = requests.post(slack.webhook_url, data={"payload": json.dumps({"text": "x"})}, timeout=5)
    assert r.status_code == 200 and slack.requests[-1].json == {"text": "x"}
    wrong = slack.webhook_url.replace(slack.webhook_secret, "nope")
    r = requests.post(wrong, json={"text": "x"}, timeout=5)
    assert (r.status_code, r.text) == (404, "no_service")


def test_slack_api_post_and_update(slack: SlackServer) -> None:
    auth = {"Authorization": f"Bearer {BOT_TOKEN}"}
    r = requests.post(
        slack.api_url + "chat.postMessage",
        headers=auth,
        timeout=5,
        json={"channel": "#deploys", "text": "deploying"},
    )
    body = r.json()
    assert r.status_code == 200 and body["ok"] is True
    assert body["channel"] == "C123" and body["ts"] == "1700000000.000100"
    assert body["message"]["text"] == "deploying"
    assert body["warning"] == "missing_charset"  # requests sends no charset; Slack warns
    r2 = requests.post(
        slack.api_url + "chat.postMessage",
        timeout=5,
        headers={**auth, "Content-Type": "application/json; charset=utf-8"},
        data=json.dumps({"channel": "C123", "text": "second"}),
    )
    assert "warning" not in r2.json()
    assert r2.json()["ts"] > body["ts"]

    up = requests.post(
        slack.api_url + "chat.update",
        headers=auth,
        timeout=5,
        json={"channel": "C123", "ts": body["ts"], "text": "deployed"},
    ).json()
    assert up["ok"] is True and up["ts"] == body["ts"] and up["text"] == "deployed"
    assert slack.messages[body["ts"]]["text"] == "deployed"
    missing = requests.post(
        slack.api_url + "chat.update",
        headers=auth,
        timeout=5,
        json={"channel": "C123", "ts": "1.2", "text": "x"},
    ).json()
    assert missing == {"ok": False, "error": "message_not_found"}
    assert [c.api_method for c in slack.api_calls()] == [
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.update",
    ]
    assert slack.api_calls("chat.update")[0].json == {
        "channel": "C123",
        "ts": body["ts"],
        "text": "deployed",
    }
    assert slack.api_calls("chat.update")[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"


@pytest.mark.parametrize(
    ("headers", "payload", "error"),
    [
        ({"Authorization": "Bearer xoxb-wrong"}, {"channel": "C123", "text": "x"}, "invalid_auth"),
        ({}, {"channel": "C123", "text": "x"}, "not_authed"),
        (
            {"Authorization": f"Bearer {BOT_TOKEN}"},
            {"channel": "#nope", "text": "x"},
            "channel_not_found",
        ),
        ({"Authorization": f"Bearer {BOT_TOKEN}"}, {"channel": "C999", "text": "x"}, "is_archived"),
        ({"Authorization": f"Bearer {BOT_TOKEN}"}, {"channel": "C123"}, "no_text"),
        (
            {"Authorization": f"Bearer {BOT_TOKEN}"},
            {"channel": "C123", "blocks": [{"type": "divider"}] * 51},
            "invalid_blocks",
        ),
    ],
)
def test_slack_api_errors(
    slack: SlackServer, headers: dict[str, str], payload: dict[str, Any], error: str
) -> None:
    r = requests.post(slack.api_url + "chat.postMessage", headers=headers, json=payload, timeout=5)
    assert r.status_code == 200
    assert r.json()["ok"] is False and r.json()["error"] == error
    assert slack.messages == {}


def test_slack_scripted_failures_in_order(slack: SlackServer) -> None:
    slack.fail_next(429, "rate_limited", {"Retry-After": "1"})
    slack.fail_next(500, "rollup_error")
    slack.fail_next(400, "invalid_payload")
    slack.fail_next(404, "channel_not_found")
    slack.fail_next(410, "channel_is_archived")
    slack.fail_next(200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"})
    assert slack.pending_failures == 6
    answers = []
    for _ in range(7):
        r = requests.post(slack.webhook_url, json={"text": "hi"}, timeout=5)
        answers.append((r.status_code, r.text, r.headers.get("Retry-After")))
    assert answers == [
        (429, "rate_limited", "1"),
        (500, "rollup_error", None),
        (400, "invalid_payload", None),
        (404, "channel_not_found", None),
        (410, "channel_is_archived", None),
        (200, json.dumps({"ok": False, "error": "ratelimited"}), "3"),
        (200, "ok", None),
    ]
    assert [r.scripted for r in slack.requests] == [True] * 6 + [False]
    times = [r.time for r in slack.requests]
    assert times == sorted(times)
    assert len(slack.messages) == 1  # only the real answer posted anything


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, "no_text"),
        ({"text": ""}, "no_text"),
        ({"username": "glue"}, "no_text"),
        ({"blocks": [_section("x")] * 51}, "invalid_blocks"),
        ({"blocks": [_section("x" * 3001)]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            "invalid_blocks",
        ),
        (
            {"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
            "invalid_blocks",
        ),
        ({"blocks": [_section("")]}, "invalid_blocks"),
        (
            {"blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": ""}]}]},
            "invalid_blocks",
        ),
        (
            {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
            "invalid_blocks",
        ),
        ({"text": "x" * 40001}, "msg_too_long"),
    ],
)
def test_slack_webhook_rejects_over_limit(
    slack: SlackServer, payload: dict[str, Any], error: str
) -> None:
    r = requests.post(slack.webhook_url, json=payload, timeout=5)
    assert (r.status_code, r.text) == (400, error)
    assert slack.requests[0].json == payload
    assert slack.messages == {}


def test_slack_webhook_accepts_limits_exactly(slack: SlackServer) -> None:
    payload = {
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
            _section("s" * 3000),
            *[_section("x")] * 48,
        ]
    }
    r = requests.post(slack.webhook_url, json=payload, timeout=5)
    assert (r.status_code, r.text) == (200, "ok")
    r = requests.post(
        slack.webhook_url,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert (r.status_code, r.text) == (400, "invalid_payload")
