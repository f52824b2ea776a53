"""Stored signing keys; the private half is AES-GCM encrypted under the key-encryption key."""

from __future__ import annotations

import sqlalchemy as sa

from idp.extensions import db
from idp.models import created_at_column


class SigningKey(db.Model):
    """One ES256 key pair.

    A key signs from ``activates_at`` until a newer key activates, and stays
    published in the JWKS from its creation until its successor's activation plus the longest
    token lifetime, so a client with a cached JWKS never meets an unknown ``kid``.
    """

    __tablename__ = "signing_keys"

    kid = sa.Column(sa.String(64), primary_key=True)
    algorithm = sa.Column(sa.String(10), nullable=False, default="ES256")
    private_key_encrypted = sa.Column(sa.Text, nullable=False)
    public_jwk = sa.Column(sa.JSON, nullable=False)
    created_at = created_at_column()
    activates_at = sa.Column(sa.DateTime, nullable=False, index=True)
