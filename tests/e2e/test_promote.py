"""`glue promote` and `glue release`: in a checkout, and over real SSH (sshd, git-shell key)."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

from gitops_glue.repo.commit import parse_trailers
from gitops_glue.repo.release import pick_branch_tag
from tests.support.helpers import git, glue, many_services_seed, snapshot, start_glue
from tests.support.registry import RegistryServer
from tests.support.sshgit import BareRemote, SshGitServer, ssh_env


def head(repo: Path) -> pygit2.Commit:
    return pygit2.Repository(str(repo)).head.peel(pygit2.Commit)


def groups(message: str) -> list[dict[str, str]]:
    """Per-service trailer groups (each starts at Glue-Service)."""
    out: list[dict[str, str]] = []
    for key, value in parse_trailers(message):
        if key == "Glue-Service":
            out.append({})
        if out:
            out[-1][key] = value
    return out


# --------------------------------------------------------------------------- local


def test_promote_one_service_copies_tag_and_revision_from_the_previous_env(repo: Path) -> None:
    run = glue("promote", "b", "--to", "staging", cwd=repo)
    assert run.code == 0, run.err
    commit = head(repo)
    assert commit.message.splitlines()[0] == "feat(staging): promote b to 9a8b7c6 from dev"
    trailers = dict(parse_trailers(commit.message))
    assert trailers["Glue-Environment"] == "staging"
    assert trailers["Glue-Action"] == "promote"
    assert trailers["Glue-Source-Environment"] == "dev"
    assert groups(commit.message) == [
        {
            "Glue-Service": "b",
            "Glue-Tag": "9a8b7c6",
            "Glue-Previous-Tag": "1d2e3f4",
            "Upstream-Revision": "9a8b7c6",
        }
    ]
    assert commit.author.name == "glue-bot"
    diff = git(repo, "diff", "HEAD~1", "HEAD", "--unified=0").splitlines()
    assert [
        ln for ln in diff if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))
    ] == [
        '-    tag: "1d2e3f4"  # service b',
        '-  revision: "1d2e3f4"',
        '+    tag: "9a8b7c6"  # service b',
        '+  revision: "9a8b7c6"',
    ]
    assert git(repo, "status", "--porcelain") == ""
    # Again: nothing to do, no commit.
    again = glue("promote", "b", "--to", "staging", "-o", "json", cwd=repo)
    assert again.code == 0 and json.loads(again.out)["status"] == "unchanged"
    assert head(repo).id == commit.id


def test_promote_all_makes_one_commit_listing_every_changed_service(repo: Path) -> None:
    assert (
        glue(
            "bump-tag", "a", "4e5f6a7", "--env", "dev", "--revision", "4e5f6a7b8c9d", cwd=repo
        ).code
        == 0
    )
    run = glue("promote", "--all", "--to", "staging", "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [p["service"] for p in data["promoted"]] == ["a", "b"]
    commit = head(repo)
    assert commit.message.splitlines()[0] == "feat(staging): promote a, b from dev"
    assert "a in staging: 3f9c2e1 -> 4e5f6a7" in commit.message
    assert "b in staging: 1d2e3f4 -> 9a8b7c6" in commit.message
    assert [g["Glue-Service"] for g in groups(commit.message)] == ["a", "b"]
    assert groups(commit.message)[0]["Upstream-Revision"] == "4e5f6a7b8c9d"
    assert git(repo, "diff", "--name-only", "HEAD~1", "HEAD").split() == [
        "environments/staging.yaml"
    ]
    status = json.loads(glue("status", "-o", "json", cwd=repo).out)["services"]
    assert status["a"]["staging"]["tag"] == "4e5f6a7"
    assert status["a"]["staging"]["revision"] == "4e5f6a7b8c9d"
    # --from overrides the source: prod gets dev's versions directly.
    run = glue("promote", "a", "--to", "prod", "--from", "dev", cwd=repo)
    assert run.code == 0, run.err
    assert head(repo).message.startswith("feat(prod): promote a to 4e5f6a7 from dev\n")


def test_promotion_the_target_policy_refuses_changes_nothing(repo: Path) -> None:
    assert glue("bump-tag", "a", "1.2.3-rc1", "--env", "staging", cwd=repo).code == 0
    before, old_head = snapshot(repo), head(repo).id
    for args in (["a"], ["a", "b"], ["--all", "--strict"]):
        run = glue("promote", *args, "--to", "prod", cwd=repo)
        assert run.code == 2, run.out
        assert "promotion to 'prod' refused; nothing was changed" in run.err
        assert "a 1.2.3-rc1: environment 'prod' refuses tag '1.2.3-rc1'" in run.err
        assert "Traceback" not in run.err
    assert snapshot(repo) == before and head(repo).id == old_head


def test_promote_all_promotes_what_the_policy_accepts_and_lists_the_rest(repo: Path) -> None:
    # A beta of a sits in staging (prod refuses it); b has a release tag waiting.
    bumped = glue("bump-tag", "--env", "staging", "a=1.2.3-rc1", "b=v2.0.0", cwd=repo)
    assert bumped.code == 0, bumped.err
    run = glue("promote", "--all", "--to", "prod", "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert [p["service"] for p in data["promoted"]] == ["b"]
    assert [r.split(":")[0] for r in data["refused"]] == ["a 1.2.3-rc1"]
    prod = (repo / "environments/prod.yaml").read_text()
    assert '"v2.0.0"' in prod and "1.2.3-rc1" not in prod
    assert groups(head(repo).message)[0]["Glue-Service"] == "b"
    text = glue("promote", "--all", "--to", "prod", cwd=repo)
    assert text.code == 0, text.err
    assert "refused by prod's tag policy" in text.out and "a 1.2.3-rc1" in text.out


def test_promote_usage_errors(repo: Path) -> None:
    first = glue("promote", "a", "--to", "dev", cwd=repo)
    assert first.code == 2 and "'dev' is the first environment" in first.err
    both = glue("promote", "a", "--all", "--to", "prod", cwd=repo)
    assert both.code == 2
    unknown = glue("promote", "zz", "--to", "prod", cwd=repo)
    assert unknown.code == 2 and "unknown service 'zz'" in unknown.err
    dry = glue("promote", "b", "--to", "staging", "--dry-run", cwd=repo)
    assert dry.code == 0 and '+    tag: "9a8b7c6"  # service b' in dry.out
    assert git(repo, "status", "--porcelain") == ""


def test_release_a_hotfix_tag(repo: Path) -> None:
    run = glue("release", "a", "--tag", "v1.2.4", "--to", "prod", cwd=repo)
    assert run.code == 0, run.err
    commit = head(repo)
    assert commit.message.splitlines()[0] == "fix(prod): release a v1.2.4"
    trailers = dict(parse_trailers(commit.message))
    assert (
        trailers["Glue-Environment"],
        trailers["Glue-Action"],
        trailers["Glue-Tag"],
        trailers["Glue-Previous-Tag"],
    ) == ("prod", "release", "v1.2.4", "2b4d6f8")
    refused = glue("release", "a", "--tag", "latest", "--to", "prod", cwd=repo)
    assert refused.code == 2 and "mutable tag" in refused.err


def test_pick_branch_tag_sorts_build_numbers_as_numbers() -> None:
    scheme = r"{branch}-(?P<order>[0-9]+)-(?P<revision>[0-9a-f]{7,40})"
    tags = [
        "main-9-aaaaaaa",
        "main-10-bbbbbbb",
        "feature-x-99-ccccccc",
        "latest",
        "main-2-ddddddd",
        "release-1.2-50-eeeeeee",
    ]
    found = pick_branch_tag(tags, scheme, "main")
    assert found is not None and (found.tag, found.revision) == ("main-10-bbbbbbb", "bbbbbbb")
    other = pick_branch_tag(tags, scheme, "Release/1.2")
    assert other is not None and other.tag == "release-1.2-50-eeeeeee"
    assert pick_branch_tag(tags, scheme, "nope") is None


def test_release_newest_tag_of_a_branch_from_the_registry(
    repo: Path, registry: RegistryServer
) -> None:
    image = f"{registry.host}/team/a"
    for tag in ("main-9-1111111", "main-10-2222222", "feat-11-3333333", "latest"):
        registry.push("team/a", tag)
    config = repo / "glue.yaml"
    config.write_text(
        config.read_text().replace(
            "    source_repo: https://github.com/example/a\n",
            f"    source_repo: https://github.com/example/a\n    image: {image}\n",
        )
    )
    git(repo, "commit", "-qam", "a's image")
    refused = glue("release", "a", "--source-branch", "main", "--to", "staging", cwd=repo)
    assert refused.code == 2 and "refuses tag 'main-10-2222222'" in refused.err  # policy holds
    config.write_text(
        config.read_text().replace(
            "    namespace: example-staging  # where glue keeps its deploy record and lock\n",
            "    namespace: example-staging\n"
            "    tag_policy: {allow: '^main-[0-9]+-[0-9a-f]{7}$'}\n",
        )
    )
    git(repo, "commit", "-qam", "staging takes main builds")
    run = glue("release", "a", "--source-branch", "main", "--to", "staging", "-o", "json", cwd=repo)
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert (data["new_tag"], data["new_revision"]) == ("main-10-2222222", "2222222")
    trailers = dict(parse_trailers(head(repo).message))
    assert trailers["Glue-Source-Branch"] == "main"
    missing = glue("release", "a", "--source-branch", "develop", "--to", "staging", cwd=repo)
    assert missing.code == 2 and "has no tag built from branch 'develop'" in missing.err


# --------------------------------------------------------------------------- remote


@pytest.mark.ssh
def test_promote_over_ssh_one_and_all(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    initial = ssh_remote.head()
    run = glue(
        "promote",
        "b",
        "--to",
        "staging",
        "--remote",
        ssh_remote.url,
        "-o",
        "json",
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 0, run.err
    log = ssh_remote.log()
    assert [c.sha for c in log] == [json.loads(run.out)["commit"], initial]
    assert log[0].message.startswith("feat(staging): promote b to 9a8b7c6 from dev\n")
    assert '    tag: "9a8b7c6"  # service b' in ssh_remote.show("main", "environments/staging.yaml")
    run = glue(
        "promote",
        "--all",
        "--to",
        "prod",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 0, run.err
    log = ssh_remote.log()
    assert log[0].message.startswith("feat(prod): promote a, b from staging\n")
    assert [g["Glue-Service"] for g in groups(log[0].message)] == ["a", "b"]
    assert list(tmp_path.iterdir()) == []  # no clone left behind
    refused = glue(
        "promote",
        "a",
        "--to",
        "prod",
        "--from",
        "dev",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert refused.code == 0  # same tag already: unchanged
    ssh_remote.commit(
        {
            "environments/staging.yaml": ssh_remote.show(
                "main", "environments/staging.yaml"
            ).replace('tag: "3f9c2e1"', 'tag: "latest"')
        },
        "someone sets a mutable tag in staging",
    )
    head_before = ssh_remote.head()
    refused = glue(
        "promote",
        "a",
        "--to",
        "prod",
        "--remote",
        ssh_remote.url,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert refused.code == 2 and "refuses the mutable tag 'latest'" in refused.err
    assert ssh_remote.head() == head_before


@pytest.mark.ssh
@pytest.mark.slow  # push races
def test_concurrent_promote_and_bumps_all_land(
    ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    envs = ["dev", "staging", "prod"]
    seed = many_services_seed(4, envs)
    seed["envs/dev.yaml"] = seed["envs/dev.yaml"].replace('"0000000"', '"1111111"')
    remote = ssh_git_server.new_remote("promote-race", seed=seed)
    jobs = [["promote", "--all", "--to", "staging", "--remote", remote.url]]
    jobs += [
        ["bump-tag", f"s{i}", "2222222", "--env", "prod", "--remote", remote.url] for i in range(4)
    ]
    procs = [start_glue(*j, cwd=tmp_path, env=ssh_env(ssh_git_server)) for j in jobs]
    results = [
        (
            p.wait(timeout=300),
            p.stdout.read() if p.stdout else "",
            p.stderr.read() if p.stderr else "",
        )
        for p in procs
    ]
    for code, _out, err in results:
        assert code == 0, err
    log = remote.log()
    assert len(log) == 6 and all(len(c.parents) == 1 for c in log[:-1])
    promo = next(c for c in log if c.message.startswith("feat(staging): promote"))
    assert [g["Glue-Service"] for g in groups(promo.message)] == ["s0", "s1", "s2", "s3"]
    staging, prod = remote.show("main", "envs/staging.yaml"), remote.show("main", "envs/prod.yaml")
    assert staging.count('tag: "1111111"') == 4 and prod.count('tag: "2222222"') == 4


# --------------------------------------------------------------------------- auto-release

AUTO = "auto_release:\n  - {branch: main, to: dev}\n  - {branch: 'release/*', to: staging}\n"


def test_auto_release_policy_gates_bump_tag_and_answers_should_release(repo: Path) -> None:
    config = repo / "glue.yaml"
    config.write_text(config.read_text() + AUTO)
    git(repo, "commit", "-qam", "auto-release policy")
    cases = [
        ("main", "dev", "true"),
        ("main", "staging", "false"),
        ("release/1.2", "staging", "true"),
        ("feature-x", "dev", "false"),
    ]
    for branch, env, expected in cases:
        run = glue("should-release", "--source-branch", branch, "--env", env, cwd=repo)
        assert (run.code, run.out.strip()) == (0, expected), (branch, env, run.err)
    old_head = head(repo).id
    skipped = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "staging",
        "--if-auto-release",
        "main",
        "-o",
        "json",
        cwd=repo,
    )
    assert skipped.code == 0, skipped.err
    assert json.loads(skipped.out)["status"] == "skipped"
    assert head(repo).id == old_head
    done = glue("bump-tag", "a", "4e5f6a7", "--env", "dev", "--if-auto-release", "main", cwd=repo)
    assert done.code == 0 and head(repo).message.startswith("feat(dev): update a to 4e5f6a7")
    config.write_text(config.read_text() + "  - {branch: x, to: qa}\n")
    bad = glue("should-release", "--source-branch", "x", "--env", "dev", cwd=repo)
    assert bad.code == 2 and "auto_release: environment 'qa' is not in environments" in bad.err


@pytest.mark.ssh
def test_auto_release_policy_is_read_from_the_remote(
    ssh_git_server: SshGitServer, ssh_remote: BareRemote, tmp_path: Path
) -> None:
    ssh_remote.commit({"glue.yaml": ssh_remote.show("main", "glue.yaml") + AUTO}, "policy")
    before = ssh_remote.head()
    args = ("--remote", ssh_remote.url, "-o", "json")
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "prod",
        "--if-auto-release",
        "main",
        *args,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 0 and json.loads(run.out)["status"] == "skipped"
    assert ssh_remote.head() == before
    run = glue(
        "should-release",
        "--source-branch",
        "main",
        "--env",
        "dev",
        *args,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 0 and json.loads(run.out)["release"] is True
    run = glue(
        "bump-tag",
        "a",
        "4e5f6a7",
        "--env",
        "dev",
        "--if-auto-release",
        "main",
        *args,
        cwd=tmp_path,
        env=ssh_env(ssh_git_server),
    )
    assert run.code == 0 and json.loads(run.out)["status"] == "changed"
