"""The claims about a user shared with relying parties (ID token and userinfo)."""

from __future__ import annotations

from idp.accounts.models import User
from idp.extensions import db
from idp.orgs.models import Membership, Organization


def memberships_of(user: User) -> list[dict]:
    """The user's organizations with their kind, name and role."""
    rows = db.session.execute(
        db.select(Organization.id, Organization.name, Organization.kind, Membership.role)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user.id)
        .order_by(Organization.name)
    ).all()
    return [{"id": r.id, "name": r.name, "kind": r.kind, "role": r.role} for r in rows]


def user_claims(user: User, organization_id: str | None, scope: str) -> dict:
    """OpenID claims by scope: ``email`` scope gives the address, ``profile`` the name."""
    scopes = set(scope.split())
    claims: dict = {"hub": user.hub, "org": organization_id}
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = bool(user.email_verified)
    if "profile" in scopes and user.name:
        claims["name"] = user.name
    return claims


def userinfo(user: User, organization_id: str | None, scope: str) -> dict:
    """The userinfo response (OpenID Connect Core 5.3): claims plus memberships."""
    claims = {"sub": user.id, **user_claims(user, organization_id, scope)}
    claims["memberships"] = memberships_of(user)
    return claims
