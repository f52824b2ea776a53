"""Which URLs may receive partner webhooks."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

_LOOPBACK_NAMES = {"localhost"}


def _is_internal_address(host: str) -> bool:
    """Whether ``host`` is an IP literal outside the public internet (private, link-local...)."""
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def resolves_to_internal_address(host: str) -> bool:
    """Whether ``host`` is, or resolves to, any address outside the public internet.

    The resolver reads every form an HTTP client would connect to (``localhost``,
    ``127.1``, ``2130706433``, a public name whose DNS points inside), so the
    check sees what the request would reach. A name that does not resolve is not
    internal: it reaches nothing, and delivery checks again before each request.
    """
    if host.lower().rstrip(".") in _LOOPBACK_NAMES or _is_internal_address(host):
        return True
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    return any(_is_internal_address(info[4][0].split("%")[0]) for info in infos)


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
    if parts.scheme == "https" and production and resolves_to_internal_address(parts.hostname):
        return "The URL must point to a public address."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and not production and _is_loopback(parts.hostname):
        return None
    if parts.scheme == "http" and not production:
        return "Use https (plain http is allowed only to a loopback address in development)."
    return "Use https."
