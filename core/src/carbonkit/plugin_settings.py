"""Small pieces every intensity plugin needs: its settings, its base URL and its clock.

- :func:`text_setting` reads one setting from ``config.options`` (``"<plugin>.<key>"``) or, when
  the option is unset or blank, from a ``CARBONKIT_*`` variable.
- :func:`strip_text` and :func:`strip_slash` are attrs converters that leave non-strings alone
  (the validator then names the bad value).
- :func:`base_url_validator` builds the attrs validator of a ``base_url`` field: it must start
  with ``http://`` or ``https://``.
- :func:`offer_provider` is the body of a ``register_intensity_providers`` hook whose provider
  needs a key: the provider, or an :class:`~carbonkit.Unavailable` note when the key is missing
  or a setting is bad.
- :func:`utc_now`, :func:`aware_utc` and :func:`floor_hour` handle the provider's clock: the
  default ``now``, the check that a datetime given to a provider is timezone-aware, and the
  start of its hour; :func:`parse_utc_time` reads an ISO 8601 time of an API as aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from .config import Config
from .errors import ConfigError
from .records import Unavailable

__all__ = [
    "aware_utc",
    "base_url_validator",
    "floor_hour",
    "offer_provider",
    "parse_utc_time",
    "strip_slash",
    "strip_text",
    "text_setting",
    "utc_now",
]
_P = TypeVar("_P")


def text_setting(config: Config, plugin: str, key: str, variable: str, environ: Mapping[str, str]) -> str | None:
    """The option ``"{plugin}.{key}"``, else the variable ``variable``, stripped; None when both are unset or blank.

    :raises ConfigError: the option is set to something other than a string
        (``option {plugin}.{key} must be a string``).
    """
    value = config.options.get(f"{plugin}.{key}")
    if value is None or (isinstance(value, str) and not value.strip()):
        value = environ.get(variable, "")
    if not isinstance(value, str):
        raise ConfigError(f"option {plugin}.{key} must be a string")
    return value.strip() or None


def offer_provider(
    plugin: str, build: Callable[[], _P | None], *, fix_hint: str, missing: str, missing_hint: str
) -> list[_P | Unavailable]:
    """What ``register_intensity_providers`` returns for a provider that needs a key.

    :param build: Builds the provider from the settings (no network); None when no key is set;
        raises :class:`ConfigError` for a setting it cannot use.
    :returns: ``[provider]``; else, for a bad setting, a warned note with the error as its
        reason and ``fix_hint`` as its hint; else, without a key, a note with the reason
        ``missing`` and the hint ``missing_hint`` (how to get a key).
    """
    try:
        provider = build()
    except ConfigError as exc:
        return [Unavailable(plugin=plugin, reason=str(exc), hint=fix_hint, warn=True)]
    if provider is None:
        return [Unavailable(plugin=plugin, reason=missing, hint=missing_hint)]
    return [provider]


def strip_text(value: str) -> str:
    """``value.strip()`` for a string; anything else unchanged (an attrs converter)."""
    return value.strip() if isinstance(value, str) else value


def strip_slash(value: str) -> str:
    """``value.rstrip("/")`` for a string; anything else unchanged (an attrs converter)."""
    return value.rstrip("/") if isinstance(value, str) else value


def base_url_validator(what: str, example: str) -> Callable[[Any, Any, str], None]:
    """An attrs validator accepting a string that starts with ``http://`` or ``https://``.

    The :class:`ConfigError` it raises reads
    ``"{what} must start with http:// or https:// (e.g. {example!r}), got {value!r}"``.
    """

    def check_base_url(instance: Any, attribute: Any, value: str) -> None:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ConfigError(f"{what} must start with http:// or https:// (e.g. {example!r}), got {value!r}")

    return check_base_url


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def aware_utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC.

    :raises ValueError: ``value`` is not a timezone-aware datetime (the message names ``what``).
    """
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime (UTC), got {value!r}")
    return value.astimezone(timezone.utc)


def floor_hour(t: datetime) -> datetime:
    """The start of the hour ``t`` lies in."""
    return t.replace(minute=0, second=0, microsecond=0)


def parse_utc_time(text: Any, what: str) -> datetime:
    """Parse an ISO 8601 time (``2024-11-28T15:00:00.000Z``, ``2022-07-15T00:00:00+00:00``) as aware UTC.

    A time without an offset is read as UTC.
    :raises ValueError: not a string holding an ISO 8601 date-time (the message names ``what``).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} is not a time: {text!r}")
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{what} is not an ISO 8601 time: {text!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
