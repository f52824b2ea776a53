"""Revoking token families: one family, or every family of a user (the caller commits)."""

from __future__ import annotations

from idp.audit.service import record_event
from idp.extensions import db
from idp.oauth.models import TokenFamily
from idp.timeutil import utcnow


def revoke_family(family: TokenFamily, reason: str, *, actor_id: str | None = None) -> bool:
    """Revoke one family (its refresh tokens and access tokens); False when already revoked."""
    if family.revoked_at is not None:
        return False
    family.revoked_at = utcnow()
    family.revoked_reason = reason[:80]
    record_event(
        "token_family.revoked",
        actor_type="user" if actor_id else "system",
        actor_id=actor_id,
        target_type="token_family",
        target_id=family.id,
        organization_id=family.organization_id,
        after={"client_id": family.client_id, "user_id": family.user_id},
        reason=reason,
    )
    return True


def revoke_user_tokens(user_id: str, reason: str, *, actor_id: str | None = None) -> int:
    """Revoke every live token family of ``user_id`` (refresh and access tokens) at once.

    Used when a password changes, an email is reassigned, an account is
    disabled or support ends the sessions. Does not commit: the caller does.
    Returns how many families were revoked.
    """
    families = db.session.scalars(
        db.select(TokenFamily).where(
            TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None)
        )
    ).all()
    return sum(revoke_family(f, reason, actor_id=actor_id) for f in families)
