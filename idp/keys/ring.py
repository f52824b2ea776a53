"""The ring of loaded signing keys: each process's decrypted keys, and the tokens they verified.

A process reads and decrypts the stored keys at most every ``_CACHE_SECONDS``
(sooner for a kid it does not know, at most every
``UNKNOWN_KID_RELOAD_EVERY``), and remembers which tokens a key of the ring
has verified. Which of its keys may sign or verify now, with revocations
taken into account, is ``idp.keys.service.usable_keys``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import current_app

from idp.extensions import db
from idp.keys.crypto import decrypt
from idp.keys.models import SigningKey

_CACHE_SECONDS = 30
# A token naming a kid the ring lacks reloads it at most this often (seconds): anyone
# can name one, and a reload reads and decrypts every stored key.
UNKNOWN_KID_RELOAD_EVERY = 1.0
VERIFIED_MAX_ENTRIES = 10_000  # tokens per process whose signature is known good


@dataclass(frozen=True)
class LoadedKey:
    """A decrypted key ready to sign, with its public half."""

    kid: str
    algorithm: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    public_jwk: dict
    activates_at: datetime


@dataclass(frozen=True, slots=True)
class Verified:
    """A token whose signature a key of the ring verified: its parsed header and claims."""

    kid: str
    header: dict
    claims: dict


class KeyRing:
    """Process-local cache of the stored keys, reloaded at most every few seconds.

    It also remembers, by SHA-256 of the whole compact token, which tokens a
    key of the ring has verified, so a token presented again (a gateway
    introspects the same access token on every call it carries) costs no
    ECDSA verification and no parsing. A remembered token still meets every
    other check on every use (type, expiry, issuer, audience, revocation);
    the memory is dropped whenever the ring's keys change, and a token is
    trusted from it only while the key that verified it is in the ring.
    A revoked key is never loaded (``usable_keys`` reloads a ring that holds one).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._unknown_reload_at = -UNKNOWN_KID_RELOAD_EVERY
        self._keys: dict[str, LoadedKey] = {}
        self.verified: dict[bytes, Verified] = {}

    def invalidate(self) -> None:
        """Forget the cache so the next use reloads from the database."""
        with self._lock:
            self._loaded_at = 0.0

    def keys(self) -> dict[str, LoadedKey]:
        """Return every stored key by kid, reloading when the cache is stale."""
        if time.monotonic() - self._loaded_at > _CACHE_SECONDS:
            with self._lock:
                if time.monotonic() - self._loaded_at > _CACHE_SECONDS:
                    keys = self._load()
                    if _fingerprint(keys) != _fingerprint(self._keys):
                        self.verified = {}
                    self._keys = keys
                    self._loaded_at = time.monotonic()
        return self._keys

    def reload_for(self, kid: str) -> LoadedKey | None:
        """``kid``'s key after reloading the ring, if no unknown kid did so within the interval.

        A key created by another instance (its first key, or one an operator
        made active at once) is found within ``UNKNOWN_KID_RELOAD_EVERY``
        seconds; a rotated key is loaded long before it signs anything.
        """
        with self._lock:
            now = time.monotonic()
            if now - self._unknown_reload_at < UNKNOWN_KID_RELOAD_EVERY:
                return None
            self._unknown_reload_at = now
            self._loaded_at = 0.0
        return self.keys().get(kid)

    def remember(self, digest: bytes, entry: Verified) -> None:
        """Keep a verified token, forgetting all of them when the memory is full."""
        if len(self.verified) >= VERIFIED_MAX_ENTRIES:
            self.verified = {}
        self.verified[digest] = entry

    def _load(self) -> dict[str, LoadedKey]:
        kek = current_app.config["IDP_KEY_ENCRYPTION_KEY"]
        loaded: dict[str, LoadedKey] = {}
        for row in db.session.scalars(db.select(SigningKey).where(SigningKey.revoked_at.is_(None))):
            pem = decrypt(kek, row.private_key_encrypted, row.kid)
            # An RSA key's consistency check costs about half a second (3072 bits), on every
            # reload, which anyone can trigger (an unknown kid). Not needed here: AES-GCM has
            # just authenticated the key as the one this service generated.
            private_key = serialization.load_pem_private_key(
                pem, password=None, unsafe_skip_rsa_key_validation=True
            )
            loaded[row.kid] = LoadedKey(
                kid=row.kid,
                algorithm=row.algorithm,
                private_key=private_key,
                public_key=private_key.public_key(),
                public_jwk=row.public_jwk,
                activates_at=row.activates_at,
            )
        return loaded


def _fingerprint(keys: dict[str, LoadedKey]) -> set[tuple[str, str]]:
    return {(kid, json.dumps(key.public_jwk, sort_keys=True)) for kid, key in keys.items()}
