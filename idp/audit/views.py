"""``GET /v1/audit-events``: the audit log for support admins."""

from __future__ import annotations

from marshmallow import RAISE

from idp.api_inputs import Blueprint
from idp.audit.query import AuditFilter, find_events
from idp.audit.schemas import AuditEventArgs, AuditEventPageOut
from idp.openapi import problem_responses
from idp.support.access import staff_only
from policies.permissions import Permission

blp = Blueprint("audit_api", __name__, url_prefix="/v1", description="The append-only audit log.")


@blp.get("/audit-events")
@blp.doc(**problem_responses(r403="Only support admins read the audit log"))
@staff_only(Permission.AUDIT_READ)
@blp.arguments(AuditEventArgs, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, AuditEventPageOut)
def list_audit_events(limit: int, cursor: str | None = None, **filters):
    """Events newest first, filtered by actor, target, action and time range."""
    return find_events(AuditFilter(**filters), limit=limit, cursor=cursor)
