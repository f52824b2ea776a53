"""Recording audit events inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.ids import PREFIXES, new_time_ordered_id
from idp.timeutil import utcnow


def record_event(
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
    """Add an audit event to the current session; the caller's commit makes it durable."""
    event = AuditEvent(
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
        request_id=getattr(g, "request_id", None) if has_request_context() else None,
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    return event
