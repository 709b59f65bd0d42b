"""What the CI system says about the running job.

One table, :data:`SYSTEMS`, lists every CI system glue recognises (GitHub Actions,
GitLab CI, Azure Pipelines, Bitbucket Pipelines, Jenkins, Buildkite, CircleCI) and
how each one's documented variables give the pipeline link, the actor, the branch,
the commit and the repository. docs/ci.md lists the same table for users.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from gitops_glue.naming import short_ref


@dataclass(frozen=True)
class CiContext:
    """The pipeline a glue command runs in; all fields empty outside CI."""

    system: str = ""  # a name of SYSTEMS ("github", "gitlab", "azure", ...) or ""
    pipeline_url: str = ""
    repository: str = ""  # org/name of the repository whose pipeline runs
    repository_url: str = ""  # its web page (never a clone URL with credentials)
    commit: str = ""
    ref: str = ""  # branch or tag name, without refs/heads/ (or Jenkins' origin/)
    actor: str = ""
    commit_title: str = ""
    commit_author: str = ""

    @property
    def in_ci(self) -> bool:
        return bool(self.system)

    def commit_url(self, sha: str | None = None) -> str:
        return commit_url(self.repository_url, sha or self.commit)


def commit_url(repository_url: str | None, sha: str | None) -> str:
    """Web link to a commit: GitHub and Azure Repos ``/commit/``, Bitbucket
    ``/commits/``, anything else GitLab's ``/-/commit/``."""
    if not repository_url or not sha:
        return ""
    base = repository_url.rstrip("/")
    host = urlsplit(base).hostname or ""
    if "bitbucket" in host:
        return f"{base}/commits/{sha}"
    if "github" in host or "/_git/" in base:
        return f"{base}/commit/{sha}"
    return f"{base}/-/commit/{sha}"


def _jenkins_branch(ref: str) -> str:
    """Jenkins' ``GIT_BRANCH`` names the remote-tracking branch: ``origin/main``."""
    ref = ref.removeprefix("refs/remotes/")
    return short_ref(ref.removeprefix("origin/"))


_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")


def web_url(clone_url: str) -> str:
    """The web page of a repository, from its clone URL (SSH, scp-like or HTTPS).

    ``git@github.com:org/app.git`` is ``https://github.com/org/app``; user names
    and passwords in the URL are dropped. Empty when ``clone_url`` is not a URL.
    """
    url = clone_url.strip()
    if not url:
        return ""
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        host, path = scp.group("host"), scp.group("path")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ssh", "git") or not parts.hostname:
            return ""
        host, path = parts.hostname, parts.path
        if parts.scheme in ("http", "https") and parts.port:
            host = f"{host}:{parts.port}"
    path = path.strip("/").removesuffix(".git")
    if host == "ssh.dev.azure.com" and path.startswith("v3/"):
        # git@ssh.dev.azure.com:v3/org/project/repo
        org, _, rest = path[3:].partition("/")
        project, _, repo = rest.partition("/")
        return f"https://dev.azure.com/{org}/{project}/_git/{repo}"
    return f"https://{host}/{path}" if path else ""


def _repo_path(url: str) -> str:
    """``org/name`` of a repository web URL (empty when there is no path)."""
    return urlsplit(url).path.strip("/") if url else ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


Env = Mapping[str, str]


