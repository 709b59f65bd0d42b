"""The deployment message: full start messages, short confirmations, wording per phase,
escaping, Slack's limits and a repository's own template (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue.messages.changes import compute
from gitops_glue.messages.notice import Notice, build_message
from gitops_glue.messages.phase import Phase
from gitops_glue.service_version import ServiceVersion as V
from tests.support.slackserver import validate_message

GH = "https://github.com/example/a"
GL = "https://gitlab.com/example/b"
SHA1 = "3f9c2e1" + "a" * 33
SHA2 = "4e5f6a7" + "b" * 33


def test_start_message_is_full() -> None:
    cs = compute(
        "dev",
        {"a": V("3f9c2e1"), "b": V("9a8b7c6")},
        {"a": V("4e5f6a7"), "b": V("9a8b7c6")},
        sources={"a": GH, "b": GL},
    )
    msg = build_message(Notice(Phase.pre_upgrade, cs, "dev1", "https://ci.example/p/1"))
    assert msg.payload() == {
        "text": "Deploying to dev: a 3f9c2e1 → 4e5f6a7",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "🚀 Deploying to dev", "emoji": True},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"• *a* <{GH}/commit/3f9c2e1|3f9c2e1> → <{GH}/commit/4e5f6a7|4e5f6a7> "
                        f"(<{GH}/compare/3f9c2e1...4e5f6a7|compare>)\n"
                        "Unchanged: b `9a8b7c6`"
                    ),
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "Triggered by dev1"},
                    {"type": "mrkdwn", "text": "<https://ci.example/p/1|pipeline>"},
                ],
            },
        ],
    }


def test_finish_message_is_short() -> None:
    cs = compute("dev", {"a": V("1.0.0")}, {"a": V("1.1.0")})
    msg = build_message(Notice(Phase.post_upgrade, cs, "dev1", "https://ci.example/p/1"))
    assert msg.payload() == {
        "text": "Deployed to dev: a 1.0.0 → 1.1.0",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        "✅ *Deployed to dev*: *a* 1.0.0 → 1.1.0 · <https://ci.example/p/1|pipeline>"
                    ),
                },
            }
        ],
    }


def test_nothing_changed_is_one_line() -> None:
    cs = compute("dev", {"a": V("1.0.0")}, {"a": V("1.0.0")})
    msg = build_message(Notice(Phase.pre_upgrade, cs))
    assert msg.payload() == {
        "text": "Deploying to dev: nothing changes",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "🚀 *Deploying to dev*: nothing changes (a `1.0.0`).",
                },
            }
        ],
    }


def test_first_deployment_and_failed_and_rollback_wording() -> None:
    first = compute("dev", None, {"a": V("1.0.0")})
    start = build_message(Notice(Phase.pre_install, first)).payload()
    assert start["text"] == "First deployment to dev: a 1.0.0 (new)"
    assert (
        "First deployment to *dev*: nothing was recorded there before."
        in start["blocks"][1]["text"]["text"]
    )
    changed = compute("dev", {"a": V("1.0.0")}, {"a": V("1.1.0")})
    assert (
        build_message(Notice(Phase.failed, changed)).text
        == "Deployment to dev failed: a 1.0.0 → 1.1.0"
    )
    assert (
        build_message(Notice(Phase.post_rollback, changed)).text
        == "Rolled back dev: a 1.0.0 → 1.1.0"
    )


def test_a_failure_without_a_version_change_does_not_say_nothing_changed() -> None:
    """A deploy (or a sync) that failed on a chart or values change moved no version: the
    message says that, with the reason, not "nothing changed"."""
    same = compute("dev", {"a": V("1.0.0")}, {"a": V("1.0.0")})
    payload = build_message(Notice(Phase.failed, same, failure=("b: chart invalid",))).payload()
    assert payload["text"] == "Deployment to dev failed: no service's version changed"
    body = payload["blocks"][0]["text"]["text"]
    assert body.startswith(
        "❌ *Deployment to dev failed*: no service's version changed (a `1.0.0`)."
    )
    assert "nothing changed" not in body and "*Why:*\n• b: chart invalid" in body


def test_values_are_escaped() -> None:
    cs = compute("dev", {"<!here>": V("1")}, {"<!here>": V("2&3")})
    body = build_message(Notice(Phase.pre_upgrade, cs)).payload()["blocks"][1]["text"]["text"]
    assert "<!here>" not in body
    assert "&lt;!here&gt;" in body and "2&amp;3" in body


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("changed", [0, 50])
def test_fifty_services_stay_within_slack_limits(phase: Phase, changed: int) -> None:
    old = {f"service-with-a-long-name-{i:02d}": V(f"{i:07x}", f"{i:040x}") for i in range(50)}
    new = {
        k: (V(f"{i + 100:07x}", f"{i + 100:040x}") if i < changed else v)
        for i, (k, v) in enumerate(old.items())
    }
    sources = {k: f"https://github.com/example-organisation/{k}" for k in old}
    cs = compute("production-eu", old, new, sources=sources)
    payload = build_message(Notice(phase, cs, "someone", "https://ci.example/p/1")).payload()
    validate_message(payload)  # the stand-in's own checks: the limits Slack enforces
    text = "\n".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    if changed and phase.kind == "start":
        # Every changed service is named, in several sections, none cut.
        assert all(f"*{k}*" in text for k in old)
        assert "…" not in text
        assert len([b for b in payload["blocks"] if b["type"] == "section"]) > 1
    elif changed:
        assert "and 45 more" in text
        assert "…" not in text
    else:
        assert "and 30 more" in text


def test_repository_template_overrides(tmp_path: Path) -> None:
    tpl = tmp_path / "notify.j2"
    tpl.write_text(
        "{{ environment }}: {% for s in changed %}{{ s.service }}={{ s.new_tag }}{% endfor %}\n"
    )
    cs = compute("dev", {"a": V("1")}, {"a": V("2")})
    msg = build_message(Notice(Phase.post_upgrade, cs), tpl)
    assert msg.payload()["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "dev: a=2"}}
    ]
