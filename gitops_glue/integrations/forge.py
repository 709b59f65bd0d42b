"""Merge requests on the forge that hosts the deployment repository: GitHub (pull
requests), GitLab (merge requests) and Gitea/Forgejo (pull requests), through their
REST APIs (GitHub's auto-merge is GraphQL only).

One small client per forge, all with the same methods: find the open request of a
branch, open one, update its title and body, close it with a note, ask for auto-merge,
keep one comment of glue's up to date, and find the request a merge commit came from.
The token comes from ``GLUE_FORGE_TOKEN``, else the forge's usual variable
(``GITHUB_TOKEN``, ``GITLAB_TOKEN``, ``GITEA_TOKEN``); it is registered for redaction
and never appears in a message. Every request ends within ``GLUE_NETWORK_TIMEOUT``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitops_glue import network, redact
from gitops_glue.errors import OperationError, UsageError

if TYPE_CHECKING:
    import requests

    from gitops_glue.config import MergeRequestSettings

TOKEN_VARS = {
    "github": ("GLUE_FORGE_TOKEN", "GITHUB_TOKEN"),
    "gitlab": ("GLUE_FORGE_TOKEN", "GITLAB_TOKEN"),
    "gitea": ("GLUE_FORGE_TOKEN", "GITEA_TOKEN"),
}
_PAGE = 100
_MAX_PAGES = 20


@dataclass(frozen=True)
class MergeRequest:
    """A pull request (GitHub, Gitea) or merge request (GitLab), as glue needs it."""

    number: int  # GitHub's number, GitLab's iid, Gitea's index
    url: str
    title: str
    body: str
    head: str  # the source branch
    base: str  # the target branch
    state: str  # open | closed | merged
    node_id: str = ""  # GitHub's GraphQL id (auto-merge)

    @property
    def ref(self) -> str:
        """How people name it: ``!12`` on GitLab, ``#12`` elsewhere."""
        return f"#{self.number}"

    def to_json(self) -> dict[str, object]:
        return {"number": self.number, "url": self.url, "title": self.title, "state": self.state}


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str = ""  # the account that wrote it (login / username)


