"""Consent grants (client -> partner, channels and scopes) and consent links."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import relationship

from idp.extensions import db
from idp.models import created_at_column, id_column
from idp.timeutil import utcnow


class ConsentGrant(db.Model):
    """What a client organization lets one partner do, on which channels.

    A client has at most one active grant per partner (a partial unique index);
    a later consent visit changes that grant instead of stacking a second one.
    A revoked grant stays as history and a new approval starts a new grant.
    """

    __tablename__ = "consent_grants"
    __table_args__ = (
        sa.Index(
            "uq_consent_grants_active_pair",
            "client_id",
            "partner_id",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id = id_column()
    client_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    partner_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    # The partner's OAuth client the consent was given to (kept without a FK so
    # a deleted client does not erase the history of what was granted).
    oauth_client_id = sa.Column(sa.String(80), nullable=True)
    scope = sa.Column(sa.String(500), nullable=False)
    granted_by_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=True, index=True)
    created_at = created_at_column()
    updated_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    revoked_at = sa.Column(sa.DateTime, nullable=True)
    revoked_by_id = sa.Column(sa.String(80), nullable=True)
    revoked_reason = sa.Column(sa.String(200), nullable=True)

    client = relationship("Organization", foreign_keys=[client_id])
    partner = relationship("Organization", foreign_keys=[partner_id])
    channels = relationship(
        "GrantChannel",
        back_populates="grant",
        cascade="all, delete-orphan",
        order_by="GrantChannel.created_at",
    )

    @property
    def is_active(self) -> bool:
        """Whether the grant still allows anything."""
        return self.revoked_at is None

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes as a set."""
        return frozenset(self.scope.split())

    @property
    def channel_ids(self) -> list[str]:
        """Ids of the channels the grant covers, oldest first."""
        return [row.channel_id for row in self.channels]


class GrantChannel(db.Model):
    """One channel covered by a grant; removing the row removes the channel from it."""

    __tablename__ = "consent_grant_channels"

    grant_id = sa.Column(
        sa.String(40), sa.ForeignKey("consent_grants.id"), primary_key=True, nullable=False
    )
    channel_id = sa.Column(
        sa.String(40), sa.ForeignKey("channels.id"), primary_key=True, nullable=False, index=True
    )
    created_at = created_at_column()

    grant = relationship("ConsentGrant", back_populates="channels")
    channel = relationship("Channel")


class ConsentLink(db.Model):
    """A short, opaque link a partner emails to a client; it resumes an authorization request.

    The link id is random and unguessable; the stored request parameters are
    the partner's own (client, exactly registered redirect URI, state, scopes),
    so the client's browser carries nothing a third party could alter.
    """

    __tablename__ = "consent_links"

    id = id_column()
    partner_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    oauth_client_id = sa.Column(sa.String(80), nullable=False)
    redirect_uri = sa.Column(sa.String(2000), nullable=False)
    state = sa.Column(sa.String(500), nullable=False)
    scope = sa.Column(sa.String(500), nullable=False)
    login_hint = sa.Column(sa.String(320), nullable=True)
    code_challenge = sa.Column(sa.String(128), nullable=True)
    code_challenge_method = sa.Column(sa.String(10), nullable=True)
    created_by = sa.Column(sa.String(80), nullable=True)
    created_at = created_at_column()
    expires_at = sa.Column(sa.DateTime, nullable=False)

    partner = relationship("Organization")
