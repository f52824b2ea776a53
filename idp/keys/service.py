"""Key lifecycle and JWT signing/verification with the active key.

Rotation is by time: ``rotate`` creates a key that activates only after
``PUBLISH_AHEAD`` (longer than the JWKS cache lifetime), so every relying party
has seen its ``kid`` before the first token it signs. A retired key stays
published until every token it signed has expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from jwt.algorithms import ECAlgorithm

from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.keys.crypto import decrypt, encrypt
from idp.keys.models import SigningKey
from idp.timeutil import utcnow

ALGORITHM = "ES256"
JWKS_MAX_AGE = 300  # seconds relying parties may cache the JWKS
PUBLISH_AHEAD = timedelta(seconds=2 * JWKS_MAX_AGE)
_CACHE_SECONDS = 30
# A token naming a kid the ring lacks reloads it at most this often (seconds): anyone
# can name one, and a reload reads and decrypts every stored key.
UNKNOWN_KID_RELOAD_EVERY = 1.0
VERIFIED_MAX_ENTRIES = 10_000  # tokens per process whose signature is known good


@dataclass(frozen=True)
class LoadedKey:
    """A decrypted key ready to sign, with its public half."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey
    public_key: ec.EllipticCurvePublicKey
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
        for row in db.session.scalars(db.select(SigningKey)):
            pem = decrypt(kek, row.private_key_encrypted, row.kid)
            private_key = serialization.load_pem_private_key(pem, password=None)
            loaded[row.kid] = LoadedKey(
                kid=row.kid,
                private_key=private_key,
                public_key=private_key.public_key(),
                public_jwk=row.public_jwk,
                activates_at=row.activates_at,
            )
        return loaded


def _fingerprint(keys: dict[str, LoadedKey]) -> set[tuple[str, str]]:
    return {(kid, json.dumps(key.public_jwk, sort_keys=True)) for kid, key in keys.items()}


def keyring() -> KeyRing:
    """The application's key ring."""
    return current_app.extensions["idp_keyring"]


def _max_token_lifetime() -> timedelta:
    cfg = current_app.config
    return timedelta(seconds=max(cfg["IDP_ACCESS_TOKEN_TTL"], cfg.get("IDP_ID_TOKEN_TTL", 3600)))


