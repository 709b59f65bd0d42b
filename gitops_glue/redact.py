"""Keep secrets (keys, tokens, webhook URLs) out of every message glue prints.

Code that handles a secret registers it; the CLI's one error handler and
output functions pass every text through :func:`redact`, which also masks,
without being told, the credentials a URL can carry:

- the user part of an HTTP(S) (any non-SSH) URL, ``https://TOKEN@host`` or
  ``https://user:PASSWORD@host`` (the password only when there is a user name),
  up to the last ``@`` before the host, so a password holding an unencoded ``@``,
  ``#`` or ``?`` is masked whole; well-known non-secret user names (``git``,
  ``x-access-token``, ``oauth2``, ``gitlab-ci-token``) stay readable, and so does
  an SSH URL's login name;
- query values whose name looks like a credential (contains ``token``, ``key``,
  ``secret``, ``passw``, ``pwd``, ``sig``, ``auth`` or ``credential``):
  ``?private_token=***``.

A registered secret is masked in every form it takes on the way out: as given,
percent-encoded (as ``requests`` and ``urllib`` write it in a URL, fully encoded as
a query value, with either case of hex digit), percent-decoded, escaped for JSON,
Python's ``repr``, HTML and Slack's mrkdwn; a secret that is a URL also masks its
path, query and password on their own (an HTTP error quotes only the path).
:func:`register_environment` registers the environment's secrets (glue's own, the
CI system's, and every variable whose name says it holds one).

Every pattern is linear in the text's length (no nested quantifiers; a match
starts only where a scheme or a query separator starts), so a long message
costs milliseconds, not seconds.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
_secrets: set[str] = set()
#: Shorter texts are too likely to occur by chance to be masked everywhere.
_MIN_LENGTH = 6
# A scheme starts a URL only after a character that cannot be part of one. The user
# part runs to the LAST "@" before the path (or a blank): a password may hold "@", "#"
# or "?" unencoded, and a parser that stops at the first one would print the rest.
_URL_CREDENTIALS = re.compile(
    r"(?<![a-z0-9+.\-])(?P<scheme>[a-z][a-z0-9+.\-]{0,31}://)(?P<userinfo>[^/\s]{1,512})@",
    re.I,
)
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[A-Za-z0-9_.\-]{1,64})=(?P<value>[^&#\s\"'<>]+)")
_CREDENTIAL_WORDS = ("token", "key", "secret", "passw", "pwd", "sig", "auth", "credential")
_PUBLIC_USERS = ("git", "x-access-token", "oauth2", "gitlab-ci-token")
_SSH_SCHEMES = ("ssh://", "git+ssh://", "ssh+git://")


#: Variables that hold a secret whatever their name says.
_SECRET_VARIABLES = frozenset(
    {
        "SLACK_WEBHOOK_URL",
        "SLACK_BOT_TOKEN",
        "GLUE_GIT_TOKEN",
        "GLUE_REGISTRY_PASSWORD",
        "GLUE_SSH_KEY",
        "GLUE_SSH_KEY_PASSPHRASE",
        "GLUE_SIGNING_KEY",
        "GLUE_SIGNING_KEY_PASSPHRASE",
    }
)
#: A variable whose name holds one of these words holds a secret ...
_SECRET_NAME = re.compile(
    r"TOKEN|PASSWORD|PASSWD|PASSPHRASE|SECRET|WEBHOOK|PRIVATE_?KEY|SSH_KEY|API_?KEY"
    r"|ACCESS_?KEY|CREDENTIAL|JWT",
    re.I,
)
#: ... unless it names where one is (a file, a path).
_NOT_SECRET_NAME = re.compile(r"_(FILE|PATHS?|DIR|TYPE)$", re.I)
#: What requests keeps unencoded in a URL (``requests.utils.requote_uri``).
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")


def register(*secrets: str | None) -> None:
    """Remember secret strings (and each line of multi-line ones) for masking, in every
    form they can be printed in."""
    for secret in secrets:
        if not secret:
            continue
        for part in [secret, *secret.splitlines()]:
            stripped = part.strip()
            if len(stripped) < _MIN_LENGTH:
                continue
            for piece in [stripped, *_url_parts(stripped)]:
                _secrets.update(f for f in _forms(piece) if len(f) >= _MIN_LENGTH)


def register_environment(env: Mapping[str, str]) -> None:
    """Register the secrets ``env`` holds: glue's own (``SLACK_WEBHOOK_URL``,
    ``GLUE_GIT_TOKEN``...) and every variable whose name says it is one (``*TOKEN*``,
    ``*PASSWORD*``, ``*SECRET*``, ``*WEBHOOK*``..., not ``*_FILE``/``*_PATH``)."""
    for name, value in env.items():
        if name in _SECRET_VARIABLES or (
            _SECRET_NAME.search(name) and not _NOT_SECRET_NAME.search(name)
        ):
            register(value)


def _url_parts(secret: str) -> Iterator[str]:
    """The secret parts of a URL: its path (with query and fragment) and password."""
    if "://" not in secret:
        return
    try:
        parts = urlsplit(secret)
        password = parts.password
    except ValueError:
        return
    if not parts.netloc:
        return
    rest = secret.split("://", 1)[1]
    slash = rest.find("/")
    if slash >= 0 and len(rest) - slash > 1:
        yield rest[slash:]
    if password:
        yield password


def _forms(secret: str) -> Iterator[str]:
    """``secret`` as given, and as every encoding on the way out may print it."""
    yield secret
    encoded = {
        _requote(secret),
        _quote(secret, _URL_SAFE.replace("%", "")),
        _quote(secret, ""),
        _quote(secret, "/"),
        quote_plus(secret, safe="", errors="surrogateescape"),
    }
    for text in encoded:
        yield text
        yield _PERCENT_HEX.sub(lambda m: m.group(0).lower(), text)
    yield unquote(secret)
    for ascii_only in (True, False):
        yield json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
    yield repr(secret)[1:-1]
    yield repr(secret.encode("utf-8", "surrogateescape"))[2:-1]
    yield html.escape(secret)
    yield html.escape(secret, quote=False)


def _requote(text: str) -> str:
    """``text`` as ``requests`` writes it into a URL it sends (``requote_uri``)."""
    try:
        return _quote(_unquote_unreserved(text), _URL_SAFE)
    except ValueError:
        return _quote(text, _URL_SAFE.replace("%", ""))


def _quote(text: str, safe: str) -> str:
    # surrogateescape: a variable's undecodable bytes are encoded as the bytes they were.
    return quote(text, safe=safe, errors="surrogateescape")


def _unquote_unreserved(text: str) -> str:
    parts = text.split("%")
    for i in range(1, len(parts)):
        code = parts[i][:2]
        if len(code) != 2 or not all(c in "0123456789abcdefABCDEF" for c in code):
            raise ValueError(code)
        char = chr(int(code, 16))
        parts[i] = (char + parts[i][2:]) if char in _UNRESERVED else "%" + parts[i]
    return "".join(parts)


def redact(text: str) -> str:
    """``text`` with registered secrets and URL credentials masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(_mask_userinfo, text)
    return _QUERY_PARAM.sub(_mask_query_value, text)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    user, colon, _password = match.group("userinfo").partition(":")
    if colon:
        return f"{scheme}{user}:{MASK}@"
    # ssh://alice@host names a login, never a secret; https://TOKEN@host is one.
    if scheme.lower() in _SSH_SCHEMES or user in _PUBLIC_USERS:
        return match.group(0)
    return f"{scheme}{MASK}@"


def _mask_query_value(match: re.Match[str]) -> str:
    name = match.group("name")
    lowered = name.lower()
    if not any(word in lowered for word in _CREDENTIAL_WORDS) or match.group("value") == MASK:
        return match.group(0)
    return f"{match.group('sep')}{name}={MASK}"


def mask_url(url: str) -> str:
    return redact(url)
