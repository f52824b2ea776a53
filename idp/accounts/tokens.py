"""Single-use, expiring email link tokens: the raw value is emailed, its SHA-256 stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app

from idp.accounts.models import EmailToken
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.timeutil import utcnow


def new_link_secret() -> tuple[str, str]:
    """Return a fresh high-entropy link secret and the SHA-256 hex digest that is stored."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_link_secret(raw)


def hash_link_secret(raw: str) -> str:
    """SHA-256 of a link secret (enough for 256-bit random values; no slow hash needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def absolute_url(path: str, **params: str) -> str:
    """The public URL of ``path`` on this service, for links in emails."""
    query = f"?{urlencode(params)}" if params else ""
    return f"{current_app.config['IDP_ISSUER']}{path}{query}"


def issue_email_token(
    purpose: str,
    email_normalized: str,
    ttl_seconds: int,
    *,
    user_id: str | None = None,
    payload: dict | None = None,
) -> str:
    """Add a token row to the session and return the raw secret for the emailed link."""
    raw, digest = new_link_secret()
    db.session.add(
        EmailToken(
            id=new_id(PREFIXES["email_token"]),
            purpose=purpose,
            token_hash=digest,
            email_normalized=email_normalized,
            user_id=user_id,
            payload=payload,
            expires_at=utcnow() + timedelta(seconds=ttl_seconds),
        )
    )
    return raw


def find_usable_token(purpose: str, raw: str | None) -> EmailToken | None:
    """The unused, unexpired token of ``purpose`` whose secret is ``raw``, or None."""
    if not raw or len(raw) > 200:
        return None
    token = db.session.scalar(
        sa.select(EmailToken).where(EmailToken.token_hash == hash_link_secret(raw))
    )
    if token is None or token.purpose != purpose:
        return None
    if token.used_at is not None or token.expires_at <= utcnow():
        return None
    return token


def claim_token(token: EmailToken) -> bool:
    """Mark ``token`` used in the current transaction; False when another request used it first."""
    result = db.session.execute(
        sa.update(EmailToken)
        .where(EmailToken.id == token.id, EmailToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def spend_user_tokens(user_id: str, purpose: str) -> None:
    """Mark every outstanding token of ``purpose`` for the user used (e.g. after a reset)."""
    _spend(EmailToken.user_id == user_id, purpose)


def spend_address_tokens(email_normalized: str, purpose: str) -> None:
    """Mark every outstanding token of ``purpose`` for the address used (e.g. a newer sign-up)."""
    _spend(EmailToken.email_normalized == email_normalized, purpose)


def _spend(whose: sa.ColumnElement[bool], purpose: str) -> None:
    db.session.execute(
        sa.update(EmailToken)
        .where(whose, EmailToken.purpose == purpose, EmailToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
