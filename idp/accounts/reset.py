"""Password reset by an emailed single-use link that expires."""

from __future__ import annotations

from flask import current_app

from idp.accounts.emails import email_hmac
from idp.accounts.models import EmailToken, User, new_security_stamp
from idp.accounts.service import (
    LinkInvalid,
    checked_password_hash,
    hub_name,
    organization_names,
    parse_address,
    user_by_email,
)
from idp.accounts.tokens import (
    absolute_url,
    claim_token,
    find_usable_token,
    issue_email_token,
    spend_user_tokens,
)
from idp.audit.service import record_event
from idp.extensions import db
from idp.oauth.service import revoke_user_tokens
from idp.outbox.service import enqueue_templated_email
from idp.timeutil import utcnow

PURPOSE = "password_reset"


def send_password_reset(user: User, *, first: bool = False) -> None:
    """Queue a single-use password-reset link to the account's address; the caller commits.

    ``first``: the account was just made for its owner, who has no password yet
    (an operator created a support account); the email says so.
    """
    ttl = current_app.config["IDP_PASSWORD_RESET_TTL"]
    raw = issue_email_token(PURPOSE, user.email_normalized, ttl, user_id=user.id)
    hub = hub_name(user.hub)
    enqueue_templated_email(
        user.email,
        f"Choose the password of your {hub} account" if first else "Choose a new password",
        "accounts/email/password_first.txt" if first else "accounts/email/password_reset.txt",
        hub=hub,
        reset_url=absolute_url("/password-reset/confirm", token=raw),
        ttl_minutes=max(ttl // 60, 1),
        again_url=absolute_url("/password-reset"),
    )


def send_password_changed_notice(user: User, via: str = "reset") -> None:
    """Tell the account's address that its password changed, and how; the caller commits.

    ``via`` is "reset" (an emailed link) or "current_password" (typed by a
    signed-in person). No link in it: nothing to undo by email, only whom to
    ask if it was not the owner.
    """
    enqueue_templated_email(
        user.email,
        f"The password of your {hub_name(user.hub)} account was changed",
        "accounts/email/password_changed_notice.txt",
        hub=hub_name(user.hub),
        email=user.email,
        changed_at=user.password_changed_at.strftime("%Y-%m-%d %H:%M UTC"),
        via=via,
    )


def replace_password(user: User, password_hash: str, via: str) -> None:
    """Give ``user`` a new password and end what the old one opened; the caller commits.

    The security stamp changes (every browser session ends at its next
    request), the outstanding reset links are spent, every token family and
    server-side login of the account ends, and the mailbox is told. The
    account's row is written first, as every path that ends logins does.
    """
    user.password_hash = password_hash
    user.password_changed_at = utcnow()
    user.security_stamp = new_security_stamp()
    spend_user_tokens(user.id, PURPOSE)
    revoke_user_tokens(user.id, "password_changed", actor_id=user.id)
    send_password_changed_notice(user, via)


def request_password_reset(email: str) -> None:
    """Email the address a reset link, or a note that no active account uses it.

    Both branches queue one message, record one event and commit once, so the
    answer (always the same) also takes about as long either way: nobody learns
    from it which addresses have accounts; only the mailbox owner does.
    """
    address = parse_address(email)
    # FOR SHARE until the link is committed: a support reassignment or a disable of
    # the account either commits first (then the address no longer finds an active
    # account here) or waits, and then spends the link this request made.
    user = user_by_email(address.normalized, hold=True)
    # Which address was asked about, for investigators, without the address itself.
    after = {"email_hmac": email_hmac(address.normalized)}
    if user is not None and user.is_active:
        send_password_reset(user)
        target_id = user.id
    else:
        enqueue_templated_email(
            address.display,
            "Password reset requested",
            "accounts/email/password_reset_no_account.txt",
            signup_url=absolute_url("/signup"),
        )
        target_id = None
        after["account"] = False
    record_event(
        "password_reset.requested",
        actor_type="anonymous",
        actor_id=None,
        target_type="user" if target_id else None,
        target_id=target_id,
        after=after,
    )
    db.session.commit()


def _usable_link(raw_token: str | None) -> EmailToken | None:
    """The reset link's token while its account is active and still has the address it
    was mailed to (an account support moved to another address is not the old one's)."""
    token = find_usable_token(PURPOSE, raw_token)
    if token is None or token.user is None or not token.user.is_active:
        return None
    if token.email_normalized != token.user.email_normalized:
        return None
    return token


def reset_link_is_usable(raw_token: str | None) -> bool:
    """Whether the link can still set a password (to show the form or a clear message)."""
    return _usable_link(raw_token) is not None


def reset_link_account(raw_token: str | None) -> User | None:
    """The account whose password a usable link sets (the form names it), or None."""
    token = _usable_link(raw_token)
    return token.user if token is not None else None


def complete_password_reset(raw_token: str | None, new_password: str) -> User:
    """Set a new password from a reset link, end every session and token, spend the link."""
    token = _usable_link(raw_token)
    if token is None:
        raise LinkInvalid("Ask for a new password-reset link.")
    password_hash = checked_password_hash(
        new_password, email=token.user.email, names=organization_names(token.user)
    )
    if not claim_token(token):
        db.session.rollback()
        raise LinkInvalid("Ask for a new password-reset link.")
    user = token.user
    user.email_verified = True  # following the emailed link proves the mailbox
    replace_password(user, password_hash, "reset")
    record_event(
        "password_reset.completed",
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
    )
    db.session.commit()
    return user
