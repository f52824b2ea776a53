"""Standard Webhooks signing secrets and signatures (``whsec_``, ``v1,`` HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from flask import current_app

from idp.keys.crypto import decrypt, encrypt

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` followed by 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal_secret(secret: str, endpoint_id: str) -> str:
    """Encrypt a signing secret under the KEK, bound to its endpoint id."""
    return encrypt(current_app.config["IDP_KEY_ENCRYPTION_KEY"], secret.encode(), endpoint_id)


def open_secret(sealed: str, endpoint_id: str) -> str:
    """Decrypt a signing secret sealed by ``seal_secret``."""
    return decrypt(current_app.config["IDP_KEY_ENCRYPTION_KEY"], sealed, endpoint_id).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256(id.timestamp.body)>``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