def create_key(*, activate_immediately: bool) -> SigningKey:
    """Generate and store (encrypted) a new ES256 key; the caller commits."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    kid = new_id(PREFIXES["signing_key"], 16)
    jwk = json.loads(ECAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    now = utcnow()
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_key_encrypted=encrypt(current_app.config["IDP_KEY_ENCRYPTION_KEY"], pem, kid),
        public_jwk=jwk,
        created_at=now,
        activates_at=now if activate_immediately else now + PUBLISH_AHEAD,
    )
    db.session.add(row)
    return row


def ensure_signing_key() -> None:
    """Create the first key on first start; idempotent and safe under concurrent starts."""
    if db.session.scalar(db.select(SigningKey.kid).limit(1)) is None:
        create_key(activate_immediately=True)
        db.session.commit()
        keyring().invalidate()


def rotate() -> SigningKey:
    """Publish a new key now that starts signing after ``PUBLISH_AHEAD``; commit."""
    row = create_key(activate_immediately=False)
    db.session.commit()
    keyring().invalidate()
    return row


def active_key() -> LoadedKey:
    """The newest key whose activation time has passed."""
    now = utcnow()
    candidates = [k for k in keyring().keys().values() if k.activates_at <= now]
    if not candidates:
        ensure_signing_key()
        # The first key activates at its own creation, after ``now`` above.
        now = utcnow()
        candidates = [k for k in keyring().keys().values() if k.activates_at <= now]
    return max(candidates, key=lambda k: (k.activates_at, k.kid))


def published_jwks() -> dict:
    """JWKS of every key that is pending, signing, or retired with tokens still alive."""
    now = utcnow()
    keys = sorted(keyring().keys().values(), key=lambda k: (k.activates_at, k.kid))
    grace = _max_token_lifetime()
    published = []
    for index, key in enumerate(keys):
        successor = keys[index + 1] if index + 1 < len(keys) else None
        # A key retires when its successor activates; drop it once its tokens are dead.
        if successor is not None and successor.activates_at + grace < now:
            continue
        published.append(key.public_jwk)
    return {"keys": published}


def sign_jwt(claims: dict, typ: str = "JWT") -> str:
    """Sign ``claims`` with the active key, naming it by ``kid``."""
    key = active_key()
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ}
    )


def verify_jwt(
    token: str,
    *,
    audience: str | None = None,
    typ: str | None = None,
    verify_exp: bool = True,
) -> dict:
    """Verify signature, expiry and issuer of a JWT signed by one of our keys.

    ``verify_exp=False`` accepts an expired token (an ``id_token_hint`` at logout).
    Raises ``jwt.InvalidTokenError`` for anything that is not a valid token of ours.

    This runs on every bearer request and introspection, so the compact form is
    parsed once with C-speed base64 (PyJWT parses it twice, checking every
    character in Python, which cost more than the ECDSA verification itself),
    and a token seen before skips parsing and signature (``KeyRing``); the
    checks are PyJWT's, in its order: header, signature, then the claims.
    """
    ring = keyring()
    if not isinstance(token, str):
        raise jwt.DecodeError("Not enough segments")
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    known = ring.verified.get(digest)
    loaded = ring.keys()
    if known is not None and known.kid in loaded:
        _check_header(known.header, typ)
        claims = dict(known.claims)
    else:
        header, claims, signing_input, signature = _parse_compact(token)
        _check_header(header, typ)
        kid = header.get("kid")
        key = loaded.get(kid) if isinstance(kid, str) else None
        if key is None and isinstance(kid, str):
            key = ring.reload_for(kid)
        if key is None:
            raise jwt.InvalidTokenError("unknown key")
        if not _ES256.verify(signing_input, key.public_key, signature):
            raise jwt.InvalidSignatureError("Signature verification failed")
        ring.remember(digest, Verified(key.kid, header, dict(claims)))
    _validate_claims(claims, audience=audience, verify_exp=verify_exp)
    return claims


def _check_header(header: dict, typ: str | None) -> None:
    """The JOSE header checks, before the signature's (PyJWT's order)."""
    if header.get("alg") != ALGORITHM:
        raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
    if "crit" in header:
        raise jwt.InvalidTokenError("no critical header extension is supported")
    if typ is not None and str(header.get("typ", "")).lower() not in {
        typ.lower(),
        f"application/{typ.lower()}",
    }:
        raise jwt.InvalidTokenError("wrong token type")


_ES256 = ECAlgorithm(ECAlgorithm.SHA256)
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_MAX_TOKEN_LENGTH = 16 * 1024
LEEWAY = 5  # seconds of clock skew tolerated on exp, iat and nbf


def _segment(value: str, name: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 section 2), decoded in C."""
    if not _SEGMENT.fullmatch(value):
        raise jwt.DecodeError(f"Invalid {name} padding")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _parse_compact(token: str) -> tuple[dict, dict, bytes, bytes]:
    """(header, claims, signing input, signature) of a JWS compact serialization."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise jwt.DecodeError("Not enough segments")
    header_b64, claims_b64, signature_b64 = token.split(".")
    try:
        header = json.loads(_segment(header_b64, "header"))
        claims = json.loads(_segment(claims_b64, "payload"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the decoder goes, in a forged token.
        raise jwt.DecodeError("Invalid token JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise jwt.DecodeError("Invalid token JSON: not an object")
    signing_input = f"{header_b64}.{claims_b64}".encode("ascii")
    return header, claims, signing_input, _segment(signature_b64, "crypto")


def _numeric(claims: dict, name: str, error: type[jwt.InvalidTokenError]) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{name} must be a number")
    return int(value)


def _validate_claims(claims: dict, *, audience: str | None, verify_exp: bool) -> None:
    """RFC 7519 section 4.1 checks with PyJWT's semantics (``require`` exp, iat, iss)."""
    for name in ("exp", "iat", "iss"):
        if name not in claims:
            raise jwt.MissingRequiredClaimError(name)
    now = time.time()
    if _numeric(claims, "iat", jwt.InvalidIssuedAtError) > now + LEEWAY:
        raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in claims and _numeric(claims, "nbf", jwt.DecodeError) > now + LEEWAY:
        raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    expires = _numeric(claims, "exp", jwt.DecodeError)
    if verify_exp and expires <= now - LEEWAY:
        raise jwt.ExpiredSignatureError("Signature has expired")
    if claims["iss"] != current_app.config["IDP_ISSUER"]:
        raise jwt.InvalidIssuerError("Invalid issuer")
    if audience is None:
        return
    if "aud" not in claims:
        raise jwt.MissingRequiredClaimError("aud")
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise jwt.InvalidAudienceError("Invalid claim format in token")
    if audience not in audiences:
        raise jwt.InvalidAudienceError("Audience doesn't match")
