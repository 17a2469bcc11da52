"""Keep secrets out of everything carbonkit writes: run logs, reports, console and errors.

A value is secret when its name looks like a credential (``token``, ``key``, ``secret``,
``password``, ``auth``...), or when it is the password of a URL (``https://user:pw@host``) or a
query parameter of such a name (``?securityToken=...``, ``&api_key=...``). Secrets are replaced
by :data:`REDACTED`; everything else is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "is_secret_name", "redact_mapping", "redact_text", "redact_url"]

REDACTED = "***"

# Whole words of a name (split on _, -, . and camelCase) that mark a credential.
_SECRET_WORDS = frozenset(
    {"token", "key", "apikey", "secret", "password", "passwd", "pwd", "pass", "auth",
     "authorization", "credential", "credentials", "cookie", "session", "signature", "sig", "bearer"}
)
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# user:password@ in a URL's authority.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")
# name=value in a query string or a text (name may be quoted by nothing else).
_PAIR = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<value>[^&\s;,'\"]+)")
# Authorization: Bearer xyz
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def is_secret_name(name: str) -> bool:
    """Return True when ``name`` looks like the name of a credential.

    ``CARBONKIT_ENTSOE_TOKEN``, ``api_key``, ``securityToken``, ``password`` and ``auth`` are;
    ``keyboard``, ``monkey`` and ``tokenizer_name`` are not (whole words only).
    """
    words = [w.lower() for w in _WORDS.findall(str(name))]
    if any(w in _SECRET_WORDS for w in words):
        return True
    joined = "".join(words)
    return joined.endswith(("apikey", "accesskey", "secretkey", "privatekey"))


def redact_url(url: str) -> str:
    """Return ``url`` with its password and secret-looking query parameters replaced."""
    return redact_text(url)


def redact_text(text: str) -> str:
    """Redact every URL password, ``name=value`` pair with a secret-looking name, and bearer
    token inside free text (an error message, a log line)."""
    if not isinstance(text, str) or not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    out = _PAIR.sub(lambda m: f"{m['name']}={REDACTED}" if is_secret_name(m["name"]) else m[0], out)
    return _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", out)


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``values`` with secret-named entries replaced, recursively; strings
    elsewhere go through :func:`redact_text`."""
    return {str(k): (REDACTED if is_secret_name(str(k)) and v not in (None, "") else _redact_value(v))
            for k, v in values.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value
