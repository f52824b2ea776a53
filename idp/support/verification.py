"""Proving a newly assigned address: a single-use link, and what using it changes."""

from __future__ import annotations

from flask import current_app

from idp.accounts.emails import email_hmac
from idp.accounts.models import EmailToken, User
from idp.accounts.service import hub_name
from idp.accounts.tokens import (
    absolute_url,
    claim_token,
    find_usable_token,
    issue_email_token,
    spend_user_tokens,
)
from idp.audit.service import record_event
from idp.errors import DomainError
from idp.extensions import db
from idp.outbox.service import enqueue_templated_email
from idp.support.models import EmailConflict
from idp.timeutil import utcnow

PURPOSE = "verify_email"


class InvalidVerificationLink(DomainError):
    """The link is unknown, used, expired, or for an address the account no longer has."""

    status, code, title = 400, "invalid_verification_link", "This link cannot be used"


def send_verification(user: User, *, held: bool = False) -> None:
    """Queue a verification link to the account's current address; the caller commits.

    Only the newest link works: the earlier ones are spent, or one mailed for an
    address the account was moved away from would confirm it again once support
    moves the account back.
    """
    spend_user_tokens(user.id, PURPOSE)
    ttl = current_app.config["IDP_EMAIL_TOKEN_TTL"]
    raw = issue_email_token(PURPOSE, user.email_normalized, ttl, user_id=user.id)
    enqueue_templated_email(
        user.email,
        f"Confirm your new {hub_name(user.hub)} email address",
        "support/email/verify_new_address.txt",
        hub=hub_name(user.hub),
        held=held,
        verify_url=absolute_url("/verify-email", token=raw),
        ttl_hours=max(ttl // 3600, 1),
    )


def pending_token(token: str | None) -> EmailToken:
    """Return the usable token row for ``token`` or raise ``InvalidVerificationLink``."""
    row = find_usable_token(PURPOSE, token)
    if row is None or row.user is None or row.user.email_normalized != row.email_normalized:
        raise InvalidVerificationLink(
            "The link is unknown, already used, expired, or no longer matches the account's "
            "address. Ask support for a new one."
        )
    return row


def confirm_email(token: str) -> User:
    """Mark the address verified; an account held for an email conflict becomes active."""
    row = pending_token(token)
    user = row.user
    if not claim_token(row):
        raise InvalidVerificationLink("The link has just been used.")
    user.email_verified = True
    record_event(
        "account.email_verified",
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        after={"email_hmac": email_hmac(user.email_normalized)},
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
            # The log names addresses by their keyed digest only (``email_hmac``).
            before={
                "status": "email_conflict",
                "claimed_email_hmac": email_hmac(conflict.email_normalized),
            },
            after={"status": "active", "email_hmac": email_hmac(user.email_normalized)},
        )
    db.session.commit()
    return user
