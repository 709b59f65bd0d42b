"""Post messages to Slack: incoming webhook or bot token (``chat.postMessage``).

Block Kit with a plain-text fallback, always inside Slack's documented limits
(50 blocks, 3,000 characters a section, 150 a header; empty texts are never
sent): long texts are cut with an ellipsis rather than rejected. ``429`` is
retried after ``Retry-After``, ``5xx`` and connection errors (nothing was
sent) with back-off, both bounded; any other error fails at once with Slack's
error text. A post whose outcome is unknown (Slack took the request and did
not answer within ``GLUE_NETWORK_TIMEOUT``) is never repeated: it may have
been posted. Redirects are never followed (Slack does not redirect posts; a
redirect would send the message elsewhere, or turn it into a GET that posts
nothing) and are reported as errors. The webhook URL and token never appear
in output.

Slack is reached over https only (http only to localhost, for a local stand-in):
any other webhook or API URL is refused before anything is sent, not retried.
Nothing leaves with a secret in it: every text of a message passes through
:func:`gitops_glue.redact.redact` (before it is cut to Slack's limits, so half a
secret is never left), and :meth:`Target.from_env` registers the environment's
secrets (the webhook URL, tokens, passwords) for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops_glue import network, redact
from gitops_glue.errors import OperationError, UsageError

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_FALLBACK = 3000
DEFAULT_API = "https://slack.com/api/"

Block = dict[str, Any]


def cut(text: str, limit: int) -> str:
    """``text``, secrets masked, within ``limit`` characters, ending in an ellipsis when cut."""
    text = redact.redact(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    return f"<{url}|{escape(label)}>" if url else escape(label)


def header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": cut(text or "-", MAX_HEADER), "emoji": True},
    }


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(mrkdwn or "-", MAX_SECTION)}}


def fields(items: list[str]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": cut(i or "-", MAX_FIELD)} for i in items[:MAX_FIELDS]
        ],
    }


def context(items: list[str]) -> Block:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": cut(i or "-", MAX_FIELD)}
            for i in items[:MAX_CONTEXT_ELEMENTS]
            if i
        ],
    }


@dataclass(frozen=True)
class Message:
    text: str  # plain-text fallback (notifications, screen readers)
    blocks: list[Block] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The JSON body, inside Slack's limits, every secret glue knows masked."""
        blocks = [b for b in self.blocks if b.get("type") != "context" or b.get("elements")]
        if len(blocks) > MAX_BLOCKS:
            dropped = len(blocks) - (MAX_BLOCKS - 1)
            blocks = [*blocks[: MAX_BLOCKS - 1], context([f"…and {dropped} more"])]
        body: dict[str, Any] = {"text": cut(self.text or "-", MAX_FALLBACK)}
        if blocks:
            body["blocks"] = _masked(blocks)
        return body

    def plain_text(self) -> str:
        """The message for a terminal: the fallback text, then each section's text."""
        lines = [self.text]
        for block in self.payload().get("blocks", []):
            if block["type"] == "section" and "text" in block:
                lines.append(block["text"]["text"])
        return "\n".join(lines)


def _masked(value: Any) -> Any:
    """``value`` (JSON data) with every string's secrets masked."""
    if isinstance(value, str):
        return redact.redact(value)
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Target:
    webhook_url: str | None = None
    bot_token: str | None = None
    channel: str | None = None
    api_base: str = DEFAULT_API
    timeout: float = network.DEFAULT_TIMEOUT  # seconds: the bound on each post

    def __post_init__(self) -> None:
        from urllib.parse import urlsplit

        # HTTP errors quote only the path, which holds the webhook's secret: mask it too.
        path = urlsplit(self.webhook_url).path if self.webhook_url else None
        redact.register(self.webhook_url, path, self.bot_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, channel: str | None = None) -> Target:
        env = os.environ if env is None else env
        redact.register_environment(env)
        return cls(
            webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            channel=channel or env.get("SLACK_CHANNEL") or None,
            api_base=env.get("GLUE_SLACK_API_URL") or DEFAULT_API,
            timeout=network.timeout_from_env(env),
        )

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or self.bot_token)

    @property
    def uses_bot(self) -> bool:
        return bool(self.bot_token)

    def describe(self) -> str:
        if self.bot_token:
            return f"Slack channel {self.channel} (bot token)"
        return "Slack incoming webhook" if self.webhook_url else "no Slack"


@dataclass(frozen=True)
class Posted:
    channel: str | None
    ts: str | None  # message timestamp (bot token only): thread or update with it
    attempts: int


class SlackError(OperationError):
    pass