class Forge:
    """The common part: one authenticated HTTP session with the forge's API."""

    kind = ""
    #: What the forge calls the thing, for messages.
    noun = "pull request"

    def __init__(self, api_url: str, project: str, token: str, timeout: float) -> None:
        self.api_url = api_url.rstrip("/")
        self.project = project
        self.token = token
        self.timeout = timeout
        self._session: requests.Session | None = None

    # ---------------------------------------------------------------- transport

    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        url: str | None = None,
    ) -> Any:
        import requests

        if self._session is None:
            self._session = requests.Session()
            self._session.headers.update(self._headers())
        session = self._session
        target = url or f"{self.api_url}{path}"
        what = f"{method} {redact.mask_url(target)}"

        def send() -> requests.Response:
            return session.request(method, target, json=json, params=params, timeout=self.timeout)

        try:
            response = network.run_with_deadline(send, self.timeout, what)
        except network.DeadlineExceeded:
            raise
        except requests.RequestException as exc:
            raise OperationError(
                f"the {self.kind} API at {redact.mask_url(self.api_url)} cannot be reached: "
                f"{redact.redact(str(exc))[:300]}",
                hint="check merge_requests.api_url in glue.yaml (or GLUE_FORGE_API_URL)",
            ) from None
        if response.status_code in (401, 403):
            raise OperationError(
                f"the {self.kind} API refused glue's token ({what}: HTTP {response.status_code})",
                hint=self._token_hint(),
            )
        if response.status_code == 404 and url is None and path.count("/") <= 3:
            raise UsageError(
                f"{self.kind} has no project {self.project!r} at "
                f"{redact.mask_url(self.api_url)} (or the token cannot see it)",
                hint="set merge_requests.project in glue.yaml to the repository's owner/name",
            )
        if response.status_code >= 400:
            raise OperationError(
                f"{what} failed: HTTP {response.status_code}: {self._said(response)}"
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise OperationError(f"{what} gave no JSON (HTTP {response.status_code})") from None

    @staticmethod
    def _said(response: requests.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            return redact.redact(response.text[:300])
        if isinstance(data, dict):
            for key in ("message", "error", "errors"):
                if key in data:
                    return redact.redact(str(data[key])[:300])
        return redact.redact(str(data)[:300])

    def _token_hint(self) -> str:
        names = " or ".join(TOKEN_VARS[self.kind])
        return f"set {names} to a token that may push branches and open {self.noun}s"

    def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        found: list[Any] = []
        for page in range(1, _MAX_PAGES + 1):
            batch = self._call("GET", path, params={**(params or {}), **self._page_params(page)})
            if not isinstance(batch, list):
                break
            found += batch
            if len(batch) < _PAGE:
                break
        return found

    def _page_params(self, page: int) -> dict[str, int]:
        return {"per_page": _PAGE, "page": page}

    # ---------------------------------------------------------------- the methods

    def find_open(self, head: str, base: str) -> MergeRequest | None:
        """The open request from branch ``head`` into ``base``, if any."""
        raise NotImplementedError

    def open(self, head: str, base: str, title: str, body: str, labels: list[str]) -> MergeRequest:
        raise NotImplementedError

    def update(self, request: MergeRequest, title: str, body: str) -> MergeRequest:
        raise NotImplementedError

    def close(self, request: MergeRequest, note: str) -> None:
        """Say why in a comment, then close it."""
        raise NotImplementedError

    def auto_merge(self, request: MergeRequest, title: str, message: str) -> None:
        """Merge (squashed, with this commit message) once the request's checks pass."""
        raise NotImplementedError

    def comments(self, request: MergeRequest) -> list[Comment]:
        raise NotImplementedError

    def add_comment(self, request: MergeRequest, body: str) -> Comment:
        raise NotImplementedError

    def edit_comment(self, request: MergeRequest, comment: Comment, body: str) -> None:
        raise NotImplementedError

    def merged_request_of(self, sha: str) -> MergeRequest | None:
        """The merged request whose merge (or squash) commit is ``sha``, if any."""
        raise NotImplementedError

    def get(self, number: int) -> MergeRequest:
        raise NotImplementedError

    def upsert_comment(self, request: MergeRequest, marker: str, body: str) -> Comment:
        """Glue's one comment (the one that contains ``marker``), created or edited in place."""
        for comment in self.comments(request):
            if marker in comment.body:
                if comment.body != body:
                    self.edit_comment(request, comment, body)
                return Comment(comment.id, body)
        return self.add_comment(request, body)


def _pull_request(data: Mapping[str, Any], *, merged: bool) -> MergeRequest:
    """A pull request as GitHub and Gitea describe it (the same fields)."""
    return MergeRequest(
        number=int(data["number"]),
        url=str(data.get("html_url", "")),
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        head=str((data.get("head") or {}).get("ref", "")),
        base=str((data.get("base") or {}).get("ref", "")),
        state="merged" if merged else str(data.get("state", "open")),
        node_id=str(data.get("node_id", "")),
    )


class _IssueComments(Forge):
    """Comments as GitHub and Gitea keep them: a pull request's issue comments."""

    @property
    def _repo(self) -> str:
        return f"/repos/{self.project}"

    def comments(self, request: MergeRequest) -> list[Comment]:
        found = self._pages(f"{self._repo}/issues/{request.number}/comments")
        return [
            Comment(
                int(c["id"]), str(c.get("body") or ""), str((c.get("user") or {}).get("login", ""))
            )
            for c in found
        ]

    def add_comment(self, request: MergeRequest, body: str) -> Comment:
        data = self._call(
            "POST", f"{self._repo}/issues/{request.number}/comments", json={"body": body}
        )
        return Comment(int(data["id"]), body)

    def edit_comment(self, request: MergeRequest, comment: Comment, body: str) -> None:
        self._call("PATCH", f"{self._repo}/issues/comments/{comment.id}", json={"body": body})


# ----------------------------------------------------------------------------- GitHub


class GitHub(_IssueComments):
    kind = "github"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    def _mr(self, data: Mapping[str, Any]) -> MergeRequest:
        return _pull_request(data, merged=bool(data.get("merged_at")))

    def find_open(self, head: str, base: str) -> MergeRequest | None:
        owner = self.project.split("/", 1)[0]
        found = self._pages(
            f"{self._repo}/pulls", {"state": "open", "head": f"{owner}:{head}", "base": base}
        )
        matches = [self._mr(d) for d in found if (d.get("head") or {}).get("ref") == head]
        return matches[0] if matches else None

    def open(self, head: str, base: str, title: str, body: str, labels: list[str]) -> MergeRequest:
        data = self._call(
            "POST",
            f"{self._repo}/pulls",
            json={"title": title, "head": head, "base": base, "body": body},
        )
        request = self._mr(data)
        if labels:
            self._call(
                "POST", f"{self._repo}/issues/{request.number}/labels", json={"labels": labels}
            )
        return request

    def update(self, request: MergeRequest, title: str, body: str) -> MergeRequest:
        data = self._call(
            "PATCH", f"{self._repo}/pulls/{request.number}", json={"title": title, "body": body}
        )
        return self._mr(data)

    def close(self, request: MergeRequest, note: str) -> None:
        self.add_comment(request, note)
        self._call("PATCH", f"{self._repo}/pulls/{request.number}", json={"state": "closed"})

    def auto_merge(self, request: MergeRequest, title: str, message: str) -> None:
        query = (
            "mutation($id: ID!, $headline: String, $body: String) {"
            " enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH,"
            " commitHeadline: $headline, commitBody: $body}) { clientMutationId } }"
        )
        variables = {"id": request.node_id, "headline": title, "body": message}
        data = self._call(
            "POST", "", json={"query": query, "variables": variables}, url=self._graphql_url()
        )
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors:
            said = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
            raise OperationError(
                f"GitHub refused auto-merge for {request.ref}: {redact.redact(said)[:300]}",
                hint="allow auto-merge in the repository's settings, and protect the base "
                "branch with required checks",
            )

    def _graphql_url(self) -> str:
        # api.github.com/graphql; GitHub Enterprise: https://HOST/api/v3 -> /api/graphql.
        if self.api_url.endswith("/api/v3"):
            return self.api_url[: -len("/v3")] + "/graphql"
        return f"{self.api_url}/graphql"

    def merged_request_of(self, sha: str) -> MergeRequest | None:
        found = self._call("GET", f"{self._repo}/commits/{sha}/pulls")
        merged = [self._mr(d) for d in found or [] if d.get("merged_at")]
        return merged[0] if merged else None

    def get(self, number: int) -> MergeRequest:
        return self._mr(self._call("GET", f"{self._repo}/pulls/{number}"))


# ----------------------------------------------------------------------------- GitLab


class GitLab(Forge):
    kind = "gitlab"
    noun = "merge request"

    def _headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token}

    @property
    def _repo(self) -> str:
        return "/projects/" + urllib.parse.quote(self.project, safe="")

    def _mr(self, data: Mapping[str, Any]) -> MergeRequest:
        state = {"opened": "open", "locked": "open"}.get(
            str(data.get("state")), str(data.get("state"))
        )
        return MergeRequest(
            number=int(data["iid"]),
            url=str(data.get("web_url", "")),
            title=str(data.get("title") or ""),
            body=str(data.get("description") or ""),
            head=str(data.get("source_branch", "")),
            base=str(data.get("target_branch", "")),
            state=state,
        )

    def find_open(self, head: str, base: str) -> MergeRequest | None:
        found = self._pages(
            f"{self._repo}/merge_requests",
            {"state": "opened", "source_branch": head, "target_branch": base},
        )
        matches = [self._mr(d) for d in found if d.get("source_branch") == head]
        return matches[0] if matches else None

    def open(self, head: str, base: str, title: str, body: str, labels: list[str]) -> MergeRequest:
        payload: dict[str, Any] = {
            "source_branch": head,
            "target_branch": base,
            "title": title,
            "description": body,
            "remove_source_branch": True,
            "squash": True,
        }
        if labels:
            payload["labels"] = list(labels)
        return self._mr(self._call("POST", f"{self._repo}/merge_requests", json=payload))

    def update(self, request: MergeRequest, title: str, body: str) -> MergeRequest:
        data = self._call(
            "PUT",
            f"{self._repo}/merge_requests/{request.number}",
            json={"title": title, "description": body},
        )
        return self._mr(data)

    def close(self, request: MergeRequest, note: str) -> None:
        self.add_comment(request, note)
        self._call(
            "PUT", f"{self._repo}/merge_requests/{request.number}", json={"state_event": "close"}
        )

    def auto_merge(self, request: MergeRequest, title: str, message: str) -> None:
        self._call(
            "PUT",
            f"{self._repo}/merge_requests/{request.number}/merge",
            json={
                "auto_merge": True,
                "squash": True,
                "squash_commit_message": f"{title}\n\n{message}" if message else title,
                "should_remove_source_branch": True,
            },
        )

    def comments(self, request: MergeRequest) -> list[Comment]:
        found = self._pages(f"{self._repo}/merge_requests/{request.number}/notes")
        return [
            Comment(
                int(n["id"]),
                str(n.get("body") or ""),
                str((n.get("author") or {}).get("username", "")),
            )
            for n in found
            if not n.get("system")
        ]

    def add_comment(self, request: MergeRequest, body: str) -> Comment:
        data = self._call(
            "POST", f"{self._repo}/merge_requests/{request.number}/notes", json={"body": body}
        )
        return Comment(int(data["id"]), body)

    def edit_comment(self, request: MergeRequest, comment: Comment, body: str) -> None:
        self._call(
            "PUT",
            f"{self._repo}/merge_requests/{request.number}/notes/{comment.id}",
            json={"body": body},
        )

    def merged_request_of(self, sha: str) -> MergeRequest | None:
        found = self._call("GET", f"{self._repo}/repository/commits/{sha}/merge_requests")
        merged = [self._mr(d) for d in found or [] if d.get("state") == "merged"]
        return merged[0] if merged else None

    def get(self, number: int) -> MergeRequest:
        return self._mr(self._call("GET", f"{self._repo}/merge_requests/{number}"))


# ----------------------------------------------------------------------------- Gitea


class Gitea(_IssueComments):
    kind = "gitea"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "Accept": "application/json"}

    def _page_params(self, page: int) -> dict[str, int]:
        return {"limit": _PAGE, "page": page}

    def _mr(self, data: Mapping[str, Any]) -> MergeRequest:
        return _pull_request(data, merged=bool(data.get("merged")))

    def find_open(self, head: str, base: str) -> MergeRequest | None:
        found = self._pages(f"{self._repo}/pulls", {"state": "open"})
        for data in found:
            request = self._mr(data)
            if request.head == head and request.base == base:
                return request
        return None

    def _label_ids(self, labels: list[str]) -> list[int]:
        known = {str(d["name"]): int(d["id"]) for d in self._pages(f"{self._repo}/labels")}
        ids = []
        for name in labels:
            if name not in known:
                made = self._call(
                    "POST", f"{self._repo}/labels", json={"name": name, "color": "#5319e7"}
                )
                known[name] = int(made["id"])
            ids.append(known[name])
        return ids

    def open(self, head: str, base: str, title: str, body: str, labels: list[str]) -> MergeRequest:
        payload: dict[str, Any] = {"head": head, "base": base, "title": title, "body": body}
        if labels:
            payload["labels"] = self._label_ids(labels)
        return self._mr(self._call("POST", f"{self._repo}/pulls", json=payload))

    def update(self, request: MergeRequest, title: str, body: str) -> MergeRequest:
        data = self._call(
            "PATCH", f"{self._repo}/pulls/{request.number}", json={"title": title, "body": body}
        )
        return self._mr(data)

    def close(self, request: MergeRequest, note: str) -> None:
        self.add_comment(request, note)
        self._call("PATCH", f"{self._repo}/pulls/{request.number}", json={"state": "closed"})

    def auto_merge(self, request: MergeRequest, title: str, message: str) -> None:
        import time

        path = f"{self._repo}/pulls/{request.number}/merge"
        payload = {
            "Do": "squash",
            "MergeTitleField": title,
            "MergeMessageField": message,
            "merge_when_checks_succeed": True,
            "delete_branch_after_merge": True,
        }
        for attempt in range(6):
            try:
                self._call("POST", path, json=payload)
                return
            except OperationError as exc:
                if "HTTP 409" in exc.message:
                    # Scheduled already, by an earlier review of an older head: schedule
                    # it again with this review's message.
                    self._call("DELETE", path)
                elif "HTTP 405" in exc.message and attempt < 5:
                    time.sleep(1 + attempt)  # Gitea is still checking the new head
                else:
                    raise

    def merged_request_of(self, sha: str) -> MergeRequest | None:
        try:
            data = self._call("GET", f"{self._repo}/commits/{sha}/pull")
        except OperationError as exc:
            if "HTTP 404" in exc.message:
                return None
            raise
        request = self._mr(data) if isinstance(data, dict) else None
        return request if request is not None and request.state == "merged" else None

    def get(self, number: int) -> MergeRequest:
        return self._mr(self._call("GET", f"{self._repo}/pulls/{number}"))


