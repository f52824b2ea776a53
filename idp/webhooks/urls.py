"""Which URLs may receive partner webhooks."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import idna

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


# C0 controls, DEL and C1 controls; any whitespace (Unicode included).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s")
_LDH = re.compile(r"[a-z0-9-]+\Z")
# A last label that reads as a number makes the host an IPv4 address to URL parsers
# (WHATWG: 127.1, 2130706433 and 0x7f000001 are all 127.0.0.1).
_NUMBER = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")


def _non_ascii_problem(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    if host.isascii():
        return "The URL must hold only ASCII characters (percent-encode others, é as %C3%A9)."
    try:
        a_label = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return "Write an internationalised host name in its ASCII (punycode, xn--) form."
    return f"Write an internationalised host name in its ASCII (punycode) form: {a_label}"


def _port_problem(netloc: str) -> str | None:
    # What follows the host: "[v6]:port" or "name:port" (urlsplit ignores text after "]").
    if netloc.startswith("["):
        after = netloc.partition("]")[2]
        if after and not after.startswith(":"):
            return "Only a port (like :8443) may follow the host."
        colon, port = after[:1], after[1:]
    else:
        _, colon, port = netloc.partition(":")
    if colon and not (port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        return "The port must be a number from 1 to 65535."
    return None


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    """Why ``host`` (``urlsplit``'s lowercased hostname, printable ASCII) is not one."""
    if "%" in host:
        return "The host must not be percent-encoded."
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "Only an IPv6 address may be written in brackets."
        return None
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return None
    name = host.removesuffix(".")
    if len(name) > 253:
        return "The host name must be at most 253 characters long."
    labels = name.split(".")
    for label in labels:
        if not label:
            return "The host name must not have an empty part (like a..b)."
        if len(label) > 63:
            return "Each dot-separated part of the host name must be at most 63 characters."
        if not _LDH.match(label):
            return "The host name may hold only letters, digits, hyphens and dots."
        if label.startswith("-") or label.endswith("-"):
            return "A part of the host name must not start or end with a hyphen."
    if _NUMBER.match(labels[-1]):
        return "A numeric host must be an IPv4 address of four numbers 0-255 (like 192.0.2.1)."
    return None


def check_webhook_url(url: str, *, production: bool, resolve: bool = True) -> str | None:
    """Why ``url`` cannot be set to receive webhooks, or None: https, or loopback http
    outside production, and well-formed.

    The URL must be printable ASCII throughout (``urlsplit`` silently drops tabs and
    line breaks, so the text is checked before it is split); the host an IPv4 address
    (four numbers), an IPv6 address in brackets, or a DNS name of letters, digits and
    hyphens (an internationalised name in its punycode form); the port, if any, 1-65535.
    """
    problem = _form_problem(url)
    return problem or _target_problem(url, production=production, resolve=resolve)


def check_stored_webhook_url(url: str, *, production: bool) -> str | None:
    """Why a stored URL may not receive a delivery now, or None.

    A URL set under the looser rules before ``check_webhook_url`` checked its form
    keeps receiving what it received (the HTTP client encodes the rest): only a
    control character (a line break, NUL) is refused on top of where it points.
    The connection looks the host up itself in production and connects only to
    answers it checked (``resolve_public``), so the name is not looked up here.
    """
    if _CONTROL.search(url):
        return _CONTROL_PROBLEM
    return _target_problem(url, production=production, resolve=False)


_CONTROL_PROBLEM = "The URL must not contain control characters (such as line breaks or NUL)."


def _form_problem(url: str) -> str | None:
    if _CONTROL.search(url):
        return _CONTROL_PROBLEM
    if _WHITESPACE.search(url):
        return "The URL must not contain spaces or other whitespace (write a space as %20)."
    if not url.isascii():
        return _non_ascii_problem(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "The URL is malformed."
    if not parts.hostname:
        return "The URL needs a host."
    if "@" in parts.netloc:
        return "The URL must not carry credentials."
    if "#" in url:
        return "The URL must not have a fragment."
    return _port_problem(parts.netloc) or _host_problem(
        parts.hostname, bracketed=parts.netloc.startswith("[")
    )


def _target_problem(url: str, *, production: bool, resolve: bool) -> str | None:
    """Where the URL points: https (or loopback http outside production), no credentials
    or fragment, and in production (``resolve``) no internal address."""
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