def _github(env: Env) -> CiContext:
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repo = env.get("GITHUB_REPOSITORY", "")
    run = env.get("GITHUB_RUN_ID", "")
    return CiContext(
        system="github",
        pipeline_url=f"{server}/{repo}/actions/runs/{run}" if repo and run else "",
        repository=repo,
        repository_url=f"{server}/{repo}" if repo else "",
        commit=env.get("GITHUB_SHA", ""),
        ref=short_ref(env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME", "")),
        actor=env.get("GITHUB_ACTOR", ""),
    )


def _gitlab(env: Env) -> CiContext:
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


def _azure(env: Env) -> CiContext:
    collection = (
        env.get("SYSTEM_COLLECTIONURI") or env.get("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", "")
    ).rstrip("/")
    project = env.get("SYSTEM_TEAMPROJECT", "")
    build = env.get("BUILD_BUILDID", "")
    pipeline = (
        f"{collection}/{quote(project)}/_build/results?buildId={build}"
        if collection and project and build
        else ""
    )
    repo_url = web_url(env.get("BUILD_REPOSITORY_URI", ""))
    # A pull request build runs on refs/pull/N/merge; its source branch is what counts.
    ref = env.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") or env.get("BUILD_SOURCEBRANCH", "")
    return CiContext(
        system="azure",
        pipeline_url=pipeline,
        repository=env.get("BUILD_REPOSITORY_NAME", "") or _repo_path(repo_url),
        repository_url=repo_url,
        commit=env.get("BUILD_SOURCEVERSION", ""),
        ref=short_ref(ref),
        actor=env.get("BUILD_REQUESTEDFOR", ""),
        commit_title=_first_line(env.get("BUILD_SOURCEVERSIONMESSAGE", "")),
    )


def _bitbucket(env: Env) -> CiContext:
    full_name = env.get("BITBUCKET_REPO_FULL_NAME", "")
    if not full_name and env.get("BITBUCKET_WORKSPACE") and env.get("BITBUCKET_REPO_SLUG"):
        full_name = f"{env['BITBUCKET_WORKSPACE']}/{env['BITBUCKET_REPO_SLUG']}"
    repo_url = f"https://bitbucket.org/{full_name}" if full_name else ""
    build = env.get("BITBUCKET_BUILD_NUMBER", "")
    return CiContext(
        system="bitbucket",
        pipeline_url=f"{repo_url}/pipelines/results/{build}" if repo_url and build else "",
        repository=full_name,
        repository_url=repo_url,
        commit=env.get("BITBUCKET_COMMIT", ""),
        ref=short_ref(env.get("BITBUCKET_BRANCH") or env.get("BITBUCKET_TAG", "")),
        # Bitbucket names the person who started the step only by a UUID
        # (BITBUCKET_STEP_TRIGGERER_UUID): not something to show as an actor.
        actor="",
    )


def _jenkins(env: Env) -> CiContext:
    repo_url = web_url(env.get("GIT_URL", ""))
    # Multibranch pipelines: CHANGE_BRANCH (a pull request's source), BRANCH_NAME;
    # freestyle jobs with the Git plugin: GIT_BRANCH, as "origin/main".
    ref = env.get("CHANGE_BRANCH") or env.get("BRANCH_NAME") or env.get("GIT_BRANCH", "")
    return CiContext(
        system="jenkins",
        pipeline_url=env.get("BUILD_URL", ""),
        repository=_repo_path(repo_url),
        repository_url=repo_url,
        commit=env.get("GIT_COMMIT", ""),
        ref=_jenkins_branch(ref),
        # BUILD_USER_ID: the "build user vars" plugin; CHANGE_AUTHOR: pull requests.
        actor=env.get("BUILD_USER_ID") or env.get("CHANGE_AUTHOR", ""),
    )


def _buildkite(env: Env) -> CiContext:
    repo_url = web_url(env.get("BUILDKITE_REPO", ""))
    commit = env.get("BUILDKITE_COMMIT", "")
    return CiContext(
        system="buildkite",
        pipeline_url=env.get("BUILDKITE_BUILD_URL", ""),
        repository=_repo_path(repo_url),
        repository_url=repo_url,
        # A build started by hand may say "HEAD" until the agent resolves it.
        commit="" if commit == "HEAD" else commit,
        ref=short_ref(env.get("BUILDKITE_BRANCH") or env.get("BUILDKITE_TAG", "")),
        actor=env.get("BUILDKITE_BUILD_CREATOR", ""),
        commit_title=_first_line(env.get("BUILDKITE_MESSAGE", "")),
        commit_author=env.get("BUILDKITE_BUILD_AUTHOR", ""),
    )


def _circleci(env: Env) -> CiContext:
    repo_url = web_url(env.get("CIRCLE_REPOSITORY_URL", ""))
    owner, name = env.get("CIRCLE_PROJECT_USERNAME", ""), env.get("CIRCLE_PROJECT_REPONAME", "")
    return CiContext(
        system="circleci",
        pipeline_url=env.get("CIRCLE_BUILD_URL", ""),
        repository=f"{owner}/{name}" if owner and name else _repo_path(repo_url),
        repository_url=repo_url,
        commit=env.get("CIRCLE_SHA1", ""),
        ref=short_ref(env.get("CIRCLE_BRANCH") or env.get("CIRCLE_TAG", "")),
        actor=env.get("CIRCLE_USERNAME", ""),
    )


@dataclass(frozen=True)
class CiSystem:
    """One CI system: how to tell it runs the job, and how to read its variables."""

    name: str  # CiContext.system
    title: str
    marker: str  # the variable the system always sets
    marker_values: tuple[str, ...]  # its accepted values (lower case); () = any non-empty
    read: Callable[[Env], CiContext]

    def detects(self, env: Env) -> bool:
        value = env.get(self.marker, "")
        if not self.marker_values:
            return bool(value.strip())
        return value.strip().lower() in self.marker_values


#: Every CI system glue recognises, in the order they are tried.
SYSTEMS: tuple[CiSystem, ...] = (
    CiSystem("github", "GitHub Actions", "GITHUB_ACTIONS", ("true",), _github),
    CiSystem("gitlab", "GitLab CI/CD", "GITLAB_CI", ("true",), _gitlab),
    CiSystem("azure", "Azure Pipelines", "TF_BUILD", ("true",), _azure),
    CiSystem("bitbucket", "Bitbucket Pipelines", "BITBUCKET_BUILD_NUMBER", (), _bitbucket),
    CiSystem("buildkite", "Buildkite", "BUILDKITE", ("true",), _buildkite),
    CiSystem("circleci", "CircleCI", "CIRCLECI", ("true",), _circleci),
    # Last: other systems sometimes set Jenkins-compatible variables.
    CiSystem("jenkins", "Jenkins", "JENKINS_URL", (), _jenkins),
)


def detect(env: Mapping[str, str] | None = None) -> CiContext:
    """Read the standard variables of the CI system running the job (see :data:`SYSTEMS`)."""
    env = os.environ if env is None else env
    for system in SYSTEMS:
        if system.detects(env):
            return system.read(env)
    return CiContext()


def local_git_context(ctx: CiContext, directory: Path) -> CiContext:
    """Outside CI: ``ctx`` with the HEAD commit and branch of the checkout at ``directory``.

    Unchanged when ``directory`` is not a checkout or has no commits.
    """
    from gitops_glue.repo.gitrepo import local_head

    head = local_head(directory)
    if head is None:  # not a checkout, or no commits: go on without it
        return ctx
    return dataclasses.replace(
        ctx,
        commit=head.commit,
        ref=head.branch or "",
        commit_title=head.title,
        commit_author=head.author,
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
