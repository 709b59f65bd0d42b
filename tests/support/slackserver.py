"""A real HTTP server on 127.0.0.1 standing in for Slack, as the pytest fixture ``slack``.

It serves an incoming webhook (``slack.webhook_url``) and the Web API methods
``chat.postMessage`` / ``chat.update`` (``slack.api_url`` + method), answers like Slack,
records every request (``slack.requests``), serves scripted failures first
(``slack.fail_next``; ``slack.hang_next`` / ``slack.trickle_next`` answer late or one byte
at a time, for deadline tests), and validates payloads against Slack's documented limits
(``no_text``, ``invalid_blocks``, ``msg_too_long``, ``invalid_payload``) so that tests prove
glue stays within them.

Limits checked (Slack Block Kit reference): at most 50 blocks per message; section
``text`` <= 3000 chars, section ``fields`` <= 10 items of <= 2000 chars; header text
``plain_text`` <= 150 chars; context <= 10 elements; ``block_id`` <= 255 chars and unique;
text objects ``plain_text``/``mrkdwn`` with non-empty ``text``; message ``text`` <= 40000.

Webhook answers: ``200 ok`` (text/plain); errors as ``400 invalid_payload`` / ``400 no_text``
/ ``400 invalid_blocks`` / ``404 no_service`` (unknown hook path), body = the error string.
Web API answers are HTTP 200 JSON with ``ok`` true/false (``not_authed``, ``invalid_auth``,
``channel_not_found``, ``is_archived``, ``message_not_found``, ``no_text``,
``invalid_blocks``, ``msg_too_long``, ``unknown_method``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

#: The bot token the stand-in accepts (``Authorization: Bearer ...``).
BOT_TOKEN = "xoxb-000000000000-0000000000000-GlueTestBotTokenSecret"
#: The secret-looking last segment of the webhook path (so tests can check masking).
WEBHOOK_SECRET = "XXXXXXXXsecretGlueHook0001"
WEBHOOK_PATH = f"/services/T000/B000/{WEBHOOK_SECRET}"
#: channel name or ID -> channel ID.
DEFAULT_CHANNELS = {
    "C123": "C123",
    "#deploys": "C123",
    "deploys": "C123",
    "C456": "C456",
    "#releases": "C456",
    "releases": "C456",
}
ARCHIVED_CHANNEL = "C999"  # known, but archived: posts get ``is_archived``
WEBHOOK_CHANNEL = "C123"
BOT_USER = "U0GLUEBOT"
BOT_ID = "B0GLUEBOT"
TEAM = "T000"

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID = 255
MAX_MESSAGE_TEXT = 40000
MAX_MARKDOWN_BLOCK_TEXT = 12000
TEXT_TYPES = ("plain_text", "mrkdwn")
BLOCK_TYPES = (
    "section",
    "header",
    "context",
    "divider",
    "actions",
    "image",
    "rich_text",
    "markdown",
)


class PayloadError(Exception):
    """A payload Slack would reject: ``code`` is Slack's error string."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def _check_text_object(
    obj: Any, where: str, max_len: int, types: tuple[str, ...] = TEXT_TYPES
) -> None:
    if not isinstance(obj, dict):
        raise PayloadError("invalid_blocks", f"{where}: must be a text object")
    if obj.get("type") not in types:
        raise PayloadError("invalid_blocks", f"{where}.type must be one of {types}")
    text = obj.get("text")
    if not isinstance(text, str) or text == "":
        raise PayloadError("invalid_blocks", f"{where}.text must be a non-empty string")
    if len(text) > max_len:
        raise PayloadError(
            "invalid_blocks", f"{where}.text must be at most {max_len} characters, got {len(text)}"
        )


