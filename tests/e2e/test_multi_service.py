"""Several services in one commit, commit messages the team chooses, no stale revisions.

`glue bump-tag --env ENV a=TAG b=TAG`, `glue release --to ENV a=TAG b=TAG`, the
``git.commit_template`` / ``git.skip_ci`` settings, and the rule that a new tag
never keeps the old tag's revision: in a checkout, and over real SSH (sshd,
git-shell deploy key) with racing pipelines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

from gitops_glue.config import load_config
from gitops_glue.messages.changes import compute
from gitops_glue.repo import versions
from gitops_glue.repo.commit import parse_trailers
from gitops_glue.service_version import ServiceVersion
from tests.support.helpers import git, glue, many_services_seed, snapshot, start_glue
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env


def head(repo: Path) -> pygit2.Commit:
    return pygit2.Repository(str(repo)).head.peel(pygit2.Commit)


def services_of(message: str) -> list[tuple[str, str]]:
    """(Glue-Service, Glue-Tag) pairs of a commit message's trailers."""
    pairs = parse_trailers(message)
    names = [v for k, v in pairs if k == "Glue-Service"]
    tags = [v for k, v in pairs if k == "Glue-Tag"]
    return list(zip(names, tags, strict=True))


def set_git_settings(repo: Path, lines: str) -> None:
    """Add ``lines`` under glue.yaml's ``git:`` and commit it."""
    path = repo / "glue.yaml"
    text = path.read_text()
    path.write_text(text.replace("git:\n", "git:\n" + lines, 1))
    git(repo, "commit", "-q", "-am", "glue.yaml: commit messages")


# --------------------------------------------------------------------------- local


def test_two_services_and_their_revisions_in_one_commit(repo: Path) -> None:
    before = head(repo).id
    run = glue(
        "bump-tag",
        "--env",
        "staging",
        "a=v1.4.0@aaaa1111",
        "b=v1.4.0",
        "--revision",
        "bbbb2222",
        "-o",
        "json",
        cwd=repo,
    )
    assert run.code == 0, run.err
    data = json.loads(run.out)
    commit = head(repo)
    assert commit.parents[0].id == before and data["commit"] == str(commit.id)
    assert commit.message.splitlines()[0] == "feat(staging): update a to v1.4.0, b to v1.4.0"
    assert services_of(commit.message) == [("a", "v1.4.0"), ("b", "v1.4.0")]
    staging = (repo / "environments/staging.yaml").read_text()
    assert 'tag: "v1.4.0"  # service a\n  revision: "aaaa1111"' in staging
    assert 'tag: "v1.4.0"  # service b\n  revision: "bbbb2222"' in staging
    assert [(s["service"], s["old_tag"], s["new_revision"]) for s in data["services"]] == [
        ("a", "3f9c2e1", "aaaa1111"),
        ("b", "1d2e3f4", "bbbb2222"),
    ]
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--env", "staging", "a=v1.4.0", "zz=1.0.0"], "unknown service 'zz'"),
        (["--env", "prod", "a=v1.4.0", "b=1.4.0-rc1"], "service 'b': environment 'prod' refuses"),
        (["--env", "staging", "a=v1.4.0", "a=v1.5.0"], "service a named more than once"),
        (["--env", "staging", "a=v1.4.0", "b"], "'b' is not SERVICE=TAG"),
        (["--env", "staging", "a", "v1", "b=v1"], "'a' is not SERVICE=TAG"),
    ],
)
def test_one_refused_service_refuses_the_whole_bump(
    repo: Path, args: list[str], error: str
) -> None:
    before, old_head = snapshot(repo), head(repo).id
    run = glue("bump-tag", *args, cwd=repo)
    assert run.code == 2, run.out
    assert error in run.err
    assert run.err.startswith("glue: error:") and "Traceback" not in run.err
    assert snapshot(repo) == before and head(repo).id == old_head


