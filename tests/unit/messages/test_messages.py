"""Pure logic of messages: Slack limits, escaping, CI variables, image references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_glue import durations, redact
from gitops_glue.errors import UsageError
from gitops_glue.integrations import ci, oci
from gitops_glue.messages import slack
from gitops_glue.messages.announce import AnnounceRequest, build_message, gather

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "example/a",
    "GITHUB_RUN_ID": "99",
    "GITHUB_SHA": "3f9c2e1" + "0" * 33,
    "GITHUB_REF_NAME": "main",
    "GITHUB_ACTOR": "octocat",
}
GITLAB_ENV = {
    "GITLAB_CI": "true",
    "CI_PIPELINE_URL": "https://gitlab.example.com/g/b/-/pipelines/7",
    "CI_PROJECT_PATH": "g/b",
    "CI_PROJECT_URL": "https://gitlab.example.com/g/b",
    "CI_COMMIT_SHA": "abc",
    "CI_COMMIT_REF_NAME": "feature/x",
    "GITLAB_USER_LOGIN": "dev1",
    "CI_COMMIT_TITLE": "Add <thing> & fix",
    "CI_COMMIT_AUTHOR": "Dev One <dev1@example.com>",
}


def test_ci_detection() -> None:
    gh = ci.detect(GITHUB_ENV)
    assert gh.pipeline_url == "https://github.com/example/a/actions/runs/99"
    assert gh.commit_url() == f"https://github.com/example/a/commit/{GITHUB_ENV['GITHUB_SHA']}"
    gl = ci.detect(GITLAB_ENV)
    assert (gl.system, gl.ref, gl.commit_author) == ("gitlab", "feature/x", "Dev One")
    assert gl.commit_url() == "https://gitlab.example.com/g/b/-/commit/abc"
    assert not ci.detect({}).in_ci


def test_announcement_from_gitlab_ci_escapes_commit_text() -> None:
    a = gather(
        AnnounceRequest(image="registry.example.com/g/b", tag="abc1234"),
        ci.detect(GITLAB_ENV),
        "sha256:" + "1" * 64,
    )
    assert (a.service, a.branch, a.author) == ("b", "feature/x", "Dev One")
    payload = build_message(a).payload()
    body = payload["blocks"][1]["text"]["text"]
    assert "`registry.example.com/g/b:abc1234`" in body
    assert "<https://gitlab.example.com/g/b/-/commit/abc|abc> Add &lt;thing&gt; &amp; fix" in body
    assert payload["blocks"][0]["text"]["text"] == "New image: b abc1234"
    assert payload["text"] == "New image: b abc1234 (registry.example.com/g/b:abc1234)"
    assert "<https://gitlab.example.com/g/b/-/pipelines/7|pipeline>" in str(payload["blocks"][2])


def test_long_texts_are_cut_within_slack_limits() -> None:
    a = gather(
        AnnounceRequest(image="r.example.com/x/" + "n" * 300, tag="t", commit_title="word " * 2000),
        ci.detect({}),
        None,
    )
    payload = build_message(a).payload()
    header = payload["blocks"][0]["text"]["text"]
    assert len(header) == slack.MAX_HEADER and header.endswith("…")
    assert len(payload["blocks"][1]["text"]["text"]) <= slack.MAX_SECTION
    assert len(payload["text"]) <= slack.MAX_FALLBACK


def test_payload_keeps_at_most_fifty_blocks_and_no_empty_texts() -> None:
    msg = slack.Message("", [slack.section(f"s{i}") for i in range(80)] + [slack.context([])])
    payload = msg.payload()
    assert len(payload["blocks"]) == 50
    assert payload["blocks"][-1]["elements"][0]["text"] == "…and 31 more"
    assert payload["text"] == "-"
    assert slack.section("")["text"]["text"] == "-"


def test_custom_template(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ service }} -> {{ tag | code }} {{ commit_title }}")
    a = gather(
        AnnounceRequest(image="r.example.com/x/a", tag="v1", commit_title="<!here>"),
        ci.detect({}),
        None,
    )
    body = build_message(a, template).payload()["blocks"][1]["text"]["text"]
    assert body == "a -> `v1` &lt;!here&gt;"
    template.write_text("{{ nope }}")
    with pytest.raises(UsageError, match="'nope' is undefined"):
        build_message(a, template)


@pytest.mark.parametrize(
    ("image", "registry", "name", "scheme"),
    [
        ("registry.example.com/team/a", "registry.example.com", "team/a", "https"),
        ("127.0.0.1:5000/team/a", "127.0.0.1:5000", "team/a", "http"),
        ("localhost:5000/a", "localhost:5000", "a", "http"),
        ("nginx", "registry-1.docker.io", "library/nginx", "https"),
        ("http://reg.internal:80/a/b", "reg.internal:80", "a/b", "http"),
    ],
)
def test_image_references(image: str, registry: str, name: str, scheme: str) -> None:
    ref = oci.parse_image(image)
    assert (ref.registry, ref.name, ref.scheme) == (registry, name, scheme)


def test_bad_image_references_and_durations() -> None:
    with pytest.raises(UsageError, match="includes a tag"):
        oci.parse_image("registry.example.com/a:v1")
    assert durations.parse_duration("10m") == 600
    assert durations.parse_duration("1m30s") == 90
    assert durations.parse_duration("45") == 45
    with pytest.raises(UsageError):
        durations.parse_duration("soon")


def test_docker_config_credentials(tmp_path: Path) -> None:
    import base64

    auth = base64.b64encode(b"robot:s3cret-pass").decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"https://reg.example.com": {"auth": auth}}})
    )
    creds = oci.credentials_for("reg.example.com", {"DOCKER_CONFIG": str(tmp_path)})
    assert creds is not None and (creds.username, creds.password) == ("robot", "s3cret-pass")
    assert redact.redact("password s3cret-pass leaked") == "password *** leaked"
    env = {"GLUE_REGISTRY_USER": "u", "GLUE_REGISTRY_PASSWORD": "p" * 8}
    assert oci.credentials_for("other", env) == oci.Credentials("u", "p" * 8)


def test_urls_with_credentials_are_masked() -> None:
    assert (
        redact.redact("https://user:tok3n@git.example.com/x")
        == "https://user:***@git.example.com/x"
    )
    assert redact.redact("ssh://git@127.0.0.1:2222/repo") == "ssh://git@127.0.0.1:2222/repo"
