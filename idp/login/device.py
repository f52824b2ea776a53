"""What a login is shown by on the page of signed-in browsers: its device and address.

Both come from the request that starts the login and are attacker-controlled
(the User-Agent header wholly, the address through ``X-Forwarded-For`` when
``IDP_PROXY_HOPS`` trusts proxies), so only a bounded, printable summary is
kept: the browser and system as ua-parser names them, e.g. "Firefox on
Windows", and an address only when it parses as one.
"""

from __future__ import annotations

import ipaddress

from ua_parser import parse

DEVICE_LENGTH = 80  # the width of ``LoginSession.device``
ADDRESS_LENGTH = 45  # the longest IPv6 address in text (``LoginSession.ip_address``)
# Longer than any browser sends; a longer header is cut before it is parsed at all.
_READ_AT_MOST = 512
# Device names that tell nothing beyond the system's name, or that come from free text.
_VAGUE_BRANDS = {None, "Generic", "Generic_Android", "Generic_Inettv", "Spider"}
_VAGUE_DEVICES = {"Other", "Mac", "K"}


def _printable(text: str | None) -> str:
    """``text`` with everything but printable characters dropped and spaces collapsed."""
    return " ".join("".join(c for c in text or "" if c.isprintable()).split())


def describe_device(user_agent: str | None) -> str | None:
    """A few words naming the browser and system of ``user_agent``, or None if unknown."""
    parsed = parse((user_agent or "")[:_READ_AT_MOST])
    browser = _printable(parsed.user_agent.family) if parsed.user_agent else ""
    system = _printable(parsed.os.family) if parsed.os else ""
    if system == browser:  # Android's own browser, say: named once
        system = ""
    words = " on ".join(part for part in (browser, system) if part and part != "Other")
    device = parsed.device
    if words and device and device.brand not in _VAGUE_BRANDS:
        model = _printable(device.family)
        if model and model not in _VAGUE_DEVICES:
            words = f"{words} ({model})"
    return words[:DEVICE_LENGTH] or None


def client_address(address: str | None) -> str | None:
    """``address`` in its short form (an IPv4 address mapped into IPv6 as IPv4), or None."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    text = str(parsed)
    return text if len(text) <= ADDRESS_LENGTH else None