def validate_blocks(blocks: Any) -> None:
    """Raise :class:`PayloadError` (``invalid_blocks``) where Slack would reject ``blocks``."""
    if not isinstance(blocks, list):
        raise PayloadError("invalid_blocks", "blocks must be an array")
    if len(blocks) > MAX_BLOCKS:
        raise PayloadError(
            "invalid_blocks", f"at most {MAX_BLOCKS} blocks per message, got {len(blocks)}"
        )
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict):
            raise PayloadError("invalid_blocks", f"{where} must be an object")
        btype = block.get("type")
        if btype not in BLOCK_TYPES:
            raise PayloadError("invalid_blocks", f"{where}.type {btype!r} is not a block type")
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > MAX_BLOCK_ID:
                raise PayloadError("invalid_blocks", f"{where}.block_id: 1..255 characters")
            if block_id in seen_ids:
                raise PayloadError("invalid_blocks", f"{where}.block_id is not unique")
            seen_ids.add(block_id)
        if btype == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and fields is None:
                raise PayloadError("invalid_blocks", f"{where}: section needs text or fields")
            if text is not None:
                _check_text_object(text, f"{where}.text", MAX_SECTION_TEXT)
            if fields is not None:
                if not isinstance(fields, list) or not fields:
                    raise PayloadError("invalid_blocks", f"{where}.fields must be an array")
                if len(fields) > MAX_SECTION_FIELDS:
                    raise PayloadError(
                        "invalid_blocks", f"{where}.fields: at most {MAX_SECTION_FIELDS} items"
                    )
                for j, f in enumerate(fields):
                    _check_text_object(f, f"{where}.fields[{j}]", MAX_FIELD_TEXT)
        elif btype == "header":
            _check_text_object(block.get("text"), f"{where}.text", MAX_HEADER_TEXT, ("plain_text",))
        elif btype == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                raise PayloadError("invalid_blocks", f"{where}.elements must be non-empty")
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                raise PayloadError(
                    "invalid_blocks", f"{where}.elements: at most {MAX_CONTEXT_ELEMENTS} items"
                )
            for j, el in enumerate(elements):
                if isinstance(el, dict) and el.get("type") == "image":
                    if not el.get("image_url") or not el.get("alt_text"):
                        raise PayloadError(
                            "invalid_blocks", f"{where}.elements[{j}]: image_url and alt_text"
                        )
                else:
                    _check_text_object(el, f"{where}.elements[{j}]", MAX_SECTION_TEXT)
        elif btype == "image":
            if not block.get("image_url") or not block.get("alt_text"):
                raise PayloadError("invalid_blocks", f"{where}: image_url and alt_text")
        elif btype == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                raise PayloadError("invalid_blocks", f"{where}.elements: 1..25 items")
        elif btype == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text or len(text) > MAX_MARKDOWN_BLOCK_TEXT:
                raise PayloadError("invalid_blocks", f"{where}.text: 1..12000 characters")


def validate_message(payload: Any) -> None:
    """Raise :class:`PayloadError` where Slack would reject this message payload."""
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload", "payload must be a JSON object")
    text = payload.get("text")
    if text is not None and not isinstance(text, str):
        raise PayloadError("invalid_payload", "text must be a string")
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        raise PayloadError("msg_too_long", f"text is {len(text)} characters")
    blocks = payload.get("blocks")
    attachments = payload.get("attachments")
    if not text and not blocks and not attachments:
        raise PayloadError("no_text", "neither text nor blocks")
    if blocks is not None:
        validate_blocks(blocks)


@dataclass(frozen=True)
class SlackRequest:
    """One request the stand-in received, and what it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict[str]
    body: bytes
    json: Any
    """The parsed payload: JSON body, or a form's fields (``payload=`` JSON for webhooks)."""
    time: float
    """``time.monotonic()`` at arrival."""
    status: int
    response: bytes
    scripted: bool
    """True when the answer came from the :meth:`SlackServer.fail_next` queue."""

    @property
    def api_method(self) -> str | None:
        return self.path[len("/api/") :] if self.path.startswith("/api/") else None

    @property
    def is_webhook(self) -> bool:
        return self.path.startswith("/services/")

    def response_json(self) -> Any:
        return json.loads(self.response)


@dataclass
class _Scripted:
    status: int
    body: bytes
    headers: dict[str, str]
    delay: float = 0.0  # seconds to wait (after recording the request) before answering
    trickle: float = 0.0  # seconds between single bytes of the body


