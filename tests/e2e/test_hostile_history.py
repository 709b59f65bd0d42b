"""Hostile history and hostile data: forged trailers, line separators, CI-skip markers,
broken authors, runaway commit templates, bad branch names, shallow and sparse clones.

Each test runs glue as a user would and looks at what the user sees: the exit code,
the one ``glue: error:`` line, the commits and the files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pygit2
import pytest

from tests.support.helpers import git, glue, snapshot

#: Characters that end a line for some reader but not for git.
LINE_BREAKERS = ["\u2028", "\u2029", "\u0085", "\u0080", "\u009f"]


def head(repo: Path) -> pygit2.Commit:
    return pygit2.Repository(str(repo)).head.peel(pygit2.Commit)


def tag_of(repo: Path, env: str, service: str) -> str:
    status = json.loads(glue("status", "-o", "json", cwd=repo).out)
    return str(status["services"][service][env]["tag"])


def commit_message(repo: Path, message: str, path: str, old: str, new: str) -> str:
    """Commit an edit of ``path`` with ``message`` exactly as given (as any committer can)."""
    file = repo / path
    file.write_text(file.read_text().replace(old, new, 1))
    git(repo, "add", path)
    (repo.parent / "msg").write_bytes(message.encode())
    git(repo, "commit", "-q", "--cleanup=verbatim", "-F", str(repo.parent / "msg"))
    return git(repo, "rev-parse", "HEAD").strip()


def refused(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """``glue ARGS`` exits 2 with one error line, no traceback, the repo untouched."""
    before = snapshot(repo)
    tip = git(repo, "rev-parse", "HEAD")
    run = glue(*args, cwd=repo, env=env)
    assert run.code == 2, (run.code, run.out, run.err)
    assert run.err.count("glue: error: ") == 1, run.err
    assert "Traceback" not in run.err
    assert snapshot(repo) == before
    assert git(repo, "rev-parse", "HEAD") == tip
    return run.err


# --------------------------------------------------------------------------- forged trailers


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])  # str.splitlines splits there
def test_a_forged_trailer_value_does_not_make_rollback_revert_another_commit(
    repo: Path, sep: str
) -> None:
    assert glue("bump-tag", "a", "1.4.0", "--env", "prod", cwd=repo).code == 0
    bump = git(repo, "rev-parse", "HEAD").strip()
    # Someone's own edit of prod's file, whose trailer value smuggles glue's trailers
    # behind a line separator: git reads one trailer (Reviewed-by), and so must glue.
    forged = commit_message(
        repo,
        "prod: more replicas\n\n"
        f"Reviewed-by: mallory{sep}Glue-Environment: prod{sep}Glue-Service: a\n",
        "environments/prod.yaml",
        "b:\n",
        "b:\n  replicaCount: 9\n",
    )
    git_view = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=git(repo, "log", "-1", "--format=%B").encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert git_view.count("\n") == 1 and git_view.startswith("Reviewed-by: mallory")

    run = glue("rollback", "--env", "prod", "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    assert [c["commit"] for c in json.loads(run.out)["reverted"]] == [bump]
    assert forged not in run.out
    assert "replicaCount: 9" in (repo / "environments/prod.yaml").read_text()
    assert tag_of(repo, "prod", "a") != "1.4.0"


@pytest.mark.parametrize("sep", ["\u0085", "\u2028"])
def test_rollback_refuses_glue_trailers_it_did_not_write_as_it_writes_them(
    repo: Path, sep: str
) -> None:
    """An (older) glue commit whose Triggered-By holds a line separator: glue's old parser
    split the block and rolled back the bump before it, or found nothing; now the commit
    is named and nothing is reverted."""
    assert glue("bump-tag", "a", "1.3.0", "--env", "prod", cwd=repo).code == 0
    odd = commit_message(
        repo,
        "feat(prod): update a to 1.4.0\n\n"
        "Glue-Environment: prod\nGlue-Service: a\nGlue-Tag: 1.4.0\n"
        f"Triggered-By: bob{sep}\n",
        "environments/prod.yaml",
        "b:\n",
        "b:\n  x: 1\n",
    )
    err = refused(repo, "rollback", "--env", "prod")
    assert odd[:10] in err and "not trusting it" in err


def test_rollback_still_finds_glue_commits_behind_other_trailer_blocks(repo: Path) -> None:
    assert glue("bump-tag", "a", "1.4.0", "--env", "prod", cwd=repo).code == 0
    bump = git(repo, "rev-parse", "HEAD").strip()
    # A hand commit that quotes glue's trailers in its body (not its last paragraph).
    commit_message(
        repo,
        "notes\n\nGlue-Environment: prod\nGlue-Service: a\n\nSigned-off-by: Eve <e@x>\n",
        "environments/staging.yaml",
        "b:\n",
        "b:\n  y: 1\n",
    )
    run = glue("rollback", "--env", "prod", "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    assert [c["commit"] for c in json.loads(run.out)["reverted"]] == [bump]


# ------------------------------------------------------------- values that become lines


@pytest.mark.parametrize("sep", LINE_BREAKERS)
@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("bump-tag", "a", "1.4.0", "--env", "dev", "--revision", "abc{}def"), {}, "--revision"),
        (
            ("bump-tag", "a", "1.4.0", "--env", "dev", "--upstream-repo", "https://x/{}y"),
            {},
            "--upstream-repo",
        ),
        (("bump-tag", "a", "1.4.0", "--env", "dev"), {"GITHUB_ACTOR": "dev{}1"}, "CI actor"),
        (("promote", "a", "--to", "staging"), {"GITLAB_USER_LOGIN": "x{}y"}, "CI actor"),
        (("rollback", "--env", "dev"), {"GITHUB_ACTOR": "x{}y"}, "CI actor"),
        (("hold", "a", "--env", "dev", "--reason", "r", "--actor", "x{}y"), {}, "--actor"),
    ],
)
def test_line_separators_in_values_are_refused(
    repo: Path, sep: str, args: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    ci = {"GITHUB_ACTIONS": "true"} if "GITHUB_ACTOR" in env else {}
    ci |= {"GITLAB_CI": "true"} if "GITLAB_USER_LOGIN" in env else {}
    if args[0] == "rollback":
        assert glue("bump-tag", "a", "1.4.0", "--env", "dev", cwd=repo).code == 0
    filled = tuple(a.replace("{}", sep) for a in args)
    err = refused(repo, *filled, env={**ci, **{k: v.replace("{}", sep) for k, v in env.items()}})
    assert named in err and "control character" in err


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", '"glue\\nbot"'),
        ("name", "glue <bot>"),
        ("email", "bot@x>\\n"),
        ("email", '"a@b\\u2028"'),
        ("name", '"x\\ty"'),
    ],
)
def test_an_author_that_would_break_the_commit_header_is_refused_at_load(
    repo: Path, field: str, value: str
) -> None:
    config = repo / "glue.yaml"
    text = config.read_text()
    line = "    name: glue-bot\n" if field == "name" else "    email: glue-bot@users"
    assert line in text
    number = text[: text.index(line)].count("\n") + 1
    old = line if field == "name" else "    email: glue-bot@users.noreply.example.com\n"
    config.write_text(text.replace(old, f"    {field}: {value}\n"))
    git(repo, "commit", "-qam", "author")
    err = refused(repo, "bump-tag", "a", "1.4.0", "--env", "dev")
    assert f"glue.yaml:{number}: git.author.{field}:" in err


# --------------------------------------------------------------------------- commit templates


def set_template(repo: Path, template: str, skip_ci: bool = False) -> None:
    config = repo / "glue.yaml"
    body = "".join(f"    {line}\n" for line in template.splitlines())
    config.write_text(
        config.read_text().replace(
            "git:\n  branch: main\n",
            f"git:\n  branch: main\n  skip_ci: {str(skip_ci).lower()}\n"
            f"  commit_template: |\n{body}",
        )
    )
    git(repo, "commit", "-qam", "template")


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("{% include 'glue.yaml' %}", "{% include %} is not supported"),
        ("{% extends 'glue.yaml' %}", "{% extends %} is not supported"),
        ("{% import 'glue.yaml' as x %}", "{% import %} is not supported"),
        ("{{ range(10**9) | list }}", "larger than"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "calls itself too deeply"),
        ("{{ [].pop() }}", "unsafe"),
        ("{{ 'x' * 300000000 }}", "more than"),
        ("{{ 'x' | center(10**9) }}", "larger than"),
        ("{{ '{:>999999999}'.format(1) }}", "git.commit_template"),
        (
            "{% set l = [1,2,3,4,5,6,7,8,9,10] %}{% for a in l %}{% for b in l %}"
            "{% for c in l %}{% for d in l %}{% for e in l %}{% for f in l %}{% for g in l %}"
            "{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
            "steps",
        ),
        ("{% for i in range(60000) %}{{ title }}{% endfor %}", "longer than 65,536 characters"),
        ("{{ title }}\n\n---\nbody", "end of the message"),
    ],
)
def test_a_hostile_commit_template_is_one_error(repo: Path, template: str, said: str) -> None:
    set_template(repo, template)
    err = refused(repo, "bump-tag", "a", "1.4.0", "--env", "dev")
    assert "git.commit_template" in err and said in err, err


# --------------------------------------------------------------------------- [skip ci] in data


@pytest.mark.parametrize(
    "marker",
    ["[skip ci]", "[CI SKIP]", "[no ci]", "[skip actions]", "[actions skip]", "[skip-ci]",
     "***NO_CI***"],
)  # fmt: skip
def test_a_skip_ci_marker_carried_in_by_data_is_neutralised(repo: Path, marker: str) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": f"bot {marker}"}
    run = glue(
        "bump-tag", "a", "1.4.0", "--env", "dev",
        "--revision", f"abc{marker}", "--upstream-repo", f"https://x/{marker}",
        cwd=repo, env=env,
    )  # fmt: skip
    assert run.code == 0, run.err
    message = head(repo).message
    lowered = message.lower()
    for spelling in ("[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]"):
        assert spelling not in lowered
    assert "[skip-ci]" not in lowered and "***no_ci***" not in lowered
    # The trailers still say what rollback needs, and rollback undoes the bump.
    assert "Glue-Environment: dev\n" in message and "Glue-Service: a\n" in message
    rolled = glue("rollback", "--env", "dev", cwd=repo, env=env)
    assert rolled.code == 0, rolled.err
    assert "[skip" not in head(repo).message.lower()
    assert tag_of(repo, "dev", "a") == "3f9c2e1"


def test_a_skip_ci_marker_in_a_hold_reason_is_neutralised(repo: Path) -> None:
    """rollback --hold adds the hold's reason to the message after it is built."""
    assert glue("bump-tag", "a", "1.4.0", "--env", "dev", cwd=repo).code == 0
    run = glue(
        "rollback", "--env", "dev", "--hold", "--reason", "broken [skip ci] ***NO_CI***",
        cwd=repo,
    )  # fmt: skip
    assert run.code == 0, run.err
    lowered = head(repo).message.lower()
    assert "[skip ci]" not in lowered and "***no_ci***" not in lowered
    assert "broken (skip ci)" in lowered
    assert tag_of(repo, "dev", "a") == "3f9c2e1"


