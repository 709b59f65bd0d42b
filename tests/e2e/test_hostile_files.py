"""Hostile repositories and file systems: line endings, filters, submodules, full
and read-only disks.

A bump commits each file as git would (line-ending conversion from
``.gitattributes`` or ``core.autocrlf`` applied as git applies it), writes it into
the work tree as git checkout would, and leaves the checkout clean, so the next
bump works. A file git runs through a filter driver (Git LFS...), or a file inside
a submodule, is refused (exit 2). A read-only mount or a full disk ends in one
``glue: error:`` line, never a traceback, with the files, the index and HEAD as
they were.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helpers import ROOT, commit_all, copy_example, git, glue, snapshot

DEV = "environments/dev.yaml"
BUMP = ("bump-tag", "a", "4e5f6a7", "--env", "dev")


def _bumped(text: str) -> str:
    """``text`` of dev.yaml with service a bumped as glue bumps it (tag and revision)."""
    return text.replace('"3f9c2e1"', '"4e5f6a7"')


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _checkout(tmp_path: Path, attributes: str | None, *config: str) -> Path:
    """The example repository committed with ``attributes`` and git ``config`` in force,
    its files then checked out afresh, as a clone would have them."""
    repo = copy_example(tmp_path / "deploy")
    git(repo, "init", "-q", "--initial-branch=main")
    for item in config:
        key, _, value = item.partition("=")
        git(repo, "config", key, value)
    if attributes is not None:
        (repo / ".gitattributes").write_text(attributes)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    for path in repo.rglob("*.yaml"):
        path.unlink()
    git(repo, "checkout", "--", ".")
    assert git(repo, "status", "--porcelain") == ""
    return repo


def _refused(repo: Path, args: tuple[str, ...], says: str, code: int = 2) -> str:
    before, head = snapshot(repo), git(repo, "rev-parse", "HEAD")
    index = (repo / ".git/index").read_bytes()
    run = glue(*args, cwd=repo)
    assert run.code == code, (run.code, run.out, run.err)
    assert "Traceback" not in run.out + run.err
    errors = [line for line in run.err.splitlines() if line.startswith("glue: error:")]
    assert len(errors) == 1, run.err
    assert says in errors[0], errors[0]
    assert snapshot(repo) == before
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / ".git/index").read_bytes() == index
    return errors[0]


# --------------------------------------------------------------------------- line endings

#: name -> (.gitattributes, git config): each makes git check dev.yaml out with CRLF.
CRLF_SETUPS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "text-eol-crlf": ("*.yaml text eol=crlf\n", ()),
    "autocrlf-true": (None, ("core.autocrlf=true",)),
    "text-auto-eol-crlf": ("* text=auto eol=crlf\n", ()),
    "core-eol-crlf": ("*.yaml text\n", ("core.eol=crlf",)),
}


@pytest.mark.parametrize("setup", sorted(CRLF_SETUPS))
def test_a_bump_under_crlf_checkout_commits_what_git_would_and_leaves_it_clean(
    tmp_path: Path, setup: str
) -> None:
    attributes, config = CRLF_SETUPS[setup]
    repo = _checkout(tmp_path, attributes, *config)
    blob_before = git(repo, "show", f"HEAD:{DEV}")
    assert "\r" not in blob_before and (repo / DEV).read_bytes().count(b"\r\n") > 5
    head = git(repo, "rev-parse", "HEAD").strip()

    run = glue("-C", str(repo), *BUMP)
    assert run.code == 0, run.err

    # The commit holds git's form (LF) with one line changed, not a rewritten file.
    committed = subprocess.run(
        ["git", "-C", str(repo), "show", f"HEAD:{DEV}"], capture_output=True, check=True
    ).stdout
    assert committed == _bumped(blob_before).encode()
    numstat = git(repo, "diff", "--numstat", head, "HEAD")
    assert numstat.split() == ["2", "2", DEV]
    # The work tree has the file as git checkout writes it, and nothing is left over.
    assert (repo / DEV).read_bytes() == _crlf(_bumped(blob_before)).encode()
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "diff", "--cached", "--stat") == ""

    # ... so the next bump is not refused as "uncommitted changes".
    again = glue("-C", str(repo), "bump-tag", "b", "4e5f6a7", "--env", "dev")
    assert again.code == 0, again.err
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-list", "--count", f"{head}..HEAD").strip() == "2"


@pytest.mark.parametrize(
    ("attributes", "config"),
    [(None, ()), ("*.yaml -text\n", ("core.autocrlf=true",)), ("*.yaml binary\n", ())],
    ids=["no-attributes", "minus-text-under-autocrlf", "binary"],
)
def test_a_file_git_does_not_convert_is_committed_byte_for_byte(
    tmp_path: Path, attributes: str | None, config: tuple[str, ...]
) -> None:
    repo = copy_example(tmp_path / "deploy")
    crlf = _crlf((repo / DEV).read_text())
    (repo / DEV).write_bytes(crlf.encode())
    git(repo, "init", "-q", "--initial-branch=main")
    for item in config:
        git(repo, "config", *item.split("=", 1))
    if attributes is not None:
        (repo / ".gitattributes").write_text(attributes)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")

    run = glue("-C", str(repo), *BUMP)
    assert run.code == 0, run.err
    committed = subprocess.run(
        ["git", "-C", str(repo), "show", f"HEAD:{DEV}"], capture_output=True, check=True
    ).stdout
    assert committed == _bumped(crlf).encode()
    assert (repo / DEV).read_bytes() == _bumped(crlf).encode()
    assert git(repo, "status", "--porcelain") == ""


def test_a_bump_killed_before_the_branch_moved_is_put_back_in_checkout_form(
    tmp_path: Path,
) -> None:
    import signal
    import sys

    repo = _checkout(tmp_path, "*.yaml text eol=crlf\n")
    before, head = snapshot(repo), git(repo, "rev-parse", "HEAD")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLUE_")}
    killed = subprocess.run(
        [sys.executable, "-m", "gitops_glue", *BUMP],
        cwd=repo,
        env={**env, "GLUE_TEST_KILL_AT": "index"},
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    # The next run puts the file back as git checkout writes it, then bumps.
    run = glue("-C", str(repo), "status")
    assert run.code == 0, run.err
    again = glue("-C", str(repo), "bump-tag", "b", "4e5f6a7", "--env", "dev")
    assert again.code == 0, again.err
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-list", "--count", f"{head.strip()}..HEAD").strip() == "1"
    dev = (repo / DEV).read_bytes()
    assert dev == before[DEV].replace(b'"9a8b7c6"', b'"4e5f6a7"')


def test_a_remote_bump_under_crlf_attributes_pushes_git_form(tmp_path: Path) -> None:
    repo = _checkout(tmp_path, "*.yaml text eol=crlf\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    blob_before = git(remote, "show", f"main:{DEV}")

    run = glue("bump-tag", *BUMP[1:], "--remote", str(remote), cwd=tmp_path)
    assert run.code == 0, run.err
    committed = subprocess.run(
        ["git", "-C", str(remote), "show", f"main:{DEV}"], capture_output=True, check=True
    ).stdout
    assert committed == _bumped(blob_before).encode()
    git(repo, "pull", "-q", str(remote), "main")
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / DEV).read_bytes() == _crlf(_bumped(blob_before)).encode()


# --------------------------------------------------------------------------- filters

FILTERS = {
    # Git LFS's attributes, as `git lfs track` writes them (git-lfs need not be installed:
    # without it git stores the pointer file, with it the content; glue can do neither).
    "lfs": ("environments/*.yaml filter=lfs diff=lfs merge=lfs -text\n", ()),
    # A configured driver: git would run `cat`, glue cannot run drivers at all.
    "configured-driver": (
        "*.yaml filter=plain\n",
        ("filter.plain.clean=cat", "filter.plain.smudge=cat", "filter.plain.required=true"),
    ),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_a_values_file_under_a_filter_driver_is_refused(tmp_path: Path, name: str) -> None:
    attributes, config = FILTERS[name]
    repo = _checkout(tmp_path, attributes, *config)
    filter_name = attributes.split("filter=")[1].split()[0]
    says = _refused(repo, BUMP, f"under the git filter '{filter_name}'")
    assert DEV in says


def test_a_remote_values_file_under_git_lfs_is_refused(tmp_path: Path) -> None:
    repo = _checkout(tmp_path, "environments/*.yaml filter=lfs diff=lfs merge=lfs -text\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    tip = git(remote, "rev-parse", "main")
    run = glue("bump-tag", *BUMP[1:], "--remote", str(remote), cwd=tmp_path)
    assert run.code == 2, (run.out, run.err)
    assert "Traceback" not in run.err
    errors = [line for line in run.err.splitlines() if line.startswith("glue: error:")]
    assert len(errors) == 1 and "under the git filter 'lfs'" in errors[0], run.err
    assert git(remote, "rev-parse", "main") == tip


# --------------------------------------------------------------------------- submodules


def _with_submodule(tmp_path: Path) -> Path:
    """The example repository whose environments/ folder is a git submodule."""
    sub = tmp_path / "environments-repo"
    sub.mkdir()
    for path in (ROOT / "environments").iterdir():
        (sub / path.name).write_bytes(path.read_bytes())
    commit_all(sub)
    repo = tmp_path / "deploy"
    repo.mkdir()
    for name in ("glue.yaml", "helmfile.yaml.gotmpl"):
        (repo / name).write_bytes((ROOT / name).read_bytes())
    git(repo, "init", "-q", "--initial-branch=main")
    git(
        repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "environments"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def test_values_inside_a_submodule_are_refused(tmp_path: Path) -> None:
    repo = _with_submodule(tmp_path)
    sub_head = git(repo / "environments", "rev-parse", "HEAD")
    says = _refused(repo, BUMP, "is inside the git submodule environments")
    assert DEV in says
    _refused(repo, ("promote", "--to", "prod", "a"), "git submodule environments")
    assert git(repo / "environments", "rev-parse", "HEAD") == sub_head
    assert git(repo / "environments", "status", "--porcelain") == ""


def test_remote_values_inside_a_submodule_are_refused(tmp_path: Path) -> None:
    repo = _with_submodule(tmp_path)
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    tip = git(remote, "rev-parse", "main")
    run = glue("bump-tag", *BUMP[1:], "--remote", str(remote), cwd=tmp_path)
    assert run.code == 2, (run.out, run.err)
    assert "Traceback" not in run.err
    errors = [line for line in run.err.splitlines() if line.startswith("glue: error:")]
    assert len(errors) == 1 and "inside the git submodule environments" in errors[0], run.err
    assert git(remote, "rev-parse", "main") == tip


# --------------------------------------------------------------------------- file systems


@contextlib.contextmanager
def _mounted(target: Path, *args: str) -> Iterator[None]:
    """``mount ARGS TARGET`` for the block; the test is skipped where mounting is not
    permitted (not root, no CAP_SYS_ADMIN), and the mount is always undone."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextlib.contextmanager
