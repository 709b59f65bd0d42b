"""The change type, its diff, the result rendering, and commit trailers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gitops_glue.repo.commit import (
    Change,
    CommitResult,
    FileEdit,
    edits_between,
    parse_trailers,
)


@dataclass(frozen=True)
class Info:
    what: str = "x"

    def to_json(self) -> dict[str, object]:
        return {"what": self.what}

    def unchanged_text(self) -> str:
        return f"unchanged: {self.what}"

    def changed_lines(self) -> list[str]:
        return [f"  did {self.what}"]

    def dry_run_lines(self) -> list[str]:
        return [f"(dry run) would do {self.what}"]


def two_services() -> Change[Info]:
    return Change(
        edits=(
            FileEdit("envs/prod.yaml", 'a: "1"\nb: "1"\n', 'a: "2"\nb: "1"\n'),
            FileEdit("envs/dev.yaml", 'b: "1"\n', 'b: "3"\n'),
        ),
        message="feat: two services\n\nGlue-Service: a\nGlue-Service: b\n",
        details=Info("both"),
        notes=("a note",),
    )


def test_file_edit_diff_is_a_unified_diff_of_the_file() -> None:
    edit = FileEdit("envs/dev.yaml", 'x: 1\na: "1"\n', 'x: 1\na: "2"\n')
    assert edit.diff().splitlines() == [
        "--- a/envs/dev.yaml",
        "+++ b/envs/dev.yaml",
        "@@ -1,2 +1,2 @@",
        " x: 1",
        '-a: "1"',
        '+a: "2"',
    ]


def test_a_change_holds_edits_to_several_files_in_one_commit() -> None:
    change = two_services()
    assert change.changed and change.title == "feat: two services"
    assert change.files() == {"envs/prod.yaml": 'a: "2"\nb: "1"\n', "envs/dev.yaml": 'b: "3"\n'}
    diff = change.diff()
    assert diff.index("a/envs/dev.yaml") < diff.index("a/envs/prod.yaml")  # sorted by path
    assert '-b: "1"\n+b: "3"\n' in diff and '-a: "1"\n+a: "2"\n' in diff


def test_a_change_edits_each_file_once() -> None:
    with pytest.raises(ValueError, match="edits each file once"):
        Change(edits=(FileEdit("f", "", "1"), FileEdit("f", "", "2")), message="m", details=Info())


def test_edits_between_leaves_out_unchanged_files() -> None:
    edits = edits_between({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"})
    assert [(e.path, e.old_text, e.new_text) for e in edits] == [("b", "2", "3"), ("c", "", "4")]


def test_result_status_text_and_json_for_each_outcome() -> None:
    change = two_services()
    done = CommitResult(change, "abc123", dry_run=False, remote="ssh://h/r", attempts=3)
    assert done.status == "changed"
    assert done.summary().splitlines() == [
        "feat: two services",
        "  did both",
        "  commit abc123",
        "  pushed to ssh://h/r after 3 attempt(s)",
    ]
    data = done.to_json()
    assert data["status"] == "changed" and data["what"] == "both"
    assert data["files"] == ["envs/prod.yaml", "envs/dev.yaml"]
    assert (data["commit"], data["remote"], data["attempts"]) == ("abc123", "ssh://h/r", 3)
    assert data["notes"] == ["a note"] and "diff" not in data

    dry = CommitResult(change, None, dry_run=True)
    assert dry.status == "would-change"
    text = dry.summary()
    assert text.startswith(change.diff())
    assert text.endswith("(dry run) would do both\n(dry run) would commit: feat: two services")
    assert dry.to_json()["diff"] == change.diff()

    same = CommitResult(Change((), "m", Info("same")), None, dry_run=False)
    assert (same.status, same.summary()) == ("unchanged", "unchanged: same")
    skipped = CommitResult(Change((), "m", Info(), skipped="policy says no"), None, False)
    assert (skipped.status, skipped.summary()) == ("skipped", "skipped: policy says no")
    assert skipped.to_json()["skipped"] == "policy says no"


def test_trailers_are_the_last_paragraph_in_order() -> None:
    message = "title\n\nbody: not a trailer here\n\nGlue-Service: a\nGlue-Tag: 1\nGlue-Service: b\n"
    assert parse_trailers(message) == [
        ("Glue-Service", "a"),
        ("Glue-Tag", "1"),
        ("Glue-Service", "b"),
    ]


@pytest.mark.parametrize(
    "message",
    [
        "Glue-Environment: dev\n",  # a title alone is no trailer block
        "title\n\nGlue-Environment: dev\nand some prose\n",  # one prose line spoils it
        "title\n\nNot a key: dev\n",  # keys have no spaces
        "",
    ],
)
def test_no_trailers(message: str) -> None:
    assert parse_trailers(message) == []


def test_trailer_values_keep_colons_and_are_trimmed() -> None:
    message = "t\n\nPipeline: https://ci.example.com/p/1  \nUpstream-Revision: abc\n"
    assert parse_trailers(message) == [
        ("Pipeline", "https://ci.example.com/p/1"),
        ("Upstream-Revision", "abc"),
    ]
