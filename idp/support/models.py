"""Bookkeeping of the legacy import and the queue of accounts held for an email conflict."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import relationship

from idp.extensions import db
from idp.models import created_at_column, id_column, one_of
from policies.roles import HUBS

IMPORT_OUTCOMES = ("imported", "joined", "conflict")


class ImportedAccount(db.Model):
    """One legacy line that has been imported; its ``source_key`` makes a rerun a no-op.

    The key is derived from the hub, the normalized address and the organization
    name, so the same account listed again (in this file or a later one) is
    recognised however its address was typed.
    """

    __tablename__ = "imported_accounts"
    __table_args__ = (
        one_of("hub", HUBS, "hub"),
        one_of("outcome", IMPORT_OUTCOMES, "outcome"),
    )

    id = id_column()
    source_key = sa.Column(sa.String(64), nullable=False, unique=True)
    hub = sa.Column(sa.String(16), nullable=False)
    email_normalized = sa.Column(sa.String(320), nullable=False, index=True)
    organization_id = sa.Column(
        sa.String(40), sa.ForeignKey("organizations.id"), nullable=False, index=True
    )
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True)
    outcome = sa.Column(sa.String(16), nullable=False)
    created_at = created_at_column()


class EmailConflict(db.Model):
    """An account held in status ``email_conflict`` because its address was already in use.

    ``email_normalized`` is the address the account claims; the account itself
    carries a reserved placeholder address until support reassigns it, because
    the UNIQUE index on ``users.email_normalized`` admits one account per address.
    """

    __tablename__ = "email_conflicts"

    id = id_column()
    held_user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=False, unique=True)
    holder_user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=True, index=True)
    email = sa.Column(sa.String(320), nullable=False)
    email_normalized = sa.Column(sa.String(320), nullable=False, index=True)
    source = sa.Column(sa.String(200), nullable=False)
    created_at = created_at_column()
    resolved_at = sa.Column(sa.DateTime, nullable=True, index=True)

    held_user = relationship("User", foreign_keys=[held_user_id])
    holder_user = relationship("User", foreign_keys=[holder_user_id])
