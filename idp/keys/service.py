"""Signing keys: their creation, which loaded keys may be used, and signing and verifying JWTs.

The ring holds keys of each of ``SIGNING_ALGORITHMS``: ES256 for access tokens
and by default for ID tokens, RS256 for the ID tokens of clients registered
for it. Each algorithm has its own active key and its own rotation.

Keys are loaded into each process's ring by ``idp.keys.ring``, rotated and revoked by
``idp.keys.operations``, and published by
``idp.keys.jwks``. Every instance learns of a revoked key on its next request
through the ``signing-keys`` change counter: a ring loaded before the
revocation is reloaded before it signs or verifies anything. Without Redis
there is no counter, and another process's ring drops the key at its next
reload (within ``idp.keys.ring._CACHE_SECONDS``); the revoking process's own ring at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import current_app
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy.exc import IntegrityError

from idp import changes
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.keys.crypto import encrypt
from idp.keys.models import SigningKey
from idp.keys.ring import KeyRing, LoadedKey, Verified
from idp.timeutil import utcnow

ALGORITHM = "ES256"  # access tokens, and ID tokens unless the client registered another
# NIST SP 800-57 part 1: 3072 bits match ES256's 128-bit strength; a signature costs a
# few milliseconds, paid once per ID token (a login), never on an access token.
RSA_KEY_BITS = 3072
JWKS_MAX_AGE = 300  # seconds relying parties may cache the JWKS
PUBLISH_AHEAD = timedelta(seconds=2 * JWKS_MAX_AGE)

# Moved by any change to a stored key: the JWKS (``idp.keys.jwks``) and the revoked kids
# are kept in memory under it.
SIGNING_KEYS = changes.counter("signing-keys", "signing_keys", inserts=("signing_keys",))
_revocations = changes.cache("signing-key-revocations", SIGNING_KEYS, max_entries=1)


def keyring() -> KeyRing:
    """The application's key ring."""
    return current_app.extensions["idp_keyring"]


def _revoked_kids() -> frozenset[str]:
    """The kids of every revoked key: from memory until a key changes, with Redis."""
    return _revocations.get(
        "revoked",
        lambda: frozenset(
            db.session.scalars(db.select(SigningKey.kid).where(SigningKey.revoked_at.isnot(None)))
        ),
    )


def usable_keys() -> dict[str, LoadedKey]:
    """The ring's keys, none of them revoked.

    The ring reloads every ``idp.keys.ring._CACHE_SECONDS``; a key revoked through another
    instance since its last load makes it reload now, so a revoked key neither
    signs nor verifies anywhere from the next request on.
    """
    app = current_app._get_current_object()  # one context lookup: this runs for every token
    ring = app.extensions["idp_keyring"]
    keys = ring.keys()
    if not app.config.get("IDP_REDIS_URL"):
        # No counters to learn of it from: another process's revocation arrives with the
        # ring's next reload, within _CACHE_SECONDS, and verifying reads no database.
        return keys
    revoked = _revoked_kids()
    if not revoked.isdisjoint(keys):
        ring.invalidate()
        keys = ring.keys()
    return keys


def max_token_lifetime() -> timedelta:
    cfg = current_app.config
    return timedelta(seconds=max(cfg["IDP_ACCESS_TOKEN_TTL"], cfg.get("IDP_ID_TOKEN_TTL", 3600)))


