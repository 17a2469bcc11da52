"""Keep secrets out of everything carbonkit writes: run logs, reports, console and errors.

A value is secret when its name looks like a credential (``token``, ``key``, ``secret``,
``password``, ``auth``...), or when it is the password of a URL (``https://user:pw@host``) or a
query parameter of such a name (``?securityToken=...``, ``&api_key=...``). Secrets are replaced
by :data:`REDACTED`; everything else is left as it was.

Secrets are also found by value, wherever they appear in a text (an exception that quotes a token,
a server that echoes it): the value of every environment variable whose name ends in
``_TOKEN``, ``_KEY``, ``_API_KEY``, ``_PASSWORD`` or ``_SECRET`` (any case:
``CARBONKIT_WATTTIME_PASSWORD``, ``CARBONKIT_ENTSOE_TOKEN``), read when the text is redacted,
and every value a plugin registered with :func:`register_secret` (a login token it obtained at
run time), in plain and URL-encoded form. Values shorter than
:data:`MIN_SECRET_CHARS` are left alone: replacing ``"1"`` everywhere would garble every figure.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "SECRET_SUFFIXES",
    "is_secret_name",
    "redact_mapping",
    "redact_strings",
    "redact_text",
    "redact_url",
    "install_log_filter",
    "register_secret",
    "secret_values",
]

REDACTED = "***"
#: Environment variables whose names end in one of these hold secrets.
SECRET_SUFFIXES = ("_TOKEN", "_KEY", "_API_KEY", "_PASSWORD", "_SECRET")
#: Shortest value redacted by value (shorter ones are still redacted by name).
MIN_SECRET_CHARS = 4

_registered: set[str] = set()
_registered_lock = threading.Lock()

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


def register_secret(value: str) -> None:
    """Redact ``value`` wherever it appears in anything carbonkit writes, from now on in this
    process: for a credential a plugin holds that no environment variable names (a login token
    obtained at run time, a key read from a file). Values shorter than :data:`MIN_SECRET_CHARS`
    characters are ignored."""
    if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_CHARS:
        with _registered_lock:
            _registered.add(value.strip())


def _is_secret_variable(name: str) -> bool:
    # Suffixes only: a broader rule would take PWD (the working directory) for a password.
    return name.upper().endswith(SECRET_SUFFIXES)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret known by value, longest first (so that a value containing another is
    replaced whole): secret-named environment variables and :func:`register_secret` values,
    each also URL-encoded."""
    env = os.environ if environ is None else environ
    found = {v.strip() for k, v in env.items() if _is_secret_variable(k) and len(v.strip()) >= MIN_SECRET_CHARS}
    with _registered_lock:
        found |= _registered
    variants = found | {quote(v, safe="") for v in found} | {quote_plus(v, safe="") for v in found}
    return sorted(variants, key=len, reverse=True)


def redact_url(url: str) -> str:
    """Return ``url`` with its password and secret-looking query parameters replaced."""
    return redact_text(url)


def redact_text(text: str) -> str:
    """Redact every URL password, ``name=value`` pair with a secret-looking name, bearer token,
    and secret known by value (:func:`secret_values`) inside free text (an error message, a log
    line)."""
    if not isinstance(text, str) or not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    out = _PAIR.sub(lambda m: f"{m['name']}={REDACTED}" if is_secret_name(m["name"]) else m[0], out)
    out = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", out)
    for value in secret_values():
        if value in out:
            out = out.replace(value, REDACTED)
    return out


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``values`` with secret-named entries replaced, recursively; strings
    elsewhere go through :func:`redact_text`."""
    return {str(k): (REDACTED if is_secret_name(str(k)) and v not in (None, "") else _redact_value(v))
            for k, v in values.items()}


def redact_strings(value: Any) -> Any:
    """Return ``value`` (plain JSON types) with every string in it, at any depth, passed through
    :func:`redact_text`; keys and other values are kept as they are. For whole documents a
    command prints (a report, a list of plugins)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_strings(v) for v in value]
    return value


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


class _RedactingFilter(logging.Filter):
    """Rewrites a log record's message with :func:`redact_text` (httpx logs every request's full
    URL at INFO, query string and all)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: leave it to logging
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = _RedactingFilter()
#: Loggers whose records may hold a request's URL or a provider's message.
LOGGERS = ("httpx", "httpcore", "carbonkit", "carbonkit.http", "carbonkit.scheduling")


def install_log_filter() -> None:
    """Redact every record of the loggers that may carry a URL or a provider's error
    (:data:`LOGGERS`), whichever handler the application attached. Idempotent."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
