"""The user account and the single-use email tokens that prove mailbox ownership."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.orm import relationship

from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.models import created_at_column, id_column, one_of
from policies.roles import HUBS

USER_STATUSES = ("active", "disabled", "email_conflict")
EMAIL_TOKEN_PURPOSES = ("signup", "verify_email", "password_reset")
# A sign-up link not yet used or spent by a newer sign-up of its address.
UNSPENT_SIGNUP = "purpose = 'signup' AND used_at IS NULL"


def new_security_stamp() -> str:
    """Return a fresh stamp; changing it ends every browser session of the account."""
    return secrets.token_hex(16)


class User(db.Model):
    """One login identity, in exactly one hub.

    ``email_normalized`` carries the UNIQUE index that makes "one account per
    email across all hubs" hold in the database, under any concurrency.
    """

    __tablename__ = "users"
    __table_args__ = (
        one_of("hub", HUBS, "hub"),
        one_of("status", USER_STATUSES, "status"),
    )

    id = id_column()
    email = sa.Column(sa.String(320), nullable=False)
    email_normalized = sa.Column(sa.String(320), nullable=False, unique=True)
    email_verified = sa.Column(sa.Boolean, nullable=False, default=False)
    name = sa.Column(sa.String(200), nullable=True)
    hub = sa.Column(sa.String(16), nullable=False, index=True)
    status = sa.Column(sa.String(20), nullable=False, default="active", index=True)
    password_hash = sa.Column(sa.String(255), nullable=True)
    password_changed_at = sa.Column(sa.DateTime, nullable=True)
    security_stamp = sa.Column(sa.String(32), nullable=False, default=new_security_stamp)
    last_organization_id = sa.Column(sa.String(40), nullable=True)
    last_login_at = sa.Column(sa.DateTime, nullable=True)
    created_at = created_at_column()

    memberships = relationship(
        "Membership", back_populates="user", order_by="Membership.created_at"
    )

    @classmethod
    def create(cls, *, email: str, email_normalized: str, hub: str, **kwargs) -> User:
        """Build a user with a fresh ``usr_`` id."""
        return cls(
            id=new_id(PREFIXES["user"]),
            email=email,
            email_normalized=email_normalized,
            hub=hub,
            security_stamp=new_security_stamp(),
            **kwargs,
        )

    @property
    def is_active(self) -> bool:
        """Whether the account may log in at all."""
        return self.status == "active"


class EmailToken(db.Model):
    """A single-use, expiring link token sent by email; only its SHA-256 is stored.

    ``payload`` holds what a pending sign-up needs to create the account when
    the link is used (so nothing is created before the mailbox is proven).
    An address has at most one unspent sign-up link, a partial UNIQUE index:
    a newer sign-up spends the older link before it writes its own.
    """

    __tablename__ = "email_tokens"
    __table_args__ = (
        one_of("purpose", EMAIL_TOKEN_PURPOSES, "purpose"),
        sa.Index(
            "uq_email_tokens_unspent_signup",
            "email_normalized",
            unique=True,
            sqlite_where=sa.text(UNSPENT_SIGNUP),
            postgresql_where=sa.text(UNSPENT_SIGNUP),
        ),
    )

    id = id_column()
    purpose = sa.Column(sa.String(20), nullable=False)
    token_hash = sa.Column(sa.String(64), nullable=False, unique=True)
    email_normalized = sa.Column(sa.String(320), nullable=False, index=True)
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=True, index=True)
    payload = sa.Column(sa.JSON, nullable=True)
    created_at = created_at_column()
    expires_at = sa.Column(sa.DateTime, nullable=False)
    used_at = sa.Column(sa.DateTime, nullable=True)

    user = relationship("User")
