"""Helpers shared by tests: run glue as a user would, build example repos."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import subprocess as _subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from gitops_glue.integrations import ci

ROOT = Path(__file__).resolve().parents[2]
#: The testbed's tools (helm, helmfile 0.166 as `helmfile`, v1 as `helmfile1`): scripts/testbed.
TESTBED_BIN = (
    Path(os.environ.get("GLUE_TESTBED_CACHE", Path.home() / ".cache" / "gitops-glue-testbed"))
    / "bin"
)
EXAMPLE_FILES = ["glue.yaml", "helmfile.yaml.gotmpl", "environments", "charts"]


#: What GitLab CI sets for a service's pipeline (announce and notify read it).
GITLAB_CI = {
    "GITLAB_CI": "true",
    "CI_PIPELINE_URL": "https://gitlab.example.com/team/a/-/pipelines/42",
    "CI_PROJECT_PATH": "team/a",
    "CI_PROJECT_URL": "https://gitlab.example.com/team/a",
    "CI_COMMIT_SHA": "3f9c2e1d" + "0" * 32,
    "CI_COMMIT_REF_NAME": "main",
    "GITLAB_USER_LOGIN": "dev1",
    "CI_COMMIT_TITLE": "Speed up checkout",
    "CI_COMMIT_AUTHOR": "Dev One <dev1@example.com>",
}


@dataclass
class Run:
    code: int
    out: str
    err: str


#: glue's settings and every CI system's variables (its marker tells glue it runs in CI).
_CI_PREFIXES = ("GLUE_", "GITHUB_", "GITLAB_", "CI_", *(s.marker for s in ci.SYSTEMS))
_IN_PROCESS = threading.Lock()


def glue(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    subprocess: bool = False,
) -> Run:
    """Run glue as a user would: ``glue ARGS`` in ``cwd`` with ``env`` on top of ours.

    The environment is ours minus every ``GLUE_*``/CI variable, plus ``env``. By default
    glue runs in this process (the console entry point with stdout and stderr captured at
    the file-descriptor level, so helm's and git's output is caught too; environment,
    working directory and signal handlers applied and restored), which spares a Python
    start-up per call. ``subprocess=True`` runs ``python -m gitops_glue`` in a process of
    its own, with ``timeout``: use it for signals, concurrent runs, or when a test needs
    modules imported afresh. ``GLUE_TESTS_SUBPROCESS=1`` makes every call a subprocess.
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(_CI_PREFIXES)}
    full_env.update(env or {})
    if subprocess or os.environ.get("GLUE_TESTS_SUBPROCESS") == "1":
        proc = _subprocess.run(
            [sys.executable, "-m", "gitops_glue", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)
    with _IN_PROCESS:
        return _glue_in_process(list(args), cwd, full_env)


def start_glue(*args: str, cwd: Path, env: dict[str, str] | None = None) -> _subprocess.Popen[str]:
    """Start ``glue ARGS -o json`` in a process of its own and return at once: for tests
    where several glue runs race. The environment is as :func:`glue` makes it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(_CI_PREFIXES)}
    full_env.update(env or {})
    return _subprocess.Popen(
        [sys.executable, "-m", "gitops_glue", *args, "-o", "json"],
        cwd=cwd,
        env=full_env,
        stdout=_subprocess.PIPE,
        stderr=_subprocess.PIPE,
        text=True,
    )


def _glue_in_process(args: list[str], cwd: Path | None, env: dict[str, str]) -> Run:
    from gitops_glue.cli.entry import main

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = (sys.stdout, sys.stderr)
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        for stream in saved_streams:
            stream.flush()
        saved_fds = (os.dup(1), os.dup(2))
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        # Closed in the finally below.
        sys.stdout = io.TextIOWrapper(
            open(os.dup(1), "wb"),  # noqa: SIM115
            encoding="utf-8",
            errors="replace",
            write_through=True,
        )
        sys.stderr = io.TextIOWrapper(
            open(os.dup(2), "wb"),  # noqa: SIM115
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        try:
            os.environ.clear()
            os.environ.update(env)
            if cwd is not None:
                os.chdir(cwd)
            main(args)
        except SystemExit as done:
            code = _exit_status(done.code)
        except BaseException:
            # What Python does with an uncaught exception: the traceback, exit 1.
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.close()
            sys.stderr.close()
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            for sig, handler in saved_signals.items():
                signal.signal(sig, handler)
        out.seek(0)
        err.seek(0)
        return Run(
            code,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def _exit_status(code: object) -> int:
    """The process exit status ``sys.exit(code)`` would give."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)  # sys.exit("message") prints it and exits 1
    return 1


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test User",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test User",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def copy_example(dest: Path) -> Path:
    """The project's example deployment repo files, copied into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    return dest


def example_repo(dest: Path) -> Path:
    """A git checkout of the example deployment repo with one commit on main."""
    copy_example(dest)
    git(dest, "init", "-q", "--initial-branch=main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "initial")
    return dest


def commit_all(repo: Path) -> Path:
    """``repo`` made a git checkout on main, with every file in one commit."""
    git(repo, "init", "-q", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def refuses_bump(repo: Path, env: dict[str, str], *args: str) -> str:
    """``glue bump-tag ARGS`` exits 2 with one error and leaves files and HEAD as they
    were; its stderr."""
    before = snapshot(repo)
    head = git(repo, "rev-parse", "HEAD")
    run = glue("-C", str(repo), "bump-tag", *args, env=env)
    assert run.code == 2, run.err
    assert run.err.count("glue: error: ") == 1
    assert snapshot(repo) == before
    assert git(repo, "rev-parse", "HEAD") == head
    return run.err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes below ``folder`` (git internals excluded)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(folder).parts
    }


def many_services_seed(services: int, envs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """A deployment repo (path -> text) with services s0..sN-1 in each environment."""
    glue_yaml = ["version: 1", "environments:"]
    for env in envs:
        glue_yaml += [f"  - name: {env}", f"    values: [envs/{env}.yaml]"]
    glue_yaml.append("services:")
    for i in range(services):
        glue_yaml += [f"  s{i}:", f"    tag_key: s{i}.image.tag"]
    seed = {"glue.yaml": "\n".join(glue_yaml) + "\n"}
    for env in envs:
        seed[f"envs/{env}.yaml"] = "".join(
            f'# service s{i}\ns{i}:\n  image:\n    tag: "0000000"\n\n' for i in range(services)
        )
    return seed
