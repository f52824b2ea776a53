"""Encryption of private keys at rest with a key derived from IDP_KEY_ENCRYPTION_KEY."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(kek: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"idp signing keys v1"
    ).derive(kek.encode())


def encrypt(kek: str, plaintext: bytes, associated: str) -> str:
    """AES-256-GCM encrypt ``plaintext`` bound to ``associated`` (the key id)."""
    nonce = os.urandom(12)
    sealed = AESGCM(_derive(kek)).encrypt(nonce, plaintext, associated.encode())
    return base64.b64encode(nonce + sealed).decode()


def decrypt(kek: str, token: str, associated: str) -> bytes:
    """Reverse ``encrypt``; raises ``cryptography.exceptions.InvalidTag`` on a wrong key."""
    raw = base64.b64decode(token)
    return AESGCM(_derive(kek)).decrypt(raw[:12], raw[12:], associated.encode())
