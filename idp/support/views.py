"""The support API under ``/v1/support``: thin views over the support services."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import RAISE

from idp.auth.bearer import current_actor
from idp.support import conflicts, controls, service
from idp.support.access import staff_only
from idp.support.schemas import (
    AccountOut,
    AccountPageOut,
    AccountSearchArgs,
    ConflictListArgs,
    ConflictPageOut,
    EmailReassignmentIn,
    SupportActionIn,
)
from policies.permissions import Permission

blp = Blueprint(
    "support_api",
    __name__,
    url_prefix="/v1/support",
    description="Support staff: find accounts, reassign emails, account controls, conflicts.",
)


@blp.get("/accounts")
@staff_only(Permission.SUPPORT_ACCOUNTS_READ)
@blp.arguments(AccountSearchArgs, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, AccountPageOut)
def search_accounts(email=None, email_prefix=None, id=None, limit=50, cursor=None):  # noqa: A002
    """Find accounts by normalized address, address prefix or id (claimed addresses too)."""
    query = service.AccountSearch(email, email_prefix, id, limit, cursor)
    return service.search_accounts(current_actor(), query)


@blp.get("/accounts/<user_id>")
@staff_only(Permission.SUPPORT_ACCOUNTS_READ)
@blp.response(200, AccountOut)
def get_account(user_id: str):
    """One account: hub, organizations and roles, status, verified, created, last login."""
    return service.get_account(current_actor(), user_id)


@blp.post("/accounts/<user_id>/email")
@staff_only(Permission.SUPPORT_ACCOUNTS_REASSIGN_EMAIL)
@blp.arguments(EmailReassignmentIn)
@blp.response(200, AccountOut)
def reassign_email(body: dict, user_id: str):
    """Give the account a new, unverified address (409 ``email_taken`` when it is in use)."""
    return service.reassign_email(current_actor(), user_id, **body)


@blp.post("/accounts/<user_id>/disable")
@staff_only(Permission.SUPPORT_ACCOUNTS_DISABLE)
@blp.arguments(SupportActionIn)
@blp.response(200, AccountOut)
def disable_account(body: dict, user_id: str):
    """Disable the account: no login, sessions and tokens end, a client's API keys stop."""
    return controls.disable_account(current_actor(), user_id, **body)


@blp.post("/accounts/<user_id>/enable")
@staff_only(Permission.SUPPORT_ACCOUNTS_DISABLE)
@blp.arguments(SupportActionIn)
@blp.response(200, AccountOut)
def enable_account(body: dict, user_id: str):
    """Let a disabled account log in again."""
    return controls.enable_account(current_actor(), user_id, **body)


@blp.post("/accounts/<user_id>/password-reset")
@staff_only(Permission.SUPPORT_ACCOUNTS_RESET_PASSWORD)
@blp.arguments(SupportActionIn)
@blp.response(202, AccountOut)
def trigger_password_reset(body: dict, user_id: str):
    """Email the account's owner a password-reset link (support never sets a password)."""
    return controls.trigger_password_reset(current_actor(), user_id, **body)


@blp.post("/accounts/<user_id>/end-sessions")
@staff_only(Permission.SUPPORT_ACCOUNTS_END_SESSIONS)
@blp.arguments(SupportActionIn)
@blp.response(200, AccountOut)
def end_sessions(body: dict, user_id: str):
    """Log the account out everywhere: browser sessions, refresh and access tokens."""
    return controls.end_sessions(current_actor(), user_id, **body)


@blp.get("/email-conflicts")
@staff_only(Permission.SUPPORT_CONFLICTS_READ)
@blp.arguments(ConflictListArgs, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, ConflictPageOut)
def list_email_conflicts(state="open", limit=50, cursor=None):
    """Accounts held because their address was in use, each with the account using it."""
    return conflicts.list_conflicts(current_actor(), state=state, limit=limit, cursor=cursor)
