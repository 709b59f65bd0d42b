"""What the CI system says about the running job (GitHub Actions, GitLab CI)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CiContext:
    """The pipeline a glue command runs in; all fields empty outside CI."""

    system: str = ""  # "github", "gitlab" or ""
    pipeline_url: str = ""
    repository: str = ""  # org/name of the repository whose pipeline runs
    repository_url: str = ""
    commit: str = ""
    ref: str = ""  # branch or tag name
    actor: str = ""

    @property
    def in_ci(self) -> bool:
        return bool(self.system)


def detect(env: Mapping[str, str] | None = None) -> CiContext:
    """Read the standard CI variables of GitHub Actions or GitLab CI."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repo = env.get("GITHUB_REPOSITORY", "")
        run = env.get("GITHUB_RUN_ID", "")
        url = f"{server}/{repo}/actions/runs/{run}" if repo and run else ""
        return CiContext(
            system="github",
            pipeline_url=url,
            repository=repo,
            repository_url=f"{server}/{repo}" if repo else "",
            commit=env.get("GITHUB_SHA", ""),
            ref=env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", ""),
            actor=env.get("GITHUB_ACTOR", ""),
        )
    if env.get("GITLAB_CI") == "true":
        return CiContext(
            system="gitlab",
            pipeline_url=env.get("CI_PIPELINE_URL", ""),
            repository=env.get("CI_PROJECT_PATH", ""),
            repository_url=env.get("CI_PROJECT_URL", ""),
            commit=env.get("CI_COMMIT_SHA", ""),
            ref=env.get("CI_COMMIT_REF_NAME", ""),
            actor=env.get("GITLAB_USER_LOGIN", ""),
        )
    return CiContext()