def test_release_several_services_in_one_commit(repo: Path) -> None:
    run = glue("release", "--to", "prod", "a=v2.0.0", "b=v2.0.1", cwd=repo)
    assert run.code == 0, run.err
    commit = head(repo)
    assert commit.message.splitlines()[0] == "fix(prod): release a v2.0.0, b v2.0.1"
    assert dict(parse_trailers(commit.message))["Glue-Action"] == "release"
    assert services_of(commit.message) == [("a", "v2.0.0"), ("b", "v2.0.1")]
    # All or nothing here too, and no --tag with SERVICE=TAG.
    before = snapshot(repo)
    refused = glue("release", "--to", "prod", "a=v2.1.0", "b=2.1.0-rc1", cwd=repo)
    assert refused.code == 2 and "service 'b'" in refused.err
    mixed = glue("release", "--to", "prod", "a=v2.1.0", "--tag", "v2.1.0", cwd=repo)
    assert mixed.code == 2 and mixed.err.startswith("glue: error:")
    assert snapshot(repo) == before


def test_a_new_tag_never_keeps_the_old_revision(repo: Path) -> None:
    def notified(env: str) -> dict[str, tuple[str | None, str | None]]:
        loaded = load_config(repo)

        def read(path: str) -> str | None:
            file = repo / path
            return file.read_text() if file.exists() else None

        environment = loaded.config.environment(env)
        new = versions.deployed_all(read, loaded.config, environment)
        return {name: (v.tag, v.revision) for name, v in new.items() if v.tag is not None}

    # A tag that is not a commit SHA, no --revision: the old revision is cleared.
    run = glue("bump-tag", "a", "v1.5.0", "--env", "staging", cwd=repo)
    assert run.code == 0, run.err
    assert "revision cleared (a.revision)" in run.err
    assert (
        'tag: "v1.5.0"  # service a\n  revision: ""'
        in (repo / "environments/staging.yaml").read_text()
    )
    assert notified("staging")["a"] == ("v1.5.0", None)
    # Promoted on, from a file that has no revision at all: prod's old revision goes too.
    staging = repo / "environments/staging.yaml"
    staging.write_text(staging.read_text().replace('  revision: ""\n', "", 1))
    git(repo, "commit", "-q", "-am", "staging: no revision for a")
    assert notified("prod")["a"][1] is not None
    promoted = glue("promote", "a", "--to", "prod", cwd=repo)
    assert promoted.code == 0, promoted.err
    assert notified("prod")["a"] == ("v1.5.0", None)
    # A tag that is a commit SHA is its own revision.
    assert glue("bump-tag", "a", "4e5f6a7", "--env", "staging", cwd=repo).code == 0
    assert notified("staging")["a"] == ("4e5f6a7", "4e5f6a7")
    # The same tag again keeps the revision it has.
    same = glue("bump-tag", "b", "1d2e3f4", "--env", "staging", cwd=repo)
    assert same.code == 0 and same.out.startswith("unchanged:")
    assert notified("staging")["b"] == ("1d2e3f4", "1d2e3f4")


def test_commit_template_skip_ci_and_the_trailers_glue_needs(repo: Path) -> None:
    set_git_settings(
        repo,
        "  skip_ci: true\n"
        "  commit_template: |\n"
        "    {{ 'beta' if environment != 'prod' else 'release' }}: "
        "{% for s in services %}{{ s.name }}@{{ s.new_tag }}{{ ' ' if not loop.last }}"
        "{% endfor %}\n"
        "\n"
        "    {% for s in services %}\n"
        "    {{ s.name }}: {{ s.old_tag }} -> {{ s.new_tag }} ({{ s.new_revision }})\n"
        "    {% endfor %}\n"
        "    by {{ actor }} in {{ pipeline }}\n"
        "\n"
        "    Glue-Environment: prod\n",
    )
    env = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_URL": "https://gitlab.example/p/-/pipelines/9",
        "GITLAB_USER_LOGIN": "dev1",
    }
    run = glue(
        "bump-tag",
        "--env",
        "staging",
        "a=v1.4.0",
        "b=4e5f6a7",
        "--revision",
        "cafe123",
        cwd=repo,
        env=env,
    )
    assert run.code == 0, run.err
    message = head(repo).message
    lines = message.splitlines()
    assert lines[0] == "beta: a@v1.4.0 b@4e5f6a7 [skip ci]"
    assert "a: 3f9c2e1 -> v1.4.0 (cafe123)" in lines
    assert "by dev1 in https://gitlab.example/p/-/pipelines/9" in lines
    # The template's fake trailer is text; glue's own trailers close the message.
    trailers = dict(parse_trailers(message))
    assert trailers["Glue-Environment"] == "staging"
    assert trailers["Pipeline"] == "https://gitlab.example/p/-/pipelines/9"
    assert services_of(message) == [("a", "v1.4.0"), ("b", "4e5f6a7")]
    # rollback and promote still find the commit by its trailers.
    back = glue("rollback", "--env", "staging", cwd=repo)
    assert back.code == 0, back.err
    assert '"3f9c2e1"  # service a' in (repo / "environments/staging.yaml").read_text()
    promoted = glue("promote", "a", "--to", "staging", cwd=repo)
    assert promoted.code == 0, promoted.err
    assert head(repo).message.splitlines()[0].endswith(" [skip ci]")


