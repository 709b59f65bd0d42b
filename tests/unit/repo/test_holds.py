"""glue-holds.yaml: byte-stable text, strict reading; commit message amendments."""

from __future__ import annotations

import pytest

from gitops_glue.errors import UsageError
from gitops_glue.repo.commit import parse_trailers
from gitops_glue.repo.holds import Ledger, Mark, amend_message, parse

A = Mark("alice", "2026-01-02T03:04:05Z", 'said "no": tabs\\ and: colons')
B = Mark("bob", "2026-01-03T00:00:00Z", "bad build")


def test_the_same_state_is_the_same_bytes_and_reads_back() -> None:
    one = Ledger({("prod", "b"): B, ("prod", "a"): A, ("dev", "a"): B}, {("a", "1.0.0"): A})
    two = Ledger({("dev", "a"): B, ("prod", "a"): A, ("prod", "b"): B}, {("a", "1.0.0"): A})
    text = one.render()
    assert text == two.render()
    assert text.index('"dev"') < text.index('"prod"')
    back = parse(text)
    assert back == Ledger(dict(one.holds), dict(one.rejected))
    assert back.hold("prod", "a") == A and back.rejection("a", "1.0.0") == A
    assert back.hold("dev", "b") is None and back.rejection("a", "2.0.0") is None
    assert parse(back.render()).render() == text


def test_empty_and_missing_file_hold_nothing() -> None:
    assert parse(None) == Ledger()
    assert parse(Ledger().render()) == Ledger()
    assert "holds: {}" in Ledger().render()


@pytest.mark.parametrize("text", ["- a\n", "holds: [1]\n", "holds:\n  prod: 3\n", "holds: {a\n"])
def test_a_broken_file_is_a_usage_error_naming_it(text: str) -> None:
    with pytest.raises(UsageError, match=r"glue-holds\.yaml"):
        parse(text)


def test_amend_message_keeps_trailers_last() -> None:
    msg = "feat(prod): update a to 1\n\nbody line\n\nGlue-Environment: prod\nGlue-Service: a\n"
    out = amend_message(msg, ["Overrides the hold"], [("Glue-Override-Hold", "prod a")])
    assert out.startswith("feat(prod): update a to 1\n\nbody line\n\nOverrides the hold\n\n")
    assert parse_trailers(out)[-1] == ("Glue-Override-Hold", "prod a")
    assert ("Glue-Environment", "prod") in parse_trailers(out)
    plain = amend_message("just a title\n", ["why"], [("Glue-Hold", "dev a")])
    assert plain == "just a title\n\nwhy\n\nGlue-Hold: dev a\n"


def test_notify_marks_a_held_service() -> None:
    import json

    from gitops_glue.messages.changes import compute
    from gitops_glue.messages.notice import Notice, build_message
    from gitops_glue.messages.phase import Phase
    from gitops_glue.service_version import ServiceVersion

    old = {"a": ServiceVersion("1.0.0"), "b": ServiceVersion("2.0.0")}
    new = {"a": ServiceVersion("1.0.0"), "b": ServiceVersion("2.1.0")}
    for held, marked in ((("a",), "a `1.0.0` (held)"), (("b",), "2.1.0 (held)")):
        changes = compute("prod", old, new, held=held)
        start = json.dumps(build_message(Notice(Phase.pre_upgrade, changes)).payload()["blocks"])
        assert marked in start, start
        assert start.count("(held)") == 1  # only the held service
    short = build_message(Notice(Phase.post_upgrade, compute("prod", old, new, held=("b",))))
    assert "b 2.0.0 → 2.1.0 (held)" in short.text
    plain_start = Notice(Phase.pre_upgrade, compute("prod", old, new))
    plain = json.dumps(build_message(plain_start).payload())
    assert "(held)" not in plain


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is empty"),
        ("hold: {}\nrejected: {}\n", "unknown top-level key 'hold'"),
        ("holds:\nrejected: {}\n", "holds: expected a mapping"),
        ("holds: {}\n", "no rejected: section"),
        ('holds: {"p": {"a": {by: "x", at: "t"}}}\nrejected: {}\n', "missing reason"),
        ('holds: {"p": {"a": {by: &x "x", at: *x, reason: "r"}}}\nrejected: {}\n', "anchor"),
        ('holds: {"p": {"a": {by: "x\\ty", at: "t", reason: "r"}}}\nrejected: {}\n', "control"),
    ],
)
def test_anything_but_what_glue_writes_is_refused_never_read_as_no_holds(
    text: str, words: str
) -> None:
    with pytest.raises(UsageError, match=r"glue-holds\.yaml") as caught:
        parse(text)
    assert words in str(caught.value)
