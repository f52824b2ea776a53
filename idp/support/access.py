"""The gate in front of every support and audit API route, and the record of its refusals."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import has_request_context, request

from idp.accounts.models import User
from idp.api_inputs import printable_ascii
from idp.audit.models import AuditEvent
from idp.audit.service import actor_fields, record_refusal
from idp.auth.bearer import current_actor, require_auth
from idp.auth.enforce import enforce
from idp.extensions import db
from policies.actor import Actor
from policies.decision import Decision
from policies.permissions import Permission
from policies.support import can_use_support_tool

ACCESS_DENIED = "support.access_denied"


def _known_account(user_id: str | None) -> str | None:
    """``user_id`` when it names an account (a refused caller may send any text)."""
    if not user_id or not printable_ascii(user_id):
        return None
    if len(user_id) > AuditEvent.target_id.type.length:
        return None
    return user_id if db.session.get(User, user_id) is not None else None


def record_access_denied(
    actor: Actor, reason: str, *, permission: Permission | None = None, user_id: str | None = None
) -> None:
    """Put on record that the support area refused ``actor`` (committed now: the request fails).

    The event names the account the request was about when there is one, the
    permission asked for (None when the console refused the person outright)
    and the route, with the request's id and client address.
    """
    target_id = _known_account(user_id)
    in_request = has_request_context()
    record_refusal(
        ACCESS_DENIED,
        **actor_fields(actor),
        target_type="user" if target_id else None,
        target_id=target_id,
        after={
            "permission": permission.value if permission else None,
            "endpoint": request.endpoint if in_request else None,
            "method": request.method if in_request else None,
        },
        reason=reason,
    )


def enforce_support(
    actor: Actor,
    decision: Decision,
    permission: Permission | None = None,
    user_id: str | None = None,
) -> Decision:
    """``enforce`` a support decision; a refusal (403) is recorded in the audit log first."""
    if not decision and decision.code != "not_found":
        record_access_denied(actor, decision.reason, permission=permission, user_id=user_id)
    return enforce(decision)


def staff_only(permission: Permission) -> Callable:
    """Authenticate, then refuse anyone but support staff before the input is even parsed."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            actor = current_actor()
            decision = can_use_support_tool(actor, permission)
            enforce_support(actor, decision, permission, kwargs.get("user_id"))
            return view(*args, **kwargs)

        return require_auth(guarded)

    return decorate