def test_a_broken_commit_template_changes_nothing(repo: Path) -> None:
    set_git_settings(repo, "  commit_template: 'deploy {{ nope }}'\n")
    before, old_head = snapshot(repo), head(repo).id
    run = glue("bump-tag", "a", "v1.4.0", "--env", "staging", cwd=repo)
    assert run.code == 2
    assert "glue: error: glue.yaml git.commit_template: 'nope' is undefined" in run.err
    assert snapshot(repo) == before and head(repo).id == old_head


# --------------------------------------------------------------------------- remote


@pytest.mark.ssh
@pytest.mark.slow  # push races
def test_eight_racing_three_service_bumps_each_land_whole(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    remote = ssh_git_server.new_remote("race-multi", seed=many_services_seed(3, ["dev"]))
    procs = [
        start_glue(
            *("bump-tag", "--env", "dev", f"s0=1.0.{i}", f"s1=1.0.{i}", f"s2=1.0.{i}"),
            *("--remote", remote.url),
            cwd=tmp_path,
            env=ssh_env(ssh_git_server),
        )
        for i in range(8)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, _out, err in results:
        assert code == 0, err
    log = remote.log()
    assert len(log) == 9
    assert all(c.parents == (log[n + 1].sha,) for n, c in enumerate(log[:-1]))  # linear
    previous = "0000000"
    for commit in reversed(log[:-1]):
        pairs = parse_trailers(commit.message)
        tags = [v for k, v in pairs if k == "Glue-Tag"]
        olds = [v for k, v in pairs if k == "Glue-Previous-Tag"]
        assert [v for k, v in pairs if k == "Glue-Service"] == ["s0", "s1", "s2"]
        assert len(set(tags)) == 1  # one pipeline's three tags, together
        assert olds == [previous] * 3  # planned on the tip it landed on
        previous = tags[0]
    final = remote.show("main", "envs/dev.yaml")
    for s in ("s0", "s1", "s2"):
        assert f'{s}:\n  image:\n    tag: "{previous}"\n' in final
    assert sum(json.loads(out)["attempts"] > 1 for _c, out, _e in results) > 0  # races happened


@pytest.mark.ssh
def test_remote_multi_bump_refused_pushes_nothing(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    initial = ssh_remote.head()
    refused = glue(
        "bump-tag",
        "--env",
        "prod",
        "a=v1.4.0",
        "b=1.4.0-rc1",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert refused.code == 2 and "service 'b'" in refused.err
    assert ssh_remote.head() == initial
    done = glue(
        "bump-tag",
        "--env",
        "prod",
        "a=v1.4.0",
        "b=v1.4.1",
        "--remote",
        ssh_remote.url,
        "-o",
        "json",
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert done.code == 0, done.err
    log = ssh_remote.log()
    assert [c.sha for c in log] == [json.loads(done.out)["commit"], initial]
    assert services_of(log[0].message) == [("a", "v1.4.0"), ("b", "v1.4.1")]


def test_notify_never_links_a_sha_tag_to_another_commit() -> None:
    # A record written before this rule: tag 4e5f6a7 next to the old tag's revision.
    old = {"a": ServiceVersion("3f9c2e1", "3f9c2e1")}
    stale = {"a": ServiceVersion("4e5f6a7", "3f9c2e1")}
    change = compute("staging", old, stale, sources={"a": "https://github.com/example/a"})
    a = change.services[0]
    assert a.new_url() == "https://github.com/example/a/commit/4e5f6a7"
    assert a.compare_url() == "https://github.com/example/a/compare/3f9c2e1...4e5f6a7"
    # A full revision of the same commit is kept (it is the better link).
    full = {"a": ServiceVersion("4e5f6a7", "4e5f6a7b8c9d")}
    b = compute("staging", old, full, sources={"a": "https://github.com/example/a"})
    assert b.services[0].new_url() == "https://github.com/example/a/commit/4e5f6a7b8c9d"
