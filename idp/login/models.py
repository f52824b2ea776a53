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


class LoginSession(db.Model):
    """One browser login, kept on the server so that logging out really ends it.

    The session cookie only names this row (with the account's security stamp);
    a copy of the cookie stops working once the row is ended, on every instance.
    ``device`` (browser and system, from the User-Agent) and ``ip_address``
    are read once, at the login, so that its owner can tell their browsers
    apart; ``last_seen_at`` is moved forward at most every few minutes while
    the browser is in use. Logins from before these were recorded hold none.
    """

    __tablename__ = "login_sessions"

    id = sa.Column(sa.String(40), primary_key=True)
    user_id = sa.Column(sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True)
    created_at = sa.Column(sa.DateTime, nullable=False)
    ended_at = sa.Column(sa.DateTime, nullable=True)
    device = sa.Column(sa.String(80), nullable=True)
    ip_address = sa.Column(sa.String(45), nullable=True)
    last_seen_at = sa.Column(sa.DateTime, nullable=True)
