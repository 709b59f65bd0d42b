"""Planners (bump, promote, release, rollback) and both commit targets.

Planners are pure: they get file texts from an in-memory reader (or history
from a real git repository in a tmp dir) and return a Change. The targets
are exercised on real repositories: a checkout, and a bare repository used as
a remote, where another writer wins the first push race.
"""

from __future__ import annotations

import re
from pathlib import Path

import pygit2
import pytest

from gitops_glue.config import GlueConfig, load_config, parse_config
from gitops_glue.errors import PolicyError, UsageError
from gitops_glue.integrations.ci import CiContext
from gitops_glue.repo import gitrepo
from gitops_glue.repo.bump import BumpRequest, TagChange, bump, plan_bump
from gitops_glue.repo.commit import Change, View, commit_change, parse_trailers
from gitops_glue.repo.promote import PromoteRequest, plan_promote
from gitops_glue.repo.release import ReleaseRequest, pick_branch_tag, plan_release
from gitops_glue.repo.remote import RemoteBranch, RemoteOptions, make_auth
from gitops_glue.repo.rollback import Rollback, RollbackRequest, plan_rollback
from gitops_glue.repo.target import Checkout
from gitops_glue.repo.versions import Reader
from tests.support.helpers import git

GLUE_YAML = """\
version: 1
git:
  author: {name: bot, email: bot@example.com}
environments:
  - name: dev
    values: [envs/base.yaml, envs/dev.yaml]
  - name: staging
    values: [envs/base.yaml, envs/staging.yaml]
  - name: prod
    values: [envs/base.yaml, envs/prod.yaml]
    tag_policy: {allow: '^v[0-9]+\\.[0-9]+\\.[0-9]+$'}
auto_release:
  - {branch: main, to: dev}
services:
  a: {tag_key: a.image.tag, revision_key: a.revision}
  b: {tag_key: b.image.tag}
"""

FILES = {
    "glue.yaml": GLUE_YAML,
    "envs/base.yaml": 'b:\n  image:\n    tag: "base1"\n',
    "envs/dev.yaml": 'a:\n  image:\n    tag: "v1.1.0"\n  revision: "r11"\n'
    'b:\n  image:\n    tag: "v9.0.0"\n',
    "envs/staging.yaml": 'a:\n  image:\n    tag: "v1.0.0"\n  revision: "r10"\n',
    "envs/prod.yaml": 'a:\n  image:\n    tag: "v1.0.0"\n  revision: "r10"\n',
}


def config() -> GlueConfig:
    return parse_config(GLUE_YAML)


def reader(files: dict[str, str] | None = None) -> Reader:
    return (files or FILES).get


# --------------------------------------------------------------------------- bump


def test_bump_edits_the_environments_own_file_only() -> None:
    change = plan_bump(config(), reader(), BumpRequest("a", "v1.2.0", "staging", revision="r12"))
    assert [e.path for e in change.edits] == ["envs/staging.yaml"]
    assert change.edits[0].new_text == 'a:\n  image:\n    tag: "v1.2.0"\n  revision: "r12"\n'
    d = change.details
    assert (d.old_tag, d.new_tag, d.old_revision, d.new_revision) == (
        "v1.0.0",
        "v1.2.0",
        "r10",
        "r12",
    )
    assert change.title == "feat(staging): update a to v1.2.0"
    trailers = dict(parse_trailers(change.message))
    assert trailers["Glue-Previous-Tag"] == "v1.0.0" and trailers["Upstream-Revision"] == "r12"


def test_bump_of_a_tag_set_in_a_shared_file_writes_the_override_into_the_own_file() -> None:
    change = plan_bump(config(), reader(), BumpRequest("b", "v2.0.0", "staging"))
    assert change.details.old_tag == "base1"
    assert change.files() == {
        "envs/staging.yaml": FILES["envs/staging.yaml"] + "b:\n  image:\n    tag: v2.0.0\n"
    }
    assert change.notes == ()


def test_bump_to_the_current_tag_changes_nothing_and_notes_an_unused_revision() -> None:
    change = plan_bump(config(), reader(), BumpRequest("b", "v9.0.0", "dev", revision="r"))
    assert not change.changed and change.skipped is None
    assert change.notes == ("--revision ignored: service 'b' has no revision_key",)


