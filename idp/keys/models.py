"""Stored signing keys; the private half is AES-GCM encrypted under the key-encryption key."""

from __future__ import annotations

import sqlalchemy as sa

from idp.extensions import db
from idp.models import created_at_column

# JWS algorithms (RFC 7518 section 3.1) the ring keeps keys for: ES256 signs access
# tokens and, by default, ID tokens; RS256 signs the ID tokens of clients that ask for it
# (OpenID Connect Core 15.1 makes it mandatory to implement).
SIGNING_ALGORITHMS = ("ES256", "RS256")


class SigningKey(db.Model):
    """One key pair of one algorithm (``SIGNING_ALGORITHMS``).

    A key signs from ``activates_at`` until a newer key of its algorithm activates, and
    stays published in the JWKS from its creation until that successor's activation plus
    the longest token lifetime, so a client with a cached JWKS never meets an unknown ``kid``.
    A revoked key does none of this from its revocation on.
    """

    __tablename__ = "signing_keys"

    kid = sa.Column(sa.String(64), primary_key=True)
    algorithm = sa.Column(sa.String(10), nullable=False, default="ES256")
    private_key_encrypted = sa.Column(sa.Text, nullable=False)
    public_jwk = sa.Column(sa.JSON, nullable=False)
    created_at = created_at_column()
    activates_at = sa.Column(sa.DateTime, nullable=False, index=True)
    # The algorithm this key was made first of (it signed at once): unique, so of two
    # instances that find no key of an algorithm at once, only one stores a first key.
    # The row keeps it when the key is revoked: the key that replaces a revoked one is
    # made by the revocation itself, in its transaction, never as a first key.
    first_of = sa.Column(sa.String(10), nullable=True, unique=True)
    # When an operator withdrew the key (``idp keys revoke``): it no longer signs, is no
    # longer published, and no token it signed verifies.
    revoked_at = sa.Column(sa.DateTime, nullable=True)
