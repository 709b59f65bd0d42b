"""Each CI system glue recognises, read from the variables its documentation lists.

The variable values are the documented examples (or values of the documented form):
what a job on that system sees. One test per system, plus the shared rules
(``refs/heads/`` stripped, clone URLs turned into web pages, auto_release branches).
"""

from __future__ import annotations

import pytest

from gitops_glue import naming
from gitops_glue.config import parse_config
from gitops_glue.integrations import ci

SHA = "a0bd708bcdebced545b62a842a0350ccd1d683b7"


def test_azure_pipelines() -> None:
    # https://learn.microsoft.com/azure/devops/pipelines/build/variables
    env = {
        "TF_BUILD": "True",
        "BUILD_BUILDID": "1234",
        "BUILD_SOURCEBRANCH": "refs/heads/main",
        "BUILD_SOURCEVERSION": SHA,
        "BUILD_SOURCEVERSIONMESSAGE": "Add the cart service\n\nLong text.",
        "BUILD_REQUESTEDFOR": "Dev One",
        "BUILD_REPOSITORY_NAME": "shop",
        "BUILD_REPOSITORY_URI": "https://fabrikam@dev.azure.com/fabrikam/Fabrikam Web/_git/shop",
        "SYSTEM_COLLECTIONURI": "https://dev.azure.com/fabrikam/",
        "SYSTEM_TEAMPROJECT": "Fabrikam Web",
    }
    ctx = ci.detect(env)
    assert ctx.system == "azure"
    assert ctx.pipeline_url == (
        "https://dev.azure.com/fabrikam/Fabrikam%20Web/_build/results?buildId=1234"
    )
    assert (ctx.ref, ctx.actor, ctx.commit) == ("main", "Dev One", SHA)
    assert ctx.commit_title == "Add the cart service"
    assert ctx.repository == "shop"
    # The user name in the clone URL is not part of the web page.
    assert ctx.repository_url == "https://dev.azure.com/fabrikam/Fabrikam Web/_git/shop"
    assert ctx.commit_url() == f"{ctx.repository_url}/commit/{SHA}"


def test_azure_pull_request_builds_use_the_source_branch() -> None:
    env = {
        "TF_BUILD": "True",
        "BUILD_SOURCEBRANCH": "refs/pull/7/merge",
        "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/cart",
    }
    assert ci.detect(env).ref == "feature/cart"


def test_bitbucket_pipelines() -> None:
    # https://support.atlassian.com/bitbucket-cloud/docs/variables-and-secrets/
    env = {
        "CI": "true",
        "BITBUCKET_BUILD_NUMBER": "42",
        "BITBUCKET_BRANCH": "release/1.4",
        "BITBUCKET_COMMIT": SHA,
        "BITBUCKET_WORKSPACE": "acme",
        "BITBUCKET_REPO_SLUG": "shop",
        "BITBUCKET_REPO_FULL_NAME": "acme/shop",
        "BITBUCKET_GIT_HTTP_ORIGIN": "http://bitbucket.org/acme/shop",
        "BITBUCKET_STEP_TRIGGERER_UUID": "{8a7c3c6e-0000-4d9a-9a6c-1e0b6f0f0f0f}",
    }
    ctx = ci.detect(env)
    assert ctx.system == "bitbucket"
    assert ctx.pipeline_url == "https://bitbucket.org/acme/shop/pipelines/results/42"
    assert (ctx.repository, ctx.repository_url) == ("acme/shop", "https://bitbucket.org/acme/shop")
    assert (ctx.ref, ctx.commit) == ("release/1.4", SHA)
    assert ctx.actor == ""  # only a UUID: nothing a person would recognise
    assert ctx.commit_url() == f"https://bitbucket.org/acme/shop/commits/{SHA}"
    # Older runners: no full name, but workspace and slug.
    del env["BITBUCKET_REPO_FULL_NAME"]
    assert ci.detect(env).repository == "acme/shop"


def test_bitbucket_tag_builds_name_the_tag() -> None:
    env = {"BITBUCKET_BUILD_NUMBER": "43", "BITBUCKET_TAG": "v1.4.0"}
    assert ci.detect(env).ref == "v1.4.0"


def test_jenkins() -> None:
    # https://www.jenkins.io/doc/book/pipeline/jenkinsfile/#using-environment-variables
    # and the Git plugin's GIT_BRANCH / GIT_COMMIT / GIT_URL.
    env = {
        "JENKINS_URL": "https://ci.example.com/",
        "BUILD_URL": "https://ci.example.com/job/shop/15/",
        "BUILD_NUMBER": "15",
        "GIT_BRANCH": "origin/main",
        "GIT_COMMIT": SHA,
        "GIT_URL": "git@github.com:acme/shop.git",
        "BUILD_USER_ID": "dev1",
    }
    ctx = ci.detect(env)
    assert ctx.system == "jenkins"
    assert ctx.pipeline_url == "https://ci.example.com/job/shop/15/"
    assert (ctx.ref, ctx.commit, ctx.actor) == ("main", SHA, "dev1")
    assert (ctx.repository, ctx.repository_url) == ("acme/shop", "https://github.com/acme/shop")
    assert ctx.commit_url() == f"https://github.com/acme/shop/commit/{SHA}"


