"""Audit events: written once, never updated or deleted (PostgreSQL enforces it too)."""

from __future__ import annotations

import sqlalchemy as sa

from idp.extensions import db
from idp.models import id_column


class AuditEvent(db.Model):
    """Who did what to which object, when, why, and what it looked like before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_occurred", "occurred_at", "id"),)

    id = id_column()
    occurred_at = sa.Column(sa.DateTime, nullable=False)  # indexed with the id, above
    action = sa.Column(sa.String(80), nullable=False, index=True)
    actor_type = sa.Column(sa.String(20), nullable=False)
    actor_id = sa.Column(sa.String(80), nullable=True, index=True)
    target_type = sa.Column(sa.String(40), nullable=True)
    target_id = sa.Column(sa.String(80), nullable=True, index=True)
    organization_id = sa.Column(sa.String(40), nullable=True, index=True)
    before = sa.Column(sa.JSON, nullable=True)
    after = sa.Column(sa.JSON, nullable=True)
    reason = sa.Column(sa.String(1000), nullable=True)
    ticket = sa.Column(sa.String(120), nullable=True)
    request_id = sa.Column(sa.String(64), nullable=True)
    ip = sa.Column(sa.String(64), nullable=True)


class AppendOnlyViolation(RuntimeError):
    """Something tried to change or delete a recorded audit event."""


@sa.event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper, connection, target) -> None:
    raise AppendOnlyViolation(f"audit event {target.id} cannot be changed")


@sa.event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise AppendOnlyViolation(f"audit event {target.id} cannot be deleted")
