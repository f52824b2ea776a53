"""Organizations and the memberships that give users roles in them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import relationship

from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.models import created_at_column, id_column, one_of
from policies.roles import HUBS, ROLES_BY_HUB

ALL_ROLES = sorted({role for roles in ROLES_BY_HUB.values() for role in roles})


class Organization(db.Model):
    """A partner, a client business, or the support organization."""

    __tablename__ = "organizations"
    __table_args__ = (one_of("kind", HUBS, "kind"),)

    id = id_column()
    kind = sa.Column(sa.String(16), nullable=False, index=True)
    name = sa.Column(sa.String(200), nullable=False)
    onboarding_partner_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=True, index=True
    )
    # The kind an organization was made first of because there was none (the support
    # organization): UNIQUE, so that two commands finding none at once make one.
    first_of = sa.Column(sa.String(16), nullable=True, unique=True)
    created_at = created_at_column()

    onboarding_partner = relationship("Organization", remote_side=[id])

    @classmethod
    def create(cls, kind: str, name: str, **kwargs) -> Organization:
        """Build an organization with an id typed by its kind (``pa_``, ``cl_``, ``su_``)."""
        return cls(id=new_id(PREFIXES[kind]), kind=kind, name=name, **kwargs)


class Membership(db.Model):
    """A user's role in one organization of the user's own hub."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "organization_id", name="uq_memberships_user_org"),
        one_of("role", ALL_ROLES, "role"),
    )

    id = id_column()
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True)
    organization_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    role = sa.Column(sa.String(16), nullable=False)
    created_at = created_at_column()

    user = relationship("User", back_populates="memberships")
    organization = relationship("Organization")

    @classmethod
    def create(cls, user, organization: Organization, role: str) -> Membership:
        """Build a membership, refusing a role that does not belong to the user's hub."""
        if organization.kind != user.hub or role not in ROLES_BY_HUB[user.hub]:
            raise ValueError(f"role {role!r} in a {organization.kind} org for a {user.hub} user")
        return cls(
            id=new_id(PREFIXES["membership"]), user=user, organization=organization, role=role
        )


_OPEN_INVITATION = "accepted_at IS NULL AND revoked_at IS NULL"


class Invitation(db.Model):
    """An emailed invitation to join a partner organization; the token is stored hashed.

    An address has at most one open (neither accepted nor revoked) invitation per
    partner, a partial UNIQUE index; an expired one is revoked before a new one.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        one_of("role", ALL_ROLES, "role"),
        sa.Index(
            "uq_invitations_open_per_address",
            "organization_id",
            "email_normalized",
            unique=True,
            sqlite_where=sa.text(_OPEN_INVITATION),
            postgresql_where=sa.text(_OPEN_INVITATION),
        ),
    )

    id = id_column()
    organization_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    email = sa.Column(sa.String(320), nullable=False)
    email_normalized = sa.Column(sa.String(320), nullable=False, index=True)
    role = sa.Column(sa.String(16), nullable=False)
    token_hash = sa.Column(sa.String(64), nullable=False, unique=True)
    invited_by_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=True, index=True)
    created_at = created_at_column()
    expires_at = sa.Column(sa.DateTime, nullable=False)
    accepted_at = sa.Column(sa.DateTime, nullable=True)
    revoked_at = sa.Column(sa.DateTime, nullable=True)

    organization = relationship("Organization")
