"""Keep secrets (keys, tokens, webhook URLs) out of every message glue prints.

Code that handles a secret registers it; the CLI's one error handler and
output functions pass every text through :func:`redact`.
"""

from __future__ import annotations

import re

MASK = "***"
_secrets: set[str] = set()
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@", re.I)


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
        text = text.replace(secret, MASK)
    return _URL_CREDENTIALS.sub(_mask_userinfo, text)


def _mask_userinfo(match: re.Match[str]) -> str:
    user = match.group("userinfo").split(":", 1)[0]
    if ":" in match.group("userinfo"):
        return f"{match.group('scheme')}{user}:{MASK}@"
    # ssh://git@host is a user name, not a secret; a bare token as user is one.
    if user in ("git", "x-access-token", "oauth2", "gitlab-ci-token") or len(user) < 20:
        return match.group(0)
    return f"{match.group('scheme')}{MASK}@"


def mask_url(url: str) -> str:
    return redact(url)
