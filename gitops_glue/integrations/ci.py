"""What the CI system says about the running job (GitHub Actions, GitLab CI)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


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
    commit_title: str = ""
    commit_author: str = ""

    @property
    def in_ci(self) -> bool:
        return bool(self.system)

    def commit_url(self, sha: str | None = None) -> str:
        return commit_url(self.repository_url, sha or self.commit)


def commit_url(repository_url: str | None, sha: str | None) -> str:
    """Web link to a commit on GitHub (``/commit/``) or GitLab (``/-/commit/``)."""
    if not repository_url or not sha:
        return ""
    base = repository_url.rstrip("/")
    return f"{base}/commit/{sha}" if "github" in base else f"{base}/-/commit/{sha}"


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
            commit_title=env.get("CI_COMMIT_TITLE", ""),
            commit_author=env.get("CI_COMMIT_AUTHOR", "").split(" <", 1)[0],
        )
    return CiContext()


def local_git_context(ctx: CiContext, directory: Path) -> CiContext:
    """Outside CI: ``ctx`` with the HEAD commit and branch of the checkout at ``directory``.

    Unchanged when ``directory`` is not a checkout or has no commits.
    """
    try:
        import pygit2

        repo = pygit2.Repository(str(directory))
        head = repo.head.peel(pygit2.Commit)
    except Exception:  # not a checkout, or no commits: go on without it
        return ctx
    return dataclasses.replace(
        ctx,
        commit=str(head.id),
        ref="" if repo.head_is_detached else repo.head.shorthand,
        commit_title=head.message.splitlines()[0] if head.message else "",
        commit_author=head.author.name,
    )


def context(directory: Path, *, fallback_to_git: bool = True) -> CiContext:
    """The CI context; outside CI (and with ``fallback_to_git``) the local checkout's commit."""
    ctx = detect()
    if not ctx.in_ci and fallback_to_git:
        ctx = local_git_context(ctx, directory)
    return ctx


def write_outputs(
    values: Mapping[str, str], *, dotenv: str | None = None, env: Mapping[str, str] | None = None
) -> list[str]:
    """Hand ``values`` to later jobs; returns the files written.

    GitHub Actions: appended to ``$GITHUB_OUTPUT`` (multi-line values with a
    random heredoc delimiter). GitLab CI: a dotenv file (``--dotenv FILE``,
    used as a ``reports: dotenv`` artifact), keys upper-cased with a GLUE_ prefix.
    """
    import secrets as _random

    env = os.environ if env is None else env
    written = []
    github_output = env.get("GITHUB_OUTPUT") if env.get("GITHUB_ACTIONS") == "true" else None
    if github_output:
        with open(github_output, "a", encoding="utf-8") as fh:
            for key, value in values.items():
                if "\n" in value:
                    delimiter = f"glue_{_random.token_hex(8)}"
                    fh.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
                else:
                    fh.write(f"{key}={value}\n")
        written.append(github_output)
    if dotenv:
        lines = []
        for key, value in values.items():
            flat = value.replace("\n", " ")
            lines.append(f"GLUE_{key.upper()}={flat}")
        with open(dotenv, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        written.append(dotenv)
    return written


def write_step_summary(
    markdown: str, *, also: str | None = None, env: Mapping[str, str] | None = None
) -> list[str]:
    """Append a Markdown summary to the job's summary; returns the files written.

    GitHub Actions: ``$GITHUB_STEP_SUMMARY``. Anywhere (GitLab artifacts): ``also``.
    """
    env = os.environ if env is None else env
    paths = []
    step_summary = env.get("GITHUB_STEP_SUMMARY")
    if step_summary and env.get("GITHUB_ACTIONS") == "true":
        paths.append(step_summary)
    if also is not None:
        paths.append(also)
    for path in paths:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown)
    return paths
