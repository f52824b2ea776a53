"""Reading a presented token (access JWT or refresh token) for revocation and introspection."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt

from idp.extensions import db
from idp.oauth.family_state import FamilyState, family_state
from idp.oauth.models import RefreshToken, TokenFamily, sha256_hex
from idp.timeutil import epoch_seconds, utcnow


@dataclass
class PresentedToken:
    """A token of ours and the family that decides whether it is still alive."""

    kind: str  # "access_token" or "refresh_token"
    client_id: str
    family: FamilyState | TokenFamily | None
    claims: dict = field(default_factory=dict)
    expires_at: int = 0
    rotated: bool = False

    @property
    def user_id(self) -> str | None:
        """The user the token acts for (None for machine tokens)."""
        return self.family.user_id if self.family is not None else None

    def check_client(self, client) -> bool:
        """Whether it was issued to ``client``."""
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        """Past its own expiry or its family's absolute lifetime."""
        if self.expires_at and self.expires_at <= time.time():
            return True
        return self.family is None or self.family.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        """Its family is revoked, or (refresh token) it was already rotated."""
        return self.rotated or self.family is None or self.family.revoked_at is not None

    def get_scope(self) -> str:
        """Granted scope."""
        return self.claims.get("scope", "")


def parse_access_token(value: str) -> PresentedToken | None:
    """Our signed ``at+jwt`` (any state of its family), or None for anything else."""
    from idp.auth.bearer import api_audience
    from idp.keys.service import verify_jwt

    try:
        claims = verify_jwt(value, audience=api_audience(), typ="at+jwt")
    except (jwt.InvalidTokenError, ValueError):
        return None
    family = family_state(claims.get("sid"))
    return PresentedToken(
        kind="access_token",
        client_id=claims.get("client_id", ""),
        family=family,
        claims=claims,
        expires_at=int(claims["exp"]),
    )


def parse_refresh_token(value: str) -> PresentedToken | None:
    """A stored refresh token (rotated or not), or None."""
    row = db.session.scalar(
        db.select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(value))
    )
    if row is None or row.family is None:  # the family purged since the row was read
        return None
    family = row.family
    return PresentedToken(
        kind="refresh_token",
        client_id=family.client_id,
        family=family,
        claims={
            "scope": row.scope,
            "sub": family.user_id or family.client_id,
            "client_id": family.client_id,
            "org": family.organization_id,
            "iat": int(epoch_seconds(row.created_at)),
        },
        rotated=row.rotated_at is not None,
    )


def parse_token(value: str, hint: str | None) -> PresentedToken | None:
    """Try the hinted type first, then the other (RFC 7009 2.1, RFC 7662 2.1)."""
    if not value or len(value) > 8192:
        return None
    parsers = [parse_access_token, parse_refresh_token]
    if hint == "refresh_token":
        parsers.reverse()
    for parser in parsers:
        token = parser(value)
        if token is not None:
            return token
    return None
