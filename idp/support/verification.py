"""Proving a newly assigned address: a single-use link, and what using it changes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app

from idp.accounts.models import EmailToken, User
from idp.audit.service import record_event
from idp.errors import DomainError
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.outbox.service import enqueue_email
from idp.support.models import EmailConflict
from idp.timeutil import utcnow

PURPOSE = "verify_email"
HUB_NAMES = {"partner": "Partner Hub", "client": "Client Hub", "support": "Support console"}


class InvalidVerificationLink(DomainError):
    """The link is unknown, used, expired, or for an address the account no longer has."""

    status, code, title = 400, "invalid_verification_link", "This link cannot be used"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def send_verification(user: User, *, reason: str) -> EmailToken:
    """Queue a verification link to the account's current address; the caller commits."""
    token = secrets.token_urlsafe(32)
    row = EmailToken(
        id=new_id(PREFIXES["email_token"]),
        purpose=PURPOSE,
        token_hash=_hash(token),
        email_normalized=user.email_normalized,
        user_id=user.id,
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(seconds=current_app.config["IDP_EMAIL_TOKEN_TTL"]),
    )
    db.session.add(row)
    link = f"{current_app.config['IDP_ISSUER']}/verify-email?token={token}"
    hub = HUB_NAMES[user.hub]
    enqueue_email(
        user.email,
        f"Confirm your new {hub} email address",
        f"{reason}\n\nConfirm that this address is yours to use it for your {hub} account:\n"
        f"{link}\n\nThe link works once and expires in "
        f"{current_app.config['IDP_EMAIL_TOKEN_TTL'] // 3600} hours.\n",
        template="support_verify_email",
    )
    return row


def pending_token(token: str) -> EmailToken:
    """Return the usable token row for ``token`` or raise ``InvalidVerificationLink``."""
    row = db.session.scalar(
        db.select(EmailToken).where(
            EmailToken.token_hash == _hash(token or ""), EmailToken.purpose == PURPOSE
        )
    )
    if (
        row is None
        or row.used_at is not None
        or row.expires_at <= utcnow()
        or row.user is None
        or row.user.email_normalized != row.email_normalized
    ):
        raise InvalidVerificationLink(
            "The link is unknown, already used, expired, or no longer matches the account's "
            "address. Ask support for a new one."
        )
    return row


def confirm_email(token: str) -> User:
    """Mark the address verified; an account held for an email conflict becomes active."""
    row = pending_token(token)
    user = row.user
    row.used_at = utcnow()
    user.email_verified = True
    record_event(
        "account.email_verified",
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        after={"email": user.email},
    )
    conflict = db.session.scalar(
        db.select(EmailConflict).where(
            EmailConflict.held_user_id == user.id, EmailConflict.resolved_at.is_(None)
        )
    )
    if conflict is not None and user.status == "email_conflict":
        user.status = "active"
        conflict.resolved_at = utcnow()
        record_event(
            "email_conflict.resolved",
            actor_type="user",
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            before={"status": "email_conflict", "claimed_email": conflict.email},
            after={"status": "active", "email": user.email},
        )
    db.session.commit()
    return user