@dataclass
class SlackServer:
    """The running stand-in: URLs, credentials, recorded requests and posted messages."""

    url: str
    token: str = BOT_TOKEN
    channels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    archived: set[str] = field(default_factory=lambda: {ARCHIVED_CHANNEL})
    requests: list[SlackRequest] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Posted messages by ``ts`` (current state, after ``chat.update``), each with ``channel``."""
    _failures: deque[_Scripted] = field(default_factory=deque)
    _lock: AbstractContextManager[Any] = field(default_factory=threading.RLock)
    _ts_counter: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    @property
    def webhook_secret(self) -> str:
        return WEBHOOK_SECRET

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def fail_next(
        self,
        status: int,
        body: str | bytes | Mapping[str, Any] = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Queue one scripted answer; each request consumes one before normal answers.

        ``body``: a str (sent as text/plain), bytes, or a mapping (sent as JSON).
        E.g. ``fail_next(429, "rate_limited", {"Retry-After": "1"})``,
        ``fail_next(500, "rollup_error")``, ``fail_next(200, {"ok": False, "error": "x"})``.
        """
        hdrs = dict(headers or {})
        if isinstance(body, Mapping):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(body, str):
            data = body.encode()
            hdrs.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = body
            hdrs.setdefault("Content-Type", "application/octet-stream")
        with self._lock:
            self._failures.append(_Scripted(status, data, hdrs))

    def hang_next(self, seconds: float) -> None:
        """The next request is recorded, then answered ``200 ok`` only after ``seconds``
        (or when the server stops): a Slack that took the message and went silent."""
        with self._lock:
            self._failures.append(
                _Scripted(200, b"ok", {"Content-Type": "text/plain"}, delay=seconds)
            )

    def trickle_next(self, interval: float, body: bytes = b"ok" * 50) -> None:
        """The next answer sends its headers at once, then its body one byte every
        ``interval`` seconds (each read is quick; the whole answer is not)."""
        with self._lock:
            self._failures.append(
                _Scripted(200, body, {"Content-Type": "text/plain"}, trickle=interval)
            )

    @property
    def pending_failures(self) -> int:
        with self._lock:
            return len(self._failures)

    def webhook_requests(self) -> list[SlackRequest]:
        return [r for r in self.requests if r.is_webhook]

    def api_calls(self, method: str | None = None) -> list[SlackRequest]:
        return [
            r
            for r in self.requests
            if r.api_method is not None and (method is None or r.api_method == method)
        ]

    def payloads(self) -> list[Any]:
        """The parsed payloads of all requests, in arrival order."""
        return [r.json for r in self.requests]

    # -- used by the request handler

    def _pop_failure(self) -> _Scripted | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _next_ts(self) -> str:
        with self._lock:
            self._ts_counter += 1
            n = self._ts_counter
        return f"{1700000000 + n // 10000}.{(n % 10000) * 100:06d}"

    def _record(self, req: SlackRequest) -> None:
        with self._lock:
            self.requests.append(req)


Answer = tuple[int, bytes, dict[str, str]]


def _text(status: int, body: str) -> Answer:
    return status, body.encode(), {"Content-Type": "text/plain; charset=utf-8"}


def _json(body: Mapping[str, Any], status: int = 200) -> Answer:
    return status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"}


def _parse_payload(content_type: str, body: bytes, webhook: bool) -> Any:
    """JSON body, or form fields (``payload=`` JSON for webhooks, ``blocks=`` JSON for API)."""
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        if webhook:
            if "payload" not in form:
                raise PayloadError("invalid_payload", "form without payload=")
            return json.loads(form["payload"])
        parsed: dict[str, Any] = dict(form)
        for key in ("blocks", "attachments"):
            if isinstance(parsed.get(key), str):
                parsed[key] = json.loads(parsed[key])
        return parsed
    return json.loads(body)


def _handle_webhook(server: SlackServer, path: str, payload: Any) -> Answer:
    if path != WEBHOOK_PATH:
        return _text(404, "no_service")
    try:
        validate_message(payload)
    except PayloadError as e:
        return _text(400, e.code)
    ts = server._next_ts()
    message = {
        "type": "message",
        "channel": WEBHOOK_CHANNEL,
        "ts": ts,
        "bot_id": BOT_ID,
        "text": payload.get("text", ""),
        "via": "webhook",
    }
    if "blocks" in payload:
        message["blocks"] = payload["blocks"]
    server.messages[ts] = message
    return _text(200, "ok")


