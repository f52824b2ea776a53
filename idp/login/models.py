"""Failed-login counters, used when no Redis is configured (shared through the database)."""

from __future__ import annotations

import sqlalchemy as sa

from idp.extensions import db


class LoginFailure(db.Model):
    """Recent failed logins for one account or one address (``key`` is a SHA-256)."""

    __tablename__ = "login_failures"

    key = sa.Column(sa.String(64), primary_key=True)
    failures = sa.Column(sa.Integer, nullable=False, default=0)
    last_failed_at = sa.Column(sa.DateTime, nullable=False)
