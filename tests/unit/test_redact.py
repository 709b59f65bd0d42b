"""Secret masking: what glue prints never holds a token, and masking stays fast."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

from gitops_glue.redact import MASK, redact, register, register_environment


def test_tokens_in_a_urls_query_string_are_masked() -> None:
    for name in ("private_token", "access_token", "token", "key", "sig", "password", "apikey"):
        text = f"GET https://gitlab.example.com/api/v4/projects?{name}=s3cr3tValue&page=2 failed"
        out = redact(text)
        assert "s3cr3tValue" not in out, name
        assert f"{name}={MASK}" in out and "page=2" in out


def test_short_token_as_the_user_of_a_url_is_masked() -> None:
    out = redact("fetching https://ghp_abc123@github.com/org/deploy.git failed")
    assert "ghp_abc123" not in out
    assert f"https://{MASK}@github.com/org/deploy.git" in out


def test_user_names_that_are_not_secrets_stay_readable() -> None:
    for url in ("ssh://git@example.com/x.git", "https://x-access-token:tok@example.com/x"):
        assert redact(url).startswith(url.split(":", 1)[0] + "://")
    assert redact("ssh://git@example.com:2222/x.git") == "ssh://git@example.com:2222/x.git"
    assert "tok@" not in redact("https://x-access-token:tok@example.com/x")


def test_redact_is_linear_on_long_inputs() -> None:
    # Each input once took seconds (a scheme-like run of letters rescanned from every
    # position); a child process with a generous timeout proves it no longer does.
    code = (
        "from gitops_glue.redact import redact\n"
        "for text in ['a' * 40000, 'a.' * 20000, 'x://' + 'a' * 40000, 'x://a' * 10000,\n"
        "             'https://h/?' + 'k=v&' * 10000, 'a=' * 20000, 'a@' * 20000]:\n"
        "    for _ in range(5):\n"
        "        redact(text)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=10)


def test_a_password_holding_an_unencoded_at_or_hash_is_masked_whole() -> None:
    for password in ("p@ssw0rd", "pass#word", "pa@ss#wo?rd", "a@b@c#d"):
        text = f"fetching https://deployer:{password}@git.example.com/team/deploy.git failed"
        out = redact(text)
        assert out == f"fetching https://deployer:{MASK}@git.example.com/team/deploy.git failed"
    # A token alone (no user name) with an "@" in it.
    assert redact("https://to@ken123@example.com/x") == f"https://{MASK}@example.com/x"


def test_a_registered_url_is_masked_in_every_encoding_it_is_printed_in() -> None:
    import json

    import requests

    # A webhook whose secret part holds characters a URL carries percent-encoded.
    url = 'http://127.0.0.1:9/services/T0/B0/s\u00e9cr"et%zz x%41yGlueRedact'
    register(url)
    try:  # port 9 (discard) is closed: requests fails at once, quoting the path it sent
        requests.post(url, json={}, timeout=5)
    except requests.RequestException as exc:
        said = str(exc)
    assert "s%C3%A9cr%22et%25zz%20x%2541yGlueRedact" in said  # the encoded form, printed
    printed = [
        said,
        quote(url, safe=""),
        quote(url, safe="").lower(),
        json.dumps({"url": url}),
        json.dumps({"url": url}, ensure_ascii=False),
        repr(url),
        repr(url.encode()),
        f"<{url}|hook>".replace("&", "&amp;").replace("<", "&lt;"),
    ]
    for text in printed:
        out = redact(text)
        assert "GlueRedact" not in out, (text, out)
        assert "s%C3%A9cr" not in out and "s\u00e9cr" not in out


def test_the_environments_secrets_are_registered_and_its_other_values_are_not() -> None:
    env = {
        "GLUE_REGISTRY_PASSWORD": "Regi$try-Passw0rd",
        "GLUE_GIT_TOKEN": "glpat-EnvToken123",
        "CI_JOB_TOKEN": "ci-job-token-4567",
        "MY_SERVICE_API_KEY": "api-key-value-890",
        "DEPLOY_WEBHOOK_URL": "https://hooks.example.com/services/T1/B1/HookSecretPart",
        "GLUE_SSH_KEY_FILE": "/home/ci/deploy-key",
        "CI_COMMIT_AUTHOR": "Dev One <dev1@example.com>",
        "CI_PROJECT_PATH": "team/service-a",
    }
    register_environment(env)
    text = " | ".join(env.values())
    out = redact(text)
    for name in (
        "GLUE_REGISTRY_PASSWORD",
        "GLUE_GIT_TOKEN",
        "CI_JOB_TOKEN",
        "MY_SERVICE_API_KEY",
        "DEPLOY_WEBHOOK_URL",
    ):
        assert env[name] not in out, name
    assert "HookSecretPart" not in redact("POST /services/T1/B1/HookSecretPart: 404")
    assert quote(env["GLUE_REGISTRY_PASSWORD"], safe="") not in redact(
        "?password=" + quote(env["GLUE_REGISTRY_PASSWORD"], safe="")
    )
    for name in ("GLUE_SSH_KEY_FILE", "CI_COMMIT_AUTHOR", "CI_PROJECT_PATH"):
        assert env[name] in out, name
