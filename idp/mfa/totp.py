"""Time-based one-time passwords (RFC 6238) as authenticator apps make them.

30-second steps, 6 digits, HMAC-SHA-1: what every authenticator app assumes
when an ``otpauth://`` URI names nothing else. A code of the step before or
after the current one is accepted too (RFC 6238 section 5.2, clock drift).
The secret is kept sealed with the key-encryption key (AES-256-GCM, bound to
the account's id, ``idp.keys.crypto``), never in clear.
"""

from __future__ import annotations

import hmac
import time

import pyotp
import segno
from flask import current_app

from idp.keys.crypto import decrypt, encrypt

DIGITS = 6
INTERVAL = 30
DRIFT_STEPS = 1
_ASSOCIATED = "two-step secret of "


def new_secret() -> str:
    """A fresh random secret, base32 (160 bits, RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def seal(secret: str, user_id: str) -> str:
    """Encrypt ``secret`` for storage, bound to the account ``user_id``."""
    kek = current_app.config["IDP_KEY_ENCRYPTION_KEY"]
    return encrypt(kek, secret.encode(), _ASSOCIATED + user_id)


def unseal(sealed: str, user_id: str) -> str:
    """The secret ``seal`` stored for ``user_id``."""
    kek = current_app.config["IDP_KEY_ENCRYPTION_KEY"]
    return decrypt(kek, sealed, _ASSOCIATED + user_id).decode()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """``uri`` as a QR code, an inline SVG image with a text alternative."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=4, omitsize=False)
    return svg.replace(
        "<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1
    )


def normalized_code(typed: str) -> str:
    """The digits of a typed code (spaces and dashes some apps show are dropped)."""
    return "".join(ch for ch in typed if ch not in " -\t")


def matching_step(secret: str, typed: str, now: float | None = None) -> int | None:
    """The 30-second step whose code ``typed`` is (the current one or one beside it), or None.

    Each candidate is compared in constant time.
    """
    code = normalized_code(typed)
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    current = int((time.time() if now is None else now) // INTERVAL)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            found = step
    return found
