"""Each service's recent glue commits, read from the trailers glue writes."""

from __future__ import annotations

from gitops_glue.repo.commit import HistoryCommit
from gitops_glue.repo.history import recent


def commit(sha: str, message: str, at: str = "2026-12-01T10:00:00Z") -> HistoryCommit:
    return HistoryCommit(sha * 40, message, (), at, "Author Name")


def bump(sha: str, env: str, service: str, tag: str, previous: str, *extra: str) -> HistoryCommit:
    trailers = [
        f"Glue-Environment: {env}",
        f"Glue-Service: {service}",
        f"Glue-Tag: {tag}",
        f"Glue-Previous-Tag: {previous}",
        *extra,
    ]
    return commit(sha, f"feat({env}): update {service} to {tag}\n\n" + "\n".join(trailers) + "\n")


def test_a_rollback_names_the_tags_it_moved_between_and_marks_what_it_undid() -> None:
    history = [
        commit(
            "c",
            "revert(dev): roll back\n\nGlue-Environment: dev\nGlue-Action: rollback\n"
            f"Glue-Reverts: {'b' * 40}\nGlue-Service: a\nTriggered-By: ops\n",
        ),
        bump("b", "dev", "a", "v2", "v1"),
        bump("a", "dev", "a", "v1", "v0", "Pipeline: https://ci.example.com/1"),
    ]
    found = recent(history, ["a"], ["dev", "prod"])
    back, undone, first = found.events["a"]
    assert (back.action, back.tag, back.previous, back.by) == ("rollback", "v1", "v2", "ops")
    assert undone.rolled_back and not first.rolled_back
    assert first.pipeline == "https://ci.example.com/1" and first.by == "Author Name"
    assert found.changed_at == {("a", "dev"): "2026-12-01T10:00:00Z"}


def test_overrides_of_holds_and_freezes_are_said() -> None:
    history = [
        bump(
            "b",
            "prod",
            "a",
            "v2",
            "v1",
            "Glue-Freeze-Override: hotfix",
            "Glue-Override-Hold: prod a",
        ),
        bump("a", "prod", "b", "v9", "v8", "Glue-Freeze-Override: hotfix"),
    ]
    events = recent(history, ["a", "b"]).events
    assert events["a"][0].override == "hold, freeze"
    assert events["b"][0].override == "freeze"


def test_commits_glue_would_not_trust_are_left_out_and_the_walk_is_bounded() -> None:
    forged = commit(
        "f", "looks like glue\n\nGlue-Environment: dev\nGlue-Service: a\nnot a trailer\n"
    )
    history = [forged, *(bump(str(i), "dev", "a", f"v{i}", f"v{i - 1}") for i in range(1, 10))]
    assert [e.tag for e in recent(history, ["a"], length=3).events["a"]] == ["v1", "v2", "v3"]
    assert recent(history, ["a"], depth=1).events["a"] == []
    assert recent(history, ["a"], depth=3).events["a"][-1].tag == "v2"
