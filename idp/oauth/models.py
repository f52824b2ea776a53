"""Token families: every access token names one (``sid``); revoking it kills them all."""

from __future__ import annotations

import sqlalchemy as sa

from idp.extensions import db
from idp.models import created_at_column, id_column


class TokenFamily(db.Model):
    """One login or client-credentials issuance and everything derived from it.

    Refresh-token rotation stays inside a family; revoking the family (reuse of a
    rotated refresh token, logout, password change, account disabled) makes every
    access token carrying its ``sid`` inactive at once, on every instance.
    """

    __tablename__ = "token_families"

    id = id_column()
    client_id = sa.Column(sa.String(80), nullable=False, index=True)
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=True, index=True)
    organization_id = sa.Column(sa.String(40), nullable=True)
    created_at = created_at_column()
    expires_at = sa.Column(sa.DateTime, nullable=False)
    revoked_at = sa.Column(sa.DateTime, nullable=True)
    revoked_reason = sa.Column(sa.String(80), nullable=True)