def _read_only(repo: Path, mountpoint: Path) -> Iterator[Path]:
    """``repo`` seen through a read-only bind mount at ``mountpoint``."""
    with _mounted(mountpoint, "--bind", str(repo)):
        done = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(mountpoint)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")
        yield mountpoint


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (BUMP, ".git: is on a read-only file system"),
        (("hold", "a", "--env", "dev", "--reason", "x"), ".git: is on a read-only file system"),
        (("set", DEV, "a.image.tag", "4e5f6a7"), f"{DEV}: is on a read-only file system"),
    ],
    ids=["bump-tag", "hold", "set"],
)
def test_a_read_only_checkout_gives_one_error(
    repo: Path, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    with _read_only(repo, tmp_path / "ro") as ro:
        _refused(ro, args, says)


#: Free space left on the disk, in KiB (tmpfs counts 4 KiB pages): from none to more
#: than a bump needs, so the disk fills up at every step of a bump in turn: the commit's
#: objects, the journal, the values file, the index (made big enough to cross pages).
FREE_KIB = list(range(0, 56, 4))
NOTES = 200


def test_a_full_disk_at_any_point_of_a_bump_gives_one_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    failed, landed = 0, 0
    for free in FREE_KIB:
        disk = tmp_path / f"disk{free}"
        with _mounted(disk, "-t", "tmpfs", "-o", "size=8m", "tmpfs"):
            repo = copy_example(disk / "deploy")
            (repo / "notes").mkdir()
            for number in range(NOTES):
                (repo / "notes" / f"{number}.txt").write_text(f"{number}\n")
            commit_all(repo)
            filler = disk / "filler"
            stat = os.statvfs(disk)
            filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free * 1024))
            before, head = snapshot(repo), git(repo, "rev-parse", "HEAD")
            index = (repo / ".git/index").read_bytes()

            run = glue("-C", str(repo), *BUMP)

            assert "Traceback" not in run.out + run.err, (free, run.err)
            if run.code == 0:
                landed += 1
                assert git(repo, "rev-list", "--count", f"{head.strip()}..HEAD").strip() == "1"
                filler.unlink()
                assert git(repo, "status", "--porcelain") == "", free
                continue
            failed += 1
            assert run.code == 1, (free, run.code, run.err)
            errors = [line for line in run.err.splitlines() if line.startswith("glue: error:")]
            assert len(errors) == 1, (free, run.err)
            assert "No space left on device" in errors[0], (free, errors[0])
            assert snapshot(repo) == before, free
            assert git(repo, "rev-parse", "HEAD") == head, free
            assert (repo / ".git/index").read_bytes() == index, free
            filler.unlink()
            assert git(repo, "status", "--porcelain") == "", free
            leftovers = [p.name for p in (repo / ".git").iterdir() if "glue-tmp" in p.name]
            assert leftovers == [], (free, leftovers)
    assert failed and landed, (failed, landed)