@pytest.mark.parametrize(
    ("variables", "branch"),
    [
        ({"GIT_BRANCH": "refs/remotes/origin/release/2"}, "release/2"),
        ({"GIT_BRANCH": "origin/x", "BRANCH_NAME": "main"}, "main"),  # multibranch
        ({"BRANCH_NAME": "PR-24", "CHANGE_BRANCH": "feature/y"}, "feature/y"),  # pull request
    ],
)
def test_jenkins_branch_forms(variables: dict[str, str], branch: str) -> None:
    assert ci.detect({"JENKINS_URL": "https://ci.example.com/", **variables}).ref == branch


def test_buildkite() -> None:
    # https://buildkite.com/docs/pipelines/environment_variables
    env = {
        "CI": "true",
        "BUILDKITE": "true",
        "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/59034",
        "BUILDKITE_BRANCH": "main",
        "BUILDKITE_COMMIT": SHA,
        "BUILDKITE_BUILD_CREATOR": "Dev One",
        "BUILDKITE_BUILD_AUTHOR": "Dev Two",
        "BUILDKITE_MESSAGE": "Fix the cart\n\nDetails.",
        "BUILDKITE_REPO": "git@github.com:acme/shop.git",
    }
    ctx = ci.detect(env)
    assert ctx.system == "buildkite"
    assert ctx.pipeline_url == "https://buildkite.com/acme/shop/builds/59034"
    assert (ctx.ref, ctx.commit, ctx.actor) == ("main", SHA, "Dev One")
    assert (ctx.commit_title, ctx.commit_author) == ("Fix the cart", "Dev Two")
    assert (ctx.repository, ctx.repository_url) == ("acme/shop", "https://github.com/acme/shop")
    # A build started by hand says HEAD until the agent resolves it: no commit then.
    assert ci.detect({**env, "BUILDKITE_COMMIT": "HEAD"}).commit == ""


def test_circleci() -> None:
    # https://circleci.com/docs/reference/variables/
    env = {
        "CI": "true",
        "CIRCLECI": "true",
        "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/123",
        "CIRCLE_BRANCH": "main",
        "CIRCLE_SHA1": SHA,
        "CIRCLE_USERNAME": "dev1",
        "CIRCLE_REPOSITORY_URL": "git@github.com:acme/shop.git",
        "CIRCLE_PROJECT_USERNAME": "acme",
        "CIRCLE_PROJECT_REPONAME": "shop",
    }
    ctx = ci.detect(env)
    assert ctx.system == "circleci"
    assert ctx.pipeline_url == "https://circleci.com/gh/acme/shop/123"
    assert (ctx.ref, ctx.commit, ctx.actor) == ("main", SHA, "dev1")
    assert (ctx.repository, ctx.repository_url) == ("acme/shop", "https://github.com/acme/shop")


def test_github_full_refs_are_shortened() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF_NAME": "main", "GITHUB_HEAD_REF": ""}
    assert ci.detect(env).ref == "main"
    assert naming.short_ref("refs/heads/release/1") == "release/1"
    assert naming.short_ref("refs/tags/v1.0") == "v1.0"
    assert naming.short_ref("main") == "main"


def test_every_system_in_the_table_is_detected_by_its_marker_alone() -> None:
    values = {"TF_BUILD": "True", "BITBUCKET_BUILD_NUMBER": "1", "JENKINS_URL": "https://j/"}
    for system in ci.SYSTEMS:
        ctx = ci.detect({system.marker: values.get(system.marker, "true")})
        assert ctx.system == system.name
    assert not ci.detect({"CI": "true"}).in_ci  # an unknown system: no guesses
    assert not ci.detect({"TF_BUILD": "False", "BUILDKITE": "false"}).in_ci


@pytest.mark.parametrize(
    ("clone_url", "page"),
    [
        ("git@github.com:acme/shop.git", "https://github.com/acme/shop"),
        ("https://user:secret@gitlab.example.com/g/shop.git", "https://gitlab.example.com/g/shop"),
        ("ssh://git@gitlab.example.com:2222/g/shop.git", "https://gitlab.example.com/g/shop"),
        ("https://gitlab.example.com:8443/g/shop", "https://gitlab.example.com:8443/g/shop"),
        ("git@ssh.dev.azure.com:v3/org/proj/shop", "https://dev.azure.com/org/proj/_git/shop"),
        ("", ""),
        ("/srv/git/shop.git", ""),
    ],
)
def test_clone_urls_become_web_pages_without_credentials(clone_url: str, page: str) -> None:
    assert ci.web_url(clone_url) == page


def test_auto_release_rules_match_full_branch_refs() -> None:
    config = parse_config(
        "version: 1\n"
        "environments:\n  - name: dev\n    values: dev.yaml\n"
        "services:\n  a:\n    tag_key: a.image.tag\n"
        "auto_release:\n  - branch: main\n    to: dev\n  - branch: release/*\n    to: dev\n"
    )
    assert config.auto_release_allows("refs/heads/main", "dev")
    assert config.auto_release_allows("refs/heads/release/1.4", "dev")
    assert config.auto_release_allows("main", "dev")
    assert not config.auto_release_allows("refs/heads/feature/main", "dev")
