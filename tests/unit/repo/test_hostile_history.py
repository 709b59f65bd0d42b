"""glue reads trailers exactly as git does, trusts only the ones it writes, and refuses
branch names git refuses; CI-skip markers in data are defused."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from gitops_glue import inputs
from gitops_glue.errors import UsageError
from gitops_glue.repo.commit import glue_trailers, parse_trailers
from gitops_glue.repo.message import has_skip_ci, neutralise_skip_ci
from gitops_glue.repo.remote import branch_name_problem

PIECES = [
    "Title", "", "body text", "Key: value", "Glue-Environment: prod", "Signed-off-by: A <a@b>",
    "  continued", "\tcontinued", "# comment", "--- x", "Key : v", "Key x: v", "-: v", ":x",
    "a-b: c\u2028Glue-Environment: prod", "k: v\x85x", "K: ", "Conflicts:", "\tpath",
    "(cherry picked from commit abc)", " ", "\r", "K: v\r", "Bug #1", "\u00e9: x", "K:\u2028",
    "x\x0by: z", "A:b\x0c", "K:   spaced  ", "K: a\u2029b", "Glue-Service: a\u0085Glue-Service: b",
]  # fmt: skip


def _messages() -> list[str]:
    rnd = random.Random(20251203)
    found = [
        "t\n\nGlue-Environment: prod\nGlue-Service: a\n",
        "t\n\nTriggered-By: x\u2028Glue-Environment: prod\n",
        "t\n\nGlue-Environment: dev\nTriggered-By: bob\x85\n",
        "t\n\nA: b\n  folded\n\n",
        "t\n\nbody\nSigned-off-by: x <y>\nnot a trailer\n",
        "t\nno blank line\nK: v\n",
        "t\n\nK: v\n# comment\n\n",
    ]
    for _ in range(150):
        lines = [rnd.choice(PIECES) for _ in range(rnd.randint(0, 8))]
        found.append("\n".join(lines) + rnd.choice(["", "\n", "\n\n"]))
    return found


def git_parse(message: str, tmp_path: Path, *, divider: bool) -> list[tuple[str, str]]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    args = ["git", "interpret-trailers", "--parse", *([] if divider else ["--no-divider"])]
    out = subprocess.run(
        args,
        input=message.encode(),
        capture_output=True,
        env=env,
        cwd=tmp_path,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [(k, v) for k, _sep, v in (line.partition(": ") for line in out.split("\n")[:-1])]


@pytest.mark.parametrize("message", _messages())
def test_glue_reads_the_trailers_git_reads(message: str, tmp_path: Path) -> None:
    # (git 2.39 loops forever on a message that starts with a "---" line: none here.)
    assert parse_trailers(message) == git_parse(message, tmp_path, divider=True)
    assert parse_trailers(message, divider=False) == git_parse(message, tmp_path, divider=False)


def test_a_line_separator_in_a_value_is_not_a_new_trailer() -> None:
    message = "t\n\nGlue-Environment: staging\nTriggered-By: x\u2028Glue-Environment: prod\n"
    assert parse_trailers(message) == [
        ("Glue-Environment", "staging"),
        ("Triggered-By", "x\u2028Glue-Environment: prod"),
    ]


@pytest.mark.parametrize(
    ("message", "trusted"),
    [
        ("t\n\nGlue-Environment: prod\nGlue-Service: a\n", True),
        ("t\n\nbody\n\nGlue-Environment: prod\n", True),
        ("t\n\nGlue-Environment: prod\nTriggered-By: x\u2028y\n", False),
        ("t\n\nGlue-Environment: prod\nTriggered-By: x\x85\n", False),
        ("t\n\nGlue-Environment: prod\n  folded\n", False),
        ("t\n\nGlue-Environment: prod\n# comment\n", False),
        ("t\n\nGlue-Environment: prod\nSigned-off-by: a\nnot a trailer\n", False),
        ("t\n\n---\n\nGlue-Environment: prod\n", False),
        ("Glue-Environment: prod\n", False),
        ("t\n\nGlue-Environment:  prod\n", False),
        ("t\n\nGlue-Environment: prod\n\n\n", False),
    ],
)
def test_rollback_trusts_only_trailers_as_glue_writes_them(message: str, trusted: bool) -> None:
    assert (glue_trailers(message) is not None) == trusted


@pytest.mark.parametrize("ch", ["\u2028", "\u2029", "\u0085", "\u0080", "\u009f", "\n", "\x1b"])
def test_one_line_values_refuse_every_line_breaker(ch: str) -> None:
    with pytest.raises(UsageError, match=r"--actor: control character .*U\+"):
        inputs.check_line("--actor", f"a{ch}b")


BRANCHES = [
    "main", "feature/x", "release-1.2", "\u00e9t\u00e9", "a@b", "x/y.lockz", "../x", "main~1",
    "", "main.lock", "a/.b", "a..b", "-x", "HEAD", "a@{1}", "a b", "a\tb", "a:b", "a?", "a*",
    "a[b", "a\\b", "/a", "a/", "a//b", "a.", ".a", "a\x7f", "main^", "a.lock/b", "x/y.lock/z",
]  # fmt: skip


@pytest.mark.parametrize("branch", BRANCHES)
def test_branch_names_follow_git_check_ref_format(branch: str) -> None:
    ok = subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True)
    assert (branch_name_problem(branch) is None) == (ok.returncode == 0)


@pytest.mark.parametrize(
    "marker",
    ["[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]", "[Skip CI]",
     "[ci_skip]", "[skip-ci]", "***NO_CI***", "[skip azp]"],
)  # fmt: skip
def test_skip_ci_markers_are_defused(marker: str) -> None:
    text = f"deploy {marker} now"
    assert has_skip_ci(text)
    defused = neutralise_skip_ci(text)
    assert not has_skip_ci(defused) and "[" not in defused and "***" not in defused
    assert defused.startswith("deploy (") and defused.endswith(") now")