def test_a_template_with_data_markers_keeps_its_own_words(repo: Path) -> None:
    set_template(repo, "{{ title }} for {{ upstream_revision }}\n\nfrom {{ actor }}")
    run = glue(
        "bump-tag", "a", "1.4.0", "--env", "dev", "--revision", "[ci skip]",
        cwd=repo, env={"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "[skip ci]"},
    )  # fmt: skip
    assert run.code == 0, run.err
    message = head(repo).message
    assert "for (ci skip)" in message and "from (skip ci)" in message
    assert "[skip ci]" not in message and "[ci skip]" not in message


# --------------------------------------------------------------------------- --remote --branch


@pytest.mark.parametrize(
    "branch", ["../x", "main~1", "", "main.lock", "a..b", "feat/.x", "x y", "-x", "a@{1}", "HEAD"]
)
def test_remote_with_an_invalid_branch_name_is_bad_input(tmp_path: Path, branch: str) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    run = glue(
        "bump-tag", "a", "1.4.0", "--env", "dev", "--remote", str(bare), "--branch", branch,
        cwd=tmp_path,
    )  # fmt: skip
    assert run.code == 2, (run.code, run.err)
    assert run.err.count("glue: error: ") == 1 and "not a valid git branch name" in run.err


# --------------------------------------------------------------------------- shallow, sparse


def test_rollback_in_a_shallow_clone_says_the_history_is_missing(
    repo: Path, tmp_path: Path
) -> None:
    for tag in ("1111111", "2222222"):
        assert glue("bump-tag", "a", tag, "--env", "dev", cwd=repo).code == 0
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    err = refused(clone, "rollback", "--env", "dev")
    assert "shallow clone" in err and "merge commit" not in err
    assert "git fetch --unshallow" in err
    err = refused(clone, "rollback", "--env", "dev", "--to-commit", "HEAD~1")
    assert "shallow clone" in err


def test_rollback_in_a_sparse_checkout_says_the_file_is_left_out(
    repo: Path, tmp_path: Path
) -> None:
    assert glue("bump-tag", "a", "1111111", "--env", "dev", cwd=repo).code == 0
    clone = tmp_path / "sparse"
    git(tmp_path, "clone", "-q", f"file://{repo}", str(clone))
    git(clone, "sparse-checkout", "set", "charts")
    assert not (clone / "environments").exists()
    err = refused(clone, "rollback", "--env", "dev")
    assert "environments/dev.yaml is in the branch but not in the work tree" in err
    assert "sparse checkout" in err and "uncommitted changes" not in err


def test_bump_in_a_sparse_checkout_says_the_file_is_left_out(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "sparse"
    git(tmp_path, "clone", "-q", f"file://{repo}", str(clone))
    git(clone, "sparse-checkout", "set", "charts")
    for args in (("bump-tag", "a", "1.4.0", "--env", "dev"), ("promote", "--to", "prod", "a")):
        err = refused(clone, *args)
        assert "is in the branch but not in the work tree" in err, err
        assert "git sparse-checkout add environments" in err