# ----------------------------------------------------------------------------- choosing

_KINDS: dict[str, type[Forge]] = {"github": GitHub, "gitlab": GitLab, "gitea": Gitea}


def project_of(remote_url: str) -> str | None:
    """``owner/name`` from a remote URL (``ssh://``, ``git@host:path``, ``https://``)."""
    url = remote_url.strip()
    m = re.match(r"^[\w.-]+@[\w.-]+:(?!//)(?P<path>.+)$", url)  # scp-like git@host:path
    path = (m["path"] if m else urllib.parse.urlsplit(url).path).strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path if path.count("/") >= 1 else None


def _host_of(remote_url: str) -> str:
    m = re.match(r"^[\w.-]+@(?P<host>[\w.-]+):(?!//)", remote_url)
    if m:
        return m["host"].lower()
    return (urllib.parse.urlsplit(remote_url).hostname or "").lower()


def forge_for(settings: MergeRequestSettings, remote_url: str, environ: Mapping[str, str]) -> Forge:
    """The forge client for the deployment repository at ``remote_url``.

    Each setting comes from glue.yaml's ``merge_requests`` first, then from the
    environment (``GLUE_FORGE``, ``GLUE_FORGE_API_URL``; the CI system's own
    variables), then from the remote's host for github.com and gitlab.com.
    """
    host = _host_of(remote_url)
    kind = settings.forge or environ.get("GLUE_FORGE") or None
    if kind is None:
        if environ.get("GITHUB_ACTIONS") == "true" or host == "github.com":
            kind = "github"
        elif environ.get("GITLAB_CI") == "true" or host == "gitlab.com":
            kind = "gitlab"
    if kind not in _KINDS:
        raise UsageError(
            "glue cannot tell which forge hosts the deployment repository"
            + (f" ({kind!r} is not one it knows)" if kind else ""),
            hint="set merge_requests.forge in glue.yaml to github, gitlab or gitea",
        )
    api_url = settings.api_url or environ.get("GLUE_FORGE_API_URL") or None
    if api_url is None:
        if kind == "github":
            api_url = environ.get("GITHUB_API_URL") or (
                "https://api.github.com" if host == "github.com" else None
            )
        elif kind == "gitlab":
            api_url = environ.get("CI_API_V4_URL") or (
                "https://gitlab.com/api/v4" if host == "gitlab.com" else None
            )
    if not api_url:
        raise UsageError(
            f"glue does not know the {kind} API's address",
            hint="set merge_requests.api_url in glue.yaml (or GLUE_FORGE_API_URL), e.g. "
            "https://HOST/api/v1 for Gitea",
        )
    # In the deployment repository's own pipeline (glue review), the CI names it.
    ci_project = {"github": "GITHUB_REPOSITORY", "gitlab": "CI_PROJECT_PATH"}.get(kind, "")
    project = (
        settings.project
        or (project_of(remote_url) if remote_url else None)
        or environ.get(ci_project)
        or None
    )
    if not project:
        raise UsageError(
            f"glue cannot tell the project from the remote {redact.mask_url(remote_url)}",
            hint="set merge_requests.project in glue.yaml (owner/name)",
        )
    token = next((environ[v] for v in TOKEN_VARS[kind] if environ.get(v)), None)
    if not token:
        names = " or ".join(TOKEN_VARS[kind])
        extra = " (CI_JOB_TOKEN cannot open merge requests: use a project access token)"
        raise UsageError(
            f"opening a {_KINDS[kind].noun} needs a {kind} token",
            hint=f"set {names}" + (extra if kind == "gitlab" else ""),
        )
    redact.register(token)
    return _KINDS[kind](api_url, project, token, network.timeout_from_env(environ))
