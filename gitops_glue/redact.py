"""Keep secrets (keys, tokens, webhook URLs) out of every message glue prints.

Code that handles a secret registers it; the CLI's one error handler and
output functions pass every text through :func:`redact`, which also masks,
without being told, the credentials a URL can carry:

- the user part of an HTTP(S) (any non-SSH) URL, ``https://TOKEN@host`` or
  ``https://user:PASSWORD@host`` (the password only when there is a user name);
  well-known non-secret user names (``git``, ``x-access-token``, ``oauth2``,
  ``gitlab-ci-token``) stay readable, and so does an SSH URL's login name;
- query values whose name looks like a credential (contains ``token``, ``key``,
  ``secret``, ``passw``, ``pwd``, ``sig``, ``auth`` or ``credential``):
  ``?private_token=***``.

Every pattern is linear in the text's length (no nested quantifiers; a match
starts only where a scheme or a query separator starts), so a long message
costs milliseconds, not seconds.
"""

from __future__ import annotations

import re

MASK = "***"
_secrets: set[str] = set()
# A scheme starts a URL only after a character that cannot be part of one.
_URL_CREDENTIALS = re.compile(
    r"(?<![a-z0-9+.\-])(?P<scheme>[a-z][a-z0-9+.\-]{0,31}://)(?P<userinfo>[^/@\s?#]{1,512})@",
    re.I,
)
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[A-Za-z0-9_.\-]{1,64})=(?P<value>[^&#\s\"'<>]+)")
_CREDENTIAL_WORDS = ("token", "key", "secret", "passw", "pwd", "sig", "auth", "credential")
_PUBLIC_USERS = ("git", "x-access-token", "oauth2", "gitlab-ci-token")
_SSH_SCHEMES = ("ssh://", "git+ssh://", "ssh+git://")


def register(*secrets: str | None) -> None:
    """Remember secret strings (and each line of multi-line ones) for masking."""
    for secret in secrets:
        if not secret:
            continue
        for part in [secret, *secret.splitlines()]:
            stripped = part.strip()
            if len(stripped) >= 6:
                _secrets.add(stripped)


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
