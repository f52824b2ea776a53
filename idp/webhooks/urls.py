"""Which URLs may receive partner webhooks."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

_LOOPBACK_NAMES = {"localhost"}


# IPv6 prefixes whose last 32 bits are an IPv4 address a gateway or the host may reach:
# NAT64 (RFC 6052) and the deprecated IPv4-compatible form (RFC 4291 section 2.5.5.1).
_EMBEDDING_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))

# The local-use NAT64 prefix (RFC 8215) reaches whatever IPv4 network the local
# translator serves, and where an address in it carries the IPv4 address depends on
# the prefix length that translator uses (48, 56, 64 or 96 bits, RFC 6052 section 2.2):
# one address reads as a public IPv4 address at one length and as 127.0.0.1 at another.
# The service cannot know the length, so the whole prefix counts as internal.
_LOCAL_USE_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def _is_internal_address(host: str) -> bool:
    """Whether ``host`` is an IP literal outside the public internet (private, link-local...).

    An IPv6 address that carries an IPv4 address (mapped, 6to4, Teredo, NAT64,
    IPv4-compatible) is internal when that IPv4 address is; an address in the
    local-use NAT64 prefix always is.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.version == 6 and address in _LOCAL_USE_NAT64:
        return True
    return not address.is_global or any(not v4.is_global for v4 in _embedded_ipv4(address))


def _embedded_ipv4(address) -> list[ipaddress.IPv4Address]:
    if address.version != 6:
        return []
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if any(address in prefix for prefix in _EMBEDDING_PREFIXES):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


class InternalAddressError(Exception):
    """The host is, or resolves to, an address outside the public internet."""


def resolve_public(host: str, port: int | None) -> list[tuple]:
    """Resolve ``host`` once: its ``getaddrinfo`` answers, every one of them public.

    The resolver reads every form an HTTP client would connect to (``localhost``,
    ``127.1``, ``2130706433``, a public name whose DNS points inside). One internal
    answer refuses the whole name (``InternalAddressError``); a name that does not
    resolve raises what ``getaddrinfo`` raises. Connect to these very answers: a
    second lookup may answer differently (DNS rebinding).
    """
    if host.lower().rstrip(".") in _LOOPBACK_NAMES or _is_internal_address(host):
        raise InternalAddressError(host)
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if any(_is_internal_address(answer[4][0].split("%")[0]) for answer in answers):
        raise InternalAddressError(host)
    return answers


def resolves_to_internal_address(host: str) -> bool:
    """Whether ``host`` is, or resolves to, any address outside the public internet.

    A name that does not resolve is not internal: it reaches nothing, and delivery
    checks again as it connects.
    """
    try:
        resolve_public(host, None)
    except InternalAddressError:
        return True
    except (OSError, UnicodeError):
        return False
    return False


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str, *, production: bool, resolve: bool = True) -> str | None:
    """Why ``url`` cannot receive webhooks, or None: https, or loopback http outside production.

    Registration and delivery both ask. Delivery passes ``resolve=False``: in production
    its connection looks the host up itself and connects only to answers it checked
    (``resolve_public``), so looking it up here too would only add a lookup.
    """
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
    if (
        parts.scheme == "https"
        and production
        and resolve
        and resolves_to_internal_address(parts.hostname)
    ):
        return "The URL must point to a public address."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and not production and _is_loopback(parts.hostname):
        return None
    if parts.scheme == "http" and not production:
        return "Use https (plain http is allowed only to a loopback address in development)."
    return "Use https."