def _new_private_key(algorithm: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def create_key(*, activate_immediately: bool, algorithm: str = ALGORITHM) -> SigningKey:
    """Generate and store (encrypted) a new key of ``algorithm``; the caller commits."""
    private_key = _new_private_key(algorithm)
    kid = new_id(PREFIXES["signing_key"], 16)
    jwk = _JWA[algorithm].to_jwk(private_key.public_key(), as_dict=True)
    # PyJWT adds key_ops to an RSA key; RFC 7517 section 4.3 says not to use it beside "use".
    jwk.pop("key_ops", None)
    jwk.update({"kid": kid, "alg": algorithm, "use": "sig"})
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    now = utcnow()
    row = SigningKey(
        kid=kid,
        algorithm=algorithm,
        private_key_encrypted=encrypt(current_app.config["IDP_KEY_ENCRYPTION_KEY"], pem, kid),
        public_jwk=jwk,
        created_at=now,
        activates_at=now if activate_immediately else now + PUBLISH_AHEAD,
    )
    db.session.add(row)
    return row


def add_first_key(algorithm: str = ALGORITHM) -> SigningKey | None:
    """Add a key of ``algorithm``, signing at once, when the ring has none; the caller commits.

    The key when one was added, else None. RSA keys are made only when first
    wanted (a client registered for RS256, a rotation): generating one takes up
    to seconds.
    """
    exists = db.select(SigningKey.kid).where(SigningKey.algorithm == algorithm).limit(1)
    if db.session.scalar(exists) is not None:
        return None
    try:
        with db.session.begin_nested():
            row = create_key(activate_immediately=True, algorithm=algorithm)
            row.first_of = algorithm
            db.session.flush()
    except IntegrityError:
        # Another instance stored the algorithm's first key since the check: that one signs.
        return None
    return row


def ensure_signing_key(algorithm: str = ALGORITHM) -> None:
    """Create the first key of ``algorithm``; idempotent, and one key however many race."""
    if add_first_key(algorithm) is not None:
        db.session.commit()
        keyring().invalidate()


def newest_active(keys: dict[str, LoadedKey], algorithm: str) -> LoadedKey | None:
    """The newest of ``keys`` of ``algorithm`` whose activation time has passed."""
    now = utcnow()
    candidates = [k for k in keys.values() if k.activates_at <= now and k.algorithm == algorithm]
    return max(candidates, key=lambda k: (k.activates_at, k.kid)) if candidates else None


def active_key(algorithm: str = ALGORITHM) -> LoadedKey:
    """The newest unrevoked key of ``algorithm`` whose activation time has passed."""
    key = newest_active(usable_keys(), algorithm)
    if key is None:
        ensure_signing_key(algorithm)
        # Another transaction may have added it since the ring was loaded; and the first
        # key activates at its own creation, after the reading above.
        keyring().invalidate()
        key = newest_active(usable_keys(), algorithm)
        if key is None:
            raise LookupError(f"no {algorithm} signing key is active")
    return key


def sign_with(key: LoadedKey, claims: dict, typ: str = "JWT") -> str:
    """Sign ``claims`` with ``key``, naming it by ``kid``."""
    return jwt.encode(
        claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": typ}
    )


def sign_jwt(claims: dict, typ: str = "JWT", algorithm: str = ALGORITHM) -> str:
    """Sign ``claims`` with the active key of ``algorithm``, naming it by ``kid``."""
    return sign_with(active_key(algorithm), claims, typ)


def verify_jwt(
    token: str,
    *,
    audience: str | None = None,
    typ: str | None = None,
    verify_exp: bool = True,
    algorithms: tuple[str, ...] = (ALGORITHM,),
) -> dict:
    """Verify signature, expiry and issuer of a JWT signed by one of our keys.

    ``verify_exp=False`` accepts an expired token (an ``id_token_hint`` at logout).
    ``algorithms`` are those the token may be signed with (RFC 8725 section 3.1): an
    access token ES256 only, an ID token its client's. The ``alg`` of the header must
    also be the algorithm of the key its ``kid`` names, so a key of one algorithm never
    vouches for a signature of another.
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
    loaded = usable_keys()
    if known is not None and known.kid in loaded:
        _check_header(known.header, typ, algorithms)
        claims = dict(known.claims)
    else:
        header, claims, signing_input, signature = _parse_compact(token)
        _check_header(header, typ, algorithms)
        kid = header.get("kid")
        key = loaded.get(kid) if isinstance(kid, str) else None
        if key is None and isinstance(kid, str):
            key = ring.reload_for(kid)
        if key is None:
            raise jwt.InvalidTokenError("unknown key")
        if header["alg"] != key.algorithm:
            raise jwt.InvalidAlgorithmError("The key named by kid is for another alg")
        if not _JWA[key.algorithm].verify(signing_input, key.public_key, signature):
            raise jwt.InvalidSignatureError("Signature verification failed")
        ring.remember(digest, Verified(key.kid, header, dict(claims)))
    _validate_claims(claims, audience=audience, verify_exp=verify_exp)
    return claims


def _check_header(header: dict, typ: str | None, algorithms: tuple[str, ...]) -> None:
    """The JOSE header checks, before the signature's (PyJWT's order)."""
    if header.get("alg") not in algorithms:
        raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
    if "crit" in header:
        raise jwt.InvalidTokenError("no critical header extension is supported")
    if typ is not None and str(header.get("typ", "")).lower() not in {
        typ.lower(),
        f"application/{typ.lower()}",
    }:
        raise jwt.InvalidTokenError("wrong token type")


_JWA = {"ES256": ECAlgorithm(ECAlgorithm.SHA256), "RS256": RSAAlgorithm(RSAAlgorithm.SHA256)}
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
