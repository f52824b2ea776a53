"""Input and output shapes of ``GET /v1/audit-events``."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from idp.support.paging import DEFAULT_LIMIT, MAX_LIMIT
from idp.timeutil import Timestamp


def _representable_in_utc(value: datetime) -> None:
    """Refuse a time that falls outside the calendar once moved to UTC (year 0 or 10000)."""
    try:
        value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError("The time is out of range.") from exc


class AuditEventArgs(Schema):
    """Filters: actor id, target id, action, time range [since, until) in RFC 3339."""

    class Meta:
        unknown = RAISE

    actor = fields.String(validate=validate.Length(min=1, max=80))
    target = fields.String(validate=validate.Length(min=1, max=80))
    action = fields.String(validate=validate.Length(min=1, max=80))
    since = fields.AwareDateTime(default_timezone=UTC, validate=_representable_in_utc)
    until = fields.AwareDateTime(default_timezone=UTC, validate=_representable_in_utc)
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(max=1000))


class AuditEventOut(Schema):
    """One audit event as recorded."""

    id = fields.String()
    occurred_at = Timestamp()
    action = fields.String()
    actor_type = fields.String()
    actor_id = fields.String(allow_none=True)
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    organization_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    reason = fields.String(allow_none=True)
    ticket = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)


class AuditEventPageOut(Schema):
    """One page of audit events, newest first."""

    items = fields.List(fields.Nested(AuditEventOut))
    next_cursor = fields.String(allow_none=True)
