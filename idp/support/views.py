"""The support API under ``/v1/support``: thin views over the support services."""

from __future__ import annotations

from marshmallow import RAISE

from idp.api_inputs import Blueprint
from idp.auth.bearer import current_actor
from idp.openapi import problem_responses
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

NOT_STAFF = "Not support staff, or the role does not allow it"
NO_ACCOUNT = ("No account has this id", service.AccountNotFound)

blp = Blueprint(
    "support_api",
    __name__,
    url_prefix="/v1/support",
    description="Support staff: find accounts, reassign emails, account controls, conflicts.",
)


@blp.get("/accounts")
@blp.doc(**problem_responses(r403=NOT_STAFF))
@staff_only(Permission.SUPPORT_ACCOUNTS_READ)
@blp.arguments(AccountSearchArgs, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, AccountPageOut)
def search_accounts(email=None, email_prefix=None, id=None, limit=50, cursor=None):  # noqa: A002
    """Find accounts by normalized address, address prefix or id (claimed addresses too)."""
    query = service.AccountSearch(email, email_prefix, id, limit, cursor)
    return service.search_accounts(current_actor(), query)


@blp.get("/accounts/<user_id>")
@blp.doc(**problem_responses(r403=NOT_STAFF, r404=NO_ACCOUNT))
@staff_only(Permission.SUPPORT_ACCOUNTS_READ)
@blp.response(200, AccountOut)
def get_account(user_id: str):
    """One account: hub, organizations and roles, status, verified, created, last login."""
    return service.get_account(current_actor(), user_id)


@blp.post("/accounts/<user_id>/email")
@blp.doc(
    **problem_responses(
        r403=NOT_STAFF,
        r404=NO_ACCOUNT,
        r409=("Another account uses the address", service.EmailTaken),
        r422=("Invalid input, or the account's address already", service.EmailUnchanged),
    )
)
@staff_only(Permission.SUPPORT_ACCOUNTS_REASSIGN_EMAIL)
@blp.arguments(EmailReassignmentIn)
@blp.response(200, AccountOut)
def reassign_email(body: dict, user_id: str):
    """Give the account a new, unverified address (409 ``email_taken`` when it is in use)."""
    return service.reassign_email(current_actor(), user_id, **body)


# path, permission, service function, success status: one route per account control
CONTROL_ROUTES = [
    ("disable", Permission.SUPPORT_ACCOUNTS_DISABLE, controls.disable_account, 200),
    ("enable", Permission.SUPPORT_ACCOUNTS_DISABLE, controls.enable_account, 200),
    (
        "password-reset",
        Permission.SUPPORT_ACCOUNTS_RESET_PASSWORD,
        controls.trigger_password_reset,
        202,
    ),
    ("end-sessions", Permission.SUPPORT_ACCOUNTS_END_SESSIONS, controls.end_sessions, 200),
    (
        "resend-verification",
        Permission.SUPPORT_ACCOUNTS_REASSIGN_EMAIL,
        controls.resend_verification,
        202,
    ),
    ("two-step-reset", Permission.SUPPORT_ACCOUNTS_RESET_TWO_STEP, controls.reset_two_step, 200),
]


def _control_route(path: str, permission: Permission, action, status: int) -> None:
    """Register ``POST /accounts/{user_id}/<path>`` for one account control."""

    def view(body: dict, user_id: str):
        return action(current_actor(), user_id, **body)

    view.__name__ = action.__name__
    view.__doc__ = action.__doc__
    decorated = blp.response(status, AccountOut)(view)
    decorated = blp.arguments(SupportActionIn)(decorated)
    decorated = staff_only(permission)(decorated)
    # Ending sessions is possible in every state of the account: it answers no 409.
    state = {"r409": ("Not possible in the account's state", service.AccountStateConflict)}
    decorated = blp.doc(
        **problem_responses(
            r403=NOT_STAFF, r404=NO_ACCOUNT, **({} if path == "end-sessions" else state)
        )
    )(decorated)
    blp.post(f"/accounts/<user_id>/{path}", endpoint=action.__name__)(decorated)


for _route in CONTROL_ROUTES:
    _control_route(*_route)


@blp.get("/email-conflicts")
@blp.doc(**problem_responses(r403=NOT_STAFF))
@staff_only(Permission.SUPPORT_CONFLICTS_READ)
@blp.arguments(ConflictListArgs, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, ConflictPageOut)
def list_email_conflicts(state="open", limit=50, cursor=None):
    """Accounts held because their address was in use, each with the account using it."""
    return conflicts.list_conflicts(current_actor(), state=state, limit=limit, cursor=cursor)
