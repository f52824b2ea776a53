"""Which URLs may receive partner webhooks."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_LOOPBACK_NAMES = {"localhost"}


def _is_internal_address(host: str) -> bool:
    """Whether ``host`` is an IP literal outside the public internet (private, link-local...)."""
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str, *, production: bool) -> str | None:
    """Why ``url`` cannot receive webhooks, or None: https, or loopback http outside production."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "The URL is malformed."
    if not parts.hostname:
        return "The URL needs a host."
    if parts.username or parts.password:
        return "The URL must not carry credentials."
    if parts.fragment:
        return "The URL must not have a fragment."
    if parts.scheme == "https" and production and _is_internal_address(parts.hostname):
        return "The URL must point to a public address."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and not production and _is_loopback(parts.hostname):
        return None
    if parts.scheme == "http" and not production:
        return "Use https (plain http is allowed only to a loopback address in development)."
    return "Use https."
