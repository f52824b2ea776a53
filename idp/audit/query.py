"""Reading the audit log: filters, newest first, keyset pagination."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.support.paging import DEFAULT_LIMIT, Page, decode_time_cursor, encode_cursor


@dataclass
class AuditFilter:
    """Which events: by actor, target, action and a half-open time range [since, until)."""

    actor: str | None = None
    target: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _select(where: AuditFilter) -> sa.Select:
    stmt = db.select(AuditEvent)
    if where.actor:
        stmt = stmt.where(AuditEvent.actor_id == where.actor)
    if where.target:
        stmt = stmt.where(AuditEvent.target_id == where.target)
    if where.action:
        stmt = stmt.where(AuditEvent.action == where.action)
    if where.since:
        stmt = stmt.where(AuditEvent.occurred_at >= _naive_utc(where.since))
    if where.until:
        stmt = stmt.where(AuditEvent.occurred_at < _naive_utc(where.until))
    return stmt


def find_events(
    where: AuditFilter, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page:
    """Matching events, newest first, one page at a time (stable while events are added)."""
    stmt = _select(where).order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    if cursor:
        before, event_id = decode_time_cursor(cursor)
        stmt = stmt.where(
            sa.tuple_(AuditEvent.occurred_at, AuditEvent.id) < sa.tuple_(before, event_id)
        )
    rows = list(db.session.scalars(stmt.limit(limit + 1)))
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode_cursor([rows[-1].occurred_at.isoformat(), rows[-1].id]))


def iter_events(where: AuditFilter, chunk: int = 1000) -> Iterator[AuditEvent]:
    """Every matching event, oldest first, read in chunks (for exports of any size)."""
    stmt = _select(where).order_by(AuditEvent.occurred_at, AuditEvent.id)
    last: tuple | None = None
    while True:
        page = stmt
        if last is not None:
            page = stmt.where(sa.tuple_(AuditEvent.occurred_at, AuditEvent.id) > sa.tuple_(*last))
        rows = list(db.session.scalars(page.limit(chunk)))
        yield from rows
        if len(rows) < chunk:
            return
        last = (rows[-1].occurred_at, rows[-1].id)
        db.session.expunge_all()
