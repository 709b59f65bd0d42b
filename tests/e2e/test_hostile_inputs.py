"""The hostile-input corpus against every command that reads it (issue 15).

Each case puts one hostile input into a real checkout of the example
deployment repository (committed, so the tree starts clean) and runs
``glue get``, ``glue set``, ``glue status`` and ``glue bump-tag`` on it as a
user would, in a process of its own. Every run must end with exit 2, exactly
one ``glue: error:`` line, no traceback, within the subprocess timeout (the
unlimited versions ran for minutes or ran out of memory), and with the files,
the index and HEAD as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gitops_glue import inputs
from tests.support.helpers import git, glue, snapshot

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"
DEV = "environments/dev.yaml"
#: Generous: a bound on a hang, not a timing assertion.
TIMEOUT = 60


def _values(text: str) -> Callable[[Path], None]:
    def put(repo: Path) -> None:
        (repo / DEV).write_text(text)

    return put


def _glue_yaml(extra: str | None = None, whole: str | None = None) -> Callable[[Path], None]:
    def put(repo: Path) -> None:
        path = repo / "glue.yaml"
        path.write_text(whole if whole is not None else path.read_text() + (extra or ""))

    return put


def _corpus(name: str) -> str:
    return (HOSTILE / name).read_text()


DEEP = "a: " + "[" * 5000 + "]" * 5000 + "\n"
HUGE_PAD = "k: v\n" * (inputs.MAX_FILE_BYTES // 5 + 100)

#: name -> (how to plant it, what the error says)
CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "values-billion-laughs": (_values(_corpus("billion-laughs.yaml")), "alias bomb"),
    "values-self-alias": (_values(_corpus("self-alias.yaml")), "inside of"),
    "values-duplicate-keys": (_values(_corpus("duplicate-keys.yaml")), "duplicate key 'tag'"),
    "values-deep-nesting": (_values(DEEP), "nested more than 100 levels"),
    "values-huge": (
        _values('a:\n  image:\n    tag: "3f9c2e1"\n# padding\n' + HUGE_PAD.replace("k:", "#k:")),
        "larger than",
    ),
    "glue-yaml-billion-laughs": (_glue_yaml(_corpus("billion-laughs.yaml")), "alias bomb"),
    "glue-yaml-deep-nesting": (_glue_yaml("x" + DEEP[1:]), "nested more than 100 levels"),
    "glue-yaml-huge": (_glue_yaml("#" * inputs.MAX_FILE_BYTES), "larger than"),
    "glue-yaml-duplicate-keys": (_glue_yaml("version: 1\n"), "duplicate key 'version'"),
    "glue-yaml-exponential-regex": (
        _glue_yaml(whole=_corpus("exponential-regex.glue.yaml")),
        "exponential time",
    ),
}

#: Commands, and whether each reads glue.yaml (``glue get``/``set`` do not).
COMMANDS: list[tuple[tuple[str, ...], bool]] = [
    (("get", DEV, "a.image.tag"), False),
    (("set", DEV, "a.image.tag", "4e5f6a7"), False),
    (("status",), True),
    (("bump-tag", "a", "4e5f6a7", "--env", "dev"), True),
]


def _refused(repo: Path, args: tuple[str, ...], says: str) -> None:
    before, head = snapshot(repo), git(repo, "rev-parse", "HEAD")
    run = glue(*args, cwd=repo, subprocess=True, timeout=TIMEOUT)
    assert run.code == 2, (args, run.code, run.out, run.err[-2000:])
    assert "Traceback" not in run.err + run.out
    errors = [ln for ln in run.err.splitlines() if ln.startswith("glue: error:")]
    assert len(errors) == 1, run.err[-2000:]
    assert says in errors[0], errors[0][:500]
    assert len(run.err) < 2000  # no echo of a 2 MiB input
    assert snapshot(repo) == before
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_refused_by_every_command_that_reads_it(repo: Path, case: str) -> None:
    plant, says = CASES[case]
    plant(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"hostile: {case}")
    for args, reads_config in COMMANDS:
        if case.startswith("glue-yaml") and not reads_config:
            continue
        _refused(repo, args, says)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--revision", "abc\nGlue-Environment: prod"), "--revision: control character"),
        (("--upstream-repo", "example/a\nGlue-Environment: prod"), "--upstream-repo: control"),
        (("--revision", "abc\tdef"), "--revision: control character '\\t'"),
    ],
)
def test_bump_refuses_control_characters_that_would_inject_a_trailer(
    repo: Path, args: tuple[str, ...], says: str
) -> None:
    _refused(repo, ("bump-tag", "a", "4e5f6a7", "--env", "dev", *args), says)


@pytest.mark.parametrize(
    ("tag", "says"),
    [("4e5f6a7\n", "tag: control character"), ("v" * 40_000, "more than the limit")],
)
def test_bump_refuses_a_tag_with_a_newline_or_of_absurd_length(
    repo: Path, tag: str, says: str
) -> None:
    _refused(repo, ("bump-tag", "a", tag, "--env", "dev"), says)


@pytest.mark.parametrize("command", ["get", "set"])
def test_get_and_set_refuse_a_key_path_of_absurd_length(repo: Path, command: str) -> None:
    args = (command, DEV, "a." * 20_000 + "tag") + (("x",) if command == "set" else ())
    _refused(repo, args, "longer than the limit of 1000")


def test_promote_refuses_a_revision_with_a_newline_in_the_source_environment(repo: Path) -> None:
    dev = repo / DEV
    dev.write_text(dev.read_text().replace('revision: "3f9c2e1"', 'revision: "x\\nGlue-Action: y"'))
    git(repo, "commit", "-q", "-am", "hostile revision")
    _refused(repo, ("promote", "--to", "staging", "a"), "control character")
