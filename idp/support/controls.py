"""Account controls for support: disable, enable, trigger a password reset, end sessions,
remove two-step sign-in.

Nobody can set another person's password: support can only send the account's
owner a reset link.
"""

from __future__ import annotations

from idp.accounts.models import User
from idp.accounts.reset import PURPOSE as RESET_PURPOSE
from idp.accounts.reset import send_password_reset
from idp.accounts.tokens import spend_user_tokens
from idp.apikeys.service import revoke_client_keys
from idp.audit.service import record_event
from idp.extensions import db
from idp.mfa.service import is_enabled as two_step_on
from idp.mfa.service import remove_for_support as remove_two_step
from idp.orgs.invitations import revoke_invitations_by
from idp.support.service import (
    AccountStateConflict,
    account_for,
    end_sessions_of,
    has_held_address,
)
from idp.support.verification import send_verification
from policies.actor import Actor
from policies.permissions import Permission


def _record(
    action: str,
    actor: Actor,
    user: User,
    status_before: str | None,
    status_after: str | None,
    ticket: str,
    reason: str,
) -> None:
    record_event(
        action,
        actor_type="user",
        actor_id=actor.subject,
        target_type="user",
        target_id=user.id,
        before={"status": status_before} if status_before else None,
        after={"status": status_after} if status_after else None,
        reason=reason,
        ticket=ticket,
    )


def _client_organization_ids(user: User) -> list[str]:
    return [m.organization_id for m in user.memberships if m.organization.kind == "client"]


def disable_account(actor: Actor, user_id: str, *, ticket: str, reason: str) -> User:
    """Stop an account: it cannot log in, its sessions and tokens end at once.

    For a client account the API keys of its organizations' channels are revoked
    too: the person may have copied any of them, and a key outlives a session.
    The invitations it sent that are still open are revoked: whoever held the
    account may have invited themselves.
    """
    user = account_for(actor, Permission.SUPPORT_ACCOUNTS_DISABLE, user_id)
    if user.id == actor.user_id:
        raise AccountStateConflict("You cannot disable your own account.")
    if user.status != "active":
        raise AccountStateConflict(f"Only an active account can be disabled ({user.status}).")
    user.status = "disabled"
    end_sessions_of(user, "account_disabled", actor)
    # A reset link sent before must not let anyone in once the account is enabled again.
    spend_user_tokens(user.id, RESET_PURPOSE)
    revoke_invitations_by(user.id, actor=actor, reason="the inviting account was disabled")
    if user.hub == "client":
        for organization_id in _client_organization_ids(user):
            revoke_client_keys(organization_id, "account_disabled", actor=actor)
    _record("account.disabled", actor, user, "active", "disabled", ticket, reason)
    db.session.commit()
    return user


def enable_account(actor: Actor, user_id: str, *, ticket: str, reason: str) -> User:
    """Let a disabled account log in again (revoked API keys stay revoked)."""
    user = account_for(actor, Permission.SUPPORT_ACCOUNTS_DISABLE, user_id)
    if user.status != "disabled":
        raise AccountStateConflict(f"Only a disabled account can be enabled ({user.status}).")
    user.status = "active"
    _record("account.enabled", actor, user, "disabled", "active", ticket, reason)
    db.session.commit()
    return user


def trigger_password_reset(actor: Actor, user_id: str, *, ticket: str, reason: str) -> User:
    """Send the account's owner a password-reset link; support never sees or sets a password."""
    user = account_for(actor, Permission.SUPPORT_ACCOUNTS_RESET_PASSWORD, user_id)
    # FOR SHARE until the link commits, as a person's own request does: a disabling
    # or a reassignment either came first (seen here) or waits, then spends the link.
    db.session.refresh(user, with_for_update={"read": True})
    if user.status != "active":
        raise AccountStateConflict(
            f"A reset link is only sent to an active account ({user.status})."
        )
    send_password_reset(user)
    _record("account.password_reset_sent", actor, user, None, None, ticket, reason)
    db.session.commit()
    return user


def end_sessions(actor: Actor, user_id: str, *, ticket: str, reason: str) -> User:
    """Log the account out everywhere: browser sessions and every token family."""
    user = account_for(actor, Permission.SUPPORT_ACCOUNTS_END_SESSIONS, user_id)
    end_sessions_of(user, "sessions_ended_by_support", actor)
    _record("account.sessions_ended", actor, user, None, None, ticket, reason)
    db.session.commit()
    return user


def resend_verification(actor: Actor, user_id: str, *, ticket: str, reason: str) -> User:
    """Send a new link to an unverified address, so an expired link cannot strand an account."""
    user = account_for(actor, Permission.SUPPORT_ACCOUNTS_REASSIGN_EMAIL, user_id)
    if user.email_verified or has_held_address(user):
        raise AccountStateConflict("The account has no unverified address to confirm.")
    send_verification(user, held=user.status == "email_conflict")
    _record("account.verification_resent", actor, user, None, None, ticket, reason)
    db.session.commit()
    return user


def reset_two_step(actor: Actor, user_id: str, *, ticket: str, reason: str) -> User:
    """Remove the account's two-step sign-in (its owner lost the phone and the codes).

    The password alone signs in again, so what was signed in ends, as with an
    email reassignment: every browser session and token family. The address
    is told. For support admins only.
    """
    user = account_for(actor, Permission.SUPPORT_ACCOUNTS_RESET_TWO_STEP, user_id)
    if not two_step_on(user):
        raise AccountStateConflict("The account has no two-step sign-in to remove.")
    # The account's row first (a new stamp), as every path that ends logins.
    end_sessions_of(user, "two_step_reset", actor)
    remove_two_step(user)
    _record("account.two_step_reset", actor, user, None, None, ticket, reason)
    db.session.commit()
    return user
