"""The GitHub and GitLab stand-ins: they answer a valid flow like the forge, and refuse and
record every request their published API description does not allow."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.forges import (
    GITHUB_TOKEN,
    GITLAB_TOKEN,
    GitHubStandIn,
    GitLabStandIn,
    github_fixture,  # noqa: F401 (the fixture "github")
    gitlab_fixture,  # noqa: F401 (the fixture "gitlab")
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GH = {"Authorization": f"Bearer {GITHUB_TOKEN}"}
GL = {"PRIVATE-TOKEN": GITLAB_TOKEN}
AUTO_MERGE = (
    "mutation($id: ID!, $headline: String, $body: String) {"
    " enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH,"
    " commitHeadline: $headline, commitBody: $body}) {"
    " clientMutationId pullRequest { number state autoMergeRequest { mergeMethod } } } }"
)


def _gh(forge: GitHubStandIn, method: str, path: str, **kw: Any) -> requests.Response:
    kw.setdefault("headers", GH)
    return requests.request(method, f"{forge.base_url}/repos/acme/deploy{path}", timeout=5, **kw)


def _gl(forge: GitLabStandIn, method: str, path: str, **kw: Any) -> requests.Response:
    kw.setdefault("headers", GL)
    url = f"{forge.base_url}/projects/acme%2Fdeploy{path}"
    return requests.request(method, url, timeout=5, **kw)


# --------------------------------------------------------------------------- GitHub


def test_github_pull_request_flow(github: GitHubStandIn) -> None:
    made = _gh(
        github,
        "POST",
        "/pulls",
        json={"title": "bump a", "head": "glue/bump-a", "base": "main", "body": "why"},
    )
    assert made.status_code == 201
    pr = made.json()
    assert (pr["number"], pr["state"], pr["head"]["ref"], pr["base"]["ref"]) == (
        1,
        "open",
        "glue/bump-a",
        "main",
    )
    assert pr["node_id"] and pr["html_url"].endswith("/acme/deploy/pull/1")
    assert made.headers["Location"].endswith("/repos/acme/deploy/pulls/1")
    # The same head and base again: GitHub's 422, and glue finds the open one instead.
    again = _gh(
        github, "POST", "/pulls", json={"title": "x", "head": "glue/bump-a", "base": "main"}
    )
    assert again.status_code == 422
    assert "already exists" in again.json()["errors"][0]["message"]
    found = _gh(
        github,
        "GET",
        "/pulls",
        params={"state": "open", "head": "acme:glue/bump-a", "base": "main"},
    ).json()
    assert [p["number"] for p in found] == [1]
    assert _gh(github, "GET", "/pulls", params={"head": "acme:other"}).json() == []

    labels = _gh(github, "POST", "/issues/1/labels", json={"labels": ["deploy", "glue"]})
    assert [label["name"] for label in labels.json()] == ["deploy", "glue"]
    updated = _gh(github, "PATCH", "/pulls/1", json={"title": "bump a to 2", "body": "new"})
    assert (updated.json()["title"], updated.json()["body"]) == ("bump a to 2", "new")

    comment = _gh(github, "POST", "/issues/1/comments", json={"body": "plan v1"}).json()
    _gh(github, "PATCH", f"/issues/comments/{comment['id']}", json={"body": "plan v2"})
    listed = _gh(github, "GET", "/issues/1/comments", params={"per_page": 100}).json()
    assert [(c["id"], c["body"]) for c in listed] == [(comment["id"], "plan v2")]

    merged = requests.post(
        github.graphql_url,
        json={
            "query": AUTO_MERGE,
            "variables": {"id": pr["node_id"], "headline": "h", "body": "m"},
        },
        headers=GH,
        timeout=5,
    )
    assert merged.status_code == 200 and "errors" not in merged.json()
    assert merged.json()["data"]["enablePullRequestAutoMerge"]["pullRequest"] == {
        "number": 1,
        "state": "OPEN",
        "autoMergeRequest": {"mergeMethod": "SQUASH"},
    }
    assert github.pull(1).auto_merge == {
        "pullRequestId": pr["node_id"],
        "mergeMethod": "SQUASH",
        "commitHeadline": "h",
        "commitBody": "m",
    }
    assert _gh(github, "GET", "/pulls/1").json()["auto_merge"]["merge_method"] == "squash"

    sha = "ab" * 20
    assert _gh(github, "GET", f"/commits/{sha}/pulls").json() == []
    github.merge(1, sha)
    by_commit = _gh(github, "GET", f"/commits/{sha}/pulls").json()
    assert [(p["number"], p["merged"], p["merge_commit_sha"]) for p in by_commit] == [
        (1, True, sha)
    ]
    assert _gh(github, "GET", "/pulls", params={"state": "open"}).json() == []

    assert [r.operation for r in github.requests] == [
        "pulls/create",
        "pulls/create",
        "pulls/list",
        "pulls/list",
        "issues/add-labels",
        "pulls/update",
        "issues/create-comment",
        "issues/update-comment",
        "issues/list-comments",
        "graphql",
        "pulls/get",
        "repos/list-pull-requests-associated-with-commit",
        "repos/list-pull-requests-associated-with-commit",
        "pulls/list",
    ]
    first = github.requests[0]
    assert first.auth == "Bearer" and first.json["head"] == "glue/bump-a"
    assert all(GITHUB_TOKEN not in str(r.headers) for r in github.requests)
    assert {k.lower() for k in first.headers} >= {"content-type", "user-agent"}


def test_github_close_and_pagination(github: GitHubStandIn) -> None:
    for n in range(3):
        github.add_pull(f"glue/b{n}")
    page = _gh(github, "GET", "/pulls", params={"per_page": 2, "page": 1})
    assert [p["number"] for p in page.json()] == [3, 2]
    assert 'rel="next"' in page.headers["Link"] and "page=2" in page.headers["Link"]
    last = _gh(github, "GET", "/pulls", params={"per_page": 2, "page": 2})
    assert [p["number"] for p in last.json()] == [1] and "Link" not in last.headers
    closed = _gh(github, "PATCH", "/pulls/2", json={"state": "closed"}).json()
    assert closed["state"] == "closed" and github.pull(2).state == "closed"
    listed = _gh(github, "GET", "/pulls", params={"state": "closed"}).json()
    assert [p["number"] for p in listed] == [2]
    assert _gh(github, "GET", "/pulls/9").status_code == 404  # a known path, an unknown pull


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "problem"),
    [
        pytest.param(
            "POST",
            "/pulls",
            {"json": {"title": "t", "head": "h", "base": "main", "labels": ["x"]}},
            422,
            "'labels' was unexpected",
            id="invented-body-field",
        ),
        pytest.param(
            "POST",
            "/pulls",
            {"json": {"title": "t", "head": "h"}},
            422,
            "'base' is a required property",
            id="missing-required-field",
        ),
        pytest.param(
            "PATCH",
            "/pulls/1",
            {"json": {"state": "merged"}},
            422,
            "'merged' is not one of ['open', 'closed']",
            id="not-in-enum",
        ),
        pytest.param(
            "PATCH", "/pulls/1", {"json": {"title": 5}}, 422, "is not of type", id="wrong-type"
        ),
        pytest.param(
            "GET",
            "/pulls",
            {"params": {"branch": "h"}},
            422,
            "query parameter 'branch' is not in the description",
            id="unknown-query-parameter",
        ),
        pytest.param(
            "GET",
            "/pulls",
            {"params": {"per_page": "many"}},
            422,
            "query parameter per_page: 'many' is not of type 'integer'",
            id="query-wrong-type",
        ),
        pytest.param("GET", "/pull-requests", {}, 404, "unknown path", id="unknown-path"),
        pytest.param(
            "DELETE", "/pulls/1", {}, 404, "method not in the description", id="unknown-method"
        ),
        pytest.param(
            "POST",
            "/issues/1/comments",
            {"data": "body=x"},
            422,
            "the request body is not JSON",
            id="not-json",
        ),
    ],
)
def test_github_refuses_and_records(
    method: str, path: str, kwargs: dict[str, Any], status: int, problem: str
) -> None:
    with GitHubStandIn() as forge:
        forge.add_pull("h")
        answer = _gh(forge, method, path, **kwargs)
        assert answer.status_code == status
        [violation] = forge.take_violations()
        assert violation.method == method and problem in violation.problem
        assert forge.requests[-1].status == status
        assert [p.title for p in forge.pulls.values()] == ["a change"]  # nothing changed
        assert forge.comments == {}


@pytest.mark.parametrize(
    ("query", "variables", "problem"),
    [
        pytest.param(
            "mutation($id: ID!) { enablePullRequestAutoMerge("
            "input: {pullRequestId: $id, mergeStyle: SQUASH}) { clientMutationId } }",
            {"id": "PR_kwGlue000001"},
            "Field 'mergeStyle' is not defined by type 'EnablePullRequestAutoMergeInput'",
            id="invented-input-field",
        ),
        pytest.param(
            "mutation($input: EnablePullRequestAutoMergeInput!) {"
            " enablePullRequestAutoMerge(input: $input) { clientMutationId } }",
            {"input": {"mergeMethod": "SQUASH"}},
            "Field 'pullRequestId' of required type 'ID!' was not provided",
            id="missing-required-input-field",
        ),
        pytest.param(
            "mutation($id: ID!) { enablePullRequestAutoMerge("
            "input: {pullRequestId: $id, mergeMethod: FAST_FORWARD}) { clientMutationId } }",
            {"id": "PR_kwGlue000001"},
            "Value 'FAST_FORWARD' does not exist in 'PullRequestMergeMethod' enum",
            id="not-in-enum",
        ),
        pytest.param(
            "mutation($id: ID!) { enablePullRequestAutoMerge("
            "input: {pullRequestId: $id}) { clientMutationId mergedBy } }",
            {"id": "PR_kwGlue000001"},
            "Cannot query field 'mergedBy'",
            id="unknown-output-field",
        ),
    ],
)
def test_github_graphql_refuses_and_records(
    query: str, variables: dict[str, Any], problem: str
) -> None:
    with GitHubStandIn() as forge:
        forge.add_pull("h")
        answer = requests.post(
            forge.graphql_url,
            json={"query": query, "variables": variables},
            headers=GH,
            timeout=5,
        )
        assert answer.status_code == 200  # GraphQL errors come in the body, as from GitHub
        assert problem in answer.json()["errors"][0]["message"]
        [violation] = forge.take_violations()
        assert problem in violation.problem
        assert forge.pull(1).auto_merge is None


def test_github_graphql_runtime_errors_are_not_violations(github: GitHubStandIn) -> None:
    """GitHub refusing a valid mutation (unknown node, auto-merge not allowed) is the forge's
    answer, not a request that breaks the schema."""
    github.add_pull("h")

    def enable(node_id: str) -> dict[str, Any]:
        data: dict[str, Any] = requests.post(
            github.graphql_url,
            json={"query": AUTO_MERGE, "variables": {"id": node_id}},
            headers={"Authorization": f"token {GITHUB_TOKEN}"},
            timeout=5,
        ).json()
        return data

    assert "Could not resolve" in enable("PR_nope")["errors"][0]["message"]
    github.auto_merge_allowed = False
    assert "not allowed" in enable("PR_kwGlue000001")["errors"][0]["message"]
    assert github.pull(1).auto_merge is None
    assert [r.auth for r in github.requests] == ["token", "token"]


def test_github_wrong_or_missing_token_is_401(github: GitHubStandIn) -> None:
    github.add_pull("h")
    wrong = _gh(github, "GET", "/pulls", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Bad credentials")
    missing = _gh(github, "GET", "/pulls", headers={})
    assert (missing.status_code, missing.json()["message"]) == (401, "Requires authentication")
    basic = _gh(github, "GET", "/pulls", headers={"Authorization": f"Basic {GITHUB_TOKEN}"})
    assert basic.status_code == 401
    created = _gh(
        github,
        "POST",
        "/pulls",
        json={"title": "t", "head": "x", "base": "main"},
        headers={"Authorization": "token nope"},
    )
    assert created.status_code == 401 and len(github.pulls) == 1
    graph = requests.post(
        github.graphql_url,
        json={"query": AUTO_MERGE, "variables": {"id": "PR_kwGlue000001"}},
        headers={"Authorization": "Bearer nope"},
        timeout=5,
    )
    assert graph.status_code == 401 and github.pull(1).auto_merge is None
    ok = _gh(github, "GET", "/pulls", headers={"Authorization": f"token {GITHUB_TOKEN}"})
    assert ok.status_code == 200
    assert [r.auth for r in github.requests] == [
        "Bearer",
        None,
        None,
        "token",
        "Bearer",
        "token",
    ]


def test_scripted_answers_come_first_and_requests_are_still_checked() -> None:
    with GitHubStandIn() as forge:
        forge.fail_next(502, {"message": "Server Error"})
        forge.fail_next(403, {"message": "rate limited"}, {"Retry-After": "1"})
        first = _gh(forge, "GET", "/pulls")
        second = _gh(forge, "GET", "/pulls", params={"colour": "red"})
        third = _gh(forge, "GET", "/pulls")
        assert [first.status_code, second.status_code, third.status_code] == [502, 403, 200]
        assert second.headers["Retry-After"] == "1"
        assert [r.scripted for r in forge.requests] == [True, True, False]
        assert [str(v) for v in forge.take_violations()] == [
            "GET /repos/acme/deploy/pulls: query parameter 'colour' is not in the description"
        ]


# --------------------------------------------------------------------------- GitLab


def test_gitlab_merge_request_flow(gitlab: GitLabStandIn) -> None:
    made = _gl(
        gitlab,
        "POST",
        "/merge_requests",
        json={
            "source_branch": "glue/bump-a",
            "target_branch": "main",
            "title": "bump a",
            "description": "why",
            "labels": ["deploy", "glue"],
            "remove_source_branch": True,
        },
    )
    assert made.status_code == 201
    mr = made.json()
    assert (mr["iid"], mr["state"], mr["labels"], mr["force_remove_source_branch"]) == (
        1,
        "opened",
        ["deploy", "glue"],
        True,
    )
    assert mr["web_url"].endswith("/acme/deploy/-/merge_requests/1")
    again = _gl(
        gitlab,
        "POST",
        "/merge_requests",
        json={"source_branch": "glue/bump-a", "target_branch": "main", "title": "x"},
    )
    assert again.status_code == 409 and "already exists" in again.json()["message"][0]
    found = requests.get(
        f"{gitlab.base_url}/projects/42/merge_requests",
        params={"state": "opened", "source_branch": "glue/bump-a", "target_branch": "main"},
        headers={"Authorization": f"Bearer {GITLAB_TOKEN}"},
        timeout=5,
    )
    assert [m["iid"] for m in found.json()] == [1] and found.headers["X-Total"] == "1"

    updated = _gl(
        gitlab,
        "PUT",
        "/merge_requests/1",
        json={"title": "bump a to 2", "description": "new", "add_labels": ["prod"]},
    ).json()
    assert (updated["title"], updated["description"], updated["labels"]) == (
        "bump a to 2",
        "new",
        ["deploy", "glue", "prod"],
    )

    note = _gl(gitlab, "POST", "/merge_requests/1/notes", json={"body": "plan v1"}).json()
    assert (note["body"], note["noteable_iid"], note["system"]) == ("plan v1", 1, False)
    _gl(gitlab, "PUT", f"/merge_requests/1/notes/{note['id']}", json={"body": "plan v2"})
    second = _gl(gitlab, "POST", "/merge_requests/1/notes", json={"body": "other"}).json()
    listed = _gl(gitlab, "GET", "/merge_requests/1/notes", params={"per_page": 100}).json()
    assert [(n["id"], n["body"]) for n in listed] == [
        (second["id"], "other"),  # GitLab lists the newest first unless sort=asc
        (note["id"], "plan v2"),
    ]

    auto = _gl(
        gitlab,
        "PUT",
        "/merge_requests/1/merge",
        json={"auto_merge": True, "squash": True, "squash_commit_message": "bump a"},
    ).json()
    assert (auto["state"], auto["merge_when_pipeline_succeeds"]) == ("opened", True)
    assert gitlab.merge_request(1).merge_params == {
        "auto_merge": True,
        "squash": True,
        "squash_commit_message": "bump a",
    }
    sha = "cd" * 20
    gitlab.merge(1, sha)
    by_commit = _gl(gitlab, "GET", f"/repository/commits/{sha}/merge_requests").json()
    assert [(m["iid"], m["state"], m["merge_commit_sha"]) for m in by_commit] == [
        (1, "merged", sha)
    ]
    merged_only = _gl(
        gitlab, "GET", f"/repository/commits/{sha}/merge_requests", params={"state": "opened"}
    )
    assert merged_only.json() == []

    assert gitlab.requests[0].auth == "PRIVATE-TOKEN" and gitlab.requests[2].auth == "Bearer"
    assert all(GITLAB_TOKEN not in str(r.headers) for r in gitlab.requests)
    assert gitlab.calls("putApiV4ProjectsIdMergeRequestsMergeRequestIidMerge")[0].json == {
        "auto_merge": True,
        "squash": True,
        "squash_commit_message": "bump a",
    }


def test_gitlab_close_merge_now_and_pagination(gitlab: GitLabStandIn) -> None:
    for n in range(3):
        gitlab.add_merge_request(f"glue/b{n}")
    page = _gl(gitlab, "GET", "/merge_requests", params={"per_page": 2, "page": 1})
    assert [m["iid"] for m in page.json()] == [3, 2]
    assert (page.headers["X-Next-Page"], page.headers["X-Total-Pages"]) == ("2", "2")
    last = _gl(gitlab, "GET", "/merge_requests", params={"per_page": 2, "page": 2})
    assert [m["iid"] for m in last.json()] == [1] and last.headers["X-Next-Page"] == ""

    closed = _gl(gitlab, "PUT", "/merge_requests/2", json={"state_event": "close"}).json()
    assert closed["state"] == "closed"
    notes = _gl(gitlab, "GET", "/merge_requests/2/notes").json()
    assert [(n["body"], n["system"]) for n in notes] == [("closed", True)]
    assert gitlab.notes_on(2) == []  # the helper leaves GitLab's system notes out
    assert _gl(gitlab, "PUT", "/merge_requests/2/merge", json={}).status_code == 405

    now = _gl(gitlab, "PUT", "/merge_requests/3/merge", json={"merge_commit_message": "m"}).json()
    assert now["state"] == "merged" and now["merge_commit_sha"]
    assert _gl(gitlab, "GET", "/merge_requests/9").status_code == 404
    other = requests.get(f"{gitlab.base_url}/projects/7/merge_requests", headers=GL, timeout=5)
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "problem"),
    [
        pytest.param(
            "POST",
            "/merge_requests",
            {"json": {"title": "t", "source_branch": "s", "target_branch": "main", "draft": True}},
            400,
            "'draft' was unexpected",
            id="invented-body-field",
        ),
        pytest.param(
            "POST",
            "/merge_requests",
            {"json": {"source_branch": "s", "target_branch": "main"}},
            400,
            "'title' is a required property",
            id="missing-required-field",
        ),
        pytest.param(
            "POST",
            "/merge_requests",
            {"json": {"title": "t", "source_branch": "s", "target_branch": "m", "labels": "a,b"}},
            400,
            "body.labels: 'a,b' is not of type",
            id="wrong-type",
        ),
        pytest.param(
            "PUT",
            "/merge_requests/1",
            {"json": {"state_event": "merge"}},
            400,
            "'merge' is not one of",
            id="not-in-enum",
        ),
        pytest.param(
            "PUT",
            "/merge_requests/1",
            {"json": {}},
            400,
            "at least one of assignee_id",
            id="update-without-a-field",
        ),
        pytest.param(
            "PUT",
            "/merge_requests/1/merge",
            {"json": {"merge_when_build_succeeds": True}},
            400,
            "'merge_when_build_succeeds' was unexpected",
            id="merge-invented-field",
        ),
        pytest.param(
            "GET",
            "/merge_requests",
            {"params": {"branch": "s"}},
            400,
            "query parameter 'branch' is not in the description",
            id="unknown-query-parameter",
        ),
        pytest.param(
            "GET",
            "/merge_requests/1/comments",
            {},
            404,
            "unknown path",
            id="unknown-path",
        ),
        pytest.param(
            "PATCH",
            "/merge_requests/1",
            {"json": {"title": "t"}},
            405,
            "method not in the description",
            id="unknown-method",
        ),
    ],
)
def test_gitlab_refuses_and_records(
    method: str, path: str, kwargs: dict[str, Any], status: int, problem: str
) -> None:
    with GitLabStandIn() as forge:
        forge.add_merge_request("s")
        answer = _gl(forge, method, path, **kwargs)
        assert answer.status_code == status
        [violation] = forge.take_violations()
        assert problem in violation.problem
        request = forge.merge_request(1)
        assert (len(forge.merge_requests), request.title, request.state) == (
            1,
            "a change",
            "opened",
        )


def test_gitlab_wrong_or_missing_token_is_401(gitlab: GitLabStandIn) -> None:
    gitlab.add_merge_request("s")
    for headers in ({"PRIVATE-TOKEN": "nope"}, {"Authorization": "Bearer nope"}, {}):
        answer = _gl(gitlab, "PUT", "/merge_requests/1", json={"title": "x"}, headers=headers)
        assert (answer.status_code, answer.json()) == (401, {"message": "401 Unauthorized"})
    assert gitlab.merge_request(1).title == "a change"
    assert [r.auth for r in gitlab.requests] == ["PRIVATE-TOKEN", "Bearer", None]


# --------------------------------------------------------------------------- the fixtures


def test_the_fixture_fails_a_test_that_sent_an_invented_field(tmp_path: Path) -> None:
    """A test using the fixture passes its own asserts but errors at teardown when the
    request it sent is not in the description; the error names the request and the field."""
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import requests
            from tests.support.forges import GITLAB_TOKEN, gitlab_fixture  # noqa: F401

            def test_sends_an_invented_field(gitlab):
                answer = requests.post(
                    f"{gitlab.base_url}/projects/42/merge_requests",
                    json={"title": "t", "source_branch": "s", "target_branch": "main",
                          "auto_merge": True},
                    headers={"PRIVATE-TOKEN": GITLAB_TOKEN},
                    timeout=5,
                )
                assert answer.status_code == 400

            def test_valid(gitlab):
                answer = requests.post(
                    f"{gitlab.base_url}/projects/42/merge_requests",
                    json={"title": "t", "source_branch": "s", "target_branch": "main"},
                    headers={"PRIVATE-TOKEN": GITLAB_TOKEN},
                    timeout=5,
                )
                assert answer.status_code == 201
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "inner")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 passed, 1 error" in run.stdout
    assert "ERROR at teardown of test_sends_an_invented_field" in run.stdout
    assert (
        "POST /api/v4/projects/42/merge_requests: body: Additional properties are not allowed "
        "('auto_merge' was unexpected)" in run.stdout
    )
