"""Recording audit events inside the caller's transaction, or at once for refused attempts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import g, has_request_context, request

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.ids import PREFIXES, new_time_ordered_id
from idp.timeutil import utcnow
from policies.actor import Actor

SYSTEM = "system"

# Who ran the ``idp`` command recording events now: what a request's id and
# client address are to the events of a request.
_os_user: ContextVar[str | None] = ContextVar("os_user", default=None)


@contextmanager
def run_by(os_user: str) -> Iterator[None]:
    """Name ``os_user`` (who ran an operator command) in the ``after`` of events recorded inside."""
    token = _os_user.set(os_user)
    try:
        yield
    finally:
        _os_user.reset(token)


def actor_fields(actor: Actor | None) -> dict[str, str | None]:
    """The audit ``actor_type``/``actor_id`` of a person, a machine client or the system."""
    if actor is None:
        return {"actor_type": SYSTEM, "actor_id": None}
    if actor.is_machine:
        return {"actor_type": "client", "actor_id": actor.client_id}
    return {"actor_type": "user", "actor_id": actor.user_id}


def record_event(action: str, **fields: Any) -> AuditEvent:
    """Add an audit event to the current session; the caller's commit makes it durable.

    ``fields`` are those of ``audit_event``.
    """
    event = audit_event(action, **fields)
    db.session.add(event)
    return event


def audit_event(
    action: str,
    *,
    actor_type: str,
    actor_id: str | None,
    target_type: str | None = None,
    target_id: str | None = None,
    organization_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    ticket: str | None = None,
) -> AuditEvent:
    """An audit event of this request or operator command, not yet in any session."""
    in_request = has_request_context()
    os_user = None if in_request else _os_user.get()
    if os_user is not None:
        after = {**(after or {}), "os_user": os_user}
    return AuditEvent(
        id=new_time_ordered_id(PREFIXES["audit"]),
        occurred_at=utcnow(),
        action=action,
        actor_type=actor_type,
        actor_id=actor_id,
        target_type=target_type,
        target_id=target_id,
        organization_id=organization_id,
        before=before,
        after=after,
        reason=reason,
        ticket=ticket,
        request_id=getattr(g, "request_id", None) if in_request else None,
        ip=request.remote_addr if in_request else None,
    )


def record_refusal(action: str, **fields: Any) -> AuditEvent:
    """Record a refused attempt and commit it now, so the refusal stays on record.

    The request that made the attempt fails, and a failed request's transaction
    is rolled back: an event left to the caller's commit would go with it. Call
    this before the attempt has written anything it must not keep, since the
    whole session is committed. ``fields`` are those of ``audit_event``.
    """
    event = record_event(action, **fields)
    db.session.commit()
    return event