def test_bump_refusals() -> None:
    with pytest.raises(PolicyError, match="does not match the policy"):
        plan_bump(config(), reader(), BumpRequest("a", "3f9c2e1", "prod"))
    with pytest.raises(UsageError, match=re.escape("values file envs/dev.yaml does not exist")):
        plan_bump(config(), reader({"envs/base.yaml": ""}), BumpRequest("a", "1", "dev"))
    files = {**FILES, "envs/base.yaml": "{}\n", "envs/dev.yaml": "{}\n"}
    with pytest.raises(UsageError, match=re.escape("key b.image.tag is in none of")):
        plan_bump(config(), reader(files), BumpRequest("b", "1", "dev"))


def test_bump_if_auto_release_skips_unless_the_policy_sends_the_branch() -> None:
    skipped = plan_bump(
        config(), reader(), BumpRequest("a", "v1.2.0", "staging", if_auto_release="main")
    )
    assert not skipped.changed and "does not send new tags of branch 'main'" in (
        skipped.skipped or ""
    )
    done = plan_bump(config(), reader(), BumpRequest("a", "v1.2.0", "dev", if_auto_release="main"))
    assert done.changed and done.skipped is None


# --------------------------------------------------------------------------- promote


def test_promote_copies_tag_and_revision_from_the_previous_environment() -> None:
    change = plan_promote(config(), reader(), PromoteRequest("staging", ("a",)))
    assert change.files() == {"envs/staging.yaml": FILES["envs/dev.yaml"].split("b:")[0]}
    promo = change.details.promotions
    assert [(p.service, p.old_tag, p.new_tag, p.new_revision) for p in promo] == [
        ("a", "v1.0.0", "v1.1.0", "r11")
    ]
    trailers = parse_trailers(change.message)
    assert ("Glue-Action", "promote") in trailers and ("Glue-Source-Environment", "dev") in trailers


def test_promote_all_puts_every_differing_service_in_one_commit() -> None:
    change = plan_promote(config(), reader(), PromoteRequest("staging", None))
    assert [p.service for p in change.details.promotions] == ["a", "b"]
    assert len(change.edits) == 1 and change.title == "feat(staging): promote a, b from dev"
    same = plan_promote(config(), reader(), PromoteRequest("prod", ("a",)))
    assert not same.changed and same.details.unchanged == ("a",)


def test_promote_is_refused_whole_when_one_tag_breaks_the_policy() -> None:
    files = {
        **FILES,
        "envs/staging.yaml": FILES["envs/staging.yaml"] + 'b:\n  image:\n    tag: "abc1234"\n',
    }
    # Named services, or --all --strict: all or nothing.
    for req in (PromoteRequest("prod", ("a", "b")), PromoteRequest("prod", None, strict=True)):
        with pytest.raises(PolicyError, match="nothing was changed") as info:
            plan_promote(config(), reader(files), req)
        assert "b abc1234" in info.value.message
    # --all: the refused service is listed, the rest goes ahead.
    partial = plan_promote(config(), reader(files), PromoteRequest("prod", None))
    assert [r.split(":")[0] for r in partial.details.refused] == ["b abc1234"]
    assert "b" not in [p.service for p in partial.details.promotions]
    with pytest.raises(UsageError, match="first environment"):
        plan_promote(config(), reader(), PromoteRequest("dev", None))


# --------------------------------------------------------------------------- release


def test_release_is_a_bump_with_its_own_message() -> None:
    req = ReleaseRequest("a", "prod", tag="v1.0.1", source_branch="main", ci=CiContext(actor="me"))
    change = plan_release(config(), reader(), req)
    assert change.title == "fix(prod): release a v1.0.1"
    trailers = dict(parse_trailers(change.message))
    assert trailers["Glue-Action"] == "release" and trailers["Glue-Source-Branch"] == "main"
    assert trailers["Triggered-By"] == "me"
    assert change.details.new_tag == "v1.0.1"


def test_pick_branch_tag_orders_by_build_number_not_text() -> None:
    scheme = r"{branch}-(?P<order>[0-9]+)-(?P<revision>[0-9a-f]{7})"
    tags = ["main-9-1111111", "main-10-2222222", "feat-11-3333333", "latest"]
    found = pick_branch_tag(tags, scheme, "main")
    assert found is not None and (found.tag, found.revision, found.considered) == (
        "main-10-2222222",
        "2222222",
        2,
    )
    assert pick_branch_tag(["feature-x-1-1111111"], scheme, "Feature/X") is not None
    assert pick_branch_tag(tags, scheme, "develop") is None


