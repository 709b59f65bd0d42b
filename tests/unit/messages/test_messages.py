"""Pure logic of messages: Slack limits, escaping, announcement text, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue import redact
from gitops_glue.errors import UsageError
from gitops_glue.integrations import ci
from gitops_glue.messages import slack
from gitops_glue.messages.announce import AnnounceRequest, build_message, gather
from tests.unit.integrations.test_ci import GITLAB_ENV


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


def test_urls_with_credentials_are_masked() -> None:
    assert (
        redact.redact("https://user:tok3n@git.example.com/x")
        == "https://user:***@git.example.com/x"
    )
    assert redact.redact("ssh://git@127.0.0.1:2222/repo") == "ssh://git@127.0.0.1:2222/repo"


def test_plain_text_is_the_fallback_then_each_section() -> None:
    msg = slack.Message(
        "Deployed to dev: a 1 → 2",
        [
            slack.header("✅ Deployed to dev"),
            slack.section("*a* 1 → 2"),
            slack.fields(["x", "y"]),
            slack.section("unchanged: b"),
            slack.context(["by dev1"]),
        ],
    )
    assert msg.plain_text() == "Deployed to dev: a 1 → 2\n*a* 1 → 2\nunchanged: b"
    assert slack.Message("only text").plain_text() == "only text"