def _handle_api(
    server: SlackServer,
    method: str,
    headers: CaseInsensitiveDict[str],
    payload: Any,
    warnings: list[str],
) -> Answer:
    if method not in ("chat.postMessage", "chat.update"):
        return _json({"ok": False, "error": "unknown_method"})
    authorization = headers.get("Authorization", "")
    if not authorization.startswith("Bearer ") or not authorization[7:].strip():
        return _json({"ok": False, "error": "not_authed"})
    if authorization[7:].strip() != server.token:
        return _json({"ok": False, "error": "invalid_auth"})
    if not isinstance(payload, dict):
        return _json({"ok": False, "error": "invalid_arguments"})
    channel_arg = payload.get("channel")
    if channel_arg in server.archived:
        return _json({"ok": False, "error": "is_archived"})
    channel = server.channels.get(channel_arg) if isinstance(channel_arg, str) else None
    if channel is None:
        return _json({"ok": False, "error": "channel_not_found"})
    try:
        validate_message(payload)
    except PayloadError as e:
        body: dict[str, Any] = {"ok": False, "error": e.code}
        if e.detail:
            body["response_metadata"] = {"messages": [f"[ERROR] {e.detail}"]}
        return _json(body)
    extra: dict[str, Any] = {}
    if warnings:
        extra = {"warning": ",".join(warnings), "response_metadata": {"warnings": warnings}}
    if method == "chat.postMessage":
        ts = server._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "team": TEAM,
            "ts": ts,
            "text": payload.get("text", ""),
        }
        for key in ("blocks", "attachments", "thread_ts"):
            if key in payload:
                message[key] = payload[key]
        server.messages[ts] = {**message, "channel": channel}
        return _json({"ok": True, "channel": channel, "ts": ts, "message": message, **extra})
    update_ts = payload.get("ts")
    stored = server.messages.get(update_ts) if isinstance(update_ts, str) else None
    if stored is None or stored["channel"] != channel:
        return _json({"ok": False, "error": "message_not_found"})
    for key in ("text", "blocks", "attachments"):
        if key in payload:
            stored[key] = payload[key]
    stored["edited"] = {"user": BOT_USER, "ts": server._next_ts()}
    message = {k: v for k, v in stored.items() if k != "channel"}
    return _json(
        {
            "ok": True,
            "channel": channel,
            "ts": update_ts,
            "text": stored.get("text", ""),
            "message": message,
            **extra,
        }
    )


def _make_handler(server: SlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            arrived = time.monotonic()
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(dict(self.headers.items()))
            webhook = url.path.startswith("/services/")
            content_type = headers.get("Content-Type", "")
            payload: Any = None
            parse_error: PayloadError | None = None
            if body:
                try:
                    payload = _parse_payload(content_type, body, webhook)
                except (ValueError, PayloadError):
                    parse_error = PayloadError("invalid_payload")

            scripted = server._pop_failure()
            if scripted is not None:
                status, data, out_headers = scripted.status, scripted.body, scripted.headers
            elif self.command != "POST":
                status, data, out_headers = _text(405, "method_not_allowed")
            elif webhook:
                if parse_error or payload is None:
                    status, data, out_headers = _text(400, "invalid_payload")
                else:
                    with server._lock:
                        status, data, out_headers = _handle_webhook(server, url.path, payload)
            elif url.path.startswith("/api/"):
                warnings = []
                if (
                    content_type.lower().startswith("application/json")
                    and "charset" not in content_type.lower()
                ):
                    warnings.append("missing_charset")
                if parse_error:
                    status, data, out_headers = _json({"ok": False, "error": "invalid_json"})
                else:
                    with server._lock:
                        status, data, out_headers = _handle_api(
                            server, url.path[len("/api/") :], headers, payload or {}, warnings
                        )
            else:
                status, data, out_headers = _text(404, "not_found")

            server._record(
                SlackRequest(
                    method=self.command,
                    path=url.path,
                    query=urllib.parse.parse_qs(url.query),
                    headers=headers,
                    body=body,
                    json=payload,
                    time=arrived,
                    status=status,
                    response=data,
                    scripted=scripted is not None,
                )
            )
            if scripted is not None and scripted.delay:
                server._stopping.wait(scripted.delay)
            self.send_response(status)
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if scripted is not None and scripted.trickle:
                for i in range(len(data)):
                    if server._stopping.is_set():
                        break
                    try:
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        break
                    server._stopping.wait(scripted.trickle)
                self.close_connection = True
                return
            self.wfile.write(data)

        do_POST = _serve
        do_GET = _serve
        do_PUT = _serve

    return Handler


class _Running:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        self.port: int = self.httpd.server_address[1]
        self.server = SlackServer(url=f"http://127.0.0.1:{self.port}")
        self.httpd.RequestHandlerClass = _make_handler(self.server)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="slack-standin", daemon=True
        )

    def stop(self) -> None:
        self.server._stopping.set()  # ends hanging and trickling answers
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def start_slack() -> tuple[SlackServer, _Running]:
    running = _Running()
    running.thread.start()
    return running.server, running


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    """A Slack stand-in on 127.0.0.1 (see the module docstring for what it answers)."""
    server, running = start_slack()
    try:
        yield server
    finally:
        running.stop()