# --------------------------------------------------------------------------- checkout + rollback


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "deploy"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def tag_in(root: Path, env: str) -> str:
    line = next(ln for ln in (root / f"envs/{env}.yaml").read_text().splitlines() if "tag:" in ln)
    return line.split('"')[1]


def test_checkout_commits_on_the_branch_and_leaves_staged_work_alone(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / "NOTES.md").write_text("wip\n")
    git(root, "add", "NOTES.md")
    target = Checkout(load_config(root))
    result = bump(target, BumpRequest("a", "v1.2.0", "dev"))
    assert result.status == "changed" and result.remote is None
    assert git(root, "rev-parse", "HEAD").strip() == result.commit
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["envs/dev.yaml"]
    assert git(root, "status", "--porcelain").strip() == "A  NOTES.md"
    assert tag_in(root, "dev") == "v1.2.0"
    author = git(root, "log", "-1", "--format=%an <%ae>").strip()
    assert author == "bot <bot@example.com>"
    dry = bump(target, BumpRequest("a", "v1.3.0", "dev"), dry_run=True)
    assert dry.status == "would-change" and dry.commit is None and tag_in(root, "dev") == "v1.2.0"


def test_checkout_refuses_files_with_uncommitted_changes(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    (root / "envs/dev.yaml").write_text(FILES["envs/dev.yaml"] + "# mine\n")
    with pytest.raises(UsageError, match=re.escape("envs/dev.yaml has uncommitted changes")):
        bump(Checkout(load_config(root)), BumpRequest("a", "v1.2.0", "dev"))
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"


def rollback_plan(root: Path, to_commit: str | None = None) -> Change[Rollback]:
    repo = pygit2.Repository(str(root))
    history = gitrepo.GitHistory(repo, repo.head.peel(pygit2.Commit))
    return plan_rollback(load_config(root).config, history, RollbackRequest("dev", to_commit))


def test_rollback_reverts_the_last_glue_change_then_the_one_before(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    target = Checkout(load_config(root))
    start = git(root, "rev-parse", "HEAD").strip()
    first = bump(target, BumpRequest("a", "v1.2.0", "dev")).commit
    second = bump(target, BumpRequest("a", "v1.3.0", "dev")).commit
    bump(target, BumpRequest("a", "v1.3.0", "staging"))  # another environment: skipped over
    change = rollback_plan(root)
    assert [c.sha for c in change.details.reverted] == [second]
    assert change.details.skipped == 1
    assert [e.path for e in change.edits] == ["envs/dev.yaml"]
    assert '-    tag: "v1.3.0"\n+    tag: "v1.2.0"\n' in change.diff()
    assert ("Glue-Reverts", second) in parse_trailers(change.message)
    rolled = commit_change(
        target, lambda v: plan_rollback(v.config, v.history, RollbackRequest("dev")), history=True
    )
    assert rolled.status == "changed" and tag_in(root, "dev") == "v1.2.0"
    assert [c.sha for c in rollback_plan(root).details.reverted] == [first]  # one further back
    everything = rollback_plan(root, to_commit=start[:8])
    assert [c.sha for c in everything.details.reverted] == [first]  # second is rolled back
    assert 'tag: "v1.1.0"' in everything.files()["envs/dev.yaml"]


def test_rollback_refusals(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    with pytest.raises(UsageError, match="no glue change of 'dev' to roll back"):
        rollback_plan(root)
    with pytest.raises(UsageError, match="--to-commit 'nope': no such commit"):
        rollback_plan(root, "nope")
    bump(Checkout(load_config(root)), BumpRequest("a", "v1.2.0", "dev"))
    dev = root / "envs/dev.yaml"
    dev.write_text(dev.read_text().replace("v1.2.0", "v7.7.7"))
    git(root, "commit", "-qam", "by hand")
    with pytest.raises(
        UsageError, match=re.escape("later commits changed the same lines of envs/dev.yaml")
    ):
        rollback_plan(root)


# --------------------------------------------------------------------------- remote branch


def bare_remote(tmp_path: Path) -> tuple[Path, pygit2.Repository]:
    root = checkout(tmp_path)
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(root), str(bare))
    return bare, pygit2.Repository(str(bare))


def someone_else_bumps(repo: pygit2.Repository) -> str:
    """Another pipeline pushes b's tag in staging to the remote."""
    tip = repo.references["refs/heads/main"].peel(pygit2.Commit)
    text = gitrepo.tree_reader(repo, tip.tree)("envs/staging.yaml") or ""
    from gitops_glue.config import Author

    oid = gitrepo.create_commit(
        repo,
        tip,
        {"envs/staging.yaml": text + 'b:\n  image:\n    tag: "v5.0.0"\n'},
        "other",
        Author(),
        "refs/heads/main",
    )
    return str(oid)


def test_remote_branch_replans_on_the_new_tip_after_a_lost_race(tmp_path: Path) -> None:
    bare, repo = bare_remote(tmp_path)
    seen: list[str | None] = []
    other: list[str] = []

    def plan(view: View) -> Change[TagChange]:
        seen.append(view.read("envs/staging.yaml"))
        if not other:  # the first attempt loses: someone pushes meanwhile
            other.append(someone_else_bumps(repo))
        return plan_bump(view.config, view.read, BumpRequest("a", "v1.2.0", "staging"))

    messages: list[str] = []
    with RemoteBranch(RemoteOptions(str(bare)), {}, messages.append) as target:
        result = commit_change(target, plan)
    assert (result.status, result.attempts, result.remote) == ("changed", 2, str(bare))
    assert len(seen) == 2 and "v5.0.0" not in (seen[0] or "") and "v5.0.0" in (seen[1] or "")
    head = repo.references["refs/heads/main"].peel(pygit2.Commit)
    assert str(head.id) == result.commit and [str(p) for p in head.parent_ids] == other
    staging = gitrepo.tree_reader(repo, head.tree)("envs/staging.yaml") or ""
    assert 'tag: "v1.2.0"' in staging and 'tag: "v5.0.0"' in staging  # both changes kept
    assert head.author.name == "bot"
    assert any("push lost a race" in m and "attempt 2/20" in m for m in messages)


def test_remote_branch_dry_run_and_history(tmp_path: Path) -> None:
    bare, repo = bare_remote(tmp_path)
    before = str(repo.references["refs/heads/main"].target)
    with RemoteBranch(RemoteOptions(str(bare)), {}) as target:
        target.start(push=False)
        dry = bump(target, BumpRequest("a", "v1.2.0", "dev"), dry_run=True)
        assert dry.status == "would-change" and dry.commit is None
        assert target.config().environment_names() == ["dev", "staging", "prod"]
        done = bump(target, BumpRequest("a", "v1.2.0", "dev"))
        rolled = commit_change(
            target,
            lambda v: plan_rollback(v.config, v.history, RollbackRequest("dev")),
            history=True,
        )
    assert str(repo.references["refs/heads/main"].target) == rolled.commit != before
    assert [c.sha for c in rolled.details.reverted] == [done.commit]
    with pytest.raises(UsageError, match="no branch 'nope'"):
        bump(
            RemoteBranch(RemoteOptions(str(bare), branch="nope"), {}), BumpRequest("a", "1", "dev")
        )


def test_ssh_remotes_need_a_key_and_a_host_key() -> None:
    url = "ssh://git@example.com:2222/deploy.git"
    with pytest.raises(UsageError, match="an SSH remote needs a deploy key"):
        make_auth(RemoteOptions(url), {})
    with pytest.raises(UsageError, match=r"host key of \[example.com\]:2222 is unknown") as info:
        make_auth(RemoteOptions(url), {"GLUE_SSH_KEY": "k"})
    assert "ssh-keyscan -p 2222 example.com" in (info.value.hint or "")
    auth, warnings = make_auth(
        RemoteOptions(url), {"GLUE_SSH_KEY": "k", "GLUE_SSH_KNOWN_HOSTS": "h"}
    )
    assert (auth.ssh_key, auth.known_hosts, warnings) == ("k", "h", [])
    _auth, warnings = make_auth(
        RemoteOptions(url, insecure_no_host_key_check=True), {"GLUE_SSH_KEY": "k"}
    )
    assert warnings and "NOT verified" in warnings[0]
    https, none = make_auth(RemoteOptions("https://h/r.git"), {"GLUE_GIT_TOKEN": "t"})
    assert (https.token, none) == ("t", [])
