"""Input and output shapes of ``GET /v1/audit-events``, and the console's audit-log filters."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from idp.api_inputs import printable_ascii
from idp.audit.actions import KNOWN_ACTIONS
from idp.audit.query import AuditFilter
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
    action = fields.String(
        validate=validate.OneOf(KNOWN_ACTIONS, error="Not an action the service records.")
    )
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


def _an_id(value: str) -> None:
    """Account and client ids are printable ASCII; anything else names no actor or target."""
    if not printable_ascii(value):
        raise ValidationError("Not an id: use an account id (usr_...) or a client id.")


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def _end_of(day: date | None) -> datetime | None:
    """The first moment after ``day`` (UTC); None after the last day of the calendar."""
    if day is None or day == date.max:
        return None
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


class AuditLogPageArgs(Schema):
    """The console's filters: ids, one known action, and whole UTC days from ``since`` to ``until``.

    A field left blank filters nothing; the result is ``{"where": AuditFilter, "cursor": ...}``.
    """

    class Meta:
        unknown = EXCLUDE  # a page ignores parameters it does not know, as browsers expect

    actor = fields.String(validate=[validate.Length(max=80), _an_id])
    target = fields.String(validate=[validate.Length(max=80), _an_id])
    action = fields.String(
        validate=validate.OneOf(KNOWN_ACTIONS, error="Choose an action from the list.")
    )
    since = fields.Date(error_messages={"invalid": "Not a valid date; use YYYY-MM-DD."})
    until = fields.Date(error_messages={"invalid": "Not a valid date; use YYYY-MM-DD."})
    cursor = fields.String(validate=validate.Length(max=1000))

    @pre_load
    def _blank_is_absent(self, data, **kwargs):
        return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}

    @validates_schema
    def _range_in_order(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise ValidationError("Must not be before the From date.", "until")

    @post_load
    def _to_filter(self, data, **kwargs):
        where = AuditFilter(
            actor=data.get("actor"),
            target=data.get("target"),
            action=data.get("action"),
            since=_start_of(data.get("since")),
            until=_end_of(data.get("until")),
        )
        return {"where": where, "cursor": data.get("cursor")}
