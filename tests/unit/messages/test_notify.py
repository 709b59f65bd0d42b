"""Unit tests of ``glue notify``'s change computation and message building (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_glue.errors import UsageError
from gitops_glue.messages import notify
from gitops_glue.messages.notify import ChangeSet, Notice, SavedStart, build_message, compute
from gitops_glue.service_version import ServiceVersion as V
from tests.support.slackserver import validate_message

GH = "https://github.com/example/a"
GL = "https://gitlab.com/example/b"
SHA1 = "3f9c2e1" + "a" * 33
SHA2 = "4e5f6a7" + "b" * 33


def statuses(cs: ChangeSet) -> dict[str, str]:
    return {s.service: s.status for s in cs.services}


def test_added_removed_changed_unchanged() -> None:
    old = {"a": V("1"), "b": V("2"), "c": V("3")}
    new = {"a": V("1"), "b": V("20"), "d": V("4")}
    cs = compute("dev", old, new)
    assert statuses(cs) == {"a": "unchanged", "b": "changed", "c": "removed", "d": "added"}
    assert [s.service for s in cs.changed] == ["b", "c", "d"]
    assert [s.service for s in cs.unchanged] == ["a"]
    assert not cs.first_deployment
    assert cs.has_changes


def test_same_tag_other_revision_is_a_change() -> None:
    cs = compute("dev", {"a": V("v1.2.3", SHA1)}, {"a": V("v1.2.3", SHA2)}, sources={"a": GH})
    [a] = cs.services
    assert a.status == "changed" and a.revision_only
    assert a.summary() == "a v1.2.3 (revision 3f9c2e1 → 4e5f6a7)"
    assert a.compare_url() == f"{GH}/compare/{SHA1}...{SHA2}"


def test_revision_known_on_one_side_only_is_no_change() -> None:
    cs = compute("dev", {"a": V("v1", None)}, {"a": V("v1", SHA1)})
    assert statuses(cs) == {"a": "unchanged"}


def test_first_deployment_when_nothing_is_recorded() -> None:
    cs = compute("dev", None, {"a": V("1"), "b": V("2")})
    assert cs.first_deployment
    assert statuses(cs) == {"a": "added", "b": "added"}


def test_empty_record_is_not_a_first_deployment() -> None:
    cs = compute("dev", {}, {"a": V("1")})
    assert not cs.first_deployment
    assert statuses(cs) == {"a": "added"}


def test_scope_ignores_other_releases_services() -> None:
    cs = compute("dev", {"a": V("1"), "b": V("2")}, {"a": V("3")}, scope=["a"])
    assert statuses(cs) == {"a": "changed"}


def test_links_github_and_gitlab() -> None:
    cs = compute(
        "dev",
        {"a": V("3f9c2e1"), "b": V("1.0.0", SHA1)},
        {"a": V("4e5f6a7"), "b": V("1.1.0", SHA2)},
        sources={"a": GH, "b": GL},
    )
    a, b = cs.services
    assert a.old_url() == f"{GH}/commit/3f9c2e1"  # a SHA-like tag stands for its revision
    assert a.compare_url() == f"{GH}/compare/3f9c2e1...4e5f6a7"
    assert b.new_url() == f"{GL}/-/commit/{SHA2}"
    assert b.compare_url() == f"{GL}/-/compare/{SHA1}...{SHA2}"
    # A semver tag without a revision has no commit to link to.
    c = compute("dev", {"c": V("1.0.0")}, {"c": V("1.1.0")}, sources={"c": GH}).services[0]
    assert c.old_url() == c.compare_url() == ""


def test_unknown_phase_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown phase"):
        notify.phase_kind("post-delete")


def test_start_message_is_full() -> None:
    cs = compute(
        "dev",
        {"a": V("3f9c2e1"), "b": V("9a8b7c6")},
        {"a": V("4e5f6a7"), "b": V("9a8b7c6")},
        sources={"a": GH, "b": GL},
    )
    msg = build_message(Notice("pre-upgrade", cs, "dev1", "https://ci.example/p/1"))
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
    msg = build_message(Notice("post-upgrade", cs, "dev1", "https://ci.example/p/1"))
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
    msg = build_message(Notice("pre-upgrade", cs))
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
    start = build_message(Notice("pre-install", first)).payload()
    assert start["text"] == "First deployment to dev: a 1.0.0 (new)"
    assert (
        "First deployment to *dev*: nothing was recorded there before."
        in start["blocks"][1]["text"]["text"]
    )
    changed = compute("dev", {"a": V("1.0.0")}, {"a": V("1.1.0")})
    assert (
        build_message(Notice("failed", changed)).text == "Deployment to dev failed: a 1.0.0 → 1.1.0"
    )
    assert (
        build_message(Notice("post-rollback", changed)).text == "Rolled back dev: a 1.0.0 → 1.1.0"
    )


def test_values_are_escaped() -> None:
    cs = compute("dev", {"<!here>": V("1")}, {"<!here>": V("2&3")})
    body = build_message(Notice("pre-upgrade", cs)).payload()["blocks"][1]["text"]["text"]
    assert "<!here>" not in body
    assert "&lt;!here&gt;" in body and "2&amp;3" in body


@pytest.mark.parametrize("phase", notify.PHASES)
@pytest.mark.parametrize("changed", [0, 50])
def test_fifty_services_stay_within_slack_limits(phase: str, changed: int) -> None:
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
    if changed and phase in notify.START_PHASES:
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
    msg = build_message(Notice("post-upgrade", cs), tpl)
    assert msg.payload()["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "dev: a=2"}}
    ]


def test_saved_start_round_trip_and_matching() -> None:
    s = SavedStart("pre-upgrade", {"a": V("1", "r1")}, {"a": V("2", "r2")}, "1.2", "C1")
    back = SavedStart.from_data(s.to_data())
    assert back == s
    assert back.same_deployment({"a": V("2", "r2")})
    assert not back.same_deployment({"a": V("3", "r2")})
    first = SavedStart("pre-install", None, {"a": V("2")})
    assert SavedStart.from_data(first.to_data()) == first
    assert SavedStart.from_data({}) is None
    assert SavedStart.from_data({"state.json": "{broken"}) is None


def test_state_names() -> None:
    assert notify.state_name("dev") == "glue-notify-dev"
    assert notify.state_name("dev", "a") == "glue-notify-dev.a"
