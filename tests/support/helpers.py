"""Helpers shared by tests: run glue as a user would, build example repos."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = ["glue.yaml", "helmfile.yaml.gotmpl", "environments", "charts"]


@dataclass
class Run:
    code: int
    out: str
    err: str


def glue(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> Run:
    """Run the installed ``glue`` entry point in a subprocess."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GLUE_", "GITHUB_", "GITLAB_", "CI_"))
    }
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "gitops_glue", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


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