def post(
    target: Target,
    message: Message,
    *,
    thread_ts: str | None = None,
    update_ts: str | None = None,
    max_attempts: int = 5,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Posted:
    """Send ``message``; with a bot token, in a thread or as an in-place update."""
    import requests

    if not target.configured:
        raise UsageError(
            "Slack is not configured",
            hint="set SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN and SLACK_CHANNEL",
        )
    if target.bot_token:
        _require_https(target.api_base, "GLUE_SLACK_API_URL")
    else:
        _require_https(target.webhook_url or "", "SLACK_WEBHOOK_URL")
    body = message.payload()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if target.bot_token:
        if not target.channel:
            raise UsageError(
                "SLACK_BOT_TOKEN needs a channel", hint="set SLACK_CHANNEL or pass --channel"
            )
        method = "chat.update" if update_ts else "chat.postMessage"
        url = target.api_base.rstrip("/") + "/" + method
        headers["Authorization"] = f"Bearer {target.bot_token}"
        body["channel"] = target.channel
        if update_ts:
            body["ts"] = update_ts
        elif thread_ts:
            body["thread_ts"] = thread_ts
    else:
        assert target.webhook_url
        url = target.webhook_url
    say = progress or (lambda _m: None)
    delay = 1.0
    for attempt in range(1, max_attempts + 1):
        try:
            resp = network.run_with_deadline(
                lambda: _send(requests, url, body, headers, target.timeout),
                target.timeout,
                "posting to Slack",
            )
        except (network.DeadlineExceeded, requests.exceptions.ReadTimeout):
            # Slack has the request and said nothing: posting again could post twice.
            raise SlackError(
                f"Slack did not answer within {network.span(target.timeout)}; the message may "
                "have been posted, so it is not sent again",
                hint=f"check the channel; {network.ENV_VAR} sets the deadline",
            ) from None
        except requests.RequestException as exc:  # not connected: nothing was sent
            if attempt == max_attempts:
                raise SlackError(f"Slack did not answer: {redact.redact(str(exc))}") from None
            say(f"Slack did not answer; retrying in {delay:.0f}s ({attempt}/{max_attempts})")
            sleep(delay)
            delay = min(delay * 2, 30)
            continue
        if 300 <= resp.status_code < 400:
            raise SlackError(
                f"Slack answered with a redirect ({resp.status_code}); glue does not follow "
                "redirects for Slack posts",
                hint="check SLACK_WEBHOOK_URL / GLUE_SLACK_API_URL: Slack never redirects "
                "a post, so this URL does not lead to Slack",
            )
        if resp.status_code == 429 or resp.status_code >= 500:
            if attempt == max_attempts:
                raise SlackError(
                    f"Slack answered {resp.status_code} {_error_text(resp)} "
                    f"{max_attempts} times; giving up"
                )
            wait = _retry_after(resp) if resp.status_code == 429 else delay
            say(
                f"Slack answered {resp.status_code}; retrying in {wait:.0f}s "
                f"({attempt}/{max_attempts})"
            )
            sleep(wait)
            delay = min(delay * 2, 30)
            continue
        if resp.status_code >= 400:
            raise SlackError(
                f"Slack refused the message: {resp.status_code} {_error_text(resp)}",
                hint=_hint(_error_text(resp)),
            )
        if target.bot_token:
            data = _json(resp)
            if not data.get("ok"):
                error = str(data.get("error", "unknown_error"))
                raise SlackError(f"Slack refused the message: {error}", hint=_hint(error))
            return Posted(str(data.get("channel") or target.channel), str(data.get("ts")), attempt)
        return Posted(None, None, attempt)
    raise AssertionError("unreachable")  # pragma: no cover


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _require_https(url: str, variable: str) -> None:
    """Refuse, before anything is sent, a Slack URL that is not https (http: localhost only).

    The message names the scheme, never the URL: a webhook URL is a secret.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        parts, host = None, ""
    scheme = parts.scheme.lower() if parts else ""
    if host and (scheme == "https" or (scheme == "http" and host in _LOCAL_HOSTS)):
        return
    what = f"uses {scheme}://, not https://" if scheme and host else "is not a URL"
    raise UsageError(
        f"{variable} {what}: glue posts to Slack over https only",
        hint=f"set {variable} to the https URL Slack gave (http only for localhost, a local "
        "stand-in); nothing was sent",
    )


def _send(
    requests: Any, url: str, body: dict[str, Any], headers: dict[str, str], timeout: float
) -> Any:
    """One POST, its answer read in full; never follows a redirect."""
    resp = requests.post(
        url, json=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
    )
    _ = resp.content  # read here, under the caller's deadline
    return resp


def _json(resp: Any) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_text(resp: Any) -> str:
    data = _json(resp)
    text = str(data.get("error") or resp.text or "").strip()
    return redact.redact(text[:200])


def _retry_after(resp: Any) -> float:
    try:
        return min(max(float(resp.headers.get("Retry-After", "1")), 0.0), 60.0)
    except ValueError:
        return 1.0


def _hint(error: str) -> str | None:
    return {
        "invalid_payload": "the message was malformed; please report this",
        "channel_not_found": "check SLACK_CHANNEL, or that the webhook's channel still exists",
        "channel_is_archived": "the channel is archived: unarchive it or use another",
        "action_prohibited": "a workspace admin restricted this webhook",
        "invalid_auth": "SLACK_BOT_TOKEN is not valid",
        "not_in_channel": "invite the bot to the channel",
        "no_service": "the webhook was removed: create a new one",
    }.get(error)
