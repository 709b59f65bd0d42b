"""GitHub and GitLab stand-ins that hold every request to the forge's published API description.

Two real HTTP servers on 127.0.0.1 (a free port each, a thread each, like the Slack stand-in),
as the pytest fixtures ``github`` and ``gitlab`` (import ``github_fixture`` /
``gitlab_fixture`` from this module into a conftest or test module) or as context managers (``with
GitHubStandIn() as forge:``). Each keeps a small forge state (pull/merge requests, labels,
auto-merge, comments/notes, merge commits), answers with the fields the forge's description
gives, and records every request (``forge.requests``).

Every request is checked against the subset of the published description in ``openapi/``
(see ``openapi/README.md``): an unknown path or method, an unknown query parameter, a body
field the description does not list, a missing required field or a wrong type is refused the
way the forge refuses it (GitHub 404/422, GitLab 404/405/400) and recorded in
``forge.violations``; the fixtures fail the test at teardown if any was recorded. The stand-ins
are stricter than the forges on purpose: GitHub and GitLab ignore fields they do not know, so
a field glue invents would be lost without a word. A test that sends invalid requests on
purpose takes them with ``forge.take_violations()``.

GitHub (``GitHubStandIn``; REST root ``forge.base_url``, GraphQL ``forge.graphql_url``):
``Authorization: Bearer TOKEN`` or ``token TOKEN``. REST: list/create/get/update pulls, add
labels, list/create/get/update issue comments, pulls of a commit. GraphQL: the
``enablePullRequestAutoMerge`` mutation, checked by graphql-core against
``openapi/github-graphql.graphql``; GraphQL answers 200 with ``errors`` as GitHub does.

GitLab (``GitLabStandIn``; ``forge.base_url`` is ``.../api/v4``): ``PRIVATE-TOKEN: TOKEN`` or
``Authorization: Bearer TOKEN``. List/create/get/update merge requests, merge (``auto_merge``
or the deprecated ``merge_when_pipeline_succeeds`` sets auto-merge and leaves the request
open, as while a pipeline runs; without it the request is merged at once), list/create/get/
update notes, merge requests of a commit. Closing or reopening adds a system note, as GitLab
does.

A wrong or missing token answers 401 like the forge (not a violation). ``fail_next`` queues
scripted answers (rate limits, 5xx). Pagination: ``per_page``/``page`` slice the lists, with
GitHub's ``Link`` and GitLab's ``X-Page``/``X-Next-Page``/``X-Total`` headers. Not modelled:
branches and commits (any head/source branch is accepted), permissions, mergeability.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import graphql
import jsonschema  # type: ignore[import-untyped]
import pytest

OPENAPI_DIR = Path(__file__).parent / "openapi"

#: The tokens the stand-ins accept unless a test gives another one.
GITHUB_TOKEN = "glue-test-github-token-0001"
GITLAB_TOKEN = "glue-test-gitlab-token-0001"

Answer = tuple[int, Any, dict[str, str]]
"""status, JSON body (None: no body), extra headers"""

_Self = TypeVar("_Self", bound="_StandIn")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


# --------------------------------------------------------------------------- the description


def _json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as a strict JSON schema: ``nullable`` becomes a ``null`` type and
    objects that list their properties allow no others."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items() if not k.startswith("x-")}
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        for key in ("oneOf", "anyOf"):
            if key in out:
                out[key] = [*out[key], {"type": "null"}]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _types(schema: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        found.add(declared)
    for key in ("oneOf", "anyOf"):
        for alternative in schema.get(key, []):
            found |= _types(alternative)
    return found


_INTEGER = re.compile(r"-?\d+")


def _scalar(text: str, types: set[str]) -> Any:
    """A query string value as the type the description gives it (as the forge reads it)."""
    if "integer" in types and _INTEGER.fullmatch(text):
        return int(text)
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    return text


def _query_value(values: list[str], as_list: bool, schema: Mapping[str, Any]) -> Any:
    types = _types(schema)
    if "array" in types and (as_list or len(values) > 1 or "string" not in types):
        item_types = _types(schema.get("items", {})) or {"string"}
        items = values if as_list or len(values) > 1 else values[-1].split(",")
        return [_scalar(v, item_types) for v in items]
    if "object" in types:
        return {}
    return _scalar(values[-1], types)


def _problems(validator: Any, instance: Any, where: str) -> list[str]:
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        at = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        out.append(f"{where}{at}: {error.message}")
    return out


@dataclass(frozen=True)
class Operation:
    """One operation of the description: where it lives and what it takes."""

    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    path_names: tuple[str, ...]
    path_params: Mapping[str, Any]  # name -> validator
    query_params: Mapping[str, tuple[Mapping[str, Any], Any]]  # name -> (schema, validator)
    required_query: frozenset[str]
    body: Any  # validator, or None when the operation takes no body
    body_required: bool
    at_least_one_of: tuple[str, ...]

    @classmethod
    def of(cls, method: str, template: str, spec: Mapping[str, Any]) -> Operation:
        names = tuple(re.findall(r"\{([^}]+)\}", template))
        regex = "".join(
            "([^/]+)" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", template)
            if part
        )
        path_params: dict[str, Any] = {}
        query_params: dict[str, tuple[Mapping[str, Any], Any]] = {}
        required: set[str] = set()
        for param in spec.get("parameters", []):
            validator = jsonschema.Draft7Validator(_json_schema(param["schema"]))
            if param["in"] == "path":
                path_params[param["name"]] = validator
            elif param["in"] == "query":
                query_params[param["name"]] = (param["schema"], validator)
                if param.get("required"):
                    required.add(param["name"])
        body = spec.get("requestBody")
        body_schema = body["content"]["application/json"]["schema"] if body else None
        return cls(
            method=method,
            template=template,
            operation_id=spec["operationId"],
            pattern=re.compile(regex),
            path_names=names,
            path_params=path_params,
            query_params=query_params,
            required_query=frozenset(required),
            body=jsonschema.Draft7Validator(_json_schema(body_schema)) if body_schema else None,
            body_required=bool(body and body.get("required")),
            at_least_one_of=tuple((body_schema or {}).get("x-at-least-one-of", ())),
        )

    def check(
        self, path: Mapping[str, str], query: Mapping[str, list[str]], body: Any, has_body: bool
    ) -> tuple[list[str], dict[str, Any]]:
        """What in this request the description does not allow, and the query as typed values."""
        problems: list[str] = []
        for name, validator in self.path_params.items():
            value = _scalar(path[name], _types(validator.schema) - {"null"})
            problems += _problems(validator, value, f"path parameter {name}")
        typed: dict[str, Any] = {}
        for raw_name, values in query.items():
            name, as_list = (raw_name[:-2], True) if raw_name.endswith("[]") else (raw_name, False)
            if name not in self.query_params:
                problems.append(f"query parameter {raw_name!r} is not in the description")
                continue
            schema, validator = self.query_params[name]
            typed[name] = _query_value(values, as_list, schema)
            problems += _problems(validator, typed[name], f"query parameter {name}")
        for name in sorted(self.required_query - set(typed)):
            problems.append(f"query parameter {name!r} is required")
        if self.body is None:
            if has_body:
                problems.append("this operation takes no request body")
        elif not has_body:
            if self.body_required:
                problems.append("a request body is required")
        else:
            problems += _problems(self.body, body, "body")
            if (
                self.at_least_one_of
                and isinstance(body, dict)
                and not set(body) & set(self.at_least_one_of)
            ):
                problems.append(
                    "body: at least one of " + ", ".join(self.at_least_one_of) + " is required"
                )
        return problems, typed


class Description:
    """The operations of an OpenAPI 3.0 (subset) document."""

    def __init__(self, document: Mapping[str, Any], prefix: str = "") -> None:
        self.operations = [
            Operation.of(method.upper(), prefix + template, spec)
            for template, item in document["paths"].items()
            for method, spec in item.items()
        ]

    def route(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
        """The operation for ``method path`` (path percent-encoded as sent), its path
        parameters (decoded), and whether the path exists at all (for another method)."""
        path_known = False
        for op in self.operations:
            found = op.pattern.fullmatch(path)
            if found is None:
                continue
            path_known = True
            if op.method == method:
                values = [urllib.parse.unquote(v) for v in found.groups()]
                return op, dict(zip(op.path_names, values, strict=True)), True
        return None, {}, path_known


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class ForgeRequest:
    """One request a stand-in received, and what it answered."""

    method: str
    path: str
    """As sent (percent-encoded), without the query."""
    query: dict[str, list[str]]
    json: Any
    """The parsed JSON body, or None."""
    headers: dict[str, str]
    """As sent, less the credentials (``Authorization``, ``PRIVATE-TOKEN``)."""
    auth: str | None
    """How the credentials came: ``Bearer``, ``token`` or ``PRIVATE-TOKEN``; None without."""
    operation: str | None
    """The operationId of the description the request matched (``graphql`` for GraphQL)."""
    status: int
    response: Any
    scripted: bool


@dataclass(frozen=True)
class Violation:
    """A request that does not follow the published description."""

    method: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.problem}"


@dataclass
class Comment:
    """A comment on a pull request (GitHub issue comment) or a note on a merge request."""

    id: int
    request: int
    """The pull request's number / the merge request's iid."""
    body: str
    system: bool = False
    author: str = "glue-bot"
    """The account that wrote it (the token's owner, unless a test says otherwise)."""


def _page(items: Sequence[Any], query: Mapping[str, Any], default: int) -> tuple[list[Any], int]:
    per_page = max(1, min(100, int(query.get("per_page", default))))
    page = max(1, int(query.get("page", 1)))
    return list(items[(page - 1) * per_page : page * per_page]), per_page


# --------------------------------------------------------------------------- the server


class _StandIn:
    """The HTTP side shared by both stand-ins: routing, checks, recording, scripted answers."""

    name: ClassVar[str]
    description_file: ClassVar[str]
    prefix: ClassVar[str] = ""
    default_per_page: ClassVar[int]

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[ForgeRequest] = []
        self.violations: list[Violation] = []
        self._lock = threading.RLock()
        self._scripted: deque[Answer] = deque()
        document = json.loads((OPENAPI_DIR / self.description_file).read_text())
        self.description = Description(document, self.prefix)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=f"{self.name}-standin"
        )
        self._thread.daemon = True

    # -- lifecycle

    def start(self: _Self) -> _Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- for tests

    def fail_next(
        self, status: int, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer the next request with ``status`` and JSON ``body`` (the request is still
        checked and recorded). E.g. ``fail_next(502)``, ``fail_next(403, {"message": ...},
        {"Retry-After": "1"})``."""
        with self._lock:
            self._scripted.append((status, body, dict(headers or {})))

    def take_violations(self) -> list[Violation]:
        """The violations recorded so far, which the fixture then no longer fails on."""
        with self._lock:
            taken, self.violations = self.violations, []
        return taken

    def assert_no_violations(self) -> None:
        if self.violations:
            pytest.fail(
                f"requests to the {self.name} stand-in that the published API description "
                "does not allow:\n" + "\n".join(f"  {v}" for v in self.violations),
                pytrace=False,
            )

    def calls(self, operation: str | None = None) -> list[ForgeRequest]:
        """The recorded requests, or those that matched ``operation`` (an operationId)."""
        with self._lock:
            return [r for r in self.requests if operation is None or r.operation == operation]

    # -- for subclasses

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[str | None, Answer | None]:
        raise NotImplementedError

    def _not_found(self) -> Answer:
        raise NotImplementedError

    def _no_method(self) -> Answer:
        raise NotImplementedError

    def _invalid(self, problems: list[str]) -> Answer:
        raise NotImplementedError

    def _handle(
        self, op: Operation, path: dict[str, str], query: dict[str, Any], body: Any
    ) -> Answer:
        raise NotImplementedError

    def _is_special(self, path: str) -> bool:
        """Whether ``path`` is served outside the OpenAPI description (GitHub's GraphQL)."""
        return False

    def _special(self, method: str, path: str, body: Any) -> Answer:
        raise NotImplementedError

    def _violate(self, method: str, path: str, problem: str) -> None:
        self.violations.append(Violation(method, path, problem))

    # -- one request

    def serve(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        path, _, query_string = target.partition("?")
        query = urllib.parse.parse_qs(query_string, keep_blank_values=True)
        body: Any = None
        has_body = bool(raw.strip())
        parse_problem = None
        if has_body:
            try:
                body = json.loads(raw)
            except ValueError:
                parse_problem = "the request body is not JSON"
        with self._lock:
            scheme, refusal = self._authenticate(headers)
            scripted = self._scripted.popleft() if self._scripted else None
            op, path_params, path_known = self.description.route(method, path)
            operation_id = op.operation_id if op else None
            answer: Answer | None
            if op is None and self._is_special(path):
                operation_id = "graphql"
                answer = scripted if scripted is not None else refusal
                if answer is None:
                    answer = self._special(method, path, body)
            elif op is None:
                problem = "method not in the description" if path_known else "unknown path"
                self._violate(method, path, problem)
                answer = scripted if scripted is not None else None
                if answer is None:
                    answer = self._no_method() if path_known else self._not_found()
            else:
                problems, typed = (
                    ([parse_problem], {})
                    if parse_problem
                    else op.check(path_params, query, body, has_body)
                )
                for problem in problems:
                    self._violate(method, path, problem)
                answer = scripted if scripted is not None else refusal
                if answer is None:
                    answer = (
                        self._invalid(problems)
                        if problems
                        else self._handle(op, path_params, typed, body)
                    )
            status, payload, extra = answer
            kept = {
                k: v
                for k, v in headers.items()
                if k.lower() not in ("authorization", "private-token")
            }
            self.requests.append(
                ForgeRequest(
                    method=method,
                    path=path,
                    query=query,
                    json=body,
                    headers=kept,
                    auth=scheme,
                    operation=operation_id,
                    status=status,
                    response=payload,
                    scripted=scripted is not None,
                )
            )
        data = b"" if payload is None else json.dumps(payload).encode()
        out = {"Content-Type": "application/json; charset=utf-8"} if payload is not None else {}
        return status, data, {**out, **extra}


def _handler(server: _StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, data, headers = server.serve(
                self.command, self.path, dict(self.headers.items()), raw
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


# --------------------------------------------------------------------------- GitHub


@dataclass
class GitHubPull:
    number: int
    node_id: str
    head: str
    """The head branch (without ``owner:``)."""
    base: str
    title: str
    body: str | None
    state: str = "open"
    """``open`` or ``closed`` (a merged pull request is ``closed`` and ``merged``)."""
    merged: bool = False
    merge_commit_sha: str | None = None
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    auto_merge: dict[str, Any] | None = None
    """None, or the mutation's input: ``mergeMethod``, ``commitHeadline``, ``commitBody``, ...
    (``mergeMethod`` is ``MERGE`` when glue left it out, GitHub's default)."""
    head_sha: str = ""
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    closed_at: str | None = None
    merged_at: str | None = None


class GitHubStandIn(_StandIn):
    """GitHub's REST and GraphQL APIs for one repository, ``owner/repo``."""

    name = "GitHub"
    description_file = "github.json"
    default_per_page = 30

    def __init__(self, token: str = GITHUB_TOKEN, owner: str = "acme", repo: str = "deploy"):
        super().__init__(token)
        self.owner = owner
        self.repo = repo
        self.pulls: dict[int, GitHubPull] = {}
        self.comments: dict[int, Comment] = {}
        #: False: the repository does not allow auto-merge; the mutation answers GitHub's error.
        self.auto_merge_allowed = True
        self._next_comment = 1_000_001
        sdl = (OPENAPI_DIR / "github-graphql.graphql").read_text()
        self._schema = graphql.build_schema(sdl)

    @property
    def base_url(self) -> str:
        """The REST root, like ``https://api.github.com``."""
        return self.url

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def project(self) -> str:
        return f"{self.owner}/{self.repo}"

    # -- state for tests

    def add_pull(
        self, head: str, base: str = "main", title: str = "a change", body: str | None = ""
    ) -> GitHubPull:
        """An open pull request made before the test (as by a person)."""
        with self._lock:
            number = max([0, *self.pulls]) + 1
            pull = GitHubPull(
                number=number,
                node_id=f"PR_kwGlue{number:06d}",
                head=head,
                base=base,
                title=title,
                body=body,
                head_sha=_fake_sha("head", head, number),
            )
            self.pulls[number] = pull
            return pull

    def pull(self, number: int) -> GitHubPull:
        with self._lock:
            return self.pulls[number]

    def open_pulls(self) -> list[GitHubPull]:
        with self._lock:
            return [p for p in self.pulls.values() if p.state == "open"]

    def merge(self, number: int, merge_sha: str) -> None:
        """Merge pull request ``number`` as merge commit ``merge_sha`` (what GitHub does when
        the checks pass and auto-merge is on); ``commits/{merge_sha}/pulls`` then finds it."""
        with self._lock:
            pull = self.pulls[number]
            pull.state, pull.merged, pull.merge_commit_sha = "closed", True, merge_sha
            pull.merged_at = pull.closed_at = pull.updated_at = _now()

    def close(self, number: int) -> None:
        with self._lock:
            pull = self.pulls[number]
            pull.state, pull.closed_at = "closed", _now()

    def comments_on(self, number: int) -> list[Comment]:
        with self._lock:
            return [c for c in self.comments.values() if c.request == number]

    def add_comment(self, number: int, body: str, author: str) -> Comment:
        """A comment on pull request ``number`` written by ``author`` (a person, not glue)."""
        with self._lock:
            comment = Comment(self._next_comment, number, body, author=author)
            self.comments[comment.id] = comment
            self._next_comment += 1
            return comment

    # -- answers

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[str | None, Answer | None]:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token.strip():
            return None, (401, self._error("Requires authentication", "401"), {})
        if token.strip() != self.token:
            return scheme, (401, self._error("Bad credentials", "401"), {})
        return scheme, None

    @staticmethod
    def _error(message: str, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status,
            **extra,
        }

    def _not_found(self) -> Answer:
        return 404, self._error("Not Found", "404"), {}

    _no_method = _not_found

    def _invalid(self, problems: list[str]) -> Answer:
        return 422, self._error("Invalid request.\n\n" + "\n".join(problems), "422"), {}

    def _failed(self, resource: str, code: str, field_: str = "", message: str = "") -> Answer:
        error = {"resource": resource, "code": code}
        if field_:
            error["field"] = field_
        if message:
            error["message"] = message
        return 422, self._error("Validation Failed", "422", errors=[error]), {}

    def _user(self) -> dict[str, Any]:
        return {"login": "glue-bot", "id": 1, "node_id": "U_kwGlue01", "type": "Bot"}

    def _label(self, name: str) -> dict[str, Any]:
        api = f"{self.url}/repos/{self.project}"
        return {
            "id": int(_fake_sha("label", name)[:8], 16),
            "node_id": f"LA_kwGlue{_fake_sha(name)[:8]}",
            "url": f"{api}/labels/{urllib.parse.quote(name)}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
        }

    def _pull_json(self, pull: GitHubPull) -> dict[str, Any]:
        api = f"{self.url}/repos/{self.project}"
        html = f"{self.url}/{self.project}/pull/{pull.number}"
        repo = {
            "id": 1,
            "node_id": "R_kwGlue01",
            "name": self.repo,
            "full_name": self.project,
            "url": api,
            "html_url": f"{self.url}/{self.project}",
        }

        def ref(branch: str, sha: str) -> dict[str, Any]:
            return {
                "label": f"{self.owner}:{branch}",
                "ref": branch,
                "sha": sha,
                "user": self._user(),
                "repo": repo,
            }

        auto = None
        if pull.auto_merge is not None:
            auto = {
                "enabled_by": self._user(),
                "merge_method": str(pull.auto_merge.get("mergeMethod") or "MERGE").lower(),
                "commit_title": pull.auto_merge.get("commitHeadline"),
                "commit_message": pull.auto_merge.get("commitBody"),
            }
        return {
            "url": f"{api}/pulls/{pull.number}",
            "id": 500_000 + pull.number,
            "node_id": pull.node_id,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pull.number}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user(),
            "body": pull.body,
            "labels": [self._label(name) for name in pull.labels],
            "milestone": None,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "head": ref(pull.head, pull.head_sha),
            "base": ref(pull.base, _fake_sha("base", pull.base)),
            "author_association": "OWNER",
            "auto_merge": auto,
            "draft": pull.draft,
            "merged": pull.merged,
        }

    def _comment_json(self, comment: Comment) -> dict[str, Any]:
        api = f"{self.url}/repos/{self.project}"
        html = f"{self.url}/{self.project}/pull/{comment.request}"
        return {
            "id": comment.id,
            "node_id": f"IC_kwGlue{comment.id}",
            "url": f"{api}/issues/comments/{comment.id}",
            "html_url": f"{html}#issuecomment-{comment.id}",
            "issue_url": f"{api}/issues/{comment.request}",
            "body": comment.body,
            "user": self._user() | {"login": comment.author},
            "created_at": _now(),
            "updated_at": _now(),
            "author_association": "OWNER",
        }

    def _list(self, items: Sequence[Any], query: Mapping[str, Any], path: str) -> Answer:
        shown, per_page = _page(items, query, self.default_per_page)
        page = int(query.get("page", 1))
        headers = {}
        if page * per_page < len(items):
            args = {k: v for k, v in query.items() if k not in ("page", "per_page")}
            nxt = urllib.parse.urlencode({**args, "per_page": per_page, "page": page + 1})
            headers["Link"] = f'<{self.url}{path}?{nxt}>; rel="next"'
        return 200, shown, headers

    def _handle(
        self, op: Operation, path: dict[str, str], query: dict[str, Any], body: Any
    ) -> Answer:
        if (path["owner"], path["repo"]) != (self.owner, self.repo):
            return self._not_found()
        here = op.template.format(**path)
        match op.operation_id:
            case "pulls/list":
                return self._list(self._filter_pulls(query), query, here)
            case "pulls/create":
                return self._create_pull(body)
            case "pulls/get" | "pulls/update":
                pull = self.pulls.get(int(path["pull_number"]))
                if pull is None:
                    return self._not_found()
                if op.operation_id == "pulls/update":
                    self._update_pull(pull, body or {})
                return 200, self._pull_json(pull), {}
            case "issues/add-labels":
                pull = self.pulls.get(int(path["issue_number"]))
                if pull is None:
                    return self._not_found()
                for name in _label_names(body):
                    if name not in pull.labels:
                        pull.labels.append(name)
                return 200, [self._label(name) for name in pull.labels], {}
            case "issues/list-comments":
                if int(path["issue_number"]) not in self.pulls:
                    return self._not_found()
                comments = self.comments_on(int(path["issue_number"]))
                return self._list([self._comment_json(c) for c in comments], query, here)
            case "issues/create-comment":
                number = int(path["issue_number"])
                if number not in self.pulls:
                    return self._not_found()
                comment = Comment(self._next_comment, number, body["body"])
                self._next_comment += 1
                self.comments[comment.id] = comment
                location = f"{self.url}/repos/{self.project}/issues/comments/{comment.id}"
                return 201, self._comment_json(comment), {"Location": location}
            case "issues/get-comment" | "issues/update-comment":
                found = self.comments.get(int(path["comment_id"]))
                if found is None:
                    return self._not_found()
                if op.operation_id == "issues/update-comment":
                    found.body = body["body"]
                return 200, self._comment_json(found), {}
            case "repos/list-pull-requests-associated-with-commit":
                sha = path["commit_sha"]
                pulls = [
                    self._pull_json(p)
                    for p in self.pulls.values()
                    if sha in (p.merge_commit_sha, p.head_sha)
                ]
                return self._list(pulls, query, here)
        raise AssertionError(f"no answer for {op.operation_id}")

    def _filter_pulls(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        head = str(query.get("head", ""))
        owner, colon, branch = head.partition(":")
        found = []
        for pull in sorted(
            self.pulls.values(), key=lambda p: p.number, reverse=query.get("direction") != "asc"
        ):
            if state != "all" and pull.state != state:
                continue
            # GitHub filters by head only in its documented form, owner:branch.
            if colon and (owner != self.owner or branch != pull.head):
                continue
            if "base" in query and query["base"] != pull.base:
                continue
            found.append(self._pull_json(pull))
        return found

    def _create_pull(self, body: Mapping[str, Any]) -> Answer:
        owner, colon, head = str(body["head"]).rpartition(":")
        if colon and owner != self.owner:
            return self._failed("PullRequest", "invalid", "head")
        base = str(body["base"])
        if not body.get("title") and body.get("issue") is None:
            return self._failed("PullRequest", "missing_field", "title")
        if head == base:
            return self._failed(
                "PullRequest", "custom", message=f"No commits between {base} and {head}"
            )
        for pull in self.pulls.values():
            if pull.state == "open" and (pull.head, pull.base) == (head, base):
                message = f"A pull request already exists for {self.owner}:{head}."
                return self._failed("PullRequest", "custom", message=message)
        pull = self.add_pull(head, base, str(body.get("title") or ""), body.get("body"))
        pull.draft = bool(body.get("draft", False))
        location = f"{self.url}/repos/{self.project}/pulls/{pull.number}"
        return 201, self._pull_json(pull), {"Location": location}

    @staticmethod
    def _update_pull(pull: GitHubPull, body: Mapping[str, Any]) -> None:
        for key in ("title", "body", "base"):
            if key in body:
                setattr(pull, key, body[key])
        if body.get("state") == "closed" and pull.state == "open":
            pull.state, pull.closed_at = "closed", _now()
        elif body.get("state") == "open" and pull.state == "closed" and not pull.merged:
            pull.state, pull.closed_at = "open", None
        pull.updated_at = _now()

    # -- GraphQL

    def _is_special(self, path: str) -> bool:
        return path == "/graphql"

    def _special(self, method: str, path: str, body: Any) -> Answer:
        if method != "POST":
            self._violate(method, path, "GraphQL takes POST")
            return 404, self._error("Not Found", "404"), {}
        problems = []
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            problems.append("the body must be a JSON object with a string 'query'")
        else:
            unknown = sorted(set(body) - {"query", "variables", "operationName"})
            if unknown:
                problems.append(f"unknown keys in the GraphQL request: {unknown}")
            if body.get("variables") is not None and not isinstance(body["variables"], dict):
                problems.append("'variables' must be an object")
        if problems:
            for problem in problems:
                self._violate(method, path, problem)
            return 200, {"errors": [{"message": p} for p in problems]}, {}
        result = graphql.graphql_sync(
            self._schema,
            body["query"],
            root_value=_GraphQLRoot(self),
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
        )
        answer: dict[str, Any] = {}
        for error in result.errors or []:
            if error.path is None:  # syntax, validation, variables: the request is wrong
                self._violate(method, path, f"GraphQL: {error.message}")
        if result.data is not None:
            answer["data"] = result.data
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        return 200, answer, {}

    def _pull_node(self, pull: GitHubPull) -> dict[str, Any]:
        node: dict[str, Any] = {
            "__typename": "PullRequest",
            "id": pull.node_id,
            "number": pull.number,
            "state": "MERGED" if pull.merged else pull.state.upper(),
            "title": pull.title,
            "body": pull.body or "",
            "url": f"{self.url}/{self.project}/pull/{pull.number}",
            "headRefName": pull.head,
            "baseRefName": pull.base,
            "autoMergeRequest": None,
        }
        if pull.auto_merge is not None:
            node["autoMergeRequest"] = {
                "authorEmail": pull.auto_merge.get("authorEmail"),
                "commitBody": pull.auto_merge.get("commitBody"),
                "commitHeadline": pull.auto_merge.get("commitHeadline"),
                "enabledAt": pull.updated_at,
                "mergeMethod": pull.auto_merge.get("mergeMethod") or "MERGE",
                "pullRequest": node,
            }
        return node


class _GraphQLRoot:
    """Resolvers of the GraphQL subset (graphql-core calls the methods by field name)."""

    def __init__(self, forge: GitHubStandIn) -> None:
        self.forge = forge

    def _pull(self, node_id: str) -> GitHubPull:
        for pull in self.forge.pulls.values():
            if pull.node_id == node_id:
                return pull
        raise graphql.GraphQLError(f"Could not resolve to a node with the global id of '{node_id}'")

    def node(self, info: graphql.GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
        try:
            return self.forge._pull_node(self._pull(id))
        except graphql.GraphQLError:
            return None

    def enablePullRequestAutoMerge(
        self, info: graphql.GraphQLResolveInfo, input: dict[str, Any]
    ) -> dict[str, Any]:
        pull = self._pull(input["pullRequestId"])
        if not self.forge.auto_merge_allowed:
            raise graphql.GraphQLError("Pull request Auto merge is not allowed for this repository")
        if pull.state != "open":
            raise graphql.GraphQLError(
                "Pull request is not in the correct state to enable auto-merge"
            )
        pull.auto_merge = {"mergeMethod": "MERGE", **input}
        pull.updated_at = _now()
        return {
            "clientMutationId": input.get("clientMutationId"),
            "pullRequest": self.forge._pull_node(pull),
        }


def _label_names(body: Any) -> list[str]:
    """The label names of an add-labels body, in any of the forms the description allows."""
    items = body.get("labels", []) if isinstance(body, dict) else body or []
    return [str(i["name"]) if isinstance(i, dict) else str(i) for i in items]


# --------------------------------------------------------------------------- GitLab


@dataclass
class GitLabMergeRequest:
    iid: int
    id: int
    source_branch: str
    target_branch: str
    title: str
    description: str | None
    state: str = "opened"
    """``opened``, ``closed`` or ``merged``."""
    labels: list[str] = field(default_factory=list)
    remove_source_branch: bool | None = None
    squash: bool = False
    auto_merge: bool = False
    """Set by the merge endpoint with ``auto_merge`` (or ``merge_when_pipeline_succeeds``)."""
    merge_params: dict[str, Any] = field(default_factory=dict)
    """The body of the last accepted merge call (``squash_commit_message``, ...)."""
    merge_commit_sha: str | None = None
    sha: str = ""
    """The head commit of the source branch."""
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    merged_at: str | None = None
    closed_at: str | None = None


class GitLabStandIn(_StandIn):
    """GitLab's REST API v4 for one project, ``project`` (path) / ``project_id``."""

    name = "GitLab"
    description_file = "gitlab.json"
    default_per_page = 20

    def __init__(
        self, token: str = GITLAB_TOKEN, project: str = "acme/deploy", project_id: int = 42
    ) -> None:
        super().__init__(token)
        self.project = project
        self.project_id = project_id
        self.merge_requests: dict[int, GitLabMergeRequest] = {}
        self.notes: dict[int, Comment] = {}
        self._next_note = 3001

    @property
    def base_url(self) -> str:
        """The API root, like ``https://gitlab.example/api/v4``."""
        return f"{self.url}/api/v4"

    # -- state for tests

    def add_merge_request(
        self, source_branch: str, target_branch: str = "main", title: str = "a change"
    ) -> GitLabMergeRequest:
        """An open merge request made before the test (as by a person)."""
        with self._lock:
            iid = max([0, *self.merge_requests]) + 1
            request = GitLabMergeRequest(
                iid=iid,
                id=7000 + iid,
                source_branch=source_branch,
                target_branch=target_branch,
                title=title,
                description="",
                sha=_fake_sha("head", source_branch, iid),
            )
            self.merge_requests[iid] = request
            return request

    def merge_request(self, iid: int) -> GitLabMergeRequest:
        with self._lock:
            return self.merge_requests[iid]

    def open_merge_requests(self) -> list[GitLabMergeRequest]:
        with self._lock:
            return [r for r in self.merge_requests.values() if r.state == "opened"]

    def merge(self, iid: int, merge_sha: str) -> None:
        """Merge request ``iid`` is merged as commit ``merge_sha`` (what GitLab does when the
        pipeline succeeds and auto-merge is set); ``commits/{merge_sha}/merge_requests`` then
        finds it."""
        with self._lock:
            request = self.merge_requests[iid]
            request.state, request.merge_commit_sha = "merged", merge_sha
            request.merged_at = request.updated_at = _now()

    def close(self, iid: int) -> None:
        with self._lock:
            request = self.merge_requests[iid]
            request.state, request.closed_at = "closed", _now()

    def notes_on(self, iid: int, system: bool = False) -> list[Comment]:
        """The notes on merge request ``iid`` (without GitLab's system notes unless asked)."""
        with self._lock:
            return [n for n in self.notes.values() if n.request == iid and (system or not n.system)]

    # -- answers

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[str | None, Answer | None]:
        lower = {k.lower(): v.strip() for k, v in headers.items()}
        scheme, token = None, ""
        if "private-token" in lower:
            scheme, token = "PRIVATE-TOKEN", lower["private-token"]
        elif lower.get("authorization", "").lower().startswith("bearer "):
            scheme, token = "Bearer", lower["authorization"][len("bearer ") :].strip()
        if not token or token != self.token:
            return scheme, (401, {"message": "401 Unauthorized"}, {})
        return scheme, None

    def _not_found(self, what: str = "Not Found") -> Answer:
        return 404, {"message": f"404 {what}"}, {}

    def _no_method(self) -> Answer:
        return 405, {"message": "405 Method Not Allowed"}, {}

    def _invalid(self, problems: list[str]) -> Answer:
        return 400, {"error": "; ".join(problems)}, {}

    def _user(self) -> dict[str, Any]:
        return {"id": 1, "username": "glue-bot", "name": "glue", "state": "active"}

    def _mr_json(self, request: GitLabMergeRequest) -> dict[str, Any]:
        iid = request.iid
        return {
            "id": request.id,
            "iid": iid,
            "project_id": self.project_id,
            "title": request.title,
            "description": request.description,
            "state": request.state,
            "created_at": request.created_at,
            "updated_at": request.updated_at,
            "merged_at": request.merged_at,
            "closed_at": request.closed_at,
            "target_branch": request.target_branch,
            "source_branch": request.source_branch,
            "source_project_id": self.project_id,
            "target_project_id": self.project_id,
            "author": self._user(),
            "assignees": [],
            "reviewers": [],
            "labels": list(request.labels),
            "draft": False,
            "work_in_progress": False,
            "milestone": None,
            "merge_when_pipeline_succeeds": request.auto_merge,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "ci_still_running" if request.auto_merge else "mergeable",
            "sha": request.sha,
            "merge_commit_sha": request.merge_commit_sha,
            "squash_commit_sha": None,
            "squash": request.squash,
            "force_remove_source_branch": request.remove_source_branch,
            "user_notes_count": len(self.notes_on(iid)),
            "web_url": f"{self.url}/{self.project}/-/merge_requests/{iid}",
            "references": {
                "short": f"!{iid}",
                "relative": f"!{iid}",
                "full": f"{self.project}!{iid}",
            },
        }

    def _note_json(self, note: Comment) -> dict[str, Any]:
        request = self.merge_requests[note.request]
        return {
            "id": note.id,
            "type": None,
            "body": note.body,
            "author": self._user(),
            "created_at": _now(),
            "updated_at": _now(),
            "system": note.system,
            "noteable_id": request.id,
            "noteable_type": "MergeRequest",
            "noteable_iid": request.iid,
            "project_id": self.project_id,
            "resolvable": False,
            "confidential": False,
            "internal": False,
        }

    def _add_note(self, iid: int, body: str, system: bool = False) -> Comment:
        note = Comment(self._next_note, iid, body, system)
        self._next_note += 1
        self.notes[note.id] = note
        return note

    def _list(self, items: Sequence[Any], query: Mapping[str, Any]) -> Answer:
        shown, per_page = _page(items, query, self.default_per_page)
        page = int(query.get("page", 1))
        pages = max(1, -(-len(items) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        return 200, shown, headers

    def _handle(
        self, op: Operation, path: dict[str, str], query: dict[str, Any], body: Any
    ) -> Answer:
        if path["id"] not in (str(self.project_id), self.project):
            return self._not_found("Project Not Found")
        iid = int(path.get("merge_request_iid") or path.get("noteable_id") or 0)
        request = self.merge_requests.get(iid)
        match op.operation_id:
            case "getApiV4ProjectsIdMergeRequests":
                return self._list(self._filter(query), query)
            case "postApiV4ProjectsIdMergeRequests":
                return self._create(body)
            case "getApiV4ProjectsIdRepositoryCommitsShaMergeRequests":
                found = [
                    self._mr_json(r)
                    for r in self.merge_requests.values()
                    if path["sha"] in (r.merge_commit_sha, r.sha)
                    and query.get("state") in (None, r.state)
                ]
                return self._list(found, query)
        if request is None:
            return self._not_found()
        match op.operation_id:
            case "getApiV4ProjectsIdMergeRequestsMergeRequestIid":
                return 200, self._mr_json(request), {}
            case "putApiV4ProjectsIdMergeRequestsMergeRequestIid":
                self._update(request, body or {})
                return 200, self._mr_json(request), {}
            case "putApiV4ProjectsIdMergeRequestsMergeRequestIidMerge":
                return self._merge(request, body or {})
            case "getApiV4ProjectsIdMergeRequestsNoteableIdNotes":
                notes = sorted(
                    (n for n in self.notes.values() if n.request == iid),
                    key=lambda n: n.id,
                    reverse=query.get("sort", "desc") == "desc",
                )
                return self._list([self._note_json(n) for n in notes], query)
            case "postApiV4ProjectsIdMergeRequestsNoteableIdNotes":
                return 201, self._note_json(self._add_note(iid, body["body"])), {}
        note = self.notes.get(int(path["note_id"]))
        if note is None or note.request != iid:
            return self._not_found("Note Not Found")
        match op.operation_id:
            case "getApiV4ProjectsIdMergeRequestsNoteableIdNotesNoteId":
                return 200, self._note_json(note), {}
            case "putApiV4ProjectsIdMergeRequestsNoteableIdNotesNoteId":
                if body and body.get("body") is not None:
                    note.body = body["body"]
                return 200, self._note_json(note), {}
        raise AssertionError(f"no answer for {op.operation_id}")

    def _filter(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        found = []
        for request in sorted(
            self.merge_requests.values(),
            key=lambda r: r.iid,
            reverse=query.get("sort", "desc") == "desc",
        ):
            if query.get("state", "all") not in ("all", request.state):
                continue
            if query.get("source_branch") not in (None, request.source_branch):
                continue
            if query.get("target_branch") not in (None, request.target_branch):
                continue
            if query.get("iids") and request.iid not in query["iids"]:
                continue
            found.append(self._mr_json(request))
        return found

    def _create(self, body: Mapping[str, Any]) -> Answer:
        for key in ("title", "source_branch", "target_branch"):
            if not body.get(key):
                return 400, {"error": f"{key} is empty"}, {}
        source, target = body["source_branch"], body["target_branch"]
        if source == target:
            return 422, {"message": ["You can't use same project/branch for source and target"]}, {}
        for other in self.merge_requests.values():
            if other.state == "opened" and (other.source_branch, other.target_branch) == (
                source,
                target,
            ):
                message = (
                    "Another open merge request already exists for this source branch: "
                    f"!{other.iid}"
                )
                return 409, {"message": [message]}, {}
        request = self.add_merge_request(source, target, body["title"])
        request.description = body.get("description")
        request.labels = list(body.get("labels") or [])
        request.remove_source_branch = body.get("remove_source_branch")
        request.squash = bool(body.get("squash"))
        return 201, self._mr_json(request), {}

    def _update(self, request: GitLabMergeRequest, body: Mapping[str, Any]) -> None:
        for key in ("title", "description", "target_branch", "remove_source_branch"):
            if key in body:
                setattr(request, key, body[key])
        if "squash" in body:
            request.squash = bool(body["squash"])
        if "labels" in body:
            request.labels = list(body["labels"] or [])
        for name in body.get("add_labels") or []:
            if name not in request.labels:
                request.labels.append(name)
        for name in body.get("remove_labels") or []:
            if name in request.labels:
                request.labels.remove(name)
        event = body.get("state_event")
        if event == "close" and request.state == "opened":
            request.state, request.closed_at = "closed", _now()
            self._add_note(request.iid, "closed", system=True)
        elif event == "reopen" and request.state == "closed":
            request.state, request.closed_at = "opened", None
            self._add_note(request.iid, "reopened", system=True)
        request.updated_at = _now()

    def _merge(self, request: GitLabMergeRequest, body: Mapping[str, Any]) -> Answer:
        if request.state != "opened":
            return self._no_method()
        if body.get("sha") not in (None, request.sha):
            message = f"SHA does not match HEAD of source branch: {request.sha}"
            return 409, {"message": message}, {}
        request.merge_params = dict(body)
        if body.get("squash") is not None:
            request.squash = bool(body["squash"])
        if body.get("auto_merge") or body.get("merge_when_pipeline_succeeds"):
            request.auto_merge = True
        else:
            request.state, request.merge_commit_sha = "merged", _fake_sha("merge", request.iid)
            request.merged_at = _now()
        request.updated_at = _now()
        return 200, self._mr_json(request), {}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(name="github")
def github_fixture() -> Iterator[GitHubStandIn]:
    """A GitHub stand-in on 127.0.0.1; the test fails if glue sent a request GitHub's
    published description does not allow."""
    with GitHubStandIn() as forge:
        yield forge
        forge.assert_no_violations()


@pytest.fixture(name="gitlab")
def gitlab_fixture() -> Iterator[GitLabStandIn]:
    """A GitLab stand-in on 127.0.0.1; the test fails if glue sent a request GitLab's
    published description does not allow."""
    with GitLabStandIn() as forge:
        yield forge
        forge.assert_no_violations()
